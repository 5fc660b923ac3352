"""A new note's first audience: seed users, then look-alike expansion from the seeds' feedback.

Seeds
-----
A new note arrives with side-info only (author, tags, title/text). :class:`ColdStart` embeds it
with the GNN's side-info encoder (:class:`graphrec.index.NoteEncoder`), takes candidate users
from the user index (faiss, top ``candidates`` by inner product) plus the author's past engagers
and the users most interested in its tags, and scores every candidate by a weighted sum of five
features, each on [0, 1] (``author`` and ``tag`` divided by their largest value among the note's
candidates, like ``embedding``), so that a weight means the same for every note and feature:

* ``embedding``: ``user . note`` divided by the largest absolute value among the candidates;
* ``author``: the share of the user's engagements that went to this author's notes;
* ``tag``: the user's share of the engagements with notes carrying the note's tags, averaged
  over its tags (``count(u, t) / sum_v count(v, t)``). This per-tag normalisation ranks by how
  much of a tag's audience a user is; the per-user one (the share of the user's history in
  the tag, the ``tag_match`` baseline of :mod:`graphrec.coldstart.simulation`) favours users whose
  history is narrow and weighs a broad tag like a niche one. On Last.fm-2k's tuning artists the
  per-tag form alone reaches precision@20 0.180 against 0.109 (``benchmarks/README.md``);
* ``activity``: ``log1p(engagements) / log1p(max engagements)``;
* ``recency``: the percentile rank of the user's most recent engagement.

The weights (:class:`Boosts`) are tuned by :func:`graphrec.coldstart.tune_boosts` (optuna) on
historical notes replayed as new. The top ``budget`` candidates are round 1.

Look-alike expansion
--------------------
After round 1 the engaged seeds (positives) define the audience: the query is the
attention-weighted mean of their normalised embeddings (softmax of each positive's affinity to
the note, temperature ``attention_temperature``). Candidates are the users nearest the query
(cosine search over user embeddings) plus the note's seed candidates; a candidate's score is
``embedding_weight * cos(user, query) + cf_weight * co-engagement + seed_weight * seed score``:
co-engagement is the summed cosine between the user's binary history and each positive's
(scaled to [0, 1]), the behavioural look-alike; the seed score (min-max scaled over the seed
candidates) keeps the note's own signal. Already-exposed users are excluded. The three weights
are tuned with optuna on the tuning notes (:func:`graphrec.coldstart.tune_lookalike`,
objective: cumulative recall after two rounds). Rounds repeat with all
positives so far. With no positive yet, expansion continues down the seed ranking (flagged).

Fallback
--------
A note with no usable side-info (no text, no known tag, no known author) cannot be embedded;
it gets the most active users among those interested in the most popular tags overall, and its
rows are flagged ``fallback=True``. Unknown tags and authors are dropped and counted.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec._validation import check_float, check_int
from graphrec.exceptions import InvalidParameterError, SchemaError
from graphrec.graph.side_info import SideInfo
from graphrec.index import AnnIndex, Bundle
from graphrec.index.encoder import NoteEncoder
from graphrec.io.ids import IdMap

__all__ = ["FEATURES", "Boosts", "ColdStart"]

_log = logging.getLogger(__name__)

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


def _max_scaled(x: np.ndarray) -> np.ndarray:
    """``x / max(x)`` (zeros stay zeros): a feature on [0, 1] over one note's candidates."""
    top = float(x.max(initial=0.0))
    return x / top if top > 0 else x


def _row_normalise(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float64)
    sums = np.asarray(m.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(sums, 1e-12)) @ m)


