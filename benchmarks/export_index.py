"""Benchmark: the partitioned embedding export and the sharded faiss build, against one-piece peers.

For each size of the synthetic log of ``benchmarks/gnn_scaling.py`` (``E / 25`` users, ``E / 50``
notes, tags, no text), a :class:`~graphrec.model.gnn.trainer.Trainer` with the default
:class:`GNNConfig` is built (the export's cost does not depend on training, so its table stays
at its seeded start) and its final embeddings are computed

* in one piece (:meth:`Trainer.embed`, the peer), and
* in node-row partitions into files (:meth:`Trainer.export`, :mod:`graphrec.model.gnn.export`)
  with ``--buffer-mb`` buffers,

each with its seconds and the peak resident memory it added (``VmHWM`` reset before the phase,
see ``_measure.py``; it counts the memory-mapped pages the export keeps resident, which it drops
after every block). The largest absolute difference between the two results is printed.

Then an IVF index (``kind="ivf"``, default ``nlist``/``nprobe``) over the user embeddings is built
in one shot (:meth:`AnnIndex.build`) and in ``--shards`` shards (trained on the sampled rows,
each shard filled from the serialised empty index and sent back serialised, then merged), and
both answer the same ``2000`` queries: the results must be identical.

Usage::

    python benchmarks/export_index.py --out benchmarks/results/export_index.json \\
        [--engagements 1000000,4000000,16000000] [--buffer-mb 64] [--shards 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure, scaling_graph, set_threads, write_json

from graphrec._table import format_table


def _export(n_engagements: int, buffer_mb: float, tmp: Path) -> tuple[dict[str, Any], np.ndarray]:
    import scipy.sparse as sp
    import torch

    from graphrec.graph import ENGAGES
    from graphrec.model.gnn import GNNConfig
    from graphrec.model.gnn.trainer import Trainer

    graph = scaling_graph(n_engagements)
    engages = sp.csr_matrix(graph.relation(ENGAGES), dtype=np.float32)
    trainer = Trainer(GNNConfig(), graph, engages, None, torch.device("cpu"), show_progress=False)
    del graph
    row: dict[str, Any] = {"engagements": n_engagements, "nodes": int(trainer.offsets["end"]), "pairs": engages.nnz}
    one: dict[str, Any] = {}
    with measure(one):
        users, notes, tags = (t.numpy() for t in trainer.embed())
    parts: dict[str, Any] = {}
    with measure(parts):
        paths = trainer.export(tmp / "export", buffer_mb=buffer_mb)
    diff = max(
        float(np.abs(np.load(paths[k], mmap_mode="r") - v).max())
        for k, v in zip(("user", "note", "tag"), (users, notes, tags), strict=True)
    )
    row.update(
        embed_seconds=one["seconds"],
        embed_peak_extra_mb=one["peak_extra_mb"],
        export_seconds=parts["seconds"],
        export_peak_extra_mb=parts["peak_extra_mb"],
        max_abs_diff=diff,
        table_mb=row["nodes"] * trainer.config.dim * 4 / 2**20,
    )
    return row, users


def _index(users: np.ndarray, shards: int) -> dict[str, Any]:
    import faiss

    from graphrec.index import AnnIndex, IndexConfig

    params = IndexConfig(kind="ivf")
    t = time.perf_counter()
    one = AnnIndex.build(users, params)
    one_s = time.perf_counter() - t
    t = time.perf_counter()
    n = users.shape[0]
    rows = AnnIndex.sample_rows(n, params)
    empty = faiss.serialize_index(AnnIndex.train_empty(users[rows], n, params))
    bounds = np.linspace(0, n, shards + 1).astype(int)
    filled = [
        faiss.serialize_index(AnnIndex.fill_shard(faiss.deserialize_index(empty), users[a:b], int(a), params))
        for a, b in itertools.pairwise(bounds)
    ]
    merged = AnnIndex.merge_shards([faiss.deserialize_index(f) for f in filled], users, params)
    sharded_s = time.perf_counter() - t
    queries = users[np.random.default_rng(0).choice(n, 2000, replace=False)]
    (a_ids, a_scores), (b_ids, b_scores) = one.search(queries, 100), merged.search(queries, 100)
    return {
        "rows": n,
        "nlist": AnnIndex.resolve(n, params)[1],
        "trained_on": int(rows.size),
        "shards": shards,
        "one_shot_seconds": one_s,
        "sharded_seconds": sharded_s,
        "identical_results": bool(np.array_equal(a_ids, b_ids) and np.array_equal(a_scores, b_scores)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engagements", default="1000000,4000000,16000000")
    ap.add_argument("--buffer-mb", type=float, default=64)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    set_threads(args.threads)
    exports, indexes = [], []
    for n in (int(s) for s in args.engagements.split(",")):
        with tempfile.TemporaryDirectory(prefix="graphrec-export-") as tmp:
            row, users = _export(n, args.buffer_mb, Path(tmp))
        exports.append(row)
        indexes.append(_index(users, args.shards))
        print(f"{n}: {row} {indexes[-1]}", flush=True)
    print(
        format_table(
            [
                "engagements",
                "nodes",
                "N x d table MB",
                "one piece s",
                "one piece +MB",
                "partitioned s",
                "partitioned +MB",
                "max |diff|",
            ],
            [
                [
                    f"{r['engagements']:,}",
                    f"{r['nodes']:,}",
                    f"{r['table_mb']:.0f}",
                    f"{r['embed_seconds']:.2f}",
                    f"{r['embed_peak_extra_mb']:.0f}",
                    f"{r['export_seconds']:.2f}",
                    f"{r['export_peak_extra_mb']:.0f}",
                    f"{r['max_abs_diff']:.1e}",
                ]
                for r in exports
            ],
        )
    )
    print(
        format_table(
            ["user rows", "nlist", "trained on", "one-shot s", f"{args.shards} shards s", "identical results"],
            [
                [
                    f"{r['rows']:,}",
                    str(r["nlist"]),
                    f"{r['trained_on']:,}",
                    f"{r['one_shot_seconds']:.2f}",
                    f"{r['sharded_seconds']:.2f}",
                    str(r["identical_results"]),
                ]
                for r in indexes
            ],
        )
    )
    if args.out:
        write_json(args.out, {"args": vars(args), "export": exports, "index": indexes})


if __name__ == "__main__":
    main()
