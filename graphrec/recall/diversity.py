"""Diversity re-ranking of recall candidates: DPP (fast greedy MAP) and SSD.

Both methods pick ``k`` of ``n`` candidates one at a time. Each candidate has a quality ``r_i``
(the merged recall score) and a note embedding ``v_i``, normalised to unit length. ``weight >= 0``
is the single knob that trades quality for diversity; with ``weight = 0`` both return the
candidates in quality order. Ties go to the smaller candidate index, so results are deterministic.

DPP (Chen, Zhang and Zhou, NeurIPS 2018, "Fast Greedy MAP Inference for Determinantal Point Process")
----------------------------------------------------------------------------------------------------
The kernel is ``L = diag(q) S diag(q)``, with similarities ``S = V V^T`` and
``q_i = exp(r_i / (2 weight))``. Then ``log det L_Y = sum_{i in Y} r_i / weight + log det S_Y``:
greedy MAP on ``L`` maximises ``sum r + weight * log det S_Y``. The fast algorithm keeps an
incremental Cholesky factor, so each step costs ``O(n (d + t))`` instead of ``n`` determinants.
``d_i^2`` is the gain of adding ``i``. Once every remaining gain is ``<= 1e-10`` (the rest lies in
the span of the chosen notes, or has no embedding), the remaining slots are filled in quality order.

SSD (Huang et al., KDD 2021, "Sliding Spectrum Decomposition for Diversified Recommendation")
---------------------------------------------------------------------------------------------
At each step the chosen candidate maximises ``r_i + weight * |v_i^perp|``. Here ``v_i^perp`` is
the part of ``v_i`` orthogonal to the span of the last ``window - 1`` chosen notes: the volume
that ``i`` adds to the sliding window of ``window`` items in the feed. A note far from what the
user has just been shown gains up to ``weight``; a duplicate of a recent note gains nothing.

Edge cases: ``k`` larger than the pool returns the whole pool. A note without an embedding (a
zero vector) adds no volume: DPP places it after the diverse picks, by quality, and SSD lets it
compete on quality alone.

The slow references in ``tests/recall/test_diversity.py`` check both methods: greedy
log-determinants for DPP, and Gram-determinant ratios for SSD.
"""

from __future__ import annotations

import numpy as np

from graphrec._validation import check_float, check_int
from graphrec.exceptions import InvalidParameterError

__all__ = ["dpp_rerank", "ssd_rerank"]

_EPS = 1e-10


def _inputs(quality: np.ndarray, embeddings: np.ndarray, k: int, weight: float) -> tuple[np.ndarray, np.ndarray, int]:
    r = np.asarray(quality, dtype=np.float64)
    v = np.asarray(embeddings, dtype=np.float64)
    if r.ndim != 1 or v.ndim != 2 or v.shape[0] != r.size:
        raise InvalidParameterError(
            f"quality must have shape (n,) and embeddings (n, dim); got {r.shape} and {v.shape}"
        )
    if not (np.isfinite(r).all() and np.isfinite(v).all()):
        raise InvalidParameterError("quality and embeddings must be finite")
    check_float("weight", weight, minimum=0.0)
    k = min(check_int("k", k, minimum=1), r.size)
    return r, v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12), k


def _by_quality(r: np.ndarray) -> np.ndarray:
    return np.lexsort((np.arange(r.size), -r))


def _fill(chosen: list[int], r: np.ndarray, k: int) -> np.ndarray:
    """``chosen``, then the best remaining candidates by quality, up to ``k``."""
    taken = set(chosen)
    rest = [int(i) for i in _by_quality(r) if int(i) not in taken]
    return np.array((chosen + rest)[:k], dtype=np.int64)


def _argmax(score: np.ndarray) -> int:
    """The first index of the maximum (ties to the smaller index)."""
    return int(np.argmax(score))


def dpp_rerank(quality: np.ndarray, embeddings: np.ndarray, k: int, *, weight: float) -> np.ndarray:
    """Indices of ``k`` candidates in selection order, by DPP greedy MAP (see the module docstring).

    ``k`` larger than the number of candidates returns them all.
    """
    r, v, k = _inputs(quality, embeddings, k, weight)
    if weight == 0 or r.size == 0:
        return _by_quality(r)[:k].astype(np.int64)
    q = np.exp((r - r.max()) / (2.0 * weight))
    d2 = q**2 * np.einsum("ij,ij->i", v, v)  # diag(L)
    c = np.zeros((k, r.size))
    chosen: list[int] = []
    for t in range(k):
        if not (d2 > _EPS).any():  # the rest lies in the chosen notes' span (or has no embedding)
            break
        j = _argmax(np.where(d2 > _EPS, d2, -np.inf))  # the largest gain d_j^2
        chosen.append(j)
        row = q[j] * q * (v @ v[j])  # L[j, :]
        e = (row - c[:t, j] @ c[:t]) / np.sqrt(d2[j])
        c[t] = e
        d2 = d2 - e**2
        d2[chosen] = -np.inf
    return _fill(chosen, r, k)


def ssd_rerank(quality: np.ndarray, embeddings: np.ndarray, k: int, *, weight: float, window: int = 10) -> np.ndarray:
    """Indices of ``k`` candidates in selection order, by SSD (see the module docstring).

    ``k`` larger than the number of candidates returns them all.
    """
    r, v, k = _inputs(quality, embeddings, k, weight)
    window = check_int("window", window, minimum=2)
    if weight == 0 or r.size == 0:
        return _by_quality(r)[:k].astype(np.int64)
    norm2 = np.einsum("ij,ij->i", v, v)
    available = np.ones(r.size, dtype=bool)
    chosen: list[int] = []
    basis = np.empty((0, v.shape[1]))  # orthonormal rows spanning the window's chosen notes
    res2 = norm2.copy()  # |v_i^perp|^2 for every candidate
    for _ in range(k):
        j = _argmax(np.where(available, r + weight * np.sqrt(np.maximum(res2, 0.0)), -np.inf))
        chosen.append(j)
        available[j] = False
        if len(chosen) < window:  # the window grows: one Gram-Schmidt step, O(n d)
            u = v[j] - basis.T @ (basis @ v[j])
            length = float(np.linalg.norm(u))
            if length > 1e-12:
                u /= length
                basis = np.vstack([basis, u])
                res2 -= (v @ u) ** 2
        else:  # the window slides: the oldest note leaves, so rebuild the basis of the last window - 1
            q, _ = np.linalg.qr(v[chosen[-(window - 1) :]].T)
            proj = v @ q
            res2 = norm2 - np.einsum("ij,ij->i", proj, proj)
    return np.array(chosen, dtype=np.int64)
