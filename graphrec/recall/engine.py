"""The recall engine: multi-channel candidate generation over a serving bundle.

Channels
--------
* ``"embedding"``: ANN search of the user's embedding over the note index (the GNN channel; any
  embedding model's vectors serve). With ``popularity_penalty = p > 0`` the channel fetches
  twice as many notes. It ranks them by ``s - p * log1p(pop) / log1p(max pop)``, where ``s`` is
  the inner product min-max scaled over the fetched notes: popular notes must beat the tail by
  a margin, which lets good long-tail notes in. ``popularity_penalty_scaling = "niche"`` scales
  p per user by how niche the user's history is: ``p_u = p * niche_u / mean niche``, where
  ``niche_u`` is one minus the mean scaled log-popularity ``log1p(pop) / log1p(max pop)`` of
  the notes in the user's history (the bundle's and the request's), and the mean is over the
  bundle's users with a history (users without history get ``p``). Users who already reach for
  the tail are pushed further there; users who live in the head keep most of what they came
  for, so the same recall loss buys more tail exposure. ``popularity_basis = "exposure"`` makes
  the penalty count *predicted exposure* instead of training engagements: ``pop`` becomes the
  number of users the channel would show the note to without this penalty, in their top
  ``exposure_depth`` notes (the norm penalty applied, seen notes excluded). The count runs once
  per engine, on first use, over a seeded sample of at most ``exposure_sample`` of the bundle's
  users (one batch recall: O(sample)); live updates keep it by note id, and new notes start at
  0. A note is penalised for the share of the feed the model would hand it, not for past
  engagements: a mid-popularity note that tops many users' lists (a hub of the embedding space)
  is pushed down, and a popular note that few lists reach is left alone, so more distinct notes
  get shown for the same recall. ``niche_u`` stays on training popularity (it describes the
  user's history). With ``norm_penalty = b > 0`` it ranks the
  fetched notes by ``u . n / |n| ** b`` before that (b = 1: by cosine). A dot-product model
  gives the notes it sees most the largest norms, so the norm carries popularity learned by the
  model rather than raw counts: b moves the channel to notes whose *direction* fits the user.
  The channel fetches twice as many notes here too. It re-ranks what the ANN returns by inner
  product. Unit-norm embeddings (``similarity="cosine"``) make ``b`` a no-op.
* ``"swing"``: the Swing neighbours of the user's most recent notes (``recent_history`` of them,
  the most recent weighted most: weight ``recency_decay ** rank``).
* ``"tag"``: notes carrying the user's favourite tags (tag shares over the recent history),
  popular ones first.
* ``"popular"``: training popularity; the fallback for users the bundle does not know (their
  rows use it even when its weight is 0).
* ``"interest"`` (off by default: weight 0): multi-interest retrieval. The user's top
  ``interests_per_user`` interests come from clustering the notes (``n_interests``), and each
  gets its own ANN search. The results are interleaved, so minor interests are not drowned by
  the major one (:mod:`graphrec.recall.interests`). A quota protects these slots in the merge.
* ``"explore"`` (off by default: weight 0): ANN search around the user's query vector plus
  Gaussian noise, an evolution-strategy style perturbation. The noise has a per-dimension
  standard deviation of ``explore_sigma * |q| / sqrt(dim)``. Notes the embedding channel already
  proposes are left out, so the channel reaches what lies just outside the usual neighbourhood.
  The noise is seeded by ``explore_seed`` and the user id, so a user gets the same exploration
  on every call until the seed changes (rotate it, e.g. daily, to move on). A quota
  (``quotas={"explore": 0.1}``) protects these candidates in the merge.

Merging
-------
Each channel proposes ``candidates_factor * k`` notes. Within a channel a note's rank becomes a
score ``1 - rank / n_candidates`` (best = 1), so channels on different scales mix fairly; a note's
merged score is the weighted sum over the channels that proposed it (``weights``), and its
reported channel is the one that contributed most. ``quotas`` reserve a minimum share of the ``k``
slots for a channel's own best candidates. Seen notes are removed before merging
(``exclude_seen``). Ties go to the smaller note index, so results are deterministic and a user's
row never depends on the rest of the batch. A channel with weight 0 is not computed at all.

Diversity
---------
``diversity="dpp"`` or ``"ssd"`` (:mod:`graphrec.recall.diversity`) re-ranks the merged pool: about
the best ``(candidates_factor + 1) * k`` notes by merged score that the quotas did not already
place (the top ``(candidates_factor + 1) * k + quota slots``, less the quota notes). The slots
left are filled by DPP greedy MAP or by SSD over the notes' embeddings, trading merged score for
diversity with ``diversity_weight``. SSD uses a sliding window of ``diversity_window`` notes.
The chosen notes are then returned in merged-score order, like any recall.

Request-time history
--------------------
``recall(..., history=[[note ids], ...])`` gives each query recent notes (oldest first, as a log
reads) that the bundle has not seen: a known user's clicks since the build, or the first clicks of
a user the bundle does not know. They count as the most recent part of the user's history in every
channel: Swing and tag profiles use them (most recent first), they are excluded as seen, and the
embedding channel folds them in. The fold-in is the recency-weighted mean of the history notes'
embeddings, ``h = sum_j w_j e_j / sum_j w_j`` with ``w_j = recency_decay ** rank``: a LightGCN
user's first-layer representation is the (normalised) sum of its notes' embeddings, and the final
user embedding scores those notes high, so ``h`` ranks notes as that user would. An unknown user's
query is ``h``; a known user's is ``u / |u| + history_weight * h / |h|``. Unknown note ids in the
history are ignored and counted (``unknown_history``); a user with usable history is not a
fallback row.

Results have one shape everywhere: ``ids``, ``scores``, ``channels`` of shape ``(n_queries, k)``,
short rows padded with :attr:`RecallEngine.sentinel` (``-1`` for integer note ids, ``""`` for
text ids), ``-inf`` and ``""``. Unknown users are not errors: they get the popularity channel and
``fallback`` is True on their row. The engine is read-only after loading, so one instance can be
shared by threads.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec._progress import progress
from graphrec._topk import topk
from graphrec._validation import check_choice, check_float, check_int
from graphrec.exceptions import InvalidParameterError
from graphrec.index.bundle import Bundle, load_bundle
from graphrec.io.ids import MAX_ID_LENGTH, as_text
from graphrec.recall.diversity import dpp_rerank, ssd_rerank
from graphrec.recall.interests import NoteInterests, round_robin, user_interests

__all__ = ["CHANNELS", "ChannelConfig", "RecallEngine", "RecallResult", "fold_in"]

CHANNELS = ("embedding", "swing", "tag", "popular", "interest", "explore")
DIVERSITY = ("none", "dpp", "ssd")
PENALTY_SCALING = ("uniform", "niche")
POPULARITY_BASIS = ("engagements", "exposure")


@dataclass(frozen=True)
class ChannelConfig:
    """How channels are weighted and merged (see the module docstring)."""

    weights: Mapping[str, float] = field(
        default_factory=lambda: {"embedding": 1.0, "swing": 0.7, "tag": 0.3, "popular": 0.1}
    )
    quotas: Mapping[str, float] = field(default_factory=dict)
    candidates_factor: int = 3
    recent_history: int = 20
    recency_decay: float = 0.9
    seen_cap: int = 500
    #: Weight of request-time history in a known user's query vector (see "Request-time history").
    history_weight: float = 1.0
    #: Popularity penalty of the embedding channel (see "Channels"); 0 = none.
    popularity_penalty: float = 0.0
    #: "uniform" (every user gets ``popularity_penalty``) or "niche" (scaled per user by how
    #: niche their history is; see "Channels").
    popularity_penalty_scaling: str = "uniform"
    #: What the popularity penalty counts: "engagements" (training popularity) or "exposure"
    #: (how many users the unpenalised channel would show the note to; see "Channels").
    popularity_basis: str = "engagements"
    #: List length and user sample of the exposure count (``popularity_basis="exposure"``).
    exposure_depth: int = 50
    exposure_sample: int = 100_000
    #: Norm penalty exponent of the embedding channel (see "Channels"); 0 = none, 1 = cosine.
    norm_penalty: float = 0.0
    #: Global interests (note clusters) and interests kept per user (see "Channels").
    n_interests: int = 32
    interests_per_user: int = 3
    #: Relative noise of the exploration channel and its seed (see "Channels").
    explore_sigma: float = 0.5
    explore_seed: int = 0
    #: Diversity re-ranking of the merged pool (see "Diversity").
    diversity: str = "none"
    diversity_weight: float = 0.5
    diversity_window: int = 10

    def __post_init__(self) -> None:
        # Raise InvalidParameterError on unknown channels or bad numbers.
        for name, table in (("weights", self.weights), ("quotas", self.quotas)):
            unknown = sorted(set(table) - set(CHANNELS))
            if unknown:
                raise InvalidParameterError(
                    f"`{name}` names unknown channel(s) {unknown}; channels are {list(CHANNELS)}"
                )
            for c, v in table.items():
                check_float(f"{name}[{c!r}]", v, minimum=0.0, maximum=None if name == "weights" else 1.0)
        no_weight = sorted(c for c, q in self.quotas.items() if q > 0 and not self.weights.get(c, 0.0))
        if no_weight:
            raise InvalidParameterError(f"`quotas` for channel(s) {no_weight} need a weight > 0 in `weights`")
        if sum(self.quotas.values()) > 1.0:
            raise InvalidParameterError(
                f"`quotas` add up to {sum(self.quotas.values())}; they must add up to at most 1"
            )
        check_int("candidates_factor", self.candidates_factor, minimum=1)
        check_int("recent_history", self.recent_history, minimum=1)
        check_int("seen_cap", self.seen_cap, minimum=0)
        check_float("recency_decay", self.recency_decay, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        check_float("history_weight", self.history_weight, minimum=0.0)
        check_float("popularity_penalty", self.popularity_penalty, minimum=0.0)
        check_choice("popularity_penalty_scaling", self.popularity_penalty_scaling, PENALTY_SCALING)
        check_choice("popularity_basis", self.popularity_basis, POPULARITY_BASIS)
        _check_k(self.exposure_depth, "exposure_depth")  # the k of the plain recall that counts exposure
        check_int("exposure_sample", self.exposure_sample, minimum=1)
        check_float("norm_penalty", self.norm_penalty, minimum=0.0, maximum=1.0)
        check_int("n_interests", self.n_interests, minimum=1)
        check_int("interests_per_user", self.interests_per_user, minimum=1)
        check_float("explore_sigma", self.explore_sigma, minimum=0.0)
        check_int("explore_seed", self.explore_seed, minimum=0)
        check_choice("diversity", self.diversity, DIVERSITY)
        check_float("diversity_weight", self.diversity_weight, minimum=0.0)
        check_int("diversity_window", self.diversity_window, minimum=2)


@dataclass(frozen=True)
class RecallResult:
    """Recall output: arrays of shape ``(n_queries, k)`` (``fallback``, ``unknown_history``:
    ``(n_queries,)``; the latter counts request-time history ids the bundle does not know)."""

    ids: np.ndarray
    scores: np.ndarray
    channels: np.ndarray
    fallback: np.ndarray
    unknown_history: np.ndarray | None = None


#: Largest ``k`` a query may ask for (a recall stage feeds a ranker a few thousand candidates at most).
MAX_K = 10_000


def _in_sorted(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_unique)`` for a sorted array of distinct values (a user's seen
    notes): one binary search per value, without the sort ``np.isin`` pays on every call."""
    if sorted_unique.size == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_unique, values), sorted_unique.size - 1)
    return sorted_unique[pos] == values


