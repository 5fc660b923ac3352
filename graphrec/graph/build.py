"""Build the heterogeneous graph from validated interactions and side-info.

Node sets
---------
* ``user``: every user in the interactions, plus note authors and users from user side-info
  (on a UGC platform creators are users, so authors share the user id space).
* ``note``: every note in the interactions or the note side-info (notes with side-info but no
  interactions, e.g. held-out cold notes, are nodes with no engagement edges).
* ``tag``: every tag in the note side-info.

Relations
---------
* ``("user", "engages", "note")``: weight = sum over the pair's events of the event type's weight
  (:data:`graphrec.io.DEFAULT_EVENT_WEIGHTS` by default), then ``weighting`` is applied:
  ``"sum"`` keeps it, ``"log1p"`` damps repeats as ``log(1 + w)``, ``"binary"`` makes every
  engaged pair 1. Pairs whose summed weight is 0 (impressions only) are not edges.
* ``("note", "has_tag", "tag")``: weight 1.
* ``("user", "authored", "note")``: weight 1, for notes with a known author.

Every relation has a derived reverse (``rev_engages`` ...). Apply the duplicate rule
(:func:`graphrec.io.collapse_duplicates`) before building: :func:`graphrec.io.read_interactions`
and :func:`graphrec.io.validate_interactions` do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec._validation import check_choice
from graphrec.exceptions import InvalidParameterError, SchemaError
from graphrec.graph.hetero import HeteroGraph
from graphrec.io.ids import IdMap, as_text
from graphrec.io.interactions import DEFAULT_EVENT_WEIGHTS, engaged_mask, normalise_event_name

__all__ = ["AUTHORED", "ENGAGES", "HAS_TAG", "SIMILAR", "build_graph", "pair_matrix", "recency_matrix"]

ENGAGES = ("user", "engages", "note")
HAS_TAG = ("note", "has_tag", "tag")
AUTHORED = ("user", "authored", "note")
#: Slot for the note–note similarity relation the weights step adds (Swing, ItemCF).
SIMILAR = ("note", "similar", "note")


def _as_array(values: Any) -> np.ndarray:
    arr = values.to_numpy() if isinstance(values, pd.Series | pd.Index) else np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    return as_text(arr)


def _encode(main: np.ndarray, *extras: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], IdMap]:
    """Codes of ``main`` and ``extras`` in one sorted id space, and its IdMap."""
    parts = [main, *extras]
    if any(p.dtype.kind not in "iu" for p in parts):
        parts = [as_text(p) for p in parts]
    sizes = [p.size for p in parts]
    allv = np.concatenate(parts) if len(parts) > 1 else parts[0]
    codes, uniques = pd.factorize(allv, sort=True)
    codes = codes.astype(np.int32 if len(uniques) < 2**31 else np.int64)
    bounds = np.cumsum([0, *sizes])
    chunks = [codes[bounds[i] : bounds[i + 1]] for i in range(len(parts))]
    return chunks[0], chunks[1:], IdMap(np.asarray(uniques))


def pair_matrix(user_ids: Any, note_ids: Any) -> tuple[sp.csr_matrix, IdMap, IdMap]:
    """Binary user x note CSR of (user, note) pairs, with the id maps of its rows and columns."""
    users, notes = _as_array(user_ids), _as_array(note_ids)
    if users.size == 0:
        raise SchemaError("no (user, note) pairs: the input is empty")
    if users.shape != notes.shape:
        raise InvalidParameterError(f"user_ids and note_ids differ in length: {users.size} vs {notes.size}")
    u, _, user_map = _encode(users)
    n, _, note_map = _encode(notes)
    m = sp.csr_matrix((np.ones(u.size, dtype=np.float32), (u, n)), shape=(len(user_map), len(note_map)))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, user_map, note_map


def recency_matrix(
    interactions: pd.DataFrame,
    user_map: IdMap,
    note_map: IdMap,
    *,
    event_weights: Mapping[str, float] | None = None,
) -> sp.csr_matrix:
    """User x note CSR of engaged pairs whose value grows with the time of the last engagement.

    Value = ``1 + days from the log's first engagement to the pair's last one`` (> 0, float32 is
    precise to about a second over years). Rows outside the maps and zero-weight events (impressions)
    are skipped.
    """
    engaged = engaged_mask(interactions, event_weights)
    u = user_map.index(interactions["user_id"].to_numpy()[engaged], missing="ignore")
    n = note_map.index(interactions["note_id"].to_numpy()[engaged], missing="ignore")
    ts = interactions["timestamp"].to_numpy()[engaged]
    ok = (u >= 0) & (n >= 0)
    if not ok.any():
        return sp.csr_matrix((len(user_map), len(note_map)), dtype=np.float32)
    days = (ts[ok] - ts[ok].min()) / 86_400.0 + 1.0
    # A pair engaged several times keeps its last engagement (a CSR build would sum them).
    key = u[ok] * len(note_map) + n[ok]
    last = pd.Series(days).groupby(key).max()
    rows, cols = np.divmod(last.index.to_numpy(), len(note_map))
    return sp.csr_matrix((last.to_numpy(dtype=np.float32), (rows, cols)), shape=(len(user_map), len(note_map)))


def _event_weight_vector(categories: list[str], event_weights: Mapping[str, float]) -> np.ndarray:
    weights = {normalise_event_name(k): v for k, v in event_weights.items()}
    out = np.empty(len(categories), dtype=np.float32)
    for i, c in enumerate(categories):
        key = normalise_event_name(str(c))
        if key not in weights:
            raise InvalidParameterError(
                f"event type {c!r} occurs in the interactions but has no weight in event_weights ({', '.join(weights)})"
            )
        w = weights[key]
        if not np.isfinite(w) or w < 0:
            raise InvalidParameterError(f"event_weights[{c!r}] must be a finite float >= 0; got {w!r}")
        out[i] = w
    return out


def _check_validated(interactions: pd.DataFrame) -> None:
    for col in ("user_id", "note_id", "event_type"):
        if col not in interactions.columns:
            raise SchemaError(f"interactions: missing column {col}; validate the table with graphrec.io first")
    if len(interactions) == 0:
        raise SchemaError("interactions: the table has no rows; the graph would be empty")
    if not isinstance(interactions["event_type"].dtype, pd.CategoricalDtype):
        raise SchemaError("interactions: event_type must be categorical; validate the table with graphrec.io first")


def _engagements(
    event_type: pd.Series,
    user_codes: np.ndarray,
    note_codes: np.ndarray,
    shape: tuple[int, int],
    weights: Mapping[str, float],
    weighting: str,
) -> sp.csr_matrix:
    """User x note matrix of summed event weights (zero-weight pairs are not edges), then ``weighting``."""
    ew = _event_weight_vector(list(event_type.cat.categories), weights)
    w = ew[event_type.cat.codes.to_numpy()]
    engages = sp.csr_matrix((w, (user_codes, note_codes)), shape=shape, dtype=np.float32)
    engages.sum_duplicates()
    engages.eliminate_zeros()
    if weighting == "log1p":
        engages.data = np.log1p(engages.data)
    elif weighting == "binary":
        engages.data = np.ones_like(engages.data)
    return engages


def _tag_relation(tag_lists: np.ndarray, note_rows: np.ndarray, n_notes: int) -> tuple[IdMap, sp.csr_matrix]:
    """The tag id map and the binary note x tag matrix of the notes table's tag lists."""
    lengths = np.fromiter((len(t) for t in tag_lists), dtype=np.int64, count=len(tag_lists))
    flat = as_text([t for ts in tag_lists for t in ts])
    tag_codes, uniques = pd.factorize(flat, sort=True)
    tag_map = IdMap(as_text(np.asarray(uniques)))
    has_tag = sp.csr_matrix(
        (np.ones(flat.size, dtype=np.float32), (np.repeat(note_rows, lengths), tag_codes)),
        shape=(n_notes, len(tag_map)),
    )
    has_tag.data[:] = 1.0  # a tag listed twice on one note is one tag
    return tag_map, has_tag


