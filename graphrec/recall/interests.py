"""Multi-interest recall: a user's minor interests get their own retrieval and their own slots.

A single user vector averages a user's interests, so ANN search around it returns the major
interest and drowns the minor ones. This module keeps the interests apart in three steps:

1. **Global interests.** :class:`NoteInterests` clusters the notes' unit embeddings into
   ``n_interests`` groups with faiss's spherical k-means. The clustering is seeded and trained
   on at most ``256 * n_interests`` notes, so its cost does not grow with the catalogue. Each
   note is then assigned to its nearest centroid.
2. **A user's interests.** :func:`user_interests` ranks the interests of the user's recent
   notes by recency-weighted count (ties go to the smaller interest) and keeps the top
   ``per_user``. Each kept interest's query is the recency-weighted mean embedding of the user's
   notes in it.
3. **Retrieval per interest.** Each query gets its own ANN search, and
   :func:`round_robin` interleaves the results: first place of every interest, then second
   place, and so on. The channel's ranking therefore gives each interest an equal share of its
   top slots. The engine's ``"interest"`` channel and a quota carry those slots into the merge.
"""

from __future__ import annotations

import numpy as np

from graphrec._validation import check_int
from graphrec.exceptions import InvalidParameterError

__all__ = ["NoteInterests", "round_robin", "user_interests"]


class NoteInterests:
    """Spherical k-means interests over note embeddings (see the module docstring)."""

    def __init__(self, note_embeddings: np.ndarray, n_interests: int, *, seed: int = 0) -> None:
        import faiss

        emb = np.ascontiguousarray(note_embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0:
            raise InvalidParameterError(f"note embeddings must have shape (n_notes, dim); got {emb.shape}")
        k = min(check_int("n_interests", n_interests, minimum=1), emb.shape[0])
        unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        km = faiss.Kmeans(unit.shape[1], k, niter=20, seed=seed, spherical=True, max_points_per_centroid=256)
        km.train(unit)
        self.centroids = np.array(km.centroids, dtype=np.float32)
        self.assignment = np.argmax(unit @ self.centroids.T, axis=1).astype(np.int64)
        self.embeddings = emb


def user_interests(interests: NoteInterests, notes: np.ndarray, weights: np.ndarray, per_user: int) -> list[np.ndarray]:
    """Query vectors of the user's top ``per_user`` interests, strongest first."""
    if notes.size == 0:
        return []
    clusters = interests.assignment[notes]
    strength = np.bincount(clusters, weights=weights, minlength=interests.centroids.shape[0])
    order = np.lexsort((np.arange(strength.size), -strength))
    top = [int(c) for c in order[:per_user] if strength[c] > 0]
    queries = []
    for c in top:
        mine = clusters == c
        q = weights[mine] @ interests.embeddings[notes[mine]].astype(np.float64)
        queries.append((q / max(float(weights[mine].sum()), 1e-12)).astype(np.float32))
    return queries


def round_robin(lists: list[np.ndarray], n: int) -> np.ndarray:
    """Interleave ranked lists (first of each, then second of each, ...), without repeats, up to ``n``."""
    out: list[int] = []
    seen: set[int] = set()
    depth = max((len(x) for x in lists), default=0)
    for rank in range(depth):
        for items in lists:
            if rank < len(items):
                i = int(items[rank])
                if i not in seen:
                    seen.add(i)
                    out.append(i)
                    if len(out) == n:
                        return np.array(out, dtype=np.int64)
    return np.array(out, dtype=np.int64)
