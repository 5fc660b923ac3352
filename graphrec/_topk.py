"""Exact, deterministic top-k per row (the kernel behind ranking and exact ANN search).

One pass over each row keeps a ``k``-entry heap of the best entries seen so far, in parallel over
rows (numba). Scanning columns in increasing order and admitting only entries strictly better
than the heap's worst makes ties go to the smaller column index, so a row's result never depends
on the other rows or on batching. About ten times faster than ``argpartition`` + sorting for
``k << n_columns`` over many rows (it ranks every user for early stopping and evaluation).

A serving-sized batch (at most :data:`FEW_ROWS` rows) takes the other exact path instead:
``argpartition`` finds the k-th best value, every entry at least that good is kept (so ties at
the boundary are all seen) and those are sorted by (score descending, column ascending). For one
query over 50k columns at k = 800 that is ~8x faster than the heap (no thread launch, no
per-entry heap work); both paths give identical results (tested against a sorted reference).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["FEW_ROWS", "topk", "topk_rows"]

#: Batches of at most this many rows use the partition path (see the module docstring).
FEW_ROWS = 8


@numba.njit(inline="always")
def _worse(va: float, ia: int, vb: float, ib: int) -> bool:  # pragma: no cover - numba
    """Entry a ranks below entry b: a smaller score, or the same score at a larger column."""
    return va < vb or (va == vb and ia > ib)


@numba.njit(inline="always")
def _sift_down(vals: np.ndarray, idx: np.ndarray, size: int, pos: int) -> None:  # pragma: no cover - numba
    # min-heap on "worse": the root is the worst entry kept
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and _worse(vals[child + 1], idx[child + 1], vals[child], idx[child]):
            child += 1
        if not _worse(vals[child], idx[child], vals[pos], idx[pos]):
            return
        vals[pos], vals[child] = vals[child], vals[pos]
        idx[pos], idx[child] = idx[child], idx[pos]
        pos = child


@numba.njit(parallel=True, cache=True)
def _topk(s: np.ndarray, k: int, out_idx: np.ndarray, out_val: np.ndarray) -> None:  # pragma: no cover - numba
    n_rows, n_cols = s.shape
    for r in numba.prange(n_rows):
        vals = np.empty(k, s.dtype)
        idx = np.empty(k, np.int64)
        size = 0
        for j in range(n_cols):
            v = s[r, j]
            if not np.isfinite(v):
                continue
            if size < k:
                # sift up
                pos = size
                vals[pos] = v
                idx[pos] = j
                size += 1
                while pos > 0:
                    parent = (pos - 1) // 2
                    if _worse(vals[pos], idx[pos], vals[parent], idx[parent]):
                        vals[pos], vals[parent] = vals[parent], vals[pos]
                        idx[pos], idx[parent] = idx[parent], idx[pos]
                        pos = parent
                    else:
                        break
            elif v > vals[0]:  # strictly better than the worst kept (a tie at a later column is not)
                vals[0] = v
                idx[0] = j
                _sift_down(vals, idx, size, 0)
        # pop the heap from worst to best into the output, best first
        for t in range(size - 1, -1, -1):
            out_val[r, t] = vals[0]
            out_idx[r, t] = idx[0]
            size -= 1
            vals[0] = vals[size]
            idx[0] = idx[size]
            _sift_down(vals, idx, size, 0)


def topk_rows(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``k`` largest scores, best first.

    Ties go to the smaller column index, so a row's result never depends on the other rows.
    Entries that are not finite (NaN, ±inf) are never returned; rows with fewer than ``k`` finite
    entries are padded with index -1 and value -inf. ``s`` is a 2-D float array (not modified).
    """
    scores = np.ascontiguousarray(s)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    n_rows = scores.shape[0]
    idx = np.full((n_rows, k), -1, dtype=np.int64)
    vals = np.full((n_rows, k), -np.inf, dtype=scores.dtype)
    if k > 0 and scores.size:
        if n_rows <= FEW_ROWS:
            for r in range(n_rows):
                _partition_row(scores[r], k, idx[r], vals[r])
        else:
            _topk(scores, k, idx, vals)
    return idx, vals


def topk(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One vector's ``n`` largest finite scores (indices, values), best first, without padding."""
    if n <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    idx, vals = topk_rows(np.asarray(scores, dtype=np.float64)[None, :], min(n, scores.size))
    keep = idx[0] >= 0
    return idx[0][keep], vals[0][keep]


def _partition_row(row: np.ndarray, k: int, out_idx: np.ndarray, out_val: np.ndarray) -> None:
    """One row's top-``k`` by partition (the path for serving-sized batches)."""
    finite = np.flatnonzero(np.isfinite(row))
    kk = min(k, finite.size)
    if kk == 0:
        return
    values = row[finite]
    kth = values[np.argpartition(-values, kk - 1)[kk - 1]]
    keep = finite[values >= kth]  # every entry tied with the k-th is a candidate
    order = keep[np.lexsort((keep, -row[keep]))][:kk]
    out_idx[:kk] = order
    out_val[:kk] = row[order]
