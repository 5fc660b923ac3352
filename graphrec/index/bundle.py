"""The serving bundle: everything recall needs, in one verified, atomically written directory.

Layout
------
``manifest.json``   format + version, graphrec version, creation time, config and its hash,
                    counts, embedding dims, index kinds and parameters, SHA-256 of every file
``ids.npz``         external ids of users, notes, tags (no pickle: int64, or UTF-8 bytes + offsets)
``embeddings.npz``  float32 embeddings per node type
``<type>.faiss``    one faiss index per embedded node type (faiss's own format)
``history.npz``     user x note CSR of seen notes, data = recency (larger = more recent)
``similar.npz``     note x note CSR of Swing (or other i2i) neighbours, optional
``note_tags.npz``   note x tag CSR, optional
``popularity.npy``  training popularity of each note
``authored.npz``    user x note CSR of who wrote which note, optional (cold start's author feature)
``encoder.npz``     the GNN's side-info encoder (:class:`graphrec.index.NoteEncoder`), optional;
                    with it :class:`graphrec.coldstart.ColdStart` can embed brand-new notes
``delta.npz``       live events since the model was trained (user ids + note indices, oldest
                    first), optional; written by ``RecallEngine.save`` / ``graphrec refresh``

:func:`write_bundle` builds it in a temporary directory and swaps it in whole, so readers never
see a half-written bundle. :func:`load_bundle` checks the format version and every checksum and
that arrays agree with the manifest and each other; any mismatch is an :class:`ArtifactError`
naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec._atomic import atomic_directory
from graphrec._manifest import MANIFEST as _MANIFEST
from graphrec._manifest import (
    READ_ERRORS,
    artifact_file,
    config_hash,
    float_matrix,
    load_csr,
    load_npz,
    read_manifest,
    save_csr,
    write_manifest,
)
from graphrec.exceptions import ArtifactError, InvalidParameterError
from graphrec.index.ann import AnnIndex, IndexConfig
from graphrec.index.encoder import NoteEncoder
from graphrec.io.ids import IdMap, ids_from_arrays, ids_to_arrays, read_id_maps

__all__ = ["BUNDLE_FORMAT_VERSION", "BUNDLE_KIND", "Bundle", "load_bundle", "write_bundle"]

BUNDLE_FORMAT_VERSION = 1
BUNDLE_KIND = "graphrec.bundle"


@dataclass
class Bundle:
    """A loaded serving bundle (see the module docstring)."""

    ids: dict[str, IdMap]
    embeddings: dict[str, np.ndarray]
    indexes: dict[str, AnnIndex]
    history: sp.csr_matrix
    popularity: np.ndarray
    similar: sp.csr_matrix | None = None
    note_tags: sp.csr_matrix | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    authored: sp.csr_matrix | None = None
    encoder: NoteEncoder | None = None
    #: Events since the bundle's model was trained, per user id: note indices, oldest first
    #: (:mod:`graphrec.recall.live`); empty for a freshly built bundle.
    delta: dict[str, np.ndarray] = field(default_factory=dict)


def _checked_embeddings(ids: Mapping[str, IdMap], embeddings: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Contiguous float32 embeddings, one row per id, finite, users and notes of one dimension."""
    for t in ("user", "note"):
        if t not in ids or t not in embeddings:
            raise InvalidParameterError(f"a bundle needs {t} ids and {t} embeddings")
    embs = {}
    for t, e in embeddings.items():
        arr = np.ascontiguousarray(np.asarray(e, dtype=np.float32))
        if arr.ndim != 2 or t not in ids or arr.shape[0] != len(ids[t]):
            raise InvalidParameterError(f"{t} embeddings have shape {arr.shape}; expected ({len(ids.get(t, []))}, dim)")
        if not np.isfinite(arr).all():
            raise InvalidParameterError(f"{t} embeddings hold NaN or inf")
        embs[t] = arr
    if embs["user"].shape[1] != embs["note"].shape[1]:
        raise InvalidParameterError("user and note embeddings must have the same dimension")
    return embs


def _save_delta(path: Path, delta: Mapping[str, np.ndarray], n_notes: int) -> None:
    """Live events per user id as user ids plus a CSR-style (indptr, indices) of note indices."""
    keys = sorted(delta)
    rows = [np.asarray(delta[k], dtype=np.int64) for k in keys]
    flat = np.concatenate(rows) if rows else np.empty(0, np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= n_notes):
        raise InvalidParameterError("delta holds note indices outside the bundle's notes")
    np.savez(
        path,
        **ids_to_arrays("users", IdMap(np.array(keys, dtype=object))),  # type: ignore[arg-type]
        indptr=np.concatenate([[0], np.cumsum([r.size for r in rows])]).astype(np.int64),
        indices=flat,
    )


