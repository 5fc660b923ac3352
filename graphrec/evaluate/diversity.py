"""Beyond-accuracy metrics of top-K lists: diversity, novelty and how exposure is spread.

Each metric is computed for every list, and the results are averaged over lists.

* ``ilad@K`` is the intra-list average distance. ``ilmd@K`` is the intra-list minimal distance.
  Both are defined as in the SSD paper (Huang et al., KDD 2021): the mean and the minimum of
  ``d(i, j) = 1 - cos(e_i, e_j)`` over the pairs ``i != j`` of a list, where ``e`` is a note's
  embedding. Lists with fewer than two notes are skipped. A note whose embedding is all zeros
  counts as orthogonal to every other note.
* ``novelty@K`` is the mean self-information ``-log2 p_i`` of the listed notes (Zhou et al. 2010).
  Here ``p_i = (popularity_i + 1) / (n_users + 1)``, where ``popularity_i`` is the number of
  training users of the note.
* ``long_tail_share@K`` is the share of listed slots that hold long-tail notes
  (:func:`~graphrec.evaluate.long_tail_mask`).
* ``creator_gini@K`` is the Gini coefficient of exposure per author, over every author who has
  notes. Notes whose author is unknown are left out.

Lists are arrays of shape ``(n_lists, K)`` holding note indices, padded with -1.
:func:`graphrec.evaluate.ranking_metrics` reports these metrics next to recall and NDCG when it
is given the embeddings, the popularity or the authors.
"""

from __future__ import annotations

import numpy as np

from graphrec.evaluate.metrics import gini, long_tail_mask
from graphrec.exceptions import InvalidParameterError

__all__ = ["creator_gini", "intra_list_distances", "long_tail_share", "novelty"]

_BATCH = 2048


def _unit(embeddings: np.ndarray) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2:
        raise InvalidParameterError(f"note embeddings must have shape (n_notes, dim); got {e.shape}")
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def intra_list_distances(topk: np.ndarray, note_embeddings: np.ndarray) -> tuple[float, float]:
    """Mean ILAD and mean ILMD of the lists, over the lists that hold at least two notes."""
    unit = _unit(note_embeddings)
    top = np.asarray(topk)
    ilad, ilmd = [], []
    for start in range(0, top.shape[0], _BATCH):
        t = top[start : start + _BATCH]
        valid = t >= 0
        v = unit[np.maximum(t, 0)] * valid[..., None]
        dist = 1.0 - v @ v.transpose(0, 2, 1)
        pair = valid[:, :, None] & valid[:, None, :] & ~np.eye(t.shape[1], dtype=bool)
        n_pairs = pair.sum(axis=(1, 2))
        ok = n_pairs > 0
        ilad.append(np.where(pair, dist, 0.0).sum(axis=(1, 2))[ok] / n_pairs[ok])
        ilmd.append(np.where(pair, dist, np.inf).min(axis=(1, 2))[ok])
    a, m = np.concatenate(ilad), np.concatenate(ilmd)
    return (float(a.mean()), float(m.mean())) if a.size else (float("nan"), float("nan"))


def novelty(topk: np.ndarray, popularity: np.ndarray, n_users: int) -> float:
    """Mean self-information ``-log2((popularity + 1) / (n_users + 1))`` of the listed notes."""
    top = np.asarray(topk)
    info = -np.log2((np.asarray(popularity, dtype=np.float64) + 1.0) / (n_users + 1.0))
    shown = top[top >= 0]
    return float(info[shown].mean()) if shown.size else float("nan")


def long_tail_share(topk: np.ndarray, popularity: np.ndarray, *, head_share: float = 0.2) -> float:
    """Share of the listed slots that hold long-tail notes."""
    top = np.asarray(topk)
    shown = top[top >= 0]
    return float(long_tail_mask(popularity, head_share=head_share)[shown].mean()) if shown.size else float("nan")


def creator_gini(topk: np.ndarray, note_authors: np.ndarray) -> float:
    """Gini coefficient of exposure per author, over every author of a note (-1 = unknown author)."""
    authors = np.asarray(note_authors, dtype=np.int64)
    top = np.asarray(topk)
    shown = top[top >= 0]
    known = authors >= 0
    if not known.any():
        raise InvalidParameterError("note_authors holds no known author")
    codes, per_note = np.unique(authors[known], return_inverse=True)
    author_of = np.full(authors.size, -1, dtype=np.int64)
    author_of[known] = per_note
    listed = author_of[shown]
    return gini(np.bincount(listed[listed >= 0], minlength=codes.size))
