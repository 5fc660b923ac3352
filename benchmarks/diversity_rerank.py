"""Benchmark: latency of DPP and SSD re-ranking, 20 of 200 candidates, one core.

Target (issue 23): p99 <= 1 ms per user for either method. The peer in the same run is the brute-force
greedy DPP (a log-determinant per candidate per step, the slow reference of the tests), timed on
fewer calls; the ratio says what the fast greedy algorithm buys.

Usage::

    python benchmarks/diversity_rerank.py [--candidates 200] [--k 20] [--dim 64] [--calls 2000] [--out FILE.json]
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
from graphrec.recall.diversity import dpp_rerank, ssd_rerank  # noqa: E402


def _brute_force_dpp(r: np.ndarray, v: np.ndarray, k: int, weight: float) -> list[int]:
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    q = np.exp((r - r.max()) / (2 * weight))
    big_l = q[:, None] * (u @ u.T) * q[None, :]
    chosen: list[int] = []
    for _ in range(k):
        vals = [
            np.linalg.slogdet(big_l[np.ix_([*chosen, i], [*chosen, i])])[1] if i not in chosen else -np.inf
            for i in range(r.size)
        ]
        chosen.append(int(np.argmax(vals)))
    return chosen


def _latencies(fn, inputs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    out = np.empty(len(inputs))
    for t, (r, v) in enumerate(inputs):
        start = time.perf_counter()
        fn(r, v)
        out[t] = time.perf_counter() - start
    return out * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--weight", type=float, default=0.5)
    ap.add_argument("--out", default="benchmarks/results/diversity_rerank.json")
    args = ap.parse_args()
    set_threads(1)
    rng = np.random.default_rng(0)
    inputs = [(rng.random(args.candidates), rng.normal(size=(args.candidates, args.dim))) for _ in range(args.calls)]
    for r, v in inputs[:20]:  # warm-up
        dpp_rerank(r, v, args.k, weight=args.weight)
        ssd_rerank(r, v, args.k, weight=args.weight)
    runs = {
        "dpp (fast greedy)": _latencies(lambda r, v: dpp_rerank(r, v, args.k, weight=args.weight), inputs),
        "ssd (window 10)": _latencies(lambda r, v: ssd_rerank(r, v, args.k, weight=args.weight), inputs),
        "peer: brute-force greedy dpp": _latencies(
            lambda r, v: _brute_force_dpp(r, v, args.k, args.weight), inputs[: max(1, args.calls // 100)]
        ),
    }
    rows, results = [], {}
    for name, ms in runs.items():
        results[name] = {
            "calls": int(ms.size),
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
        }
        rows.append([name, ms.size, f"{results[name]['p50_ms']:.3f}", f"{results[name]['p99_ms']:.3f}"])
    print(format_table(["method", "calls", "p50 ms", "p99 ms"], rows))
    fast, peer = results["dpp (fast greedy)"], results["peer: brute-force greedy dpp"]
    print(f"brute-force / fast greedy p50 ratio: {peer['p50_ms'] / fast['p50_ms']:.0f}x")
    write_json(
        args.out,
        {
            "benchmark": "diversity_rerank",
            "candidates": args.candidates,
            "k": args.k,
            "dim": args.dim,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