def write_bundle(
    path: str | os.PathLike[str],
    *,
    ids: Mapping[str, IdMap],
    embeddings: Mapping[str, np.ndarray],
    history: sp.spmatrix,
    popularity: np.ndarray | None = None,
    similar: sp.spmatrix | None = None,
    note_tags: sp.spmatrix | None = None,
    authored: sp.spmatrix | None = None,
    encoder: NoteEncoder | None = None,
    delta: Mapping[str, np.ndarray] | None = None,
    index_params: Mapping[str, IndexConfig] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Build indexes and write a bundle directory atomically.

    Parameters
    ----------
    ids : mapping of node type to IdMap
        Must hold ``"user"`` and ``"note"`` (and ``"tag"`` with tag embeddings or ``note_tags``).
    embeddings : mapping of node type to array (n, dim)
        ``"user"`` and ``"note"`` required, ``"tag"`` optional; rows follow ``ids``.
    history : sparse (n_users, n_notes)
        Seen notes; larger values = more recent (used by ``exclude_seen`` and the Swing channel).
    popularity : array (n_notes,), optional
        Default: the number of users in ``history`` per note.
    similar, note_tags : sparse, optional
        Note–note neighbours and note–tag membership for the Swing and tag channels.
    authored : sparse (n_users, n_notes), optional
        Who wrote which note.
    encoder : NoteEncoder, optional
        Side-info encoder for new notes; its user/tag tables must match the bundle's counts.
    delta : mapping of user id to note indices, optional
        Live events kept since the model was trained (:meth:`graphrec.recall.RecallEngine.save`).
    index_params : mapping of node type to IndexConfig, optional
    config : mapping, optional
        JSON-serialisable description of what made the bundle (hashed into the manifest).
    """
    embs = _checked_embeddings(ids, embeddings)
    n_users, n_notes = len(ids["user"]), len(ids["note"])
    hist = sp.csr_matrix(history, dtype=np.float32)
    if hist.shape != (n_users, n_notes):
        raise InvalidParameterError(f"history has shape {hist.shape}; expected {(n_users, n_notes)}")
    pop = (
        np.diff(hist.tocsc().indptr).astype(np.float32)
        if popularity is None
        else np.asarray(popularity, dtype=np.float32)
    )
    if pop.shape != (n_notes,):
        raise InvalidParameterError(f"popularity has shape {pop.shape}; expected ({n_notes},)")
    params = dict(index_params or {})
    indexes = {t: AnnIndex.build(e, params.get(t)) for t, e in embs.items()}
    cfg = dict(config or {})
    with atomic_directory(path, kind=BUNDLE_KIND) as tmp:
        np.savez(tmp / "ids.npz", **{k: v for t, m in ids.items() for k, v in ids_to_arrays(t, m).items()})  # type: ignore[arg-type]
        np.savez(tmp / "embeddings.npz", **embs)  # type: ignore[arg-type]
        for t, index in indexes.items():
            index.save(tmp / f"{t}.faiss")
        save_csr(tmp / "history.npz", hist)
        np.save(tmp / "popularity.npy", pop)
        optional = {}
        n_tags = len(ids["tag"]) if "tag" in ids else None
        sparse = {"similar": (similar, (n_notes, n_notes)), "note_tags": (note_tags, (n_notes, n_tags))}
        sparse["authored"] = (authored, (n_users, n_notes))
        for name, (matrix, shape) in sparse.items():
            if matrix is None:
                continue
            m = sp.csr_matrix(matrix, dtype=np.float32)
            if shape[1] is None:
                raise InvalidParameterError(f"{name} needs tag ids")
            if m.shape != shape:
                raise InvalidParameterError(f"{name} has shape {m.shape}; expected {shape}")
            save_csr(tmp / f"{name}.npz", m)
            optional[name] = f"{name}.npz"
        if encoder is not None:
            n_tags = len(ids["tag"]) if "tag" in ids else 0
            if encoder.user0.shape[0] != n_users or encoder.tag0.shape[0] not in (0, n_tags):
                raise InvalidParameterError("the encoder's user/tag tables do not match the bundle's ids")
            encoder.save(tmp / "encoder.npz")
            optional["encoder"] = "encoder.npz"
        if delta:
            _save_delta(tmp / "delta.npz", delta, n_notes)
            optional["delta"] = "delta.npz"
        write_manifest(
            tmp,
            fmt=BUNDLE_KIND,
            version=BUNDLE_FORMAT_VERSION,
            config=cfg,
            config_hash=config_hash(cfg),
            counts={t: len(m) for t, m in ids.items()},
            dims={t: int(e.shape[1]) for t, e in embs.items()},
            indexes={t: {"kind": ix.kind, "params": asdict(ix.params)} for t, ix in indexes.items()},
            optional=optional,
        )
    return Path(path)


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read and verify a bundle written by :func:`write_bundle`.

    The directory is untrusted input (see :mod:`graphrec._manifest`): paths are confined to it and
    checksummed, and every array is validated before use.

    Raises
    ------
    ArtifactError
        Naming the missing, truncated, corrupt, mismatched or malformed file.
    """
    root = Path(path)
    manifest = read_manifest(root, fmt=BUNDLE_KIND, version=BUNDLE_FORMAT_VERSION, what="graphrec bundle")
    try:
        return _bundle_from_manifest(root, manifest)
    except ArtifactError:
        raise
    except (InvalidParameterError, *READ_ERRORS) as exc:
        raise ArtifactError(f"{root / _MANIFEST}: malformed ({type(exc).__name__}: {str(exc)[:200]})") from None


def _bundle_from_manifest(root: Path, manifest: dict[str, Any]) -> Bundle:
    def file(name: str) -> Path:
        return artifact_file(root, manifest, name)

    counts, dims, optional = manifest["counts"], manifest["dims"], manifest["optional"]
    if not all(isinstance(d, dict) for d in (counts, dims, optional, manifest["indexes"])):
        raise ArtifactError(f"{root / _MANIFEST}: counts, dims, optional and indexes must be mappings")
    if "user" not in dims or "note" not in dims or not set(dims) <= set(counts):
        raise ArtifactError(f"{root / _MANIFEST}: needs user and note embeddings, each with an id count")
    ids = read_id_maps(file("ids.npz"), counts)
    raw_emb = load_npz(file("embeddings.npz"))
    embs = {}
    for t, d in dims.items():
        if t not in raw_emb:
            raise ArtifactError(f"{root / 'embeddings.npz'}: no {t} embeddings")
        embs[t] = float_matrix(raw_emb[t], f"{root / 'embeddings.npz'} ({t})", shape=(counts[t], d))
    if embs["user"].shape[1] != embs["note"].shape[1]:
        raise ArtifactError(f"{root / 'embeddings.npz'}: user and note embeddings differ in dimension")
    n_users, n_notes = len(ids["user"]), len(ids["note"])

    def csr(name: str, shape: tuple[int, int]) -> sp.csr_matrix:
        return load_csr(file(name), shape=shape, where=str(root / name))

    history = csr("history.npz", (n_users, n_notes))
    try:
        pop = np.load(file("popularity.npy"), allow_pickle=False)
    except READ_ERRORS as exc:
        raise ArtifactError(f"{root / 'popularity.npy'}: unreadable ({exc})") from None
    popularity = float_matrix(pop, str(root / "popularity.npy"), shape=(n_notes,))
    similar = csr("similar.npz", (n_notes, n_notes)) if "similar" in optional else None
    note_tags = None
    if "note_tags" in optional:
        if "tag" not in ids:
            raise ArtifactError(f"{root / _MANIFEST}: note_tags without tag ids")
        note_tags = csr("note_tags.npz", (n_notes, len(ids["tag"])))
    authored = csr("authored.npz", (n_users, n_notes)) if "authored" in optional else None
    encoder = NoteEncoder.load(file("encoder.npz")) if "encoder" in optional else None
    if encoder is not None and encoder.user0.shape[0] != n_users:
        raise ArtifactError(f"{root / 'encoder.npz'}: encoder has {encoder.user0.shape[0]} users; the bundle {n_users}")
    indexes = {}
    for t, info in manifest["indexes"].items():
        index_file = file(f"{t}.faiss")  # confined and listed before anything else about it
        if t not in embs:
            raise ArtifactError(f"{root / _MANIFEST}: index {t!r} has no embeddings")
        params = IndexConfig(**info["params"])
        indexes[t] = AnnIndex.load(index_file, embs[t], params, info["kind"])
    delta = _load_delta(file("delta.npz"), n_notes) if "delta" in optional else {}
    return Bundle(ids, embs, indexes, history, popularity, similar, note_tags, manifest, authored, encoder, delta)


def _load_delta(path: Path, n_notes: int) -> dict[str, np.ndarray]:
    """The live events stored by :func:`write_bundle` (rows keep their order: oldest first)."""
    arrays = load_npz(path)
    try:
        users = ids_from_arrays(arrays, "users")
    except InvalidParameterError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    indptr, indices = arrays.get("indptr"), arrays.get("indices")
    if indptr is None or indices is None or indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise ArtifactError(f"{path}: needs integer indptr and indices")
    if (
        indptr.ndim != 1
        or indices.ndim != 1
        or indptr.size != len(users) + 1
        or indptr[0] != 0
        or indptr[-1] != indices.size
        or (np.diff(indptr) < 0).any()
    ):
        raise ArtifactError(f"{path}: indptr does not describe {len(users)} rows of {indices.size} notes")
    if indices.size and (indices.min() < 0 or indices.max() >= n_notes):
        raise ArtifactError(f"{path}: a note index is outside 0..{n_notes - 1}")
    idx = indices.astype(np.int64)
    return {str(u): idx[indptr[i] : indptr[i + 1]] for i, u in enumerate(users.ids.tolist())}
