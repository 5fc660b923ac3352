"""Vectorised metrics against a slow per-user reference written from the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.evaluate import gini, long_tail_mask, ranking_metrics
from graphrec.exceptions import InvalidParameterError


def _reference(topk, test, popularity, k, head_share=0.2):
    n_notes = test.shape[1]
    order = sorted(range(n_notes), key=lambda i: (-popularity[i], i))
    head = set(order[: math.ceil(head_share * n_notes)])
    rec, ndcg, hit, tail_rec = [], [], [], []
    shown = []
    for u in range(test.shape[0]):
        truth = set(test[u].indices.tolist())
        if not truth:
            continue
        lst = [int(i) for i in topk[u][:k]]
        shown += [i for i in lst if i >= 0]
        hits = [i in truth for i in lst]
        rec.append(sum(hits) / len(truth))
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(truth), k)))
        ndcg.append(dcg / idcg)
        hit.append(float(any(hits)))
        tail_truth = truth - head
        if tail_truth:
            tail_rec.append(sum(1 for i in lst if i in tail_truth) / len(tail_truth))
    counts = np.bincount(shown, minlength=n_notes).astype(float)
    xs = sorted(counts)
    n = len(xs)
    g = sum((2 * (i + 1) - n - 1) * x for i, x in enumerate(xs)) / (n * sum(xs)) if sum(xs) else 0.0
    return {
        f"recall@{k}": np.mean(rec),
        f"ndcg@{k}": np.mean(ndcg),
        f"hit_rate@{k}": np.mean(hit),
        f"coverage@{k}": len(set(shown)) / n_notes,
        f"gini@{k}": g,
        f"long_tail_recall@{k}": np.mean(tail_rec) if tail_rec else float("nan"),
        "n_users": float(len(rec)),
    }


def test_hand_computed_example():
    test = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    topk = np.array([[3, 1], [0, 1], [2, -1]])
    m = ranking_metrics(topk, test, ks=(1, 2))
    assert m["n_users"] == 2
    assert m["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["ndcg@1"] == pytest.approx((1.0 + 0.0) / 2)
    # user 0: hit at rank 0 only, ideal = 2 hits at the top.
    assert m["ndcg@2"] == pytest.approx((1.0 / (1 + 1 / math.log2(3)) + 0) / 2)
    assert m["hit_rate@2"] == pytest.approx(0.5)
    assert m["coverage@2"] == pytest.approx(3 / 4)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(2, 15),
    st.integers(1, 6),
    st.integers(0, 2**31 - 1),
)
def test_matches_reference(n_users, n_notes, k, seed):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_notes)) < 0.3).astype(np.float32)
    dense[0, 0] = 1.0  # at least one user has a test item
    test = sp.csr_matrix(dense)
    k = min(k, n_notes)
    topk = np.array([rng.permutation(n_notes)[:k] for _ in range(n_users)])
    topk[rng.random(topk.shape) < 0.1] = -1  # padding
    pop = rng.integers(0, 5, n_notes)
    got = ranking_metrics(topk, test, ks=(k,), popularity=pop)
    want = _reference(topk, test, pop, k)
    for key, value in want.items():
        if np.isnan(value):
            assert np.isnan(got[key])
        else:
            assert got[key] == pytest.approx(value, abs=1e-9), key


def test_gini_and_long_tail():
    assert gini(np.array([1, 1, 1])) == 0.0
    assert gini(np.array([0, 0, 0, 5])) == pytest.approx(0.75)
    assert gini(np.zeros(3)) == 0.0
    assert long_tail_mask(np.array([5, 1, 5, 0, 2])).tolist() == [False, True, True, True, True]


def test_bad_arguments():
    test = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(InvalidParameterError, match="exceeds the 2 items"):
        ranking_metrics(np.zeros((3, 2), dtype=int), test, ks=(3,))
    with pytest.raises(InvalidParameterError, match=r"outside -1\.\.2"):
        ranking_metrics(np.full((3, 1), 7), test, ks=(1,))
    with pytest.raises(InvalidParameterError, match="no evaluated user"):
        ranking_metrics(np.zeros((3, 1), dtype=int), sp.csr_matrix((3, 3)), ks=(1,))
    with pytest.raises(InvalidParameterError, match=r"`k` must be an int >= 1; got 0"):
        ranking_metrics(np.zeros((3, 1), dtype=int), test, ks=(0,))
