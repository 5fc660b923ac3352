"""Cold-start audience evaluation: replay held-out notes as new, in exposure rounds.

Protocol
--------
Notes are held out whole (:func:`graphrec.evaluate.cold_note_split`): no node, no edge, no
training signal. Their held-out engagements are the ground truth. Round 1 exposes ``budget``
seed users per note; which of them engage is read from the ground truth; round 2 exposes
``budget`` look-alikes (never someone already exposed). Metrics per round and cumulative,
averaged over the cold notes with at least one engaged known user:

* ``precision@N``: engaged exposed users / users exposed;
* ``recall@N``: engaged exposed users / the note's engaged users;
* ``hit_rate@N``: share of notes with at least one engaged exposed user.

Baselines at the same budget (:func:`baseline_audiences`): ``random_active`` (uniform among
users with history, seeded), ``most_active``, ``tag_match`` (users' interest in the note's
tags), and ``seeds_2n`` (the seed ranking's top ``2 * budget``, i.e. no feedback used).

The metrics are :func:`graphrec.evaluate.audience_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from graphrec._validation import check_int
from graphrec.coldstart.audience import ColdStart
from graphrec.coldstart.features import Boosts, Candidates
from graphrec.graph.side_info import SideInfo

__all__ = ["baseline_audiences", "simulate_rounds"]


def simulate_rounds(
    cold: ColdStart,
    side: SideInfo,
    truth: Sequence[np.ndarray],
    *,
    budget: int,
    rounds: int = 2,
    boosts: Boosts | None = None,
    candidates: list[Candidates] | None = None,
) -> list[list[np.ndarray]]:
    """Exposed users per round per note: round 1 seeds, then look-alikes from engaged exposures."""
    budget = check_int("budget", budget, minimum=1)
    rounds = check_int("rounds", rounds, minimum=1)
    w = (boosts or cold.boosts).vector()
    cands = candidates if candidates is not None else cold.candidate_features(side)
    emb = cold.encoder_(side)
    per_round: list[list[np.ndarray]] = [[] for _ in range(rounds)]
    for j, c in enumerate(cands):
        users, _ = c.rank(w, budget)
        per_round[0].append(users)
        exposed = users
        for r in range(1, rounds):
            positives = exposed[np.isin(exposed, truth[j])]
            nxt, _, _ = cold.expand(emb[j], positives, exposed, budget, seed_candidates=c, boosts=boosts)
            per_round[r].append(nxt)
            exposed = np.concatenate([exposed, nxt])
    return per_round


def baseline_audiences(
    history: sp.spmatrix, side: SideInfo, *, budget: int, note_tags: sp.spmatrix | None = None, seed: int = 0
) -> dict[str, list[np.ndarray]]:
    """``random_active``, ``most_active`` and (with tags) ``tag_match`` audiences of ``budget`` users."""
    binary = sp.csr_matrix(history, dtype=np.float64)
    binary.data[:] = 1.0
    counts = np.asarray(binary.sum(axis=1)).ravel()
    active = np.flatnonzero(counts > 0)
    rng = np.random.default_rng(seed)
    n = side.n_notes
    most = np.lexsort((np.arange(counts.size), -counts))[:budget]
    out = {
        "random_active": [np.sort(rng.choice(active, size=min(budget, active.size), replace=False)) for _ in range(n)],
        "most_active": [most] * n,
    }
    if note_tags is not None and side.tags is not None:
        nt = sp.csr_matrix(note_tags, dtype=np.float64)
        nt.data[:] = 1.0
        user_tag = binary @ nt
        user_tag = sp.diags(1.0 / np.maximum(np.asarray(user_tag.sum(axis=1)).ravel(), 1e-12)) @ user_tag
        tag_users = sp.csr_matrix(user_tag.T)
        tag_match = []
        for j in range(n):
            idx = side.tags[j].indices
            score = np.asarray(tag_users[idx].sum(axis=0)).ravel() if idx.size else np.zeros(counts.size)
            tag_match.append(np.lexsort((np.arange(score.size), -score))[:budget])
        out["tag_match"] = tag_match
    return out
