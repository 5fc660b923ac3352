"""Exact, deterministic top-k per row (the kernel behind ranking and exact ANN search).

One pass over each row keeps a ``k``-entry heap of the best entries seen so far, in parallel over
rows (numba). Scanning columns in increasing order and admitting only entries strictly better
than the heap's worst makes ties go to the smaller column index, so a row's result never depends
on the other rows or on batching. About ten times faster than ``argpartition`` + sorting for
``k << n_columns`` over many rows (it ranks every user for early stopping and evaluation).

The heap's cost grows with ``k``: each admitted entry costs a sift over ``log k`` levels, and
about ``k (1 + ln(n / k))`` entries are admitted. So for ``k`` of at least
:data:`THRESHOLD_MIN_K`, over at least ``16 k`` columns, a row first takes a threshold: every
``stride``-th entry (``stride = k // 16``) is sampled, and ``t`` is the ``ceil(3k / stride)``-th
largest sampled value (about 48 of the sample's entries are at or above it), so about
``3k`` of the row's entries are expected at or above it. One scan then keeps the finite entries
``>= t`` in column order, in a buffer of ``6k + 64``. If it holds at least ``k`` entries, the
row's k-th best value is at least ``t``, so the whole top-k is in the buffer; its k-th largest
value is found by partition and the entries at or above it are stably sorted by score (ties keep
column order). If the buffer overflows or ends with fewer than ``k`` entries (ties, a skewed
sample, few finite entries), that row takes the heap. Results are the same either way.

A serving-sized batch (at most :data:`FEW_ROWS` rows) takes the other exact path instead:
``argpartition`` finds the k-th best value, every entry at least that good is kept (so ties at
the boundary are all seen) and those are sorted by (score descending, column ascending). For one
query over 50k columns at k = 800 that is ~8x faster than the heap (no thread launch, no
per-entry heap work); both paths give identical results (tested against a sorted reference).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["FEW_ROWS", "THRESHOLD_MIN_K", "topk", "topk_rows"]

#: Batches of at most this many rows use the partition path (see the module docstring).
FEW_ROWS = 8
#: From this k (over at least ``16 k`` columns), a row takes a sampled threshold before the heap.
THRESHOLD_MIN_K = 64


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


@numba.njit(inline="always")
def _sift_up(vals: np.ndarray, idx: np.ndarray, pos: int) -> None:  # pragma: no cover - numba
    while pos > 0:
        parent = (pos - 1) // 2
        if not _worse(vals[pos], idx[pos], vals[parent], idx[parent]):
            return
        vals[pos], vals[parent] = vals[parent], vals[pos]
        idx[pos], idx[parent] = idx[parent], idx[pos]
        pos = parent


@numba.njit(cache=True)
def _heap_row(row: np.ndarray, k: int, out_idx: np.ndarray, out_val: np.ndarray) -> None:  # pragma: no cover - numba
    """One row's top-k by a k-entry heap (see the module docstring)."""
    vals = np.empty(k, row.dtype)
    idx = np.empty(k, np.int64)
    size = 0
    for j in range(row.size):
        v = row[j]
        if not np.isfinite(v):
            continue
        if size < k:
            vals[size] = v
            idx[size] = j
            _sift_up(vals, idx, size)
            size += 1
        elif v > vals[0]:  # strictly better than the worst kept (a tie at a later column is not)
            vals[0] = v
            idx[0] = j
            _sift_down(vals, idx, size, 0)
    # pop the heap from worst to best into the output, best first
    for t in range(size - 1, -1, -1):
        out_val[t] = vals[0]
        out_idx[t] = idx[0]
        size -= 1
        vals[0] = vals[size]
        idx[0] = idx[size]
        _sift_down(vals, idx, size, 0)


@numba.njit(cache=True)
def _threshold_row(row: np.ndarray, k: int, out_idx: np.ndarray, out_val: np.ndarray) -> bool:  # pragma: no cover
    """One row's top-k through a sampled threshold (see the module docstring); False: take the heap."""
    stride = k // 16
    m = (3 * k + stride - 1) // stride
    sample = np.empty(m, row.dtype)
    order = np.zeros(m, np.int64)  # a value heap: equal values tie, which is all a threshold needs
    size = 0
    for j in range(0, row.size, stride):
        v = row[j]
        if not np.isfinite(v):
            continue
        if size < m:
            sample[size] = v
            _sift_up(sample, order, size)
            size += 1
        elif v > sample[0]:
            sample[0] = v
            _sift_down(sample, order, size, 0)
    if size < m:
        return False
    t = sample[0]
    cap = 6 * k + 64
    buf_v = np.empty(cap, row.dtype)
    buf_i = np.empty(cap, np.int64)
    n = 0
    for j in range(row.size):
        v = row[j]
        if v >= t and v < np.inf:  # t is finite: NaN and -inf fail the first test
            if n == cap:
                return False
            buf_v[n] = v
            buf_i[n] = j
            n += 1
    if n < k:
        return False
    kth = np.partition(buf_v[:n], n - k)[n - k]
    keep = np.flatnonzero(buf_v[:n] >= kth)
    best = np.argsort(-buf_v[keep], kind="mergesort")[:k]  # stable: ties stay in column order
    for i in range(k):
        out_idx[i] = buf_i[keep[best[i]]]
        out_val[i] = buf_v[keep[best[i]]]
    return True


@numba.njit(parallel=True, cache=True)
def _topk(s: np.ndarray, k: int, out_idx: np.ndarray, out_val: np.ndarray) -> None:  # pragma: no cover - numba
    n_rows, n_cols = s.shape
    thresholds = k >= THRESHOLD_MIN_K and n_cols >= 16 * k
    for r in numba.prange(n_rows):
        if not (thresholds and _threshold_row(s[r], k, out_idx[r], out_val[r])):
            _heap_row(s[r], k, out_idx[r], out_val[r])


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
