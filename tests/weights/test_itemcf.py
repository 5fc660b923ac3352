from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.exceptions import InvalidParameterError
from graphrec.weights import itemcf


def _reference(x: np.ndarray, alpha: float, top_k: int) -> np.ndarray:
    b = (x > 0).astype(float)
    n_users, n_notes = b.shape
    n = b.sum(axis=0)
    s = np.zeros((n_notes, n_notes))
    for i in range(n_notes):
        for j in range(n_notes):
            if i == j or n[i] == 0 or n[j] == 0:
                continue
            co = sum(b[u, i] * b[u, j] for u in range(n_users))
            s[i, j] = co / (n[i] ** (1 - alpha) * n[j] ** alpha)
    if top_k:
        for i in range(n_notes):
            order = sorted((j for j in range(n_notes) if s[i, j] > 0), key=lambda j: (-s[i, j], j))
            for j in order[top_k:]:
                s[i, j] = 0.0
    return s


@settings(max_examples=40, deadline=None)
@given(
    st.tuples(st.integers(1, 8), st.integers(1, 8)),
    st.sampled_from([0.0, 0.2, 0.5, 0.8]),
    st.integers(0, 4),
    st.integers(0, 2**31 - 1),
)
def test_matches_reference(shape, alpha, top_k, seed):
    rng = np.random.default_rng(seed)
    x = (rng.random(shape) < 0.4) * rng.integers(1, 4, shape)
    got = itemcf(sp.csr_matrix(x), top_k=top_k, alpha=alpha, block_size=3).toarray()
    np.testing.assert_allclose(got, _reference(x, alpha, top_k), rtol=1e-5, atol=1e-7)


def test_cosine_is_symmetric_without_pruning():
    x = sp.random(30, 20, density=0.2, random_state=1, format="csr")
    s = itemcf(x, top_k=0).toarray()
    np.testing.assert_allclose(s, s.T, rtol=1e-6)
    assert np.all(np.diag(s) == 0)


def test_errors():
    with pytest.raises(InvalidParameterError, match=r"`top_k` must be an int >= 0; got -1"):
        itemcf(sp.csr_matrix(np.eye(2)), top_k=-1)
    with pytest.raises(InvalidParameterError, match="scipy sparse"):
        itemcf(np.eye(2))
    with pytest.raises(InvalidParameterError, match="user_weighting"):
        itemcf(sp.csr_matrix(np.eye(2)), user_weighting="bm25")


def test_iuf_downweights_heavy_users():
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=np.float32))
    plain = itemcf(x, top_k=0).toarray()
    iuf = itemcf(x, top_k=0, user_weighting="iuf").toarray()
    assert iuf[0, 1] > iuf[0, 2] and plain[0, 1] > plain[0, 2]
    assert iuf[0, 2] / iuf[0, 1] < plain[0, 2] / plain[0, 1]


def test_weighted_mode_is_cosine_of_weighted_columns_and_equals_binary_on_01():
    rng = np.random.default_rng(5)
    w = (rng.random((12, 6)) < 0.5) * rng.random((12, 6)) * 3
    got = itemcf(sp.csr_matrix(w), top_k=0, binary=False).toarray()
    norms = np.sqrt((w**2).sum(axis=0))
    want = (w.T @ w) / np.outer(norms, norms).clip(1e-12)
    np.fill_diagonal(want, 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    b = (w > 0).astype(float)
    np.testing.assert_allclose(
        itemcf(sp.csr_matrix(b), top_k=0, binary=False).toarray(),
        itemcf(sp.csr_matrix(b), top_k=0).toarray(),
        rtol=1e-6,
    )
    with pytest.raises(InvalidParameterError, match="weights must be finite and >= 0"):
        itemcf(sp.csr_matrix(-b), binary=False)
