"""Multi-interest recall: per-user interests and round-robin merging against loop references."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.exceptions import InvalidParameterError
from graphrec.recall import ChannelConfig, RecallEngine
from graphrec.recall.interests import NoteInterests, round_robin, user_interests


def _two_topic_embeddings(n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    emb = rng.normal(scale=0.05, size=(n, 4))
    emb[: n // 2, 0] += 1.0  # topic A
    emb[n // 2 :, 1] += 1.0  # topic B
    return emb


def test_interests_separate_planted_topics_and_rank_a_users_interests():
    emb = _two_topic_embeddings()
    interests = NoteInterests(emb, 2, seed=0)
    a, b = interests.assignment[0], interests.assignment[-1]
    assert a != b and (interests.assignment[:30] == a).all() and (interests.assignment[30:] == b).all()
    notes = np.array([40, 1, 2, 3, 41])
    weights = np.array([1.0, 0.9, 0.8, 0.7, 0.6])
    queries = user_interests(interests, notes, weights, per_user=2)
    # Topic A holds 0.9 + 0.8 + 0.7 = 2.4 of the weight, topic B 1.6: A first; each query is the
    # weighted mean of the user's notes in that interest.
    want_a = (weights[1:4] @ emb[[1, 2, 3]]) / weights[1:4].sum()
    want_b = (weights[[0, 4]] @ emb[[40, 41]]) / weights[[0, 4]].sum()
    np.testing.assert_allclose(queries[0], want_a, rtol=1e-5)
    np.testing.assert_allclose(queries[1], want_b, rtol=1e-5)
    assert len(user_interests(interests, notes, weights, per_user=1)) == 1
    assert user_interests(interests, notes[:0], weights[:0], per_user=2) == []
    with pytest.raises(InvalidParameterError, match="n_interests"):
        NoteInterests(emb, 0)


def test_round_robin_matches_a_reference():
    lists = [np.array([5, 1, 2]), np.array([1, 7]), np.array([9, 5, 8, 4])]
    ref: list[int] = []
    for rank in range(4):
        for items in lists:
            if rank < len(items) and int(items[rank]) not in ref:
                ref.append(int(items[rank]))
    assert round_robin(lists, 100).tolist() == ref == [5, 1, 9, 7, 2, 8, 4]
    assert round_robin(lists, 3).tolist() == [5, 1, 9]
    assert round_robin([], 5).size == 0


def test_interest_channel_serves_each_of_a_users_interests(engine_bundle):
    cfg = ChannelConfig(
        weights={"embedding": 1.0, "interest": 0.5}, quotas={"interest": 0.3}, n_interests=8, interests_per_user=3
    )
    engine = RecallEngine(engine_bundle, cfg)
    users = list(engine.known_users()[:10])
    only = engine.recall(users, k=9, channels=["interest"])
    both = engine.recall(users, k=10)
    emb = engine_bundle.embeddings["note"]
    interests = NoteInterests(emb, 8)
    notes = engine_bundle.ids["note"]
    for r in range(len(users)):
        got = [i for i in only.ids[r].tolist() if i != engine.sentinel]
        assert set(only.channels[r][: len(got)].tolist()) == {"interest"}
        assert set(got[:3]) <= set(both.ids[r].tolist())  # the quota: ceil(0.3 * 10) slots
        clusters = interests.assignment[notes.index(got)]
        # Round robin: the first slots come from different interests when the user has several.
        assert len(set(clusters[:3].tolist())) >= min(2, len(set(clusters.tolist())))
