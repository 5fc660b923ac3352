"""Benchmark: the exact flat search (two passes: float32, then float64 on the kept rows) against
one float64 pass over every row, one BLAS thread, in the same run.

The peer is the flat search as it was before the two-pass design: every score in float64
(``q @ V.T`` on float64 copies), then the same top-k kernel. Both give the exact top ``k`` by
(score, index); the script checks that they return the same ids and reports the largest score
difference. Two workloads: one query at a time (what a serving request does, ``k`` = the
embedding channel's fetch) and one batch (what the predicted-exposure count and evaluation do).

Usage::

    python benchmarks/flat_search.py [--notes 50000] [--dim 64] [--k 300] [--out FILE.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core: set before numpy loads
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from _measure import set_threads, write_json  # noqa: E402

from graphrec._table import format_table  # noqa: E402
from graphrec._topk import topk_rows  # noqa: E402
from graphrec.index import AnnIndex  # noqa: E402


def _one_float64_pass(vectors64: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    block = max(1, (1 << 22) // len(vectors64))
    parts = [topk_rows(q[i : i + block].astype(np.float64) @ vectors64.T, k) for i in range(0, len(q), block)]
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts]).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--notes", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=300, help="rows asked per query")
    ap.add_argument("--single", type=int, default=1000, help="single-query calls timed")
    ap.add_argument("--batch", type=int, default=4096, help="queries in the batch call")
    ap.add_argument("--out")
    args = ap.parse_args()
    set_threads(1)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.notes, args.dim)).astype(np.float32)
    queries = rng.normal(size=(max(args.single, args.batch), args.dim)).astype(np.float32)
    index = AnnIndex.build(vectors, kind="flat")
    vectors64 = vectors.astype(np.float64)
    methods = {"two passes": index.search, "one float64 pass": lambda q, k: _one_float64_pass(vectors64, q, k)}
    results: dict[str, dict[str, float]] = {}
    for name, search in methods.items():
        search(queries[:100], args.k)  # compile and warm
        lat = []
        for i in range(args.single):
            t = time.perf_counter()
            search(queries[i : i + 1], args.k)
            lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        search(queries[: args.batch], args.k)
        batch_s = time.perf_counter() - t
        ms = np.array(lat) * 1000
        results[name] = {
            "single_p50_ms": float(np.percentile(ms, 50)),
            "single_p99_ms": float(np.percentile(ms, 99)),
            "batch_s": batch_s,
        }
    ids_a, sc_a = index.search(queries[: args.batch], args.k)
    ids_b, sc_b = _one_float64_pass(vectors64, queries[: args.batch], args.k)
    same = float((ids_a == ids_b).mean())
    diff = float(np.abs(sc_a - sc_b).max())
    rows = [[n, r["single_p50_ms"], r["single_p99_ms"], r["batch_s"]] for n, r in results.items()]
    print(f"{args.notes:,} x {args.dim} float32 rows, k = {args.k}, one thread")
    print(format_table(["method", "1 query p50 ms", "1 query p99 ms", f"{args.batch} queries s"], rows))
    peer, ours = results["one float64 pass"], results["two passes"]
    print(
        f"speed-up: {peer['single_p50_ms'] / ours['single_p50_ms']:.2f}x per query (p50), "
        f"{peer['batch_s'] / ours['batch_s']:.2f}x on the batch; same ids {same:.4f}, largest score difference {diff:.2g}"
    )
    if args.out:
        write_json(args.out, {"args": vars(args), "results": results, "same_ids": same, "max_score_diff": diff})


if __name__ == "__main__":
    main()
