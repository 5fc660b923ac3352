"""The heterogeneous user–note–tag graph: per-relation CSR matrices plus id maps.

Design
------
* Node types are named strings (``"user"``, ``"note"``, ``"tag"``); each has an :class:`IdMap`
  from external ids to ``0..n-1``.
* A relation is a PyG-style triple ``(src, rel, dst)`` stored once, forward, as a
  ``scipy.sparse.csr_matrix`` of shape ``(n_src, n_dst)`` with float32 weights >= 0 and sorted,
  duplicate-free indices. The reverse relation ``(dst, "rev_" + rel, src)`` is derived on demand
  (a transpose), so the two can never disagree.
* The object is immutable: :meth:`HeteroGraph.with_relation` returns a new graph sharing the
  unchanged matrices. Derived relations (``("note", "similar", "note")`` from Swing, for example)
  are added that way.
* On disk (:meth:`save` / :meth:`load`): a directory with ``manifest.json`` (format version,
  counts, SHA-256 of every file), ``ids.npz`` and one ``.npz`` per relation. No pickle anywhere:
  text ids are stored as UTF-8 bytes + offsets. The directory is written atomically.
* :meth:`load` treats the directory as untrusted input: every path the manifest names must lie
  inside it and be checksummed, and every array is validated (dtypes, CSR structure, index
  ranges, finite non-negative weights) before scipy or numba touch it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec._atomic import atomic_directory
from graphrec._manifest import MANIFEST as _MANIFEST
from graphrec._manifest import READ_ERRORS, artifact_file, load_csr, read_manifest, save_csr, write_manifest
from graphrec.exceptions import ArtifactError, InvalidParameterError
from graphrec.io.ids import IdMap, ids_to_arrays, read_id_maps

__all__ = ["GRAPH_FORMAT_VERSION", "GRAPH_KIND", "EdgeType", "HeteroGraph"]

EdgeType = tuple[str, str, str]
GRAPH_FORMAT_VERSION = 1
GRAPH_KIND = "graphrec.graph"
_IDS = "ids.npz"


def _reverse(edge_type: EdgeType) -> EdgeType:
    src, rel, dst = edge_type
    return (dst, rel[4:] if rel.startswith("rev_") else f"rev_{rel}", src)


def _check_matrix(edge_type: EdgeType, matrix: Any, shape: tuple[int, int]) -> sp.csr_matrix:
    if not sp.issparse(matrix):
        raise InvalidParameterError(
            f"relation {edge_type}: expected a scipy sparse matrix; got {type(matrix).__name__}"
        )
    m = sp.csr_matrix(matrix, dtype=np.float32)
    if m.shape != shape:
        raise InvalidParameterError(f"relation {edge_type}: expected shape {shape} from the id maps; got {m.shape}")
    if m.nnz:
        if not np.isfinite(m.data).all():
            raise InvalidParameterError(f"relation {edge_type}: weights must be finite; found NaN or inf")
        if (m.data < 0).any():
            raise InvalidParameterError(f"relation {edge_type}: weights must be >= 0; found {m.data.min()}")
    # Canonicalise without mutating the caller's matrix.
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    if m.nnz and not m.data.all():
        m = m.copy()
        m.eliminate_zeros()
    return m


class HeteroGraph:
    """A heterogeneous graph of typed nodes and weighted, typed relations.

    Parameters
    ----------
    id_maps : mapping of str to IdMap
        The node types and their external ids.
    relations : mapping of (src, rel, dst) to scipy sparse matrix
        Forward relations, shape ``(n_src, n_dst)``, weights finite and >= 0.
    meta : mapping, optional
        JSON-serialisable facts about the build (options, counts), saved with the graph.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> g = HeteroGraph({"user": IdMap([1, 2]), "note": IdMap(["a"])},
    ...                 {("user", "engages", "note"): sp.csr_matrix([[1.0], [0.0]])})
    >>> g.num_edges(("note", "rev_engages", "user"))
    1
    """

    def __init__(
        self,
        id_maps: Mapping[str, IdMap],
        relations: Mapping[EdgeType, Any],
        *,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self._id_maps = dict(id_maps)
        self._relations: dict[EdgeType, sp.csr_matrix] = {}
        for et, m in relations.items():
            if len(et) != 3 or not all(isinstance(x, str) and x for x in et):
                raise InvalidParameterError(f"edge types are (src, rel, dst) string triples; got {et!r}")
            src, rel, dst = et
            if rel.startswith("rev_"):
                raise InvalidParameterError(f"relation {et}: store forward relations only; rev_ ones are derived")
            for t in (src, dst):
                if t not in self._id_maps:
                    raise InvalidParameterError(f"relation {et}: node type {t!r} has no id map")
            self._relations[et] = _check_matrix(et, m, (len(self._id_maps[src]), len(self._id_maps[dst])))
        self.meta: dict[str, Any] = dict(meta or {})

    # -- structure -------------------------------------------------------------------------
    @property
    def node_types(self) -> tuple[str, ...]:
        """Node type names."""
        return tuple(self._id_maps)

    @property
    def edge_types(self) -> tuple[EdgeType, ...]:
        """Stored (forward) relation triples; each also has a derived ``rev_`` reverse."""
        return tuple(self._relations)

    def id_map(self, node_type: str) -> IdMap:
        """The :class:`IdMap` of ``node_type``."""
        try:
            return self._id_maps[node_type]
        except KeyError:
            raise InvalidParameterError(
                f"unknown node type {node_type!r}; the graph has {', '.join(self._id_maps)}"
            ) from None

    def num_nodes(self, node_type: str) -> int:
        """Number of nodes of ``node_type``."""
        return len(self.id_map(node_type))

    def has_relation(self, edge_type: EdgeType) -> bool:
        """Whether ``edge_type`` (forward or ``rev_``) is in the graph."""
        return tuple(edge_type) in self._relations or _reverse(tuple(edge_type)) in self._relations  # type: ignore[arg-type]

    def relation(self, edge_type: EdgeType) -> sp.csr_matrix:
        """The CSR matrix of a relation; ``rev_`` relations are the transpose of the forward one."""
        et: EdgeType = tuple(edge_type)  # type: ignore[assignment]
        if et in self._relations:
            return self._relations[et]
        fwd = _reverse(et)
        if et[1].startswith("rev_") and fwd in self._relations:
            return self._relations[fwd].T.tocsr()
        raise InvalidParameterError(
            f"the graph has no relation {et}; it has {', '.join(map(str, self._relations)) or 'none'}"
        )

    def num_edges(self, edge_type: EdgeType) -> int:
        """Number of stored edges of a relation."""
        et: EdgeType = tuple(edge_type)  # type: ignore[assignment]
        return int((self._relations[et] if et in self._relations else self.relation(et)).nnz)

    def with_relation(self, edge_type: EdgeType, matrix: Any, *, meta: Mapping[str, Any] | None = None) -> HeteroGraph:
        """A new graph with ``edge_type`` added or replaced (other matrices are shared)."""
        relations = dict(self._relations)
        relations[tuple(edge_type)] = matrix  # type: ignore[index]
        return HeteroGraph(self._id_maps, relations, meta={**self.meta, **(meta or {})})

    def summary(self) -> dict[str, Any]:
        """Counts per node type and relation, and density of the relations."""
        return {
            "nodes": {t: len(m) for t, m in self._id_maps.items()},
            "relations": {
                "__".join(et): {
                    "edges": int(m.nnz),
                    "density": float(m.nnz / max(1, m.shape[0] * m.shape[1])),
                    "weight_sum": float(m.data.sum(dtype=np.float64)),
                }
                for et, m in self._relations.items()
            },
        }

    def __repr__(self) -> str:
        nodes = ", ".join(f"{t}={len(m)}" for t, m in self._id_maps.items())
        rels = ", ".join(f"{'/'.join(et)}={m.nnz}" for et, m in self._relations.items())
        return f"HeteroGraph(nodes: {nodes}; relations: {rels})"

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the graph to directory ``path`` atomically (it replaces any earlier one whole)."""
        target = Path(path)
        with atomic_directory(target, kind=GRAPH_KIND) as tmp:
            savez: Any = np.savez  # numpy's stubs reject **arrays (a key could be allow_pickle)
            savez(tmp / _IDS, **{k: v for t, m in self._id_maps.items() for k, v in ids_to_arrays(t, m).items()})
            (tmp / "relations").mkdir()
            rel_entries: list[dict[str, Any]] = []
            for et, m in self._relations.items():
                name = f"relations/{'__'.join(et)}.npz"
                save_csr(tmp / name, m)
                rel_entries.append({"edge_type": list(et), "file": name, "nnz": int(m.nnz)})
            write_manifest(
                tmp,
                fmt=GRAPH_KIND,
                version=GRAPH_FORMAT_VERSION,
                nodes=[
                    {"type": t, "count": len(m), "id_kind": "int" if m.is_int else "str"}
                    for t, m in self._id_maps.items()
                ],
                relations=rel_entries,
                meta=self.meta,
            )
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HeteroGraph:
        """Read a graph written by :meth:`save`, verifying checksums, paths, arrays and counts.

        Raises
        ------
        ArtifactError
            Naming the file that is missing, corrupt, outside the directory, or disagrees with
            the manifest (the directory is untrusted input; see :mod:`graphrec._manifest`).
        """
        root = Path(path)
        manifest = read_manifest(root, fmt=GRAPH_KIND, version=GRAPH_FORMAT_VERSION, what="saved graphrec graph")
        try:
            return cls._from_manifest(root, manifest)
        except ArtifactError:
            raise
        except InvalidParameterError as exc:
            raise ArtifactError(f"{root}: {exc}") from None
        except READ_ERRORS as exc:
            raise ArtifactError(f"{root / _MANIFEST}: malformed ({type(exc).__name__}: {str(exc)[:200]})") from None

    @classmethod
    def _from_manifest(cls, root: Path, manifest: dict[str, Any]) -> HeteroGraph:
        counts = {str(info["type"]): info["count"] for info in manifest["nodes"]}
        id_maps = read_id_maps(artifact_file(root, manifest, _IDS), counts)
        relations = {}
        for entry in manifest["relations"]:
            et = tuple(entry["edge_type"])
            if len(et) != 3 or not all(isinstance(x, str) for x in et) or et[0] not in id_maps or et[2] not in id_maps:
                raise ArtifactError(f"{root / _MANIFEST}: relation {entry['edge_type']!r} names unknown node types")
            f = artifact_file(root, manifest, entry["file"])
            shape = (len(id_maps[et[0]]), len(id_maps[et[2]]))
            relations[et] = load_csr(f, shape=shape, nonnegative=True)
            if relations[et].nnz != entry["nnz"]:
                raise ArtifactError(f"{f}: edge count disagrees with {_MANIFEST}")
        meta = manifest.get("meta", {})
        return cls(id_maps, relations, meta=meta if isinstance(meta, dict) else {})
