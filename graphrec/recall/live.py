"""Live updates of a recall engine: new notes and new events without retraining.

Design
------
* **Copy-on-write.** :meth:`RecallEngine.add_notes` and :meth:`RecallEngine.update` return a *new*
  engine that shares every unchanged array with the old one; the old engine keeps answering
  exactly as before. A service swaps the new engine in with one reference assignment (the same
  mechanism as a bundle reload, :mod:`graphrec.serve`), so requests in flight never see half an
  update and no reader takes a lock.
* **New events are request-time history kept by the engine.** ``update(interactions)`` appends
  each user's positive events (notes known to the engine, oldest first) to that user's *delta*;
  ``recall`` treats a user's delta exactly like ``history=`` given at request time (see
  :mod:`graphrec.recall.engine`): it feeds the Swing and tag channels, is excluded as seen and is
  folded into the user's query vector. Users the bundle never saw get a delta too and stop being
  fallback rows. Popularity grows by one per new (user, note) pair. Events on unknown notes are
  ignored and counted.
* **New notes are embedded by the bundle's side-info encoder** (the GNN's inductive encoder: tags,
  author, text; text vectors either computed here or given precomputed as ``text_vectors``, which
  is how a live service should take them: the text model is most of the cost) and join the note
  id space, the note index, ``similar_notes`` and ``audience`` at once. Note ids are kept sorted
  (:class:`graphrec.io.IdMap`), so adding notes renumbers note indices: every note-indexed
  structure is permuted (history and note-tag columns, Swing rows and columns, popularity,
  deltas), an O(nnz) vectorised pass, and the note index is rebuilt (a flat
  index is its vectors; IVF/HNSW are rebuilt with their parameters, which is the expensive case).
  ``remove_notes`` drops notes the same way (deleted posts are never recalled again).
* **Swing neighbours of touched notes are recomputed exactly.** The notes that gained a new
  (user, note) pair get their Swing rows recomputed (:func:`graphrec.weights.swing_rows`) over
  the engine's whole binary history: the bundle's history, every delta, and new users.
  ``top_k`` is the bundle's widest Swing row, and the default :class:`~graphrec.weights.SwingConfig`
  supplies the rest. Other notes keep their batch-built rows, although a new event can also
  change their scores slightly through the user weights. New notes have no Swing neighbours
  until the next batch build.
* **Not updated here:** the users' trained vectors (the fold-in stands in for them). The batch
  chain's full rebuild stays the way to retrain. :meth:`RecallEngine.save` (``graphrec refresh``)
  writes an updated engine as a bundle, its deltas in ``delta.npz``, atomically, so a restart or
  a reload loses nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec.exceptions import InvalidParameterError
from graphrec.index import AnnIndex
from graphrec.io.ids import IdMap

if TYPE_CHECKING:
    from graphrec.recall.engine import RecallEngine

__all__ = ["add_notes", "remove_notes", "update"]


def _key(user: Any) -> str:
    return str(user).strip()


def update(engine: RecallEngine, interactions: pd.DataFrame) -> tuple[RecallEngine, dict[str, int]]:
    """The engine with ``interactions`` applied (see the module docstring) and counts of what was done."""
    from graphrec.io import validate_interactions
    from graphrec.io.interactions import engaged_mask

    events = validate_interactions(interactions, source="update events")
    positive = engaged_mask(events)
    events = events[positive].sort_values("timestamp", kind="stable")
    notes = engine.bundle.ids["note"]
    pos = notes.index(events["note_id"].to_numpy(), missing="ignore")
    known = pos >= 0
    delta = dict(engine.delta)
    users = engine.bundle.ids["user"]
    history = engine.history_csr
    popularity = engine.bundle.popularity.copy()
    new_pairs = 0
    frame = pd.DataFrame({"user": events["user_id"].to_numpy()[known], "note": pos[known]})
    groups = frame.groupby("user", sort=False).indices  # user -> row positions, in time order
    names = list(groups)
    rows: np.ndarray = (
        users.index(np.asarray(names, dtype=object if not users.is_int else None), missing="ignore")
        if names
        else np.empty(0, dtype=np.int64)
    )
    note_col = frame["note"].to_numpy(np.int64)
    touched: list[np.ndarray] = []
    for user, row in zip(names, rows, strict=True):
        key = _key(user)
        before = delta.get(key, np.empty(0, dtype=np.int64))
        stored = history.indices[history.indptr[row] : history.indptr[row + 1]] if row >= 0 else np.empty(0, np.int64)
        added = note_col[groups[user]]
        fresh = np.setdiff1d(np.unique(added), np.union1d(stored, before))
        popularity[fresh] += 1.0
        new_pairs += int(fresh.size)
        touched.append(fresh)
        # Oldest first, each note once, at its latest position.
        merged = np.concatenate([before, added])
        _, last = np.unique(merged[::-1], return_index=True)
        delta[key] = merged[::-1][np.sort(last)][::-1]
    counts = {
        "events": int(positive.sum()),
        "unknown_notes": int((~known).sum()),
        "users": len({_key(u) for u in events["user_id"].to_numpy()[known]}),
        "new_pairs": new_pairs,
    }
    bundle = replace(engine.bundle, popularity=popularity)
    if bundle.similar is not None and new_pairs:
        notes_touched = np.unique(np.concatenate(touched))
        bundle = replace(bundle, similar=_refresh_swing(bundle.similar, history, delta, users, notes_touched))
        counts["swing_rows_recomputed"] = int(notes_touched.size)
    return engine.derive(bundle, delta), counts


def _refresh_swing(
    similar: sp.csr_matrix, history: sp.csr_matrix, delta: dict[str, np.ndarray], users: IdMap, notes: np.ndarray
) -> sp.csr_matrix:
    """``similar`` with the rows of ``notes`` recomputed over history + deltas (module docstring);
    ``delta`` is not empty (it holds the new pairs)."""
    from graphrec.weights.swing import SwingConfig, swing_rows

    keys = list(delta)
    rows = users.index(np.array(keys, dtype=object), missing="ignore")
    n_new = int((rows < 0).sum())
    user_of = np.where(rows >= 0, rows, np.cumsum(rows < 0) - 1 + history.shape[0])  # new users: extra rows
    lengths = np.array([delta[k].size for k in keys], dtype=np.int64)
    extra = sp.csr_matrix(
        (
            np.ones(int(lengths.sum()), dtype=np.float32),
            (np.repeat(user_of, lengths), np.concatenate(list(delta.values()))),
        ),
        shape=(history.shape[0] + n_new, history.shape[1]),
    )
    base = sp.vstack([history, sp.csr_matrix((n_new, history.shape[1]), dtype=history.dtype)]).tocsr()
    combined = base + extra
    widest = int(np.diff(similar.indptr).max(initial=1))
    fresh = swing_rows(combined, notes, SwingConfig(top_k=widest))
    keep = np.ones(similar.shape[0], dtype=np.float32)
    keep[notes] = 0.0
    placed = sp.csr_matrix(
        (np.ones(notes.size, dtype=np.float32), (notes, np.arange(notes.size))), shape=(similar.shape[0], notes.size)
    )
    out = sp.csr_matrix(sp.diags(keep) @ similar + placed @ fresh, dtype=np.float32)
    out.eliminate_zeros()
    out.sort_indices()
    return out


def _remap(m: sp.spmatrix | None, perm: np.ndarray, n: int, *, rows: bool, cols: bool) -> sp.csr_matrix | None:
    """``m`` with its note rows and/or columns renumbered by ``perm`` into ``n`` notes (-1: gone)."""
    if m is None:
        return None
    coo = m.tocoo()
    r, c = (perm[coo.row] if rows else coo.row), (perm[coo.col] if cols else coo.col)
    ok = (r >= 0) & (c >= 0)
    shape = (n if rows else m.shape[0], n if cols else m.shape[1])
    return sp.csr_matrix((coo.data[ok], (r[ok], c[ok])), shape=shape)


def _renumbered(
    engine: RecallEngine,
    new_ids: IdMap,
    keep: np.ndarray,
    *,
    new_vectors: tuple[np.ndarray, np.ndarray] | None = None,
    new_tags: sp.csr_matrix | None = None,
) -> RecallEngine:
    """The engine over note ids ``new_ids``: old note ``i`` (where ``keep[i]``) moves to its new
    index; ``new_vectors`` = (rows, embeddings) and ``new_tags`` (note x tag) of added notes."""
    b = engine.bundle
    old_ids = b.ids["note"]
    n_new = len(new_ids)
    perm = np.full(len(old_ids), -1, dtype=np.int64)
    perm[keep] = new_ids.index(old_ids.ids[keep])

    def remap(m: sp.spmatrix | None, *, rows: bool = False, cols: bool = False) -> sp.csr_matrix | None:
        return _remap(m, perm, n_new, rows=rows, cols=cols)

    history = remap(engine.history_csr, cols=True)
    authored = remap(b.authored, cols=True)
    note_tags = remap(b.note_tags, rows=True)
    similar = remap(b.similar, rows=True, cols=True)
    emb = np.zeros((n_new, b.embeddings["note"].shape[1]), dtype=np.float32)
    emb[perm[keep]] = b.embeddings["note"][keep]
    popularity = np.zeros(n_new, dtype=np.float32)
    popularity[perm[keep]] = b.popularity[keep]
    if new_vectors is not None:
        emb[new_vectors[0]] = new_vectors[1]
    if new_tags is not None and note_tags is not None:
        note_tags = (note_tags + new_tags).tocsr()
    index = b.indexes["note"]
    note_index = AnnIndex.build(emb, index.params, kind=index.kind)
    delta = {}
    for key, notes in engine.delta.items():
        moved = perm[notes]
        moved = moved[moved >= 0]
        if moved.size:
            delta[key] = moved
    bundle = replace(
        b,
        ids={**b.ids, "note": new_ids},
        embeddings={**b.embeddings, "note": emb},
        indexes={**b.indexes, "note": note_index},
        history=history,
        popularity=popularity,
        similar=similar,
        note_tags=note_tags,
        authored=authored,
    )
    return engine.derive(bundle, delta)


def add_notes(
    engine: RecallEngine, notes: pd.DataFrame, text_vectors: np.ndarray | None = None
) -> tuple[RecallEngine, dict[str, int]]:
    """The engine with new ``notes`` (a side-info table) embedded and indexed (see the module docstring);
    ``text_vectors``: their precomputed text vectors (:func:`graphrec.graph.side_info_for_encoder`)."""
    from graphrec.graph.side_info import side_info_for_encoder
    from graphrec.io import validate_notes

    b = engine.bundle
    if b.encoder is None:
        raise InvalidParameterError(
            "add_notes needs a bundle with a note encoder (encoder.npz, from a GNN with side-info)"
        )
    frame = validate_notes(notes, source="new notes")
    if frame.empty:
        return engine, {"notes": 0, "fallback": 0, "unknown_tags": 0, "unknown_authors": 0}
    ids = frame["note_id"].to_numpy()
    known = b.ids["note"].index(ids, missing="ignore") >= 0
    if known.any():
        shown = ", ".join(map(repr, ids[known][:3].tolist()))
        raise InvalidParameterError(f"new notes: {int(known.sum())} id(s) are already in the engine ({shown})")
    side, stats = side_info_for_encoder(
        frame, b.encoder, users=b.ids["user"], tags=b.ids.get("tag"), text_vectors=text_vectors
    )
    vectors = b.encoder(side)
    try:
        new_ids = IdMap.from_values(b.ids["note"].ids, ids)
    except InvalidParameterError as exc:  # e.g. text ids added to an integer id space are fine; repeats are not
        raise InvalidParameterError(f"new notes: {exc}") from None
    if new_ids.is_int != b.ids["note"].is_int:
        raise InvalidParameterError(
            "new notes: their ids are text but the bundle's note ids are integers (or the reverse); "
            "use ids of the same kind"
        )
    rows = new_ids.index(ids)
    new_tags = None
    if b.note_tags is not None and side.tags is not None:
        t = sp.csr_matrix(side.tags).tocoo()
        shape = (len(new_ids), b.note_tags.shape[1])
        new_tags = sp.csr_matrix((np.ones(t.nnz, np.float32), (rows[t.row], t.col)), shape=shape)
    keep = np.ones(len(b.ids["note"]), dtype=bool)
    counts = {"notes": len(ids), "fallback": int((~side.usable()).sum()), **stats}
    return _renumbered(engine, new_ids, keep, new_vectors=(rows, vectors), new_tags=new_tags), counts


def remove_notes(engine: RecallEngine, note_ids: Any) -> tuple[RecallEngine, dict[str, int]]:
    """The engine without ``note_ids`` (deleted posts): never recalled, no longer anyone's history."""
    b = engine.bundle
    pos = b.ids["note"].index(
        np.asarray(list(note_ids), dtype=object if not b.ids["note"].is_int else None), missing="ignore"
    )
    gone = np.unique(pos[pos >= 0])
    if gone.size == 0:
        return engine, {"removed": 0, "unknown": int((pos < 0).sum())}
    if gone.size == len(b.ids["note"]):
        raise InvalidParameterError("remove_notes would remove every note; rebuild the bundle instead")
    keep = np.ones(len(b.ids["note"]), dtype=bool)
    keep[gone] = False
    new_ids = IdMap(b.ids["note"].ids[keep])
    return _renumbered(engine, new_ids, keep), {"removed": int(gone.size), "unknown": int((pos < 0).sum())}
