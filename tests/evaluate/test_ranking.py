from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.evaluate import evaluate_scorer, relevance_matrix, topk_from_scores
from graphrec.evaluate.splits import temporal_split
from graphrec.exceptions import InvalidParameterError, NotFittedError
from graphrec.graph import build_graph
from graphrec.model import ItemCFRecommender, MostPopular


def _topk_reference(scores, k, exclude):
    out = []
    for u, row in enumerate(scores):
        banned = set(exclude[u].indices.tolist()) if exclude is not None else set()
        cand = [(-float(s), i) for i, s in enumerate(row) if i not in banned and np.isfinite(s)]
        best = [i for _, i in sorted(cand)[:k]]
        out.append(best + [-1] * (k - len(best)))
    return np.array(out)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 10), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_topk_matches_reference_with_ties_and_exclusion(n_users, n_notes, k, seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 3, (n_users, n_notes)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.1] = np.nan
    exclude = sp.csr_matrix((rng.random((n_users, n_notes)) < 0.3).astype(np.float32))
    idx, vals = topk_from_scores(scores, k, exclude=exclude)
    np.testing.assert_array_equal(idx, _topk_reference(scores, k, exclude))
    assert np.all(np.isneginf(vals[idx < 0]))
    # batch == single query
    for u in range(n_users):
        one, _ = topk_from_scores(scores[u : u + 1], k, exclude=exclude[u])
        np.testing.assert_array_equal(one[0], idx[u])


def test_evaluate_scorer_baselines_on_planted_data(small_tables):
    interactions, notes = small_tables
    split = temporal_split(interactions)
    g = build_graph(split.train, notes)
    train, _ = relevance_matrix(split.train, g.id_map("user"), g.id_map("note"))
    test, dropped = relevance_matrix(split.test, g.id_map("user"), g.id_map("note"))
    assert dropped["unknown_note_rows"] == 0
    pop = evaluate_scorer(MostPopular().fit(train), train, test, ks=(10, 20))
    icf = evaluate_scorer(ItemCFRecommender(top_k=50, alpha=0.2).fit(train), train, test, ks=(20,))
    assert 0 < pop["recall@10"] <= pop["recall@20"] <= 1
    assert pop["long_tail_recall@20"] == 0.0  # popularity never shows the tail
    assert icf["coverage@20"] > pop["coverage@20"]


def test_training_items_never_recommended(small_tables):
    interactions, notes = small_tables
    g = build_graph(interactions, notes)
    train, _ = relevance_matrix(interactions, g.id_map("user"), g.id_map("note"))
    idx, _ = topk_from_scores(MostPopular().fit(train).score(np.arange(20)), 30, exclude=train[:20])
    for u in range(20):
        assert not set(idx[u]) & set(train[u].indices)


def test_errors():
    with pytest.raises(NotFittedError, match="call fit"):
        MostPopular().score(np.arange(2))
    with pytest.raises(NotFittedError):
        ItemCFRecommender().score(np.arange(2))
    with pytest.raises(InvalidParameterError, match="no interactions"):
        MostPopular().fit(sp.csr_matrix((2, 2)))
    with pytest.raises(InvalidParameterError, match=r"`alpha` must be a finite float >= 0.0 and <= 1.0; got 2"):
        ItemCFRecommender(alpha=2).fit(sp.csr_matrix(np.eye(2)))
    with pytest.raises(InvalidParameterError, match="same shape"):
        evaluate_scorer(lambda b: b, sp.csr_matrix((2, 2)), sp.csr_matrix((3, 2)))
    with pytest.raises(InvalidParameterError, match="scores must have shape"):
        topk_from_scores(np.zeros(3), 1)