def build_graph(
    interactions: pd.DataFrame,
    notes: pd.DataFrame | None = None,
    *,
    users: pd.DataFrame | None = None,
    event_weights: Mapping[str, float] | None = None,
    weighting: str = "sum",
    include_tags: bool = True,
    include_authors: bool = True,
) -> HeteroGraph:
    """Build a :class:`HeteroGraph` from validated tables.

    Parameters
    ----------
    interactions : pandas.DataFrame
        Output of :func:`graphrec.io.validate_interactions` / :func:`graphrec.io.read_interactions`
        (``event_type`` categorical).
    notes : pandas.DataFrame, optional
        Output of :func:`graphrec.io.validate_notes`; adds tag and author relations and side-info-only notes.
    users : pandas.DataFrame, optional
        Output of :func:`graphrec.io.validate_users`; adds users with no interactions.
    event_weights : mapping of str to float, optional
        Weight per event type (default :data:`graphrec.io.DEFAULT_EVENT_WEIGHTS`).
    weighting : {"sum", "log1p", "binary"}
        How a pair's summed event weight becomes the edge weight.
    include_tags, include_authors : bool
        Build the note–tag and user–authored–note relations when side-info has them.

    Returns
    -------
    HeteroGraph

    Examples
    --------
    >>> from graphrec.testing import make_ugc_dataset
    >>> from graphrec.io import validate_interactions, validate_notes
    >>> d = make_ugc_dataset(n_users=50, n_notes=80, n_engagements=400, seed=0)
    >>> g = build_graph(validate_interactions(d.interactions), validate_notes(d.notes))
    >>> g.node_types
    ('user', 'note', 'tag')
    """
    check_choice("weighting", weighting, ("sum", "log1p", "binary"))
    _check_validated(interactions)
    weights = DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights

    note_extra = [_as_array(notes["note_id"])] if notes is not None else []
    author_ids = np.empty(0, dtype=np.int64)
    has_author = np.zeros(0, dtype=bool)
    if notes is not None and include_authors and "author_id" in notes.columns:
        has_author = notes["author_id"].notna().to_numpy()
        author_ids = _as_array(notes["author_id"][has_author].to_numpy())
    user_extra = [author_ids]
    if users is not None:
        user_extra.append(_as_array(users["user_id"]))

    u_codes, u_extra_codes, user_map = _encode(_as_array(interactions["user_id"]), *user_extra)
    n_codes, n_extra_codes, note_map = _encode(_as_array(interactions["note_id"]), *note_extra)
    n_users, n_notes = len(user_map), len(note_map)

    engages = _engagements(interactions["event_type"], u_codes, n_codes, (n_users, n_notes), weights, weighting)
    del u_codes, n_codes

    id_maps: dict[str, IdMap] = {"user": user_map, "note": note_map}
    relations: dict[tuple[str, str, str], sp.csr_matrix] = {ENGAGES: engages}
    meta: dict[str, Any] = {
        "event_weights": {str(k): float(v) for k, v in weights.items()},
        "weighting": weighting,
        "n_interactions": len(interactions),
        "n_duplicates_collapsed": int(interactions.attrs.get("n_duplicates_collapsed", 0)),
    }
    if notes is not None:
        note_rows = n_extra_codes[0]
        if include_tags and "tags" in notes.columns:
            id_maps["tag"], relations[HAS_TAG] = _tag_relation(notes["tags"].to_numpy(), note_rows, n_notes)
        if include_authors and has_author.any():
            relations[AUTHORED] = sp.csr_matrix(
                (np.ones(int(has_author.sum()), dtype=np.float32), (u_extra_codes[0], note_rows[has_author])),
                shape=(n_users, n_notes),
            )
        meta["n_notes_without_side_info"] = int(n_notes - np.unique(note_rows).size)
    return HeteroGraph(id_maps, relations, meta=meta)