class ColdStart:
    """Seed selection and look-alike expansion for new notes (see the module docstring).

    Parameters
    ----------
    user_ids, tag_ids : IdMap
        External ids of the users (rows of ``user_embeddings``) and tags (columns of ``note_tags``).
    user_embeddings : ndarray (n_users, dim)
        The GNN's final user embeddings.
    history : sparse (n_users, n_notes)
        Training engagements; values = recency (larger = more recent), as in a serving bundle.
    encoder : NoteEncoder
        The GNN's side-info encoder.
    note_tags : sparse (n_notes, n_tags), optional
    authored : sparse (n_users, n_notes), optional
        Who wrote which training note (enables the author feature).
    note_ids : IdMap, optional
        The trained (warm) notes; :meth:`plan` refuses one of them given as new.
    boosts : Boosts
    candidates : int
        Users taken from the user index per note (plus author and tag candidates).
    """

    def __init__(
        self,
        *,
        user_ids: IdMap,
        user_embeddings: np.ndarray,
        history: sp.spmatrix,
        encoder: NoteEncoder,
        tag_ids: IdMap | None = None,
        note_tags: sp.spmatrix | None = None,
        authored: sp.spmatrix | None = None,
        note_ids: IdMap | None = None,
        boosts: Boosts | None = None,
        candidates: int = 1000,
        attention_temperature: float = 0.1,
        seed_weight: float = 3.0,
        embedding_weight: float = 0.3,
        cf_weight: float = 1.0,
    ) -> None:
        self.user_ids = user_ids
        self.tag_ids = tag_ids
        self.note_ids = note_ids
        self.user_embeddings = np.ascontiguousarray(user_embeddings, dtype=np.float32)
        n_users = len(user_ids)
        if self.user_embeddings.shape[0] != n_users:
            raise InvalidParameterError(f"user_embeddings has {self.user_embeddings.shape[0]} rows; {n_users} user ids")
        hist = sp.csr_matrix(history, dtype=np.float64)
        if hist.shape[0] != n_users:
            raise InvalidParameterError(f"history has {hist.shape[0]} rows; {n_users} user ids")
        self.encoder = encoder
        self.boosts = boosts or Boosts()
        self.boosts.vector()
        self.candidates = check_int("candidates", candidates, minimum=1)
        self.attention_temperature = check_float("attention_temperature", attention_temperature, minimum=1e-6)
        self.seed_weight = check_float("seed_weight", seed_weight, minimum=0.0)
        self.embedding_weight = check_float("embedding_weight", embedding_weight, minimum=0.0)
        self.cf_weight = check_float("cf_weight", cf_weight, minimum=0.0)
        self.history = hist
        binary = hist.copy()
        binary.data[:] = 1.0
        counts = np.asarray(binary.sum(axis=1)).ravel()
        self._hist_unit = sp.csr_matrix(sp.diags(1.0 / np.sqrt(np.maximum(counts, 1))) @ binary)
        self.activity = np.log1p(counts) / max(np.log1p(counts.max(initial=0)), 1e-12)
        last = np.asarray(hist.max(axis=1).todense()).ravel()
        order = np.argsort(last, kind="stable")
        self.recency = np.empty(n_users)
        self.recency[order] = np.arange(n_users) / max(n_users - 1, 1)
        self.recency[counts == 0] = 0.0
        self.tag_users = None
        if note_tags is not None:
            nt = sp.csr_matrix(note_tags, dtype=np.float64)
            nt.data[:] = 1.0
            # tags x users: each user's share of the engagements with the tag's notes
            self.tag_users = _row_normalise((binary @ nt).T)
            self.tag_popularity = np.asarray(binary.sum(axis=0)).ravel() @ nt
        self.author_fans = None
        if authored is not None:
            au = sp.csr_matrix(authored, dtype=np.float64)
            au.data[:] = 1.0
            # (author x user): share of each user's engagements that went to the author's notes
            self.author_fans = sp.csr_matrix(_row_normalise(binary @ au.T).T)
        self.index = AnnIndex.build(self.user_embeddings)
        self.cosine_index = AnnIndex.build(self.user_embeddings, normalise=True)
        self._unit = self.user_embeddings / np.maximum(
            np.linalg.norm(self.user_embeddings, axis=1, keepdims=True), 1e-12
        )

    # ---- construction helpers -------------------------------------------------------------

    @classmethod
    def from_bundle(cls, path: str | os.PathLike[str], **options: Any) -> ColdStart:
        """Build from a serving bundle that holds ``encoder.npz`` (written from a GNN)."""
        from graphrec.index import load_bundle

        return cls.from_loaded_bundle(load_bundle(path), where=str(Path(path)), **options)

    @classmethod
    def from_loaded_bundle(cls, bundle: Bundle, *, where: str = "the bundle", **options: Any) -> ColdStart:
        """Build from an already loaded :class:`graphrec.index.Bundle` (a service's live one)."""
        if bundle.encoder is None:
            raise InvalidParameterError(
                f"{where}: the bundle has no note encoder (encoder.npz); build it from a GNN trained with side-info"
            )
        return cls(
            user_ids=bundle.ids["user"],
            user_embeddings=bundle.embeddings["user"],
            history=bundle.history,
            encoder=bundle.encoder,
            tag_ids=bundle.ids.get("tag"),
            note_tags=bundle.note_tags,
            authored=bundle.authored,
            note_ids=bundle.ids["note"],
            **options,
        )

    # ---- seeds ----------------------------------------------------------------------------

    def candidate_features(self, side: SideInfo, embeddings: np.ndarray | None = None) -> list[Candidates]:
        """Candidates and their feature matrices for each note of ``side`` (see the docstring)."""
        emb = self.encoder(side) if embeddings is None else embeddings
        usable = side.usable()
        k = min(self.candidates, len(self.user_ids))
        ann_ids, _ann_scores = self.index.search(emb, k) if len(emb) else (np.empty((0, k), np.int64), None)
        out = []
        for j in range(side.n_notes):
            if not usable[j]:
                out.append(self._fallback_candidates())
                continue
            pools = [ann_ids[j][ann_ids[j] >= 0]]
            author = int(side.authors[j]) if side.authors is not None else -1
            if author >= 0 and self.author_fans is not None:
                row = self.author_fans[author]
                pools.append(row.indices[np.argsort(-row.data, kind="stable")[:k]])
            tag_idx = side.tags[j].indices if side.tags is not None else np.empty(0, np.int64)
            tag_score = None
            if tag_idx.size and self.tag_users is not None:
                tag_score = np.asarray(self.tag_users[tag_idx].sum(axis=0)).ravel() / tag_idx.size
                nz = np.flatnonzero(tag_score)
                pools.append(nz[np.argsort(-tag_score[nz], kind="stable")[:k]])
            users = np.unique(np.concatenate(pools))
            f = np.zeros((users.size, len(FEATURES)))
            dots = self.user_embeddings[users].astype(np.float64) @ emb[j].astype(np.float64)
            f[:, 0] = dots / max(np.abs(dots).max(initial=0.0), 1e-12)
            if author >= 0 and self.author_fans is not None:
                f[:, 1] = _max_scaled(self.author_fans[author].toarray().ravel()[users])
            if tag_score is not None:
                f[:, 2] = _max_scaled(tag_score[users])
            f[:, 3] = self.activity[users]
            f[:, 4] = self.recency[users]
            out.append(Candidates(users, f))
        return out

    def _fallback_candidates(self) -> Candidates:
        """Most active users among the fans of the most popular tags (or simply most active)."""
        k = min(self.candidates, len(self.user_ids))
        base = self.activity.copy()
        if self.tag_users is not None and self.tag_popularity.size:
            top_tags = np.argsort(-self.tag_popularity, kind="stable")[:10]
            base = base * (1.0 + _max_scaled(np.asarray(self.tag_users[top_tags].sum(axis=0)).ravel()))
        users = np.sort(np.argsort(-base, kind="stable")[:k])
        f = np.zeros((users.size, len(FEATURES)))
        f[:, 3] = base[users] / max(base.max(initial=0.0), 1e-12)
        return Candidates(users, f, fallback=True)

    def seeds(
        self, side: SideInfo, budget: int, *, boosts: Boosts | None = None
    ) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """Round 1 per note: ``(user indices, scores, fallback)``, ``budget`` users each."""
        budget = check_int("budget", budget, minimum=1)
        w = (boosts or self.boosts).vector()
        return [(*c.rank(w, budget), c.fallback) for c in self.candidate_features(side)]

    # ---- look-alike -------------------------------------------------------------------------

    def lookalike(
        self,
        note_embedding: np.ndarray,
        positives: np.ndarray,
        exposed: np.ndarray,
        budget: int,
        *,
        seed_candidates: Candidates | None = None,
        boosts: Boosts | None = None,
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """The next ``budget`` users for one note, given engaged users so far and everyone exposed.

        Returns ``(users, scores, continued_seeds)``; ``continued_seeds`` is True when there was
        no positive and the seed ranking was continued instead.
        """
        budget = check_int("budget", budget, minimum=1)
        exposed = np.asarray(exposed, dtype=np.int64)
        pos = np.unique(np.asarray(positives, dtype=np.int64))
        w = (boosts or self.boosts).vector()
        if pos.size == 0:
            if seed_candidates is None:
                return np.empty(0, np.int64), np.empty(0), True
            users, scores = seed_candidates.rank(w, budget, exclude=exposed)
            return users, scores, True
        # Attention over the positives: those closest to the note weigh most.
        affinity = self.user_embeddings[pos].astype(np.float64) @ np.asarray(note_embedding, dtype=np.float64)
        if np.abs(affinity).max(initial=0.0) > 0:
            affinity = affinity / np.abs(affinity).max()
        att = np.exp((affinity - affinity.max()) / self.attention_temperature)
        query = (att / att.sum()) @ self._unit[pos].astype(np.float64)
        fetch = min(len(self.user_ids), 4 * budget + exposed.size)
        ids, _ = self.cosine_index.search(query[None, :].astype(np.float32), fetch)
        pools = [ids[0][ids[0] >= 0]]
        if seed_candidates is not None:
            pools.append(seed_candidates.users)
        users = np.unique(np.concatenate(pools))
        users = users[~np.isin(users, exposed)]
        score = self.embedding_weight * (self._unit[users].astype(np.float64) @ query)
        if self.cf_weight > 0:
            # Co-engagement with the positives (cosine of binary histories), scaled to [0, 1].
            cf = np.asarray(self._hist_unit[users] @ self._hist_unit[pos].sum(axis=0).T).ravel()
            score = score + self.cf_weight * cf / max(cf.max(initial=0.0), 1e-12)
        if seed_candidates is not None and self.seed_weight > 0:
            # The note's own signal stays in: the seed score, scaled to [0, 1] over the candidates.
            seed_score = np.zeros(users.size)
            at = np.minimum(np.searchsorted(seed_candidates.users, users), seed_candidates.users.size - 1)
            hit = seed_candidates.users[at] == users
            total = seed_candidates.features @ w
            span = max(total.max(initial=0.0) - total.min(initial=0.0), 1e-12)
            seed_score[hit] = (total[at[hit]] - total.min()) / span
            score = score + self.seed_weight * seed_score
        order = np.lexsort((users, -score))[:budget]
        return users[order], score[order], False

    # ---- table API ----------------------------------------------------------------------------

    def side_info(
        self, notes: pd.DataFrame, *, text_cache: str | os.PathLike[str] | None = None
    ) -> tuple[SideInfo, dict[str, int]]:
        """Side-info of a new-notes table (validated by :func:`graphrec.io.validate_notes`).

        Text vectors are computed (all-MiniLM-L6-v2, needs ``graphrec[text]``) only when the
        encoder was trained with text. Returns the side-info and counts of unknown tags/authors.
        """
        from graphrec.graph.side_info import side_info_for_encoder

        return side_info_for_encoder(notes, self.encoder, users=self.user_ids, tags=self.tag_ids, text_cache=text_cache)

    def plan(
        self, notes: pd.DataFrame, budget: int, *, text_cache: str | os.PathLike[str] | None = None
    ) -> pd.DataFrame:
        """Round-1 audience of each new note: rows ``note_id, user_id, score, round, fallback``.

        ``fallback`` is True for notes without usable side-info (see the module docstring).
        """
        if "note_id" not in notes.columns:
            raise SchemaError("new notes: missing column 'note_id'")
        budget = check_int("budget", budget, minimum=1)
        if self.note_ids is not None and len(notes):
            warm = notes["note_id"].to_numpy()[self.note_ids.index(notes["note_id"], missing="ignore") >= 0]
            if warm.size:
                shown = ", ".join(map(repr, warm[:3].tolist())) + (", ..." if warm.size > 3 else "")
                raise InvalidParameterError(
                    f"new notes: {warm.size} note id(s) are already trained notes ({shown}); cold start plans "
                    f"audiences for new notes only - recall serves trained ones"
                )
        side, stats = self.side_info(notes, text_cache=text_cache)
        if stats["unknown_tags"] or stats["unknown_authors"]:
            _log.warning(
                "new notes: %d unknown tag(s) and %d unknown author(s) ignored",
                stats["unknown_tags"],
                stats["unknown_authors"],
            )
        rows = []
        for note_id, (users, scores, fallback) in zip(notes["note_id"].tolist(), self.seeds(side, budget)):
            rows.append(
                pd.DataFrame(
                    {
                        "note_id": note_id,
                        "user_id": self.user_ids.ids[users],
                        "score": scores.astype(np.float32),
                        "round": np.int16(1),
                        "fallback": fallback,
                    }
                )
            )
        columns = ["note_id", "user_id", "score", "round", "fallback"]
        table = pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)
        short = [str(r["note_id"].iloc[0]) for r in rows if len(r) < budget]
        if short:
            # Surfaced, not silent: the CLI prints these; the Python API logs them.
            msg = (
                f"{len(short)} note(s) got fewer than budget={budget} users (only {min(map(len, rows))} "
                f"eligible candidates; first: {short[0]!r})"
            )
            table.attrs["warnings"] = [msg]
            _log.warning("new notes: %s", msg)
        return table
