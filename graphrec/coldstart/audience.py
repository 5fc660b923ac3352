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

import copy
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec._validation import check_int
from graphrec.coldstart.features import Boosts, Candidates, UserFeatures
from graphrec.coldstart.lookalike import LookalikeConfig, LookalikeExpander
from graphrec.coldstart.seeds import SeedRanker
from graphrec.exceptions import InvalidParameterError, NotFittedError, SchemaError
from graphrec.graph.side_info import SideInfo
from graphrec.index import Bundle
from graphrec.index.encoder import NoteEncoder
from graphrec.io.ids import IdMap

__all__ = ["ColdStart"]

_log = logging.getLogger(__name__)

#: The default parameters (frozen, so one shared instance is safe).
DEFAULT_BOOSTS = Boosts()
DEFAULT_LOOKALIKE = LookalikeConfig()


class ColdStart:
    """Seed selection and look-alike expansion for new notes (see the module docstring).

    A small facade over three parts that :meth:`fit` builds: :class:`~graphrec.coldstart.features.UserFeatures`
    (per-user state), a :class:`~graphrec.coldstart.seeds.SeedRanker` (round 1) and a
    :class:`~graphrec.coldstart.lookalike.LookalikeExpander` (later rounds). It follows the
    estimator conventions of :mod:`graphrec.model.base`: parameters are stored as given and checked
    in :meth:`fit`, fitted state ends in ``_``. :meth:`with_params` gives a copy with other
    parameters that shares the fitted state (how the tuners' results are applied).

    Parameters
    ----------
    boosts : Boosts
        Weights of the seed features.
    lookalike : LookalikeConfig
        Weights of the look-alike score.
    candidates : int
        Users taken from the user index per note (plus author and tag candidates).
    """

    def __init__(
        self, *, boosts: Boosts = DEFAULT_BOOSTS, lookalike: LookalikeConfig = DEFAULT_LOOKALIKE, candidates: int = 1000
    ) -> None:
        self.boosts = boosts
        self.lookalike = lookalike
        self.candidates = candidates

    def fit(
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
    ) -> ColdStart:
        """Compute the user features and build the user indexes; returns ``self``.

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
        """
        if not isinstance(self.boosts, Boosts) or not isinstance(self.lookalike, LookalikeConfig):
            raise InvalidParameterError("`boosts` must be a Boosts and `lookalike` a LookalikeConfig")
        n_users = len(user_ids)
        if np.shape(user_embeddings)[0] != n_users:
            raise InvalidParameterError(f"user_embeddings has {np.shape(user_embeddings)[0]} rows; {n_users} user ids")
        self.user_ids_, self.tag_ids_, self.note_ids_, self.encoder_ = user_ids, tag_ids, note_ids, encoder
        self.features_ = UserFeatures.build(user_embeddings, history, note_tags=note_tags, authored=authored)
        self.seed_ranker_ = SeedRanker(self.features_, candidates=self.candidates)
        self.expander_ = LookalikeExpander(self.features_)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "expander_"):
            raise NotFittedError("ColdStart is not fitted; call fit(...) or build it with ColdStart.from_bundle")

    def with_params(self, *, boosts: Boosts | None = None, lookalike: LookalikeConfig | None = None) -> ColdStart:
        """A copy with other parameters, sharing this one's fitted features and indexes."""
        other = copy.copy(self)
        if boosts is not None:
            other.boosts = boosts
        if lookalike is not None:
            other.lookalike = lookalike
        return other

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
        return cls(**options).fit(
            user_ids=bundle.ids["user"],
            user_embeddings=bundle.embeddings["user"],
            history=bundle.history,
            encoder=bundle.encoder,
            tag_ids=bundle.ids.get("tag"),
            note_tags=bundle.note_tags,
            authored=bundle.authored,
            note_ids=bundle.ids["note"],
        )

    # ---- rounds ---------------------------------------------------------------------------

    def candidate_features(self, side: SideInfo, embeddings: np.ndarray | None = None) -> list[Candidates]:
        """Candidates and their feature matrices for each note of ``side`` (see the module docstring)."""
        self._check_fitted()
        return self.seed_ranker_.candidate_features(side, self.encoder_(side) if embeddings is None else embeddings)

    def seeds(
        self, side: SideInfo, budget: int, *, boosts: Boosts | None = None
    ) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """Round 1 per note: ``(user indices, scores, fallback)``, ``budget`` users each."""
        budget = check_int("budget", budget, minimum=1)
        candidates = self.candidate_features(side)  # raises NotFittedError before fit
        return self.seed_ranker_.rank(candidates, boosts or self.boosts, budget)

    def expand(self, *args: Any, **options: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        """The next users for one note: :meth:`LookalikeExpander.expand` (``note_embedding,
        positives, exposed, budget, seed_candidates=``) with this ColdStart's ``lookalike`` config
        and its ``boosts`` unless ``boosts=`` is given."""
        options.setdefault("config", self.lookalike)
        if options.get("boosts") is None:
            options["boosts"] = self.boosts
        self._check_fitted()
        return self.expander_.expand(*args, **options)

    # ---- table API ----------------------------------------------------------------------------

    def side_info(
        self,
        notes: pd.DataFrame,
        *,
        text_cache: str | os.PathLike[str] | None = None,
        text_vectors: np.ndarray | None = None,
    ) -> tuple[SideInfo, dict[str, int]]:
        """Side-info of a new-notes table (validated by :func:`graphrec.io.validate_notes`).

        Text vectors are computed (all-MiniLM-L6-v2, needs ``graphrec[text]``) only when the
        encoder was trained with text and ``text_vectors`` (precomputed, one row per note) are not
        given. Returns the side-info and counts of unknown tags/authors.
        """
        from graphrec.graph.side_info import side_info_for_encoder

        self._check_fitted()
        return side_info_for_encoder(
            notes,
            self.encoder_,
            users=self.user_ids_,
            tags=self.tag_ids_,
            text_cache=text_cache,
            text_vectors=text_vectors,
        )

    def plan(
        self,
        notes: pd.DataFrame,
        budget: int,
        *,
        text_cache: str | os.PathLike[str] | None = None,
        text_vectors: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Round-1 audience of each new note: rows ``note_id, user_id, score, round, fallback``.

        ``fallback`` is True for notes without usable side-info (see the module docstring);
        ``text_vectors`` as in :meth:`side_info`.
        """
        if "note_id" not in notes.columns:
            raise SchemaError("new notes: missing column 'note_id'")
        budget = check_int("budget", budget, minimum=1)
        self._check_fitted()
        note_ids = self.note_ids_
        if note_ids is not None and len(notes):
            warm = notes["note_id"].to_numpy()[note_ids.index(notes["note_id"], missing="ignore") >= 0]
            if warm.size:
                shown = ", ".join(map(repr, warm[:3].tolist())) + (", ..." if warm.size > 3 else "")
                raise InvalidParameterError(
                    f"new notes: {warm.size} note id(s) are already trained notes ({shown}); cold start plans "
                    f"audiences for new notes only - recall serves trained ones"
                )
        side, stats = self.side_info(notes, text_cache=text_cache, text_vectors=text_vectors)
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
                        "user_id": self.user_ids_.ids[users],
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