def _log_scaled(counts: np.ndarray) -> np.ndarray:
    """``log1p(count) / log1p(max count)`` per note, in [0, 1] (all 0 when every count is 0):
    the popularity a penalty multiplies, whichever basis counts it."""
    log_count = np.log1p(np.maximum(np.asarray(counts, dtype=np.float64), 0.0))
    return log_count / max(float(log_count.max(initial=0.0)), 1e-12)


def _check_k(k: Any, name: str = "k") -> int:
    k = check_int(name, k, minimum=1)
    if k > MAX_K:
        raise InvalidParameterError(f"`{name}` must be at most {MAX_K:,}; got {k:,}")
    return k


def _as_id_list(values: Any, what: str) -> np.ndarray:
    """Query ids as int64 or an object array of trimmed text (never fixed-width unicode, whose
    memory is ids x longest id: one long id in a batch would blow it up)."""
    if isinstance(values, str | bytes | int | np.integer):
        values = [values]
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        if values.ndim != 1:
            raise InvalidParameterError(f"{what} must be one-dimensional; got shape {values.shape}")
        return values.astype(np.int64)
    try:
        items = list(values)
    except TypeError:
        raise InvalidParameterError(f"{what} must be a sequence of ids; got {type(values).__name__}") from None
    if not all(isinstance(v, str | int | np.integer) and not isinstance(v, bool) for v in items):
        bad = next(v for v in items if not isinstance(v, str | int | np.integer) or isinstance(v, bool))
        raise InvalidParameterError(f"{what} must be integers or strings; got {type(bad).__name__} {bad!r:.40}")
    if all(isinstance(v, int | np.integer) for v in items):
        return np.asarray(items, dtype=np.int64)
    # The rule files follow (graphrec.io.ids): trimmed text, at most MAX_ID_LENGTH characters.
    items = [v.strip() if isinstance(v, str) else str(v) for v in items]
    long = [i for i, v in enumerate(items) if len(v) > MAX_ID_LENGTH]
    if long:
        raise InvalidParameterError(
            f"{what}[{long[0]}] is {len(items[long[0]]):,} characters long; ids may have at most {MAX_ID_LENGTH}"
        )
    return as_text(items)


