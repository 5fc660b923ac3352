"""DPP and SSD re-ranking against slow, obviously correct references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.exceptions import InvalidParameterError
from graphrec.recall.diversity import dpp_rerank, ssd_rerank


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _dpp_reference(r: np.ndarray, v: np.ndarray, k: int, weight: float) -> list[int]:
    """Greedy MAP by brute force: add the candidate maximising log det L_Y (Chen et al.'s objective)."""
    u = _unit(v)
    q = np.exp((r - r.max()) / (2 * weight))
    big_l = q[:, None] * (u @ u.T) * q[None, :]
    chosen: list[int] = []
    while len(chosen) < k:
        best, best_val = -1, -np.inf
        for i in range(r.size):
            if i in chosen:
                continue
            idx = [*chosen, i]
            sign, logdet = np.linalg.slogdet(big_l[np.ix_(idx, idx)])
            if sign > 0 and logdet > best_val + 1e-9:
                best, best_val = i, logdet
        if best < 0 or best_val < np.log(1e-10) + (
            np.linalg.slogdet(big_l[np.ix_(chosen, chosen)])[1] if chosen else 0
        ):
            break
        chosen.append(best)
    rest = [int(i) for i in np.lexsort((np.arange(r.size), -r)) if int(i) not in chosen]
    return (chosen + rest)[:k]


def _ssd_reference(r: np.ndarray, v: np.ndarray, k: int, weight: float, window: int) -> list[int]:
    """Residual norm as a ratio of Gram determinants: |v_i^perp|^2 = det G(W + i) / det G(W)."""
    u = _unit(v)
    chosen: list[int] = []
    for _ in range(k):
        recent = chosen[-(window - 1) :]
        g_w = np.linalg.det(u[recent] @ u[recent].T) if recent else 1.0
        best, best_val = -1, -np.inf
        for i in range(r.size):
            if i in chosen:
                continue
            idx = [*recent, i]
            ratio = np.linalg.det(u[idx] @ u[idx].T) / g_w if g_w > 1e-12 else 0.0
            val = r[i] + weight * np.sqrt(max(ratio, 0.0))
            if val > best_val + 1e-9:
                best, best_val = i, val
        chosen.append(best)
    return chosen


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 14), st.integers(1, 8), st.sampled_from([0.05, 0.3, 1.0, 5.0]), st.integers(0, 2**31 - 1))
def test_dpp_matches_brute_force_greedy(n, k, weight, seed):
    rng = np.random.default_rng(seed)
    r, v = rng.random(n), rng.normal(size=(n, 3))
    assert dpp_rerank(r, v, k, weight=weight).tolist() == _dpp_reference(r, v, min(k, n), weight)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 14),
    st.integers(1, 8),
    st.sampled_from([0.1, 0.5, 2.0]),
    st.integers(2, 4),
    st.integers(0, 2**31 - 1),
)
def test_ssd_matches_gram_determinant_reference(n, k, weight, window, seed):
    rng = np.random.default_rng(seed)
    r, v = rng.random(n), rng.normal(size=(n, 6))
    assert ssd_rerank(r, v, k, weight=weight, window=window).tolist() == _ssd_reference(r, v, min(k, n), weight, window)


def test_weight_zero_is_quality_order_and_duplicates_are_pushed_down():
    r = np.array([0.9, 0.8, 0.7, 0.1])
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1e-3]])
    for rerank in (dpp_rerank, ssd_rerank):
        assert rerank(r, v, 3, weight=0.0).tolist() == [0, 1, 2]
        # Note 1 duplicates note 0; with diversity on, the orthogonal note 2 comes before it.
        assert rerank(r, v, 2, weight=1.0).tolist() == [0, 2]
    # k above the pool returns everything; DPP fills the dependent rest in quality order.
    assert sorted(dpp_rerank(r, v, 10, weight=1.0).tolist()) == [0, 1, 2, 3]
    assert len(ssd_rerank(r, v, 10, weight=1.0)) == 4


def test_bad_inputs_are_clear():
    with pytest.raises(InvalidParameterError, match="weight"):
        dpp_rerank(np.ones(3), np.ones((3, 2)), 2, weight=-1.0)
    with pytest.raises(InvalidParameterError, match=r"quality must have shape \(n,\) and embeddings"):
        ssd_rerank(np.ones(3), np.ones((4, 2)), 2, weight=1.0)
    with pytest.raises(InvalidParameterError, match="window"):
        ssd_rerank(np.ones(3), np.ones((3, 2)), 2, weight=1.0, window=1)
    with pytest.raises(InvalidParameterError, match="finite"):
        dpp_rerank(np.array([1.0, np.nan]), np.ones((2, 2)), 1, weight=1.0)


def test_notes_without_embeddings_and_small_pools_are_documented_behaviour():
    r = np.array([0.9, 0.8, 0.7])
    v = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])  # note 1 has no embedding (a zero vector)
    # DPP: a zero vector adds no volume, so it comes after the diverse picks, by quality.
    assert dpp_rerank(r, v, 3, weight=1.0).tolist() == [0, 2, 1]
    # SSD: its residual is 0, so it competes on quality alone.
    assert ssd_rerank(r, v, 3, weight=1.0).tolist() == [0, 2, 1]
    # One candidate, any k: that candidate.
    assert dpp_rerank(r[:1], v[:1], 5, weight=1.0).tolist() == [0]
