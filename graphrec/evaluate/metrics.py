"""Full-ranking top-K metrics, vectorised over users.

Conventions (those of the LightGCN evaluation code, so published tables compare):

* Only users with at least one test item are evaluated; each counts equally.
* Training items are excluded from the ranking before the top K is taken.
* ``recall@K`` = hits in the top K / number of the user's test items.
* ``ndcg@K`` = DCG / IDCG with binary gains, ``DCG = sum_r hit_r / log2(r + 2)`` over ranks
  ``r = 0..K-1`` and IDCG the DCG of ``min(|test|, K)`` hits at the top.
* ``hit_rate@K`` = share of users with at least one hit.
* ``coverage@K`` = distinct notes in all top-K lists / number of notes.
* ``long_tail_recall@K``: notes outside the top 20% by training popularity (number of training
  users; ties broken by the smaller index) are the long tail; recall over each user's long-tail
  test items, averaged over users who have any.
* ``gini@K``: Gini coefficient of how often each note appears in the top-K lists, over all notes
  (0 = equal exposure, -> 1 = all exposure on one note).

* Beyond accuracy (:mod:`graphrec.evaluate.diversity`), when their inputs are given:
  ``long_tail_share@K`` and ``novelty@K`` (with ``popularity``), ``ilad@K`` and ``ilmd@K`` (with
  ``note_embeddings``), ``creator_gini@K`` (with ``note_authors``).

Top-K lists are arrays of shape ``(n_users, K)`` of note indices, padded with -1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from graphrec._validation import check_float, check_int
from graphrec.exceptions import InvalidParameterError

__all__ = ["gini", "long_tail_mask", "ranking_metrics"]


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative ``counts`` (0 when all are equal or all zero)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n = x.size
    total = x.sum()
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(((2 * ranks - n - 1) * x).sum() / (n * total))


def long_tail_mask(popularity: np.ndarray, *, head_share: float = 0.2) -> np.ndarray:
    """Boolean mask of notes outside the top ``head_share`` by ``popularity``."""
    head_share = check_float("head_share", head_share, minimum=0.0, maximum=1.0)
    pop = np.asarray(popularity)
    n_head = int(np.ceil(head_share * pop.size))
    order = np.lexsort((np.arange(pop.size), -pop))
    tail = np.ones(pop.size, dtype=bool)
    tail[order[:n_head]] = False
    return tail


def _checked_rows(top: np.ndarray, n_notes: int, users: np.ndarray | None, ks: Sequence[int]) -> np.ndarray:
    """The test rows ``top`` belongs to, after checking shapes, cut-offs and indices."""
    if top.ndim != 2:
        raise InvalidParameterError(f"topk must have shape (n_users, K); got {top.shape}")
    rows = np.arange(top.shape[0]) if users is None else np.asarray(users, dtype=np.int64)
    if rows.shape != (top.shape[0],):
        raise InvalidParameterError(f"users must have shape ({top.shape[0]},); got {rows.shape}")
    for k in ks:
        check_int("k", k, minimum=1)
        if k > top.shape[1]:
            raise InvalidParameterError(f"k={k} exceeds the {top.shape[1]} items per top-K list")
    if top.size and (top.max() >= n_notes or top.min() < -1):
        raise InvalidParameterError(f"topk holds indices outside -1..{n_notes - 1}")
    return rows


def _with_test_items(
    top: np.ndarray, test: sp.csr_matrix, rows: np.ndarray
) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray]:
    """The lists, binary test rows and test counts of the users that have test items."""
    sub = test[rows]
    sub.data = (sub.data > 0).astype(np.float32)
    sub.eliminate_zeros()
    n_test = np.diff(sub.indptr)
    keep = n_test > 0
    return top[keep], sub[keep], n_test[keep]


def ranking_metrics(
    topk: np.ndarray,
    test: sp.csr_matrix,
    *,
    users: np.ndarray | None = None,
    ks: Sequence[int] = (20,),
    popularity: np.ndarray | None = None,
    head_share: float = 0.2,
    note_embeddings: np.ndarray | None = None,
    note_authors: np.ndarray | None = None,
) -> dict[str, float]:
    """Metrics of top-K lists against held-out items.

    Parameters
    ----------
    topk : ndarray of int, shape (n_eval, K)
        Ranked note indices per evaluated user, best first, padded with -1.
    test : scipy.sparse.csr_matrix, shape (n_users, n_notes)
        Held-out relevant items (any stored entry > 0 is relevant).
    users : ndarray of int, shape (n_eval,), optional
        Rows of ``test`` that ``topk`` belongs to (default: ``0..n_eval-1``). Users without test
        items are skipped.
    ks : sequence of int
        Cut-offs, each <= K.
    popularity : ndarray, shape (n_notes,), optional
        Training popularity; enables ``long_tail_recall@K``, ``long_tail_share@K`` and
        ``novelty@K``.
    note_embeddings : ndarray, shape (n_notes, dim), optional
        Enables ``ilad@K`` and ``ilmd@K`` (:mod:`graphrec.evaluate.diversity`).
    note_authors : ndarray of int, shape (n_notes,), optional
        Each note's author index (-1 = unknown); enables ``creator_gini@K``.

    Returns
    -------
    dict
        ``recall@K``, ``ndcg@K``, ``hit_rate@K``, ``coverage@K``, ``gini@K`` (and
        ``long_tail_recall@K``) per K, plus ``n_users`` evaluated.
    """
    top, test = np.asarray(topk), sp.csr_matrix(test)
    n_notes = test.shape[1]
    rows = _checked_rows(top, n_notes, users, ks)
    top, sub, n_test = _with_test_items(top, test, rows)
    n_eval = top.shape[0]
    out: dict[str, float] = {"n_users": float(n_eval)}
    if n_eval == 0:
        raise InvalidParameterError("no evaluated user has test items")
    # Hits: is (row, note) in the test set? Encode pairs as row * n_notes + note and look them up.
    test_keys = np.repeat(np.arange(n_eval, dtype=np.int64), n_test) * n_notes + sub.indices
    top_keys = np.arange(n_eval, dtype=np.int64)[:, None] * n_notes + top
    hits = np.isin(top_keys, test_keys) & (top >= 0)
    discounts = 1.0 / np.log2(np.arange(top.shape[1]) + 2.0)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])
    tail = long_tail_mask(popularity, head_share=head_share) if popularity is not None else None
    if tail is not None:
        owner = np.repeat(np.arange(n_eval), n_test)
        tail_test = np.bincount(owner, weights=tail[sub.indices], minlength=n_eval)
    for k in ks:
        h = hits[:, :k]
        n_hit = h.sum(axis=1)
        out[f"recall@{k}"] = float(np.mean(n_hit / n_test))
        dcg = (h * discounts[:k]).sum(axis=1)
        out[f"ndcg@{k}"] = float(np.mean(dcg / ideal[np.minimum(n_test, k)]))
        out[f"hit_rate@{k}"] = float(np.mean(n_hit > 0))
        shown = top[:, :k][top[:, :k] >= 0]
        exposure = np.bincount(shown, minlength=n_notes)
        out[f"coverage@{k}"] = float((exposure > 0).sum() / n_notes)
        out[f"gini@{k}"] = gini(exposure)
        if tail is not None:
            has_tail = tail_test > 0
            tail_hits = (h & tail[np.maximum(top[:, :k], 0)]).sum(axis=1)
            out[f"long_tail_recall@{k}"] = (
                float(np.mean(tail_hits[has_tail] / tail_test[has_tail])) if has_tail.any() else float("nan")
            )
        out.update(
            _beyond_accuracy(top[:, :k], k, test.shape[0], popularity, head_share, note_embeddings, note_authors)
        )
    return out


def _beyond_accuracy(
    top: np.ndarray,
    k: int,
    n_users: int,
    popularity: np.ndarray | None,
    head_share: float,
    note_embeddings: np.ndarray | None,
    note_authors: np.ndarray | None,
) -> dict[str, float]:
    from graphrec.evaluate import diversity

    out = {}
    if popularity is not None:
        out[f"long_tail_share@{k}"] = diversity.long_tail_share(top, popularity, head_share=head_share)
        out[f"novelty@{k}"] = diversity.novelty(top, popularity, n_users)
    if note_embeddings is not None:
        out[f"ilad@{k}"], out[f"ilmd@{k}"] = diversity.intra_list_distances(top, note_embeddings)
    if note_authors is not None:
        out[f"creator_gini@{k}"] = diversity.creator_gini(top, note_authors)
    return out
