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

Both selection loops are numba kernels (one call per user, no Python per step; timings against
the numpy loops they replaced are in benchmarks/README.md), with the same picks (the squared norms that break ties between
equal-quality candidates are rounded once, in numpy, for both). SSD can still differ from that
numpy loop where the window spans the whole embedding space (``dim < window``): every
``|v_i^perp|`` is then rounding noise, and the noise picks among equal-quality candidates.

The slow references in ``tests/recall/test_diversity.py`` check both methods: greedy
log-determinants for DPP, and Gram-determinant ratios for SSD.
"""

from __future__ import annotations

import numba
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


def _squared_norms(v: np.ndarray) -> np.ndarray:
    """``|v_i|^2`` per row: about 1, or 0 for a note without embedding. Its last bits decide
    between candidates of equal quality, so both kernels take it from here (one rounding)."""
    return np.einsum("ij,ij->i", v, v)


def dpp_rerank(quality: np.ndarray, embeddings: np.ndarray, k: int, *, weight: float) -> np.ndarray:
    """Indices of ``k`` candidates in selection order, by DPP greedy MAP (see the module docstring).

    ``k`` larger than the number of candidates returns them all.
    """
    r, v, k = _inputs(quality, embeddings, k, weight)
    if weight == 0 or r.size == 0:
        return _by_quality(r)[:k].astype(np.int64)
    q = np.exp((r - r.max()) / (2.0 * weight))
    chosen = _dpp_greedy(q, np.ascontiguousarray(v), q**2 * _squared_norms(v), k)
    return _fill(chosen.tolist(), r, k)


@numba.njit(cache=True)
def _dpp_greedy(q: np.ndarray, v: np.ndarray, d2: np.ndarray, k: int) -> np.ndarray:  # pragma: no cover - numba
    """Fast greedy MAP on ``L = diag(q) V V^T diag(q)``: the chosen indices, in order, stopping
    early once no gain exceeds ``_EPS`` (see the module docstring). ``c`` holds the incremental
    Cholesky rows; one step is two matrix-vector products and one pass over the candidates."""
    n = v.shape[0]
    d2 = d2.copy()  # diag(L): the gain of each candidate
    c = np.zeros((k, n))
    chosen = np.empty(k, np.int64)
    for t in range(k):
        j, best = 0, -np.inf
        for i in range(n):  # the largest gain d_j^2, ties to the smaller index
            if d2[i] > best:
                j, best = i, d2[i]
        if not best > _EPS:  # the rest lies in the chosen notes' span (or has no embedding)
            return chosen[:t]
        chosen[t] = j
        row = v @ v[j]  # L[j, :] / (q[j] q)
        proj = c[:t, j].copy() @ c[:t] if t > 0 else np.zeros(n)
        dj = np.sqrt(d2[j])
        for i in range(n):
            e = (q[j] * q[i] * row[i] - proj[i]) / dj
            c[t, i] = e
            d2[i] -= e * e
        d2[j] = -np.inf
    return chosen


def ssd_rerank(quality: np.ndarray, embeddings: np.ndarray, k: int, *, weight: float, window: int = 10) -> np.ndarray:
    """Indices of ``k`` candidates in selection order, by SSD (see the module docstring).

    ``k`` larger than the number of candidates returns them all.
    """
    r, v, k = _inputs(quality, embeddings, k, weight)
    window = check_int("window", window, minimum=2)
    if weight == 0 or r.size == 0:
        return _by_quality(r)[:k].astype(np.int64)
    return _ssd_greedy(r, np.ascontiguousarray(v), _squared_norms(v), k, float(weight), window)


@numba.njit(cache=True)
def _ssd_greedy(
    r: np.ndarray, v: np.ndarray, norm2: np.ndarray, k: int, weight: float, window: int
) -> np.ndarray:  # pragma: no cover - numba
    """SSD's ``k`` picks, in order (see the module docstring): the window's orthonormal basis grows
    by Gram-Schmidt steps, and once the window slides it is rebuilt by a QR of its last
    ``window - 1`` notes; ``res2`` holds every candidate's ``|v_i^perp|^2``."""
    n, dim = v.shape
    res2 = norm2.copy()
    available = np.ones(n, np.bool_)
    chosen = np.empty(k, np.int64)
    basis = np.empty((window - 1, dim))  # orthonormal rows spanning the window's chosen notes
    m = 0
    for t in range(k):
        j, best = -1, -np.inf
        for i in range(n):  # ties to the smaller index
            if available[i]:
                score = r[i] + weight * np.sqrt(max(res2[i], 0.0))
                if j < 0 or score > best:
                    j, best = i, score
        chosen[t] = j
        available[j] = False
        if t + 1 < window:  # the window grows: one Gram-Schmidt step, O(n d)
            u = v[j] - basis[:m].T @ (basis[:m] @ v[j]) if m > 0 else v[j].copy()
            length = np.sqrt(np.dot(u, u))
            if length > 1e-12:
                u = u / length
                basis[m] = u
                m += 1
                pu = v @ u
                for i in range(n):
                    res2[i] -= pu[i] * pu[i]
        else:  # the window slides: the oldest note leaves, so rebuild the basis of the last window - 1
            q, _ = np.linalg.qr(np.ascontiguousarray(v[chosen[t - window + 2 : t + 1]].T))
            proj = v @ np.ascontiguousarray(q)
            for i in range(n):
                res2[i] = norm2[i] - np.dot(proj[i], proj[i])
    return chosen
