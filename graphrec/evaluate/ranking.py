"""Full ranking: score every note for a batch of users, mask training items, take the top K.

:func:`evaluate_scorer` is the harness every model and baseline goes through, so their numbers
are comparable: it builds the relevance matrices from interaction tables in the graph's index
space, ranks in batches (memory ``O(batch * n_notes)``), and calls
:func:`graphrec.evaluate.ranking_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec._progress import progress
from graphrec._topk import topk_rows
from graphrec._validation import check_int
from graphrec.evaluate.metrics import ranking_metrics
from graphrec.exceptions import InvalidParameterError
from graphrec.io.ids import IdMap
from graphrec.io.interactions import engaged_mask

__all__ = ["Scorer", "evaluate_scorer", "relevance_matrix", "topk_from_scores"]

#: A fitted recommender (anything with ``score(users)``, see :mod:`graphrec.model.base`) or a
#: function: both map user indices (shape ``(b,)``) to scores over all notes (``(b, n_notes)``).
Scorer = Any


def relevance_matrix(
    interactions: pd.DataFrame,
    user_map: IdMap,
    note_map: IdMap,
    *,
    event_weights: Mapping[str, float] | None = None,
) -> tuple[sp.csr_matrix, dict[str, int]]:
    """Binary user × note matrix of engaged pairs in ``interactions`` (impression-only pairs excluded).

    Rows whose user or note is not in the maps cannot be ranked and are dropped; the counts come
    back in the second value (``unknown_user_rows``, ``unknown_note_rows``) so callers can report them.
    """
    engaged = interactions.loc[engaged_mask(interactions, event_weights)]
    u = user_map.index(engaged["user_id"].to_numpy(), missing="ignore")
    n = note_map.index(engaged["note_id"].to_numpy(), missing="ignore")
    ok = (u >= 0) & (n >= 0)
    m = sp.csr_matrix((np.ones(int(ok.sum()), dtype=np.float32), (u[ok], n[ok])), shape=(len(user_map), len(note_map)))
    m.data[:] = 1.0
    return m, {"unknown_user_rows": int((u < 0).sum()), "unknown_note_rows": int(((u >= 0) & (n < 0)).sum())}


def topk_from_scores(scores: Any, k: int, *, exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` note indices and scores per row, best first; ties go to the smaller index.

    Entries of ``exclude`` (same shape) are never returned; rows with fewer than ``k`` finite
    scores are padded with -1 / -inf.
    """
    s = np.array(scores.detach().cpu().numpy() if hasattr(scores, "detach") else scores, dtype=np.float32, copy=True)
    if s.ndim != 2:
        raise InvalidParameterError(f"scores must have shape (n_users, n_notes); got {s.shape}")
    k = check_int("k", k, minimum=1)
    if exclude is not None:
        if exclude.shape != s.shape:
            raise InvalidParameterError(f"exclude has shape {exclude.shape}; scores have {s.shape}")
        r = np.repeat(np.arange(s.shape[0]), np.diff(exclude.indptr))
        s[r, exclude.indices] = -np.inf
    return topk_rows(s, k)


def evaluate_scorer(
    scorer: Scorer,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    *,
    ks: Sequence[int] = (20,),
    batch_size: int = 1024,
    show_progress: bool | None = None,
    note_embeddings: np.ndarray | None = None,
    note_authors: np.ndarray | None = None,
) -> dict[str, float]:
    """Rank all notes for every user with test items, excluding training items, and score it.

    Parameters
    ----------
    scorer : recommender or callable
        A fitted model (its ``score(user_indices)`` is used) or a function ``scorer(user_indices)``,
        either giving scores of shape ``(len(user_indices), n_notes)``.
    train, test : scipy.sparse.csr_matrix, shape (n_users, n_notes)
        Training pairs (excluded from rankings; their column counts give popularity for the long
        tail) and held-out relevant pairs.
    note_embeddings, note_authors : ndarray, optional
        Passed to :func:`graphrec.evaluate.ranking_metrics` for the diversity and creator metrics.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    score = scorer.score if hasattr(scorer, "score") else scorer
    if not callable(score):
        raise InvalidParameterError(f"scorer must be a fitted recommender or a function; got {type(scorer).__name__}")
    if train.shape != test.shape:
        raise InvalidParameterError(f"train {train.shape} and test {test.shape} must have the same shape")
    train = sp.csr_matrix(train)
    users = np.flatnonzero(np.diff(sp.csr_matrix(test).indptr) > 0)
    if users.size == 0:
        raise InvalidParameterError("the test matrix has no entries")
    k_max = max(ks)
    popularity = np.diff(train.tocsc().indptr)
    tops = []
    batches = range(0, users.size, batch_size)
    for start in progress(batches, desc="ranking", total=len(batches), enable=show_progress):
        b = users[start : start + batch_size]
        idx, _ = topk_from_scores(score(b), k_max, exclude=train[b])
        tops.append(idx)
    return ranking_metrics(
        np.vstack(tops),
        test,
        users=users,
        ks=ks,
        popularity=popularity,
        note_embeddings=note_embeddings,
        note_authors=note_authors,
    )
