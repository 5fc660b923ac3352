"""Benchmark: ANN serving of 1M notes x 64-d on this machine (issue 5 targets).

Synthetic clustered embeddings (1,024 power-law-sized clusters, like trained embeddings), 10k
user queries near the clusters. For each index setting, through :class:`graphrec.index.AnnIndex`
(faiss + exact re-scoring of ``k * oversample`` candidates, the path the recall engine uses):
build time and peak extra memory, single-query latency p50/p99 (one query per call), batched
throughput (users/s, batches of 1,000), and recall@100 against exact search (the flat index, the
same-run peer).

Targets: p99 <= 5 ms, >= 10k users/s batched, recall@100 >= 0.95.

Usage::

    python benchmarks/ann_serving.py [--notes 1000000] [--dim 64] [--queries 10000] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure, write_json

from graphrec._table import format_table
from graphrec.index import AnnIndex

K = 100


def make_data(n: int, dim: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(1024, dim)).astype(np.float32)
    sizes = rng.pareto(1.2, 1024) + 1
    assign = rng.choice(1024, size=n, p=sizes / sizes.sum())
    notes = centers[assign] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    mix = rng.choice(1024, size=(n_queries, 2))
    queries = (
        0.6 * centers[mix[:, 0]] + 0.4 * centers[mix[:, 1]] + 0.5 * rng.normal(size=(n_queries, dim)).astype(np.float32)
    )
    return np.ascontiguousarray(notes, dtype=np.float32), np.ascontiguousarray(queries, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--single", type=int, default=2_000, help="queries timed one by one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/ann_serving.json")
    args = parser.parse_args()
    notes, queries = make_data(args.notes, args.dim, args.queries, args.seed)

    # (label, build parameters, search parameters): settings sharing build parameters reuse one build.
    settings = [
        ("flat (exact)", {"kind": "flat"}, {}),
        ("hnsw M=32 efC=200 efSearch=256", {"kind": "hnsw", "hnsw_m": 32, "ef_construction": 200}, {"ef_search": 256}),
        ("ivf nlist=4096 nprobe=8", {"kind": "ivf", "nlist": 4096}, {"nprobe": 8}),
        ("ivf nlist=4096 nprobe=16 (the default)", {"kind": "ivf", "nlist": 4096}, {"nprobe": 16}),
        ("ivf nlist=8192 nprobe=8", {"kind": "ivf", "nlist": 8192}, {"nprobe": 8}),
        ("ivf nlist=8192 nprobe=16", {"kind": "ivf", "nlist": 8192}, {"nprobe": 16}),
        ("ivf nlist=8192 nprobe=32", {"kind": "ivf", "nlist": 8192}, {"nprobe": 32}),
    ]
    results = []
    truth = None
    built: dict[str, tuple[AnnIndex, dict[str, float]]] = {}
    for name, params, search in settings:
        key = repr(sorted(params.items()))
        if key not in built:
            build: dict[str, float] = {}
            with measure(build):
                base = AnnIndex.build(notes, **params)
            built[key] = (base, build)
        base, build = built[key]
        index = base.tuned(**search)
        t = time.perf_counter()
        ids = np.vstack([index.search(queries[i : i + 1000], K)[0] for i in range(0, len(queries), 1000)])
        batched = len(queries) / (time.perf_counter() - t)
        lat = []
        for i in range(args.single):
            t = time.perf_counter()
            index.search(queries[i : i + 1], K)
            lat.append(time.perf_counter() - t)
        if truth is None:
            truth = ids  # the flat index runs first: exact
        recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, truth, strict=True)]))
        row = {
            "index": name,
            "params": {**params, **search},
            "build_seconds": build["seconds"],
            "build_peak_extra_mb": build["peak_extra_mb"],
            "single_p50_ms": float(np.percentile(lat, 50) * 1e3),
            "single_p99_ms": float(np.percentile(lat, 99) * 1e3),
            "batched_users_per_s": batched,
            "recall@100": recall,
        }
        row["meets_targets"] = bool(row["single_p99_ms"] <= 5 and batched >= 10_000 and recall >= 0.95)
        results.append(row)
        print(f"{name}: {row}", flush=True)
    print(f"\n{args.notes:,} notes x {args.dim}-d, {args.queries:,} queries, k={K}, 2-core CPU")
    print(
        format_table(
            ["index", "build s", "build MB", "p50 ms", "p99 ms", "users/s", "recall@100", "targets"],
            [
                [
                    r["index"],
                    r["build_seconds"],
                    r["build_peak_extra_mb"],
                    r["single_p50_ms"],
                    r["single_p99_ms"],
                    f"{r['batched_users_per_s']:,.0f}",
                    r["recall@100"],
                    "met" if r["meets_targets"] else "-",
                ]
                for r in results
            ],
        )
    )
    write_json(
        args.out,
        {
            "benchmark": "ann_serving",
            "notes": args.notes,
            "dim": args.dim,
            "queries": args.queries,
            "k": K,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
