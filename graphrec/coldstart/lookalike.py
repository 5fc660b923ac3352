"""Later rounds: look-alike expansion from the users who engaged so far.

The query is the attention-weighted mean of the positives' unit embeddings; candidates are the
nearest users by cosine plus the note's seed candidates; the score mixes cosine similarity,
co-engagement with the positives and the seed score, weighted by :class:`LookalikeConfig` (the
full rule is in :mod:`graphrec.coldstart.audience`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphrec._validation import check_float, check_int
from graphrec.coldstart.features import Boosts, Candidates, UserFeatures
from graphrec.index import AnnIndex

__all__ = ["LookalikeConfig", "LookalikeExpander"]


@dataclass(frozen=True)
class LookalikeConfig:
    """Weights of the look-alike score (tuned by :func:`graphrec.coldstart.tune_lookalike`)."""

    attention_temperature: float = 0.1
    seed_weight: float = 3.0
    embedding_weight: float = 0.3
    cf_weight: float = 1.0

    def __post_init__(self) -> None:
        check_float("attention_temperature", self.attention_temperature, minimum=1e-6)
        for name in ("seed_weight", "embedding_weight", "cf_weight"):
            check_float(name, getattr(self, name), minimum=0.0)


class LookalikeExpander:
    """Look-alike rounds over :class:`UserFeatures` (a cosine index over the users)."""

    def __init__(self, features: UserFeatures) -> None:
        self.features = features
        self.index = AnnIndex.build(features.embeddings, normalise=True)

    def expand(
        self,
        note_embedding: np.ndarray,
        positives: np.ndarray,
        exposed: np.ndarray,
        budget: int,
        *,
        config: LookalikeConfig,
        boosts: Boosts,
        seed_candidates: Candidates | None = None,
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """The next ``budget`` users for one note, given engaged users so far and everyone exposed.

        Returns ``(users, scores, continued_seeds)``; ``continued_seeds`` is True when there was
        no positive and the seed ranking (by ``boosts``) was continued instead.
        """
        u = self.features
        budget = check_int("budget", budget, minimum=1)
        exposed = np.asarray(exposed, dtype=np.int64)
        pos = np.unique(np.asarray(positives, dtype=np.int64))
        w = boosts.vector()
        if pos.size == 0:
            if seed_candidates is None:
                return np.empty(0, np.int64), np.empty(0), True
            users, scores = seed_candidates.rank(w, budget, exclude=exposed)
            return users, scores, True
        # Attention over the positives: those closest to the note weigh most.
        affinity = u.embeddings[pos].astype(np.float64) @ np.asarray(note_embedding, dtype=np.float64)
        if np.abs(affinity).max(initial=0.0) > 0:
            affinity = affinity / np.abs(affinity).max()
        att = np.exp((affinity - affinity.max()) / config.attention_temperature)
        query = (att / att.sum()) @ u.unit[pos].astype(np.float64)
        fetch = min(u.n_users, 4 * budget + exposed.size)
        ids, _ = self.index.search(query[None, :].astype(np.float32), fetch)
        pools = [ids[0][ids[0] >= 0]]
        if seed_candidates is not None:
            pools.append(seed_candidates.users)
        users = np.unique(np.concatenate(pools))
        users = users[~np.isin(users, exposed)]
        score = config.embedding_weight * (u.unit[users].astype(np.float64) @ query)
        if config.cf_weight > 0:
            # Co-engagement with the positives (cosine of binary histories), scaled to [0, 1].
            cf = np.asarray(u.history_unit[users] @ u.history_unit[pos].sum(axis=0).T).ravel()
            score = score + config.cf_weight * cf / max(cf.max(initial=0.0), 1e-12)
        if seed_candidates is not None and config.seed_weight > 0:
            # The note's own signal stays in: the seed score, scaled to [0, 1] over the candidates.
            seed_score = np.zeros(users.size)
            at = np.minimum(np.searchsorted(seed_candidates.users, users), seed_candidates.users.size - 1)
            hit = seed_candidates.users[at] == users
            total = seed_candidates.features @ w
            span = max(total.max(initial=0.0) - total.min(initial=0.0), 1e-12)
            seed_score[hit] = (total[at[hit]] - total.min()) / span
            score = score + config.seed_weight * seed_score
        order = np.lexsort((users, -score))[:budget]
        return users[order], score[order], False
