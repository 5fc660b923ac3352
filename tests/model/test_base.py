"""The recommender contract (graphrec.model.base), checked the same way for every model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.evaluate import evaluate_scorer
from graphrec.exceptions import InvalidParameterError, NotFittedError
from graphrec.graph import ENGAGES, build_graph
from graphrec.model import GNNRecommender, ItemCFRecommender, MostPopular, PureSVD, Recommender, SwingRecommender
from graphrec.testing import make_ugc_dataset
from graphrec.weights import SwingConfig


@pytest.fixture(scope="module")
def graph():
    data = make_ugc_dataset(n_users=50, n_notes=70, n_engagements=800, seed=4)
    return build_graph(data.interactions, data.notes)


def _fitted(name: str, graph) -> Recommender:
    train = graph.relation(ENGAGES)
    if name == "gnn":
        return GNNRecommender(dim=8, epochs=1, batch_size=256, show_progress=False).fit(graph)
    model = {
        "popular": MostPopular(),
        "itemcf": ItemCFRecommender(top_k=20),
        "swing": SwingRecommender(SwingConfig(top_k=20)),
        "svd": PureSVD(dim=8),
    }[name]
    return model.fit(train)


def _reference_top(scores: np.ndarray, k: int, banned: list[set[int]]) -> list[list[int]]:
    """Sort each row by (-score, index) in plain Python, skipping banned indices."""
    out = []
    for row, ban in zip(scores.tolist(), banned):
        order = sorted((j for j in range(len(row)) if j not in ban), key=lambda j: (-row[j], j))
        out.append(order[:k])
    return out


MODELS = ["popular", "itemcf", "swing", "svd", "gnn"]


@pytest.mark.parametrize("name", MODELS)
def test_recommend_matches_a_slow_reference(graph, name):
    model = _fitted(name, graph)
    train = graph.relation(ENGAGES).tocsr()
    users = np.array([0, 3, 7, 11])
    scores = model.score(users)
    assert scores.shape == (users.size, train.shape[1])
    idx, top = model.recommend(users, k=10, exclude=train)
    ref = _reference_top(scores, 10, [set(train[u].indices.tolist()) for u in users])
    assert idx.tolist() == ref
    np.testing.assert_allclose(top, np.take_along_axis(scores, idx, axis=1), rtol=1e-6)


@pytest.mark.parametrize("name", [m for m in MODELS if m != "popular"])
def test_similar_notes_exclude_the_note_itself(graph, name):
    model = _fitted(name, graph)
    notes = np.array([1, 5, 9])
    idx, _ = model.similar_notes(notes, k=5)
    full = model._note_scores(notes)
    assert idx.tolist() == _reference_top(full, 5, [{int(n)} for n in notes])


def test_popularity_has_no_note_similarity(graph):
    with pytest.raises(NotImplementedError, match="MostPopular has no note–note similarity"):
        _fitted("popular", graph).similar_notes(np.array([0]))


@pytest.mark.parametrize("name", MODELS)
def test_unfitted_and_bad_indices_are_clear_errors(graph, name):
    model = {"popular": MostPopular, "itemcf": ItemCFRecommender, "swing": SwingRecommender, "svd": PureSVD}.get(
        name, GNNRecommender
    )()
    with pytest.raises(NotFittedError, match="is not fitted"):
        model.score(np.array([0]))
    if name != "popular":
        fitted = _fitted(name, graph)
        with pytest.raises(InvalidParameterError, match=r"users must lie in \[0, 50\)"):
            fitted.score(np.array([50]))


def test_evaluate_scorer_takes_the_model_or_its_function(graph):
    train = sp.csr_matrix(graph.relation(ENGAGES))
    test = sp.csr_matrix((np.ones(10, dtype=np.float32), (np.arange(10), np.arange(10))), shape=train.shape)
    train = train - train.multiply(test)
    train.eliminate_zeros()
    model = ItemCFRecommender(top_k=20).fit(train)
    assert evaluate_scorer(model, train, test, show_progress=False) == evaluate_scorer(
        model.score, train, test, show_progress=False
    )
    with pytest.raises(InvalidParameterError, match="fitted recommender or a function"):
        evaluate_scorer(42, train, test)
