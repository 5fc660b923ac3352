"""Diversity, novelty and exposure metrics against loop references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.evaluate import (
    creator_gini,
    gini,
    intra_list_distances,
    long_tail_mask,
    long_tail_share,
    novelty,
    ranking_metrics,
)
from graphrec.exceptions import InvalidParameterError


def _cos_dist(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 1.0 - (float(a @ b) / (na * nb) if na > 0 and nb > 0 else 0.0)


def test_intra_list_distances_match_pairwise_loops():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(12, 5))
    emb[3] = 0.0  # a note without an embedding: orthogonal to everything
    top = np.array([[0, 1, 2, 3], [4, 5, -1, -1], [6, -1, -1, -1], [7, 8, 9, 10]])
    ilad, ilmd = [], []
    for row in top:
        items = [i for i in row if i >= 0]
        if len(items) < 2:
            continue
        d = [_cos_dist(emb[i], emb[j]) for i, j in itertools.permutations(items, 2)]
        ilad.append(np.mean(d))
        ilmd.append(min(d))
    got = intra_list_distances(top, emb)
    assert got == pytest.approx((np.mean(ilad), np.mean(ilmd)), rel=1e-12)


def test_novelty_share_and_creator_gini_by_hand():
    top = np.array([[0, 1, -1], [1, 2, 3]])
    pop = np.array([9, 1, 0, 4])
    n_users = 9
    info = [-math.log2((pop[i] + 1) / (n_users + 1)) for i in (0, 1, 1, 2, 3)]
    assert novelty(top, pop, n_users) == pytest.approx(np.mean(info))
    tail = long_tail_mask(pop, head_share=0.5)  # notes 0 and 3 are the head
    assert long_tail_share(top, pop, head_share=0.5) == pytest.approx(np.mean([tail[i] for i in (0, 1, 1, 2, 3)]))
    authors = np.array([0, 0, 5, -1])  # note 3's author is unknown; authors 0 and 5 own notes
    assert creator_gini(top, authors) == pytest.approx(gini(np.array([3, 1])))
    with pytest.raises(InvalidParameterError, match="no known author"):
        creator_gini(top, np.full(4, -1))


def test_ranking_metrics_reports_them_when_given_inputs():
    rng = np.random.default_rng(1)
    dense = (rng.random((6, 10)) < 0.3).astype(np.float32)
    dense[:, 0] = 1.0  # every user has a test item
    test = sp.csr_matrix(dense)
    top = np.argsort(-rng.random((6, 10)), axis=1)[:, :5]
    plain = ranking_metrics(top, test, ks=(5,))
    assert "ilad@5" not in plain and "novelty@5" not in plain
    full = ranking_metrics(
        top,
        test,
        ks=(5,),
        popularity=rng.integers(0, 5, 10),
        note_embeddings=rng.normal(size=(10, 3)),
        note_authors=rng.integers(0, 3, 10),
    )
    for key in ("ilad@5", "ilmd@5", "novelty@5", "long_tail_share@5", "creator_gini@5"):
        assert np.isfinite(full[key]), key
    assert full["recall@5"] == plain["recall@5"]
