"""What cold start knows about every user, computed once from a trained model and its history.

:class:`UserFeatures` holds the per-user state both cold-start stages read (see
:mod:`graphrec.coldstart.audience` for what each feature means): embeddings and their unit
vectors, activity, recency, each tag's audience shares, each author's fans, and unit-normalised
binary histories (for co-engagement). :class:`Candidates` is one note's candidate users with their
:data:`FEATURES` matrix; :class:`Boosts` are the weights that rank them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from graphrec._validation import check_float
from graphrec.exceptions import InvalidParameterError

__all__ = ["FEATURES", "Boosts", "Candidates", "UserFeatures"]

FEATURES = ("embedding", "author", "tag", "activity", "recency")


@dataclass(frozen=True)
class Boosts:
    """Weights of the seed-score features (``embedding`` is the reference, 1 by default).

    The defaults (for when no tuning notes are at hand) sit among what :func:`tune_boosts` found on
    synthetic data, CiteULike-a and Last.fm-2k (tag 3.9–8.9, activity 0.002–2.1 against the
    embedding's 1; ``benchmarks/README.md``); on Last.fm no tuning trial beat them.
    """

    embedding: float = 1.0
    author: float = 0.5
    tag: float = 4.0
    activity: float = 0.5
    recency: float = 0.1

    def __post_init__(self) -> None:
        for name in FEATURES:
            check_float(name, getattr(self, name), minimum=0.0)

    def vector(self) -> np.ndarray:
        """The weights in :data:`FEATURES` order."""
        return np.array([getattr(self, f) for f in FEATURES], dtype=np.float64)


@dataclass
class Candidates:
    """One note's candidate users and their feature matrix ``(n, len(FEATURES))``."""

    users: np.ndarray
    features: np.ndarray
    fallback: bool = False

    def rank(self, weights: np.ndarray, n: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` users by ``features @ weights`` (ties to the smaller user index)."""
        score = self.features @ weights
        users = self.users
        if exclude is not None and exclude.size:
            keep = ~np.isin(users, exclude)
            users, score = users[keep], score[keep]
        order = np.lexsort((users, -score))[:n]
        return users[order], score[order]


def max_scaled(x: np.ndarray) -> np.ndarray:
    """``x / max(x)`` (zeros stay zeros): a feature on [0, 1] over one note's candidates."""
    top = float(x.max(initial=0.0))
    return x / top if top > 0 else x


def _row_normalise(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float64)
    sums = np.asarray(m.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(sums, 1e-12)) @ m)


@dataclass(frozen=True)
class UserFeatures:
    """Per-user state for cold start (see the module docstring); build it with :meth:`build`."""

    embeddings: np.ndarray
    unit: np.ndarray
    history: sp.csr_matrix
    history_unit: sp.csr_matrix
    activity: np.ndarray
    recency: np.ndarray
    tag_users: sp.csr_matrix | None
    tag_popularity: np.ndarray | None
    author_fans: sp.csr_matrix | None

    @property
    def n_users(self) -> int:
        return int(self.embeddings.shape[0])

    @classmethod
    def build(
        cls,
        embeddings: np.ndarray,
        history: sp.spmatrix,
        *,
        note_tags: sp.spmatrix | None = None,
        authored: sp.spmatrix | None = None,
    ) -> UserFeatures:
        """Compute every feature from user embeddings, the recency-valued history and side relations."""
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        hist = sp.csr_matrix(history, dtype=np.float64)
        n_users = emb.shape[0]
        if hist.shape[0] != n_users:
            raise InvalidParameterError(f"history has {hist.shape[0]} rows; {n_users} user ids")
        binary = hist.copy()
        binary.data[:] = 1.0
        counts = np.asarray(binary.sum(axis=1)).ravel()
        last = np.asarray(hist.max(axis=1).todense()).ravel()
        recency = np.empty(n_users)
        recency[np.argsort(last, kind="stable")] = np.arange(n_users) / max(n_users - 1, 1)
        recency[counts == 0] = 0.0
        tag_users = tag_popularity = None
        if note_tags is not None:
            nt = sp.csr_matrix(note_tags, dtype=np.float64)
            nt.data[:] = 1.0
            # tags x users: each user's share of the engagements with the tag's notes
            tag_users = _row_normalise((binary @ nt).T)
            tag_popularity = np.asarray(binary.sum(axis=0)).ravel() @ nt
        author_fans = None
        if authored is not None:
            au = sp.csr_matrix(authored, dtype=np.float64)
            au.data[:] = 1.0
            # (author x user): share of each user's engagements that went to the author's notes
            author_fans = sp.csr_matrix(_row_normalise(binary @ au.T).T)
        return cls(
            embeddings=emb,
            unit=emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12),
            history=hist,
            history_unit=sp.csr_matrix(sp.diags(1.0 / np.sqrt(np.maximum(counts, 1))) @ binary),
            activity=np.log1p(counts) / max(np.log1p(counts.max(initial=0)), 1e-12),
            recency=recency,
            tag_users=tag_users,
            tag_popularity=tag_popularity,
            author_fans=author_fans,
        )
