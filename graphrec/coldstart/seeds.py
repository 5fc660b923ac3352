"""Round 1: candidate users for a new note and their seed ranking.

Candidates are the top ``candidates`` users of the inner-product user index for the note's
embedding, plus the author's strongest fans and the users most interested in its tags; each gets
the five :data:`~graphrec.coldstart.features.FEATURES` on [0, 1] and :class:`Boosts` rank them.
A note without usable side-info gets the fallback pool (see :mod:`graphrec.coldstart.audience`).
"""

from __future__ import annotations

import numpy as np

from graphrec._validation import check_int
from graphrec.coldstart.features import FEATURES, Boosts, Candidates, UserFeatures, max_scaled
from graphrec.graph.side_info import SideInfo
from graphrec.index import AnnIndex

__all__ = ["SeedRanker"]


class SeedRanker:
    """Candidate generation and seed scoring over :class:`UserFeatures`.

    Parameters
    ----------
    features : UserFeatures
    candidates : int
        Users taken from the user index per note (plus author and tag candidates).
    """

    def __init__(self, features: UserFeatures, *, candidates: int = 1000) -> None:
        self.features = features
        self.candidates = check_int("candidates", candidates, minimum=1)
        self.index = AnnIndex.build(features.embeddings)

    def candidate_features(self, side: SideInfo, embeddings: np.ndarray) -> list[Candidates]:
        """Candidates and their feature matrices for each note of ``side`` (embedded as ``embeddings``)."""
        u = self.features
        usable = side.usable()
        k = min(self.candidates, u.n_users)
        ann_ids = self.index.search(embeddings, k)[0] if len(embeddings) else np.empty((0, k), np.int64)
        out = []
        for j in range(side.n_notes):
            if not usable[j]:
                out.append(self.fallback())
                continue
            pools = [ann_ids[j][ann_ids[j] >= 0]]
            author = int(side.authors[j]) if side.authors is not None else -1
            if author >= 0 and u.author_fans is not None:
                row = u.author_fans[author]
                pools.append(row.indices[np.argsort(-row.data, kind="stable")[:k]])
            tag_idx = side.tags[j].indices if side.tags is not None else np.empty(0, np.int64)
            tag_score = None
            if tag_idx.size and u.tag_users is not None:
                tag_score = np.asarray(u.tag_users[tag_idx].sum(axis=0)).ravel() / tag_idx.size
                nz = np.flatnonzero(tag_score)
                pools.append(nz[np.argsort(-tag_score[nz], kind="stable")[:k]])
            users = np.unique(np.concatenate(pools))
            f = np.zeros((users.size, len(FEATURES)))
            dots = u.embeddings[users].astype(np.float64) @ embeddings[j].astype(np.float64)
            f[:, 0] = dots / max(np.abs(dots).max(initial=0.0), 1e-12)
            if author >= 0 and u.author_fans is not None:
                f[:, 1] = max_scaled(u.author_fans[author].toarray().ravel()[users])
            if tag_score is not None:
                f[:, 2] = max_scaled(tag_score[users])
            f[:, 3] = u.activity[users]
            f[:, 4] = u.recency[users]
            out.append(Candidates(users, f))
        return out

    def fallback(self) -> Candidates:
        """Most active users among the fans of the most popular tags (or simply most active)."""
        u = self.features
        k = min(self.candidates, u.n_users)
        base = u.activity.copy()
        if u.tag_users is not None and u.tag_popularity is not None and u.tag_popularity.size:
            top_tags = np.argsort(-u.tag_popularity, kind="stable")[:10]
            base = base * (1.0 + max_scaled(np.asarray(u.tag_users[top_tags].sum(axis=0)).ravel()))
        users = np.sort(np.argsort(-base, kind="stable")[:k])
        f = np.zeros((users.size, len(FEATURES)))
        f[:, 3] = base[users] / max(base.max(initial=0.0), 1e-12)
        return Candidates(users, f, fallback=True)

    @staticmethod
    def rank(candidates: list[Candidates], boosts: Boosts, budget: int) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """Round 1 per note: ``(user indices, scores, fallback)``, ``budget`` users each."""
        budget = check_int("budget", budget, minimum=1)
        w = boosts.vector()
        return [(*c.rank(w, budget), c.fallback) for c in candidates]
