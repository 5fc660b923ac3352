"""Benchmark: the top-k kernel's threshold path against its heap path, same rows, same run.

``graphrec._topk`` takes a sampled threshold before the heap for ``k >= THRESHOLD_MIN_K`` over
at least ``16 k`` columns (design in its module docstring). The peer is the heap alone, the
kernel as it was before: each row through ``_heap_row``, in parallel over rows like the kernel.
Both must return the same indices and values; the script checks that. Rows are float32 scores
of random queries against random vectors (what the flat search and the predicted-exposure count
scan), one thread.

Usage::

    python benchmarks/topk_kernel.py [--rows 512] [--cols 50000] [--ks 50 100 300 600] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numba
import numpy as np
from _measure import set_threads, write_json

from graphrec._table import format_table
from graphrec._topk import THRESHOLD_MIN_K, _heap_row, topk_rows


@numba.njit(parallel=True)
def _heap_only(s: np.ndarray, k: int, out_idx: np.ndarray, out_val: np.ndarray) -> None:  # pragma: no cover
    for r in numba.prange(s.shape[0]):
        _heap_row(s[r], k, out_idx[r], out_val[r])


def heap_topk(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.full((s.shape[0], k), -1, dtype=np.int64)
    vals = np.full((s.shape[0], k), -np.inf, dtype=s.dtype)
    _heap_only(s, k, idx, vals)
    return idx, vals


def _best_of(
    fn: Callable[[], tuple[np.ndarray, np.ndarray]], repeats: int
) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    best, out = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    assert out is not None
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--cols", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--ks", type=int, nargs="+", default=[50, 100, 300, 600])
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per method; the fastest counts")
    ap.add_argument("--out")
    args = ap.parse_args()
    set_threads(1)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.cols, args.dim)).astype(np.float32)
    scores = rng.normal(size=(args.rows, args.dim)).astype(np.float32) @ vectors.T
    results = []
    for k in args.ks:
        topk_rows(scores[:16], k)  # compile and warm both
        heap_topk(scores[:16], k)
        kernel_s, (idx_a, val_a) = _best_of(lambda k=k: topk_rows(scores, k), args.repeats)
        heap_s, (idx_b, val_b) = _best_of(lambda k=k: heap_topk(scores, k), args.repeats)
        same = bool(np.array_equal(idx_a, idx_b) and np.array_equal(val_a, val_b))
        results.append(
            {
                "k": k,
                "path": "threshold" if k >= THRESHOLD_MIN_K and args.cols >= 16 * k else "heap",
                "kernel_ns_per_entry": 1e9 * kernel_s / scores.size,
                "heap_ns_per_entry": 1e9 * heap_s / scores.size,
                "speedup": heap_s / kernel_s,
                "same": same,
            }
        )
    print(f"{args.rows} rows x {args.cols:,} float32 columns, one thread, fastest of {args.repeats}")
    rows = [
        [
            r["k"],
            r["path"],
            f"{r['kernel_ns_per_entry']:.2f}",
            f"{r['heap_ns_per_entry']:.2f}",
            f"{r['speedup']:.2f}x",
            r["same"],
        ]
        for r in results
    ]
    print(format_table(["k", "kernel path", "kernel ns/entry", "heap ns/entry", "speed-up", "same results"], rows))
    if args.out:
        write_json(args.out, {"args": vars(args), "results": results})


if __name__ == "__main__":
    main()
