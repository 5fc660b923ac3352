"""Benchmark: graphrec's Swing against recfarm (LibRecommender's Rust Swing) on one dataset, one run.

Both compute Swing over the same binary user x note matrix with the same smoothing and user
weighting: recfarm scores a user pair ``|I_u|^-1/2 |I_v|^-1/2 / (alpha_rf + |I_u & I_v| - 1)``,
which is graphrec's definition with ``beta = 0.5``, ``user_alpha = 0`` and
``alpha = alpha_rf - 1``. Reported: wall time of the similarity computation alone (input
conversion and saving excluded for both), its peak extra memory, the time ratio
graphrec / recfarm, and agreement of the top-k lists (mean overlap and exact-equality share)
and of the scores on common pairs.

Data: ``--data DIR`` in LightGCN format (train.txt), or the synthetic power-law generator
(default, >= 1M distinct user–note pairs).

Usage::

    python benchmarks/swing_vs_recfarm.py [--data DIR] [--top-k 20] [--threads 2] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import gzip
import os
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure, write_json

from graphrec._table import format_table
from graphrec.graph import ENGAGES, build_graph
from graphrec.io import load_lightgcn_split, validate_interactions
from graphrec.testing import make_ugc_dataset
from graphrec.weights import swing


@dataclass
class _RecfarmSparse:  # the layout recfarm reads (LibRecommender's SparseMatrix)
    sparse_indices: list[int]
    sparse_indptr: list[int]
    sparse_data: list[float]


def _read_recfarm_scores(path: Path, n_items: int) -> dict[int, list[tuple[int, float]]]:
    """Decode the item -> [(item, score)] map at the head of recfarm's bincode save file."""
    raw = gzip.decompress(path.read_bytes())
    off = 8 + 4 + 8 + 8 + 8  # top_k u64, alpha f32, max_cache_num u64, n_users u64, n_items u64
    (n_keys,) = struct.unpack_from("<Q", raw, off)
    off += 8
    out = {}
    for _ in range(n_keys):
        key, n = struct.unpack_from("<iQ", raw, off)
        off += 12
        pairs = np.frombuffer(raw, dtype=np.dtype([("j", "<i4"), ("s", "<f4")]), count=n, offset=off)
        off += 8 * n
        out[int(key)] = list(zip(pairs["j"].tolist(), pairs["s"].tolist(), strict=True))
    if any(k >= n_items for k in out):
        raise RuntimeError("unexpected recfarm file layout")
    return out


def _top(entries: list[tuple[int, float]], k: int) -> list[int]:
    return [j for j, _ in sorted(entries, key=lambda t: (-t[1], t[0]))[:k]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="LightGCN-format directory (train.txt); default: synthetic")
    parser.add_argument("--engagements", type=int, default=1_100_000, help="synthetic engagements")
    parser.add_argument("--alpha", type=float, default=1.0, help="graphrec alpha (recfarm gets alpha + 1)")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default="benchmarks/results/swing_vs_recfarm.json")
    args = parser.parse_args()
    import recfarm

    if args.data:
        train, _test = load_lightgcn_split(args.data)
        x = build_graph(train).relation(ENGAGES)
        source = args.data
    else:
        d = make_ugc_dataset(
            n_users=50_000, n_notes=100_000, n_engagements=args.engagements, string_ids=False, with_text=False, seed=0
        )
        x = build_graph(validate_interactions(d.interactions)).relation(ENGAGES)
        source = f"synthetic make_ugc_dataset(n_users=50000, n_notes=100000, n_engagements={args.engagements}, seed=0)"
    x = sp.csr_matrix((np.ones(x.nnz, dtype=np.float32), x.indices, x.indptr), shape=x.shape)
    n_users, n_items = x.shape
    k = args.top_k

    swing(x[:50], top_k=k, n_threads=args.threads)  # compile / load the numba kernel outside the timing
    ours_m: dict[str, float] = {}
    with measure(ours_m):
        s = swing(x, alpha=args.alpha, beta=0.5, user_alpha=0.0, top_k=0, n_threads=args.threads)

    xt = x.T.tocsr()
    ui = _RecfarmSparse(x.indices.tolist(), x.indptr.tolist(), x.data.tolist())
    ii = _RecfarmSparse(xt.indices.tolist(), xt.indptr.tolist(), xt.data.tolist())
    consumed = {u: x.indices[x.indptr[u] : x.indptr[u + 1]].tolist() for u in range(n_users)}
    model = recfarm.Swing(k, args.alpha + 1.0, 100_000_000, n_users, n_items, ui, ii, consumed, 0.0)
    peer_m: dict[str, float] = {}
    with measure(peer_m):
        model.compute_swing(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        recfarm.save_swing(model, tmp, "swing")
        theirs = _read_recfarm_scores(Path(tmp) / "swing.gz", n_items)

    overlaps, exact, rel_err = [], 0, []
    rows = set(theirs) | set(np.flatnonzero(np.diff(s.indptr)).tolist())
    for i in rows:
        lo, hi = s.indptr[i], s.indptr[i + 1]
        ours = list(zip(s.indices[lo:hi].tolist(), s.data[lo:hi].tolist(), strict=True))
        a, b = _top(ours, k), _top(theirs.get(i, []), k)
        denom = max(len(a), len(b))
        overlaps.append(len(set(a) & set(b)) / denom if denom else 1.0)
        exact += a == b
        tb = dict(theirs.get(i, []))
        rel_err += [abs(v - tb[j]) / max(abs(tb[j]), 1e-12) for j, v in ours if j in tb]
    result = {
        "benchmark": "swing_vs_recfarm",
        "data": source,
        "users": n_users,
        "notes": n_items,
        "interactions": int(x.nnz),
        "params": {
            "graphrec_alpha": args.alpha,
            "recfarm_alpha": args.alpha + 1.0,
            "beta": 0.5,
            "user_alpha": 0.0,
            "top_k_compared": k,
            "threads": args.threads,
        },
        "graphrec": {**ours_m, "pairs": int(s.nnz)},
        "recfarm": {**peer_m, "pairs": int(sum(len(v) for v in theirs.values()))},
        "time_ratio_graphrec_over_recfarm": ours_m["seconds"] / peer_m["seconds"],
        "memory_ratio_graphrec_over_recfarm": ours_m["peak_extra_mb"] / max(peer_m["peak_extra_mb"], 1e-9),
        "topk_mean_overlap": float(np.mean(overlaps)),
        "topk_identical_share": exact / max(len(rows), 1),
        "score_max_relative_error": float(max(rel_err)) if rel_err else 0.0,
    }
    print(f"{source}: {n_users:,} users, {n_items:,} notes, {x.nnz:,} interactions; threads={args.threads}")
    print(
        format_table(
            ["engine", "seconds", "peak extra MB", "pairs"],
            [
                ["graphrec", ours_m["seconds"], ours_m["peak_extra_mb"], result["graphrec"]["pairs"]],
                ["recfarm", peer_m["seconds"], peer_m["peak_extra_mb"], result["recfarm"]["pairs"]],
            ],
        )
    )
    print(
        f"time ratio graphrec/recfarm {result['time_ratio_graphrec_over_recfarm']:.3f}; "
        f"top-{k} mean overlap {result['topk_mean_overlap']:.4f}, identical lists {result['topk_identical_share']:.4f}; "
        f"max relative score error {result['score_max_relative_error']:.2e}"
    )
    write_json(args.out, result)


if __name__ == "__main__":
    main()