def fold_in(history: sp.spmatrix, note_embeddings: np.ndarray, config: ChannelConfig | None = None) -> np.ndarray:
    """User vectors folded in from their histories by the request-time rule (module docstring).

    Each user's ``config.recent_history`` most recent notes (larger ``history`` value = more
    recent; ties by note index) are weighted ``recency_decay ** rank`` and averaged over
    ``note_embeddings``. Users without history get a zero row. This is how a model that learns
    only note embeddings (PinSAGE, item2vec) gets the user table a bundle needs, and it equals
    the query an unknown user with the same notes as request-time history gets.
    """
    cfg = config or ChannelConfig()
    h = sp.csr_matrix(history)
    emb = np.asarray(note_embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != h.shape[1]:
        raise InvalidParameterError(f"note_embeddings have shape {emb.shape}; expected ({h.shape[1]}, dim)")
    rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
    order = np.lexsort((h.indices, -h.data, rows))
    rank = np.arange(h.nnz) - h.indptr[rows[order]]
    recent = rank < cfg.recent_history
    keep = order[recent]
    weights = cfg.recency_decay ** rank[recent]
    w = sp.csr_matrix((weights, (rows[keep], h.indices[keep])), shape=h.shape)
    total = np.asarray(w.sum(axis=1)).ravel()
    out = np.asarray(w @ emb.astype(np.float64)) / np.maximum(total, 1e-300)[:, None]
    return out.astype(np.float32)


class RecallEngine:
    """Recall over a loaded :class:`graphrec.index.Bundle`.

    Examples
    --------
    >>> engine = RecallEngine.load("artifacts/demo/bundle")  # doctest: +SKIP
    >>> res = engine.recall(["u1", "u2"], k=10)  # doctest: +SKIP
    >>> res.ids.shape, res.channels[0, 0]  # doctest: +SKIP
    ((2, 10), 'embedding')
    """

    def __init__(
        self, bundle: Bundle, config: ChannelConfig | None = None, *, delta: Mapping[str, np.ndarray] | None = None
    ) -> None:
        self.bundle = bundle
        self.config = config or ChannelConfig()
        #: Events since the bundle was built, per user id (note indices, oldest first); see
        #: :mod:`graphrec.recall.live`. Served like request-time history.
        self.delta: dict[str, np.ndarray] = dict(bundle.delta if delta is None else delta)
        #: Counts of the update that made this engine (``add_notes``/``update``/``remove_notes``).
        self.last_update: dict[str, int] = {}
        self._users = bundle.ids["user"]
        self._notes = bundle.ids["note"]
        self.sentinel: Any = -1 if self._notes.is_int else ""
        self._history = bundle.history.tocsr()
        self._history.sort_indices()
        self._pop_order, _ = topk(bundle.popularity.astype(np.float64), len(self._notes))
        self._popularity_boost = 1.0 + np.log1p(bundle.popularity.astype(np.float64))
        self._popularity_scaled = _log_scaled(bundle.popularity)
        self._mean_niche = self._bundle_mean_niche() if self._scales_by_niche else 1.0
        self._note_norm = (
            np.linalg.norm(bundle.embeddings["note"].astype(np.float64), axis=1)
            if self.config.norm_penalty > 0
            else None
        )
        self._max_seen = int(min(np.diff(self._history.indptr).max(initial=0), self.config.seen_cap))
        self._interests: NoteInterests | None = None
        self._interests_lock = threading.Lock()
        #: Predicted exposure per note (``popularity_basis="exposure"``): counted on first use.
        self._exposure: np.ndarray | None = None
        self._exposure_scaled: np.ndarray | None = None
        self._exposure_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | os.PathLike[str], config: ChannelConfig | None = None) -> RecallEngine:
        """Load and verify the bundle at ``path``."""
        return cls(load_bundle(path), config)

    @property
    def history_csr(self) -> sp.csr_matrix:
        """The bundle's user x note history (sorted CSR; values = recency)."""
        return self._history

    def derive(self, bundle: Bundle, delta: Mapping[str, np.ndarray]) -> RecallEngine:
        """A new engine over ``bundle`` with ``delta``, sharing this one's channel configuration.

        A predicted exposure already counted carries over by note id (new notes start at 0), and
        interest clusters carry over while the note embeddings are the same array (events only)."""
        new = RecallEngine(bundle, self.config, delta=delta)
        if self._interests is not None and bundle.embeddings["note"] is self.bundle.embeddings["note"]:
            new._interests = self._interests
        if self._exposure is not None:
            pos = new._notes.index(self._notes.ids, missing="ignore")
            counts = np.zeros(len(new._notes))
            counts[pos[pos >= 0]] = self._exposure[pos >= 0]
            new._set_exposure(counts)
        return new

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write this engine, live updates included, as a bundle at ``path`` (atomically; the same
        directory it was loaded from is fine): new notes, popularity and the events kept since
        training (``delta.npz``), so a restart loses nothing."""
        from graphrec.index import write_bundle

        b = self.bundle
        return write_bundle(
            path,
            ids=b.ids,
            embeddings=b.embeddings,
            history=self._history,
            popularity=b.popularity,
            similar=b.similar,
            note_tags=b.note_tags,
            authored=b.authored,
            encoder=b.encoder,
            delta=self.delta,
            index_params={t: ix.params for t, ix in b.indexes.items()},
            config={**b.manifest.get("config", {}), "live_updates": {"users_with_events": len(self.delta)}},
        )

    def add_notes(self, notes: Any, *, text_vectors: Any = None) -> RecallEngine:
        """A new engine in which ``notes`` (a side-info table) are recallable (:mod:`graphrec.recall.live`).

        ``text_vectors``: the notes' text vectors, precomputed with
        :func:`graphrec.graph.note_text_vectors` (one row per note, in table order); without them a
        bundle whose encoder uses text runs the text model here."""
        from graphrec.recall.live import add_notes

        engine, counts = add_notes(self, notes, text_vectors)
        engine.last_update = counts
        return engine

    def remove_notes(self, note_ids: Any) -> RecallEngine:
        """A new engine without ``note_ids`` (:mod:`graphrec.recall.live`)."""
        from graphrec.recall.live import remove_notes

        engine, counts = remove_notes(self, note_ids)
        engine.last_update = counts
        return engine

    def update(self, interactions: Any) -> RecallEngine:
        """A new engine with ``interactions`` (an interaction table) applied (:mod:`graphrec.recall.live`)."""
        from graphrec.recall.live import update

        engine, counts = update(self, interactions)
        engine.last_update = counts
        return engine

    def scorer(self, user_ids: Any, k: int) -> Callable[[np.ndarray], np.ndarray]:
        """This engine's top-``k`` recall as a :mod:`graphrec.evaluate` scorer: row ``r`` of a batch
        ``users`` scores the notes recalled for ``user_ids[users[r]]`` by rank (the first recalled
        note highest, ``-inf`` for notes not recalled), over this bundle's note indices."""
        ids = np.asarray(user_ids)
        n_notes = len(self._notes)

        def score(users: np.ndarray) -> np.ndarray:
            res = self.recall(list(ids[users]), k=k)
            out = np.full((len(users), n_notes), -np.inf, dtype=np.float32)
            for r in range(len(users)):
                valid = np.isfinite(res.scores[r])
                out[r, self._notes.index(res.ids[r][valid])] = np.arange(int(valid.sum()), 0, -1)
            return out

        return score

    def known_users(self) -> np.ndarray:
        """External ids of the users in the bundle."""
        return self._users.ids

    # -- channels (per user; return note indices and scores, best first) -----------------
    def _recent(self, u: int, given: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The user's recent notes, most recent first (``given`` before the bundle's), and weights."""
        parts = [given[::-1]]
        if u >= 0:
            lo, hi = self._history.indptr[u], self._history.indptr[u + 1]
            notes, recency = self._history.indices[lo:hi], self._history.data[lo:hi]
            parts.append(notes[np.lexsort((notes, -recency))])
        merged = np.concatenate(parts).astype(np.int64)
        _, first = np.unique(merged, return_index=True)
        recent = merged[np.sort(first)][: self.config.recent_history]
        return recent, self.config.recency_decay ** np.arange(recent.size)

    @staticmethod
    def _profile(recent: tuple[np.ndarray, np.ndarray], matrix: sp.csr_matrix | None) -> np.ndarray | None:
        """Recency-weighted sum of ``matrix``'s rows for the recent notes (None if there are none)."""
        notes, w = recent
        if matrix is None or notes.size == 0:
            return None
        return (sp.csr_matrix(w[None, :]) @ matrix[notes]).toarray().ravel()

    def _swing(self, recent: tuple[np.ndarray, np.ndarray], n: int, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self._profile(recent, self.bundle.similar)
        if scores is None:
            return np.empty(0, dtype=np.int64), np.empty(0)
        scores[scores <= 0] = -np.inf
        scores[seen] = -np.inf
        return topk(scores, n)

    def _tag(self, recent: tuple[np.ndarray, np.ndarray], n: int, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nt = self.bundle.note_tags
        interest = self._profile(recent, nt)
        if nt is None or interest is None or interest.sum() <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        scores = (nt @ (interest / interest.sum())) * self._popularity_boost
        scores = np.where(scores > 0, scores, -np.inf)
        scores[seen] = -np.inf
        return topk(scores, n)

    def _query_vector(self, u: int, given: np.ndarray) -> np.ndarray | None:
        """The embedding channel's query for a user (see "Request-time history"), or None."""
        emb = self.bundle.embeddings
        if given.size == 0:
            return emb["user"][u] if u >= 0 else None
        recent = given[::-1][: self.config.recent_history]
        w = self.config.recency_decay ** np.arange(recent.size)
        h = (w[:, None] * emb["note"][recent].astype(np.float64)).sum(axis=0) / w.sum()
        if u < 0:
            return h.astype(np.float32)
        user = emb["user"][u].astype(np.float64)
        unit = lambda v: v / max(float(np.linalg.norm(v)), 1e-12)  # noqa: E731
        return (unit(user) + self.config.history_weight * unit(h)).astype(np.float32)

    def _note_interests(self) -> NoteInterests:
        """The global interests (note clusters) of the ``"interest"`` channel, clustered on first use."""
        if self._interests is None:
            with self._interests_lock:  # clustered once; the engine is shared by threads
                if self._interests is None:
                    self._interests = NoteInterests(self.bundle.embeddings["note"], self.config.n_interests)
        return self._interests

    def _interest(
        self, recent: tuple[np.ndarray, np.ndarray], n: int, seen: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Round-robin over ANN searches for each of the user's top interests (see "Channels")."""
        queries = user_interests(self._note_interests(), recent[0], recent[1], self.config.interests_per_user)
        if not queries:
            return np.empty(0, dtype=np.int64), np.empty(0)
        fetch = min(n + seen.size, len(self._notes))
        found, _ = self.bundle.indexes["note"].search(np.stack(queries), fetch)
        lists = [row[(row >= 0) & ~_in_sorted(row, seen)] for row in found]
        picked = round_robin(lists, n)
        return picked, np.zeros(picked.size)

    def _bundle_mean_niche(self) -> float:
        """Mean over the bundle's users with a history of ``niche_u`` (see "Channels"): O(history)."""
        hist = self._history
        counts = np.diff(hist.indptr)
        if not counts.any():
            return 1.0
        sums = np.add.reduceat(self._popularity_scaled[hist.indices], hist.indptr[:-1][counts > 0])
        return float(np.mean(1.0 - sums / counts[counts > 0]))

    @property
    def _scales_by_niche(self) -> bool:
        """Whether each user's popularity penalty depends on their history (see "Channels")."""
        return self.config.popularity_penalty > 0 and self.config.popularity_penalty_scaling == "niche"

    def _engaged(self, u: int, given: np.ndarray) -> np.ndarray:
        """The notes of user row ``u`` (-1: unknown): the bundle's history and ``given``, sorted."""
        stored = self._history.indices[self._history.indptr[u] : self._history.indptr[u + 1]] if u >= 0 else given[:0]
        return np.union1d(stored, given).astype(np.int64)

    def _user_penalty(self, engaged: np.ndarray | None) -> float:
        """The popularity penalty of a user whose notes are ``engaged`` (needed when scaled by niche)."""
        p = self.config.popularity_penalty
        if not self._scales_by_niche or engaged is None or engaged.size == 0 or self._mean_niche <= 1e-12:
            return p
        return p * (1.0 - float(self._popularity_scaled[engaged].mean())) / self._mean_niche

    def warm(self) -> RecallEngine:
        """Compute now the state this configuration builds on first use, so that no request pays
        for it: the interest clusters (``"interest"`` channel on) and the predicted exposure
        (``popularity_basis="exposure"`` with a penalty). The service warms an engine before
        serving it. Returns ``self``."""
        if self.config.weights.get("interest", 0.0) > 0:
            self._note_interests()
        if self.config.popularity_penalty > 0 and self.config.popularity_basis == "exposure":
            self.predicted_exposure()
        return self

    def predicted_exposure(self) -> np.ndarray:
        """Per note index, how many users of the sample the embedding channel shows the note to
        without the popularity penalty, in their top ``exposure_depth`` (see "Channels"). Counted
        once per engine."""
        if self._exposure is None:
            with self._exposure_lock:  # the engine is shared by threads
                if self._exposure is None:
                    self._set_exposure(self._count_exposure())
        assert self._exposure is not None
        return self._exposure

    def _count_exposure(self) -> np.ndarray:
        cfg = self.config
        users = self._users.ids
        if users.size > cfg.exposure_sample:
            rng = np.random.default_rng(0)
            users = users[np.sort(rng.choice(users.size, cfg.exposure_sample, replace=False))]
        unpenalised = replace(
            cfg, weights={"embedding": 1.0}, quotas={}, candidates_factor=1, popularity_penalty=0.0, diversity="none"
        )
        plain = RecallEngine(self.bundle, unpenalised, delta=self.delta)
        counts = np.zeros(len(self._notes))
        for start in progress(range(0, users.size, 4096), desc="predicted exposure"):
            shown = plain.recall(users[start : start + 4096], cfg.exposure_depth).ids.ravel()
            pos = self._notes.index(shown, missing="ignore")
            counts += np.bincount(pos[pos >= 0], minlength=counts.size)
        return counts

    def _set_exposure(self, counts: np.ndarray) -> None:
        # The scaled array first: a thread that sees ``_exposure`` set finds it ready.
        self._exposure_scaled = _log_scaled(counts)
        self._exposure = counts

    def _penalty_basis(self) -> np.ndarray:
        """Per note, the scaled popularity that the popularity penalty multiplies (see "Channels")."""
        if self.config.popularity_basis == "engagements":
            return self._popularity_scaled
        self.predicted_exposure()
        assert self._exposure_scaled is not None
        return self._exposure_scaled

    def _penalised(self, cand: np.ndarray, sc: np.ndarray, n: int, penalty: float) -> tuple[np.ndarray, np.ndarray]:
        """The embedding channel's ``n`` best, after the norm and popularity penalties (see "Channels")."""
        if not self._reranks_embedding or cand.size == 0:
            return cand[:n], sc[:n]
        if self._note_norm is not None:
            sc = sc / np.maximum(self._note_norm[cand], 1e-12) ** self.config.norm_penalty
        span = max(float(sc.max() - sc.min()), 1e-12)
        adjusted = (sc - sc.min()) / span
        if penalty > 0:
            adjusted = adjusted - penalty * self._penalty_basis()[cand]
        order = np.lexsort((cand, -adjusted))[:n]
        return cand[order], adjusted[order]

    @property
    def _diverse(self) -> bool:
        """Whether the merge's free slots are filled by DPP or SSD (see "Diversity")."""
        return self.config.diversity != "none" and self.config.diversity_weight > 0

    @property
    def _reranks_embedding(self) -> bool:
        """Whether the embedding channel re-ranks a doubled fetch (a norm or popularity penalty)."""
        return self.config.popularity_penalty > 0 or self.config.norm_penalty > 0

    def _explore_query(self, query: np.ndarray, user: Any) -> np.ndarray:
        """``query`` plus seeded Gaussian noise of relative size ``explore_sigma`` (see "Channels")."""
        rng = np.random.default_rng([self.config.explore_seed, zlib.crc32(str(user).encode("utf-8"))])
        scale = self.config.explore_sigma * float(np.linalg.norm(query)) / np.sqrt(query.size)
        return (query + rng.normal(scale=scale, size=query.size)).astype(np.float32)

    def _popular(self, n: int, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = np.ones(len(self._notes), dtype=bool)
        mask[seen] = False
        picked = self._pop_order[mask[self._pop_order]][:n]
        return picked, self.bundle.popularity[picked].astype(np.float64)

    # -- merge ---------------------------------------------------------------------------
    def _merge(
        self, proposals: dict[str, tuple[np.ndarray, np.ndarray]], k: int, *, fallback: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rank-normalised weighted merge (module docstring), vectorised over the candidates. A
        ``fallback`` row has only the popular channel, at its weight, or 1 where that is 0."""
        weights = self.config.weights
        if fallback:
            weights = {"popular": float(weights.get("popular", 0.0)) or 1.0}
        names: list[str] = []
        idx_parts: list[np.ndarray] = []
        contrib_parts: list[np.ndarray] = []
        chan_parts: list[np.ndarray] = []
        for c, (idx, _vals) in proposals.items():
            w = float(weights.get(c, 0.0))
            if idx.size == 0 or w == 0.0:
                continue
            idx_parts.append(np.asarray(idx, dtype=np.int64))
            contrib_parts.append(w * (1.0 - np.arange(idx.size) / idx.size))
            chan_parts.append(np.full(idx.size, len(names)))
            names.append(c)
        if not names:
            return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=object)
        if len(names) == 1 and not self._diverse:
            # One channel: its contributions fall with rank, so its order is the merged order, and
            # a quota (for it: its own best first; for another: nothing to place) changes nothing.
            top = idx_parts[0][:k]
            return top, contrib_parts[0][:k], np.full(top.size, names[0], dtype=object)
        cand, contrib, chan = np.concatenate(idx_parts), np.concatenate(contrib_parts), np.concatenate(chan_parts)
        notes, inv = np.unique(cand, return_inverse=True)
        total = np.bincount(inv, weights=contrib, minlength=notes.size)  # summed in channel order
        # A note's channel: the largest contribution, ties to the earlier channel.
        order = np.lexsort((chan, -contrib, inv))
        head = order[np.r_[True, inv[order][1:] != inv[order][:-1]]]
        best = chan[head]
        ranked = notes[np.lexsort((notes, -total))]
        chosen: list[int] = []
        taken: set[int] = set()
        for c, share in self.config.quotas.items():
            quota = int(np.ceil(share * k))
            for i in proposals.get(c, (np.empty(0, dtype=np.int64), None))[0].tolist():
                if quota == 0:
                    break
                if i not in taken:
                    chosen.append(i)
                    taken.add(i)
                    quota -= 1
        if len(chosen) < k:
            chosen.extend(self._fill(ranked, taken, notes, total, k))
        out = np.array(chosen[:k], dtype=np.int64)
        pos = np.searchsorted(notes, out)
        out_scores = total[pos]
        final = np.lexsort((out, -out_scores))
        return out[final], out_scores[final], np.array(names, dtype=object)[best[pos[final]]]

    def _fill(self, ranked: np.ndarray, taken: set[int], notes: np.ndarray, total: np.ndarray, k: int) -> list[int]:
        """The notes that fill the slots the quotas left, from ``ranked`` (best first) minus ``taken``:
        the best ones, or with diversity on, DPP's or SSD's choice from the pool (see "Diversity")."""
        cfg = self.config
        n = k - len(taken)
        diverse = self._diverse
        head = ranked[: k + len(taken) + (cfg.candidates_factor * k if diverse else 0)].tolist()
        rest = [i for i in head if i not in taken]
        if not diverse or len(rest) <= n:
            return rest[:n]
        pool = np.array(rest, dtype=np.int64)
        quality = total[np.searchsorted(notes, pool)]
        emb = self.bundle.embeddings["note"][pool]
        if cfg.diversity == "dpp":
            pick = dpp_rerank(quality, emb, n, weight=cfg.diversity_weight)
        else:
            pick = ssd_rerank(quality, emb, n, weight=cfg.diversity_weight, window=cfg.diversity_window)
        return pool[pick].tolist()

    # -- public API ----------------------------------------------------------------------
    def recall(
        self,
        user_ids: Sequence[Any] | np.ndarray,
        k: int,
        *,
        history: Sequence[Sequence[Any] | None] | None = None,
        exclude_seen: bool = True,
        channels: Sequence[str] | None = None,
    ) -> RecallResult:
        """Notes for each user: arrays of shape ``(len(user_ids), k)`` (see the module docstring).

        Parameters
        ----------
        user_ids : sequence of ids
            External user ids; unknown ones without history get the popularity fallback.
        k : int > 0
        history : sequence of sequences of note ids, optional
            One per user (or None): notes engaged since the bundle was built, oldest first
            (see "Request-time history").
        exclude_seen : bool
            Drop notes in the user's history (the bundle's and the request's).
        channels : sequence of str, optional
            Channels to use (default: all with a non-zero weight).
        """
        k = _check_k(k)
        users = _as_id_list(user_ids, "user_ids")
        asked = tuple(CHANNELS if channels is None else channels)
        unknown_ch = sorted(set(asked) - set(CHANNELS))
        if unknown_ch:
            raise InvalidParameterError(f"unknown channel(s) {unknown_ch}; channels are {list(CHANNELS)}")
        # A channel without weight adds nothing to the merge (quotas need a weight): not computed.
        active = tuple(c for c in asked if self.config.weights.get(c, 0.0) > 0)
        idx = self._users.index(users, missing="ignore") if users.size else np.empty(0, dtype=np.int64)
        given, unknown_history = self._given(history, users.size)
        if self.delta:  # events since the build come before the request's own history
            for r, user in enumerate(users.tolist()):
                stored = self.delta.get(str(user).strip())
                if stored is not None:
                    given[r] = np.concatenate([stored, given[r]])
        n_cand = self.config.candidates_factor * k
        ids = np.full((users.size, k), self.sentinel, dtype=self._notes.ids.dtype if self._notes.is_int else object)
        scores = np.full((users.size, k), -np.inf, dtype=np.float32)
        chans = np.full((users.size, k), "", dtype=object)
        fallback = np.array([idx[r] < 0 and given[r].size == 0 for r in range(users.size)], dtype=bool)
        queries = {}
        for r in range(users.size):
            q = self._query_vector(int(idx[r]), given[r])
            if q is not None:
                queries[r] = q
        with_vector = list(queries)
        row_of: dict[int, int] = {}
        emb_idx = emb_sc = None
        exploring = "explore" in active
        if ("embedding" in active or exploring) and with_vector:
            extra = max((g.size for g in given), default=0)
            fetch = n_cand * (2 if self._reranks_embedding else 1) + ((self._max_seen + extra) if exclude_seen else 0)
            emb_idx, emb_sc = self.bundle.indexes["note"].search(
                np.stack([queries[r] for r in with_vector]), min(fetch, len(self._notes))
            )
            row_of = {r: j for j, r in enumerate(with_vector)}
        explore_idx = None
        if exploring and with_vector:
            extra = max((g.size for g in given), default=0)
            fetch = 2 * n_cand + ((self._max_seen + extra) if exclude_seen else 0)
            noisy = np.stack([self._explore_query(queries[r], users[r]) for r in with_vector])
            explore_idx, _ = self.bundle.indexes["note"].search(noisy, min(fetch, len(self._notes)))
        uses_recent = any(c in active for c in ("interest", "swing", "tag"))  # the history channels
        for r in range(users.size):
            u = int(idx[r])
            engaged = self._engaged(u, given[r]) if exclude_seen or self._scales_by_niche else None
            seen = engaged if exclude_seen and engaged is not None else np.empty(0, dtype=np.int64)
            proposals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            if fallback[r]:
                proposals["popular"] = self._popular(n_cand, seen)
            else:
                recent = self._recent(u, given[r]) if uses_recent else (given[r][:0], np.empty(0))
                if emb_idx is not None and emb_sc is not None and r in row_of:
                    cand, sc = emb_idx[row_of[r]], emb_sc[row_of[r]]
                    keep = (cand >= 0) & ~_in_sorted(cand, seen)
                    penalty = self._user_penalty(engaged)
                    usual = self._penalised(cand[keep], sc[keep].astype(np.float64), n_cand, penalty)
                    if "embedding" in active:
                        proposals["embedding"] = usual
                    if explore_idx is not None:
                        cand = explore_idx[row_of[r]]
                        cand = cand[(cand >= 0) & ~_in_sorted(cand, seen) & ~np.isin(cand, usual[0])][:n_cand]
                        proposals["explore"] = (cand, np.zeros(cand.size))
                if "interest" in active:
                    proposals["interest"] = self._interest(recent, n_cand, seen)
                if "swing" in active:
                    proposals["swing"] = self._swing(recent, n_cand, seen)
                if "tag" in active:
                    proposals["tag"] = self._tag(recent, n_cand, seen)
                if "popular" in active:
                    proposals["popular"] = self._popular(n_cand, seen)
            picked, merged, which = self._merge(proposals, k, fallback=bool(fallback[r]))
            n = picked.size
            ids[r, :n] = self._notes.ids[picked]
            scores[r, :n] = merged
            chans[r, :n] = which
        return RecallResult(ids, scores, chans, fallback, unknown_history)

    def _given(self, history: Any, n_queries: int) -> tuple[list[np.ndarray], np.ndarray]:
        """Request-time history as note indices per query (known ones, in order) and unknown counts."""
        empty = np.empty(0, dtype=np.int64)
        if history is None:
            return [empty] * n_queries, np.zeros(n_queries, dtype=np.int64)
        if isinstance(history, str | bytes) or len(history) != n_queries:
            raise InvalidParameterError(
                f"`history` must hold one sequence of note ids per user ({n_queries}); got {type(history).__name__}"
                + (f" of length {len(history)}" if hasattr(history, "__len__") else "")
            )
        given, unknown = [], np.zeros(n_queries, dtype=np.int64)
        for r, h in enumerate(history):
            if h is None or len(h) == 0:
                given.append(empty)
                continue
            notes = _as_id_list(h, f"history[{r}]")
            pos = self._notes.index(notes, missing="ignore")
            unknown[r] = int((pos < 0).sum())
            given.append(pos[pos >= 0])
        return given, unknown

    def _ann(self, index_type: str, query_type: str, ids: Any, k: int, *, exclude_self: bool) -> RecallResult:
        k = _check_k(k)
        q = _as_id_list(ids, f"{query_type}_ids")
        qmap, rmap = self.bundle.ids[query_type], self.bundle.ids[index_type]
        rows = qmap.index(q, missing="ignore") if q.size else np.empty(0, dtype=np.int64)
        sentinel: Any = -1 if rmap.is_int else ""
        out_ids = np.full((q.size, k), sentinel, dtype=rmap.ids.dtype if rmap.is_int else object)
        out_sc = np.full((q.size, k), -np.inf, dtype=np.float32)
        chans = np.full((q.size, k), "", dtype=object)
        known = np.flatnonzero(rows >= 0)
        if known.size:
            found, sc = self.bundle.indexes[index_type].search(
                self.bundle.embeddings[query_type][rows[known]], k + int(exclude_self)
            )
            for j, r in enumerate(known):
                keep = found[j] >= 0
                if exclude_self:
                    keep &= found[j] != rows[r]
                f, s = found[j][keep][:k], sc[j][keep][:k]
                out_ids[r, : f.size] = rmap.ids[f]
                out_sc[r, : f.size] = s
                chans[r, : f.size] = "embedding"
        return RecallResult(out_ids, out_sc, chans, rows < 0)

    def similar_notes(self, note_ids: Sequence[Any] | np.ndarray, k: int) -> RecallResult:
        """Notes like each note (ANN over note embeddings, the note itself excluded)."""
        return self._ann("note", "note", note_ids, k, exclude_self=True)

    def audience(self, note_ids: Sequence[Any] | np.ndarray, k: int) -> RecallResult:
        """Users for each note (ANN of the note's embedding over user embeddings)."""
        return self._ann("user", "note", note_ids, k, exclude_self=False)
