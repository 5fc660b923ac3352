"""Swing against a naive reference written straight from the definition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.exceptions import InvalidParameterError
from graphrec.weights import swing


def _reference(x: np.ndarray, *, alpha: float, user_alpha: float, beta: float, min_cooc: int = 1) -> np.ndarray:
    b = x > 0
    n_users, n_notes = b.shape
    items = [set(np.flatnonzero(b[u])) for u in range(n_users)]
    w = [(len(items[u]) + user_alpha) ** -beta if items[u] else 0.0 for u in range(n_users)]
    s = np.zeros((n_notes, n_notes))
    for i, j in itertools.permutations(range(n_notes), 2):
        common = [u for u in range(n_users) if i in items[u] and j in items[u]]
        if len(common) < min_cooc:
            continue
        for u, v in itertools.combinations(common, 2):  # unordered pairs of distinct users
            s[i, j] += w[u] * w[v] / (alpha + len(items[u] & items[v]))
    return s


def _truncate(s: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros_like(s)
    for i in range(s.shape[0]):
        order = sorted((j for j in range(s.shape[1]) if s[i, j] > 0), key=lambda j: (-s[i, j], j))[:k]
        out[i, order] = s[i, order]
    return out


@settings(max_examples=50, deadline=None)
@given(
    st.integers(2, 9),
    st.integers(2, 9),
    st.sampled_from([0.0, 0.5, 1.0, 5.0]),
    st.sampled_from([0.0, 2.0]),
    st.sampled_from([0.0, 0.3, 0.5, 1.0]),
    st.integers(0, 2**31 - 1),
)
def test_exact_against_reference(n_users, n_notes, alpha, user_alpha, beta, seed):
    rng = np.random.default_rng(seed)
    x = (rng.random((n_users, n_notes)) < 0.5).astype(np.float32)
    x[0, 0] = 1.0  # an empty log is an error, tested below
    got = swing(sp.csr_matrix(x), alpha=alpha, user_alpha=user_alpha, beta=beta, top_k=0).toarray()
    want = _reference(x, alpha=alpha, user_alpha=user_alpha, beta=beta)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got, got.T, rtol=1e-5, atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_top_k_and_min_cooccurrence(k, min_cooc, seed):
    rng = np.random.default_rng(seed)
    x = (rng.random((10, 8)) < 0.5).astype(np.float32)
    want = _truncate(_reference(x, alpha=1.0, user_alpha=0.0, beta=0.5, min_cooc=min_cooc), k)
    got = swing(sp.csr_matrix(x), top_k=k, min_cooccurrence=min_cooc).toarray()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_symmetrize_keeps_union():
    rng = np.random.default_rng(0)
    x = sp.csr_matrix((rng.random((40, 30)) < 0.3).astype(np.float32))
    s = swing(x, top_k=2, symmetrize=True).toarray()
    np.testing.assert_allclose(s, s.T, rtol=1e-6)
    full = swing(x, top_k=0).toarray()
    assert np.all((s == 0) | np.isclose(s, full, rtol=1e-6))


def test_user_caps_remove_users():
    x = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 1, 1]], dtype=np.float32)
    got = swing(sp.csr_matrix(x), max_items_per_user=3, top_k=0, beta=0.0, alpha=1.0).toarray()
    want = _reference(x[:2], alpha=1.0, user_alpha=0.0, beta=0.0)  # user 2 (4 items) dropped; user 3 alone on 2, 3
    np.testing.assert_allclose(got, want, rtol=1e-6)
    got_min = swing(sp.csr_matrix(x), min_items_per_user=3, top_k=0).toarray()
    assert got_min.sum() == 0  # only one user left: no pairs


def test_item_cap_samples_deterministically_and_is_exact_when_not_binding():
    rng = np.random.default_rng(1)
    x = sp.csr_matrix((rng.random((60, 20)) < 0.4).astype(np.float32))
    exact = swing(x, top_k=0).toarray()
    np.testing.assert_allclose(swing(x, top_k=0, max_users_per_item=1000).toarray(), exact, rtol=1e-6)
    a = swing(x, top_k=0, max_users_per_item=5, seed=3).toarray()
    b = swing(x, top_k=0, max_users_per_item=5, seed=3).toarray()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, exact)
    assert (a <= exact + 1e-6).all()  # a sample of users can only drop pairs


def test_threads_do_not_change_results():
    rng = np.random.default_rng(2)
    x = sp.csr_matrix((rng.random((80, 50)) < 0.2).astype(np.float32))
    one = swing(x, top_k=5, n_threads=1)
    two = swing(x, top_k=5, n_threads=2)
    assert (one != two).nnz == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": -1.0}, r"`alpha` must be a finite float >= 0.0; got -1.0"),
        ({"beta": -0.5}, r"`beta` must be a finite float >= 0.0; got -0.5"),
        ({"top_k": -1}, r"`top_k` must be an int >= 0; got -1"),
        ({"max_users_per_item": 1}, r"`max_users_per_item` must be an int >= 2"),
        ({"min_cooccurrence": 0}, r"`min_cooccurrence` must be an int >= 1"),
    ],
)
def test_parameter_errors(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        swing(sp.csr_matrix(np.eye(3)), **kwargs)


def test_empty_input():
    with pytest.raises(InvalidParameterError, match="no engagements"):
        swing(sp.csr_matrix((3, 3)))
    with pytest.raises(InvalidParameterError, match="scipy sparse"):
        swing(np.eye(3))


def test_with_swing_adds_the_similar_relation(small_tables):
    from graphrec.graph import ENGAGES, SIMILAR, build_graph
    from graphrec.weights import with_swing

    g = with_swing(build_graph(*small_tables), top_k=10)
    s = g.relation(SIMILAR)
    assert s.shape == (g.num_nodes("note"),) * 2 and s.nnz > 0
    assert (s != swing(g.relation(ENGAGES), top_k=10)).nnz == 0
    assert g.meta["similar"]["method"] == "swing"


def test_many_small_blocks_give_the_same_result(monkeypatch):
    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((50, 40)) < 0.2).astype(np.float32))
    whole = swing(x, top_k=4)
    import importlib

    monkeypatch.setattr(importlib.import_module("graphrec.weights.swing"), "_BLOCK_ENTRIES", 7)
    blocked = swing(x, top_k=4)
    assert (whole != blocked).nnz == 0


def test_one_params_object_everywhere():
    """swing(x, top_k=..) is swing(x, SwingConfig(top_k=..)); the CLI's flags are its fields."""
    import dataclasses

    from graphrec.cli import build_parser
    from graphrec.weights import SwingConfig

    x = sp.random(30, 20, density=0.3, random_state=1, format="csr")
    a = swing(x, top_k=3, beta=0.0)
    b = swing(x, SwingConfig(top_k=3, beta=0.0))
    assert (a != b).nnz == 0
    assert SwingConfig.of(SwingConfig(top_k=3), beta=0.0) == SwingConfig(top_k=3, beta=0.0)
    with pytest.raises(InvalidParameterError, match=r"unknown Swing option\(s\) \['topk'\]"):
        swing(x, topk=3)
    with pytest.raises(InvalidParameterError, match="top_k"):
        SwingConfig.of(top_k=-1)
    args = build_parser().parse_args(["swing", "--interactions", "i.csv", "--out", "o.csv", "--top-k", "7"])
    for f in dataclasses.fields(SwingConfig):
        assert hasattr(args, f.name)
    assert args.top_k == 7 and args.max_users_per_item is None


def test_swing_rows_are_the_full_computations_rows():
    from graphrec.weights import swing_rows

    x = sp.random(60, 40, density=0.15, random_state=3, format="csr")
    full = swing(x, top_k=5, max_users_per_item=6, seed=2)
    notes = np.array([7, 0, 33, 12])
    rows = swing_rows(x, notes, top_k=5, max_users_per_item=6, seed=2)
    assert rows.shape == (4, 40) and (rows != full[notes]).nnz == 0
    with pytest.raises(InvalidParameterError, match="note indices"):
        swing_rows(x, np.array([40]))
