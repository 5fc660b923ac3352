"""Exact, deterministic top-k per row (the kernel behind ranking and exact ANN search)."""

from __future__ import annotations

import numpy as np

__all__ = ["topk_rows"]


def topk_rows(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's ``k`` largest scores, best first.

    Ties go to the smaller column index, so a row's result never depends on the other rows.
    NaN counts as -inf; entries that are not finite are never returned, and rows with fewer than
    ``k`` of them are padded with index -1 and value -inf. ``s`` (2-D, float) may be modified.
    """
    s[np.isnan(s)] = -np.inf
    kk = min(k, s.shape[1])
    if kk < s.shape[1]:
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        # argpartition picks arbitrarily among scores tied with the k-th; where such ties cross the
        # cut, re-pick the tied entries by smallest index so results never depend on batching.
        kth = np.take_along_axis(s, part, axis=1).min(axis=1)
        crowded = np.flatnonzero((s >= kth[:, None]).sum(axis=1) > kk)
        for row in crowded:
            above = np.flatnonzero(s[row] > kth[row])
            tied = np.flatnonzero(s[row] == kth[row])[: kk - above.size]
            part[row] = np.concatenate([above, tied])
    else:
        part = np.tile(np.arange(s.shape[1]), (s.shape[0], 1))
    vals = np.take_along_axis(s, part, axis=1)
    order = np.lexsort((part, -vals), axis=1) if part.size else part
    idx = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)
    idx[~np.isfinite(vals)] = -1
    vals[idx < 0] = -np.inf
    if kk < k:
        idx = np.hstack([idx, np.full((s.shape[0], k - kk), -1, dtype=np.int64)])
        vals = np.hstack([vals, np.full((s.shape[0], k - kk), -np.inf, dtype=s.dtype)])
    return idx, vals
