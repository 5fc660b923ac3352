"""DGL interop: a :class:`~graphrec.graph.HeteroGraph` as a DGL heterograph, and back.

Mapping (:func:`to_dgl`)
------------------------
* **Node types** keep their names and counts. Node data ``graphrec_id`` holds integer external
  ids; text ids travel as ``graphrec_id_utf8`` (``(n, L)`` uint8, zero-padded UTF-8) plus
  ``graphrec_id_len`` (``(n,)`` int64 byte lengths), because DGL node data are tensors whose first
  dimension is the node count. Both survive ``dgl.save_graphs`` / ``dgl.load_graphs``.
* **Relations**: every stored relation ``(src, rel, dst)`` is a canonical edge type with edges in
  the CSR's order (by source, then destination) and its weights as edge data ``weight``
  (float32). With ``reverse=True`` (the default; message passing needs both directions) the
  derived ``(dst, "rev_" + rel, src)`` is added with the same weights, as in
  :func:`graphrec.graph.to_hetero_data`.
* **Note side-info** (given a :class:`~graphrec.graph.SideInfo` of the graph's notes) becomes
  note data: ``text`` (``(n, d)`` float32 sentence vectors), ``author`` (``(n,)`` int64 index of
  the author in the user node type, ``-1`` if unknown) and ``tags`` (``(n, T)`` int64 tag indices
  padded with ``-1``, ``T`` the most tags on a note; the same tags are also the ``has_tag``
  relation).

:func:`from_dgl` inverts it: ids from the node data (``0..n-1`` when a graph made elsewhere has
none), forward relations from the edge types whose name does not start with ``rev_`` (a ``rev_``
type whose forward type is absent is transposed back), weights from ``weight`` (1.0 when absent).
Parallel edges are summed, as :class:`HeteroGraph` keeps one weight per pair. The round trip is
exact for ids, relations and weights; ``graph.meta`` does not travel.

Trained embeddings come back with :func:`graphrec.jobs.bundle.bundle_from_embeddings`.

DGL is imported when these functions run, never with graphrec. DGL 2.1 (PyPI's newest Linux
build) loads only beside torch <= 2.2.1, so it lives in its own environment: ``make venv-dgl``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec.exceptions import InvalidParameterError, MissingDependencyError
from graphrec.graph import EdgeType, HeteroGraph, SideInfo
from graphrec.io.ids import IdMap, ids_from_arrays, ids_to_arrays

__all__ = ["ID", "ID_LEN", "ID_UTF8", "WEIGHT", "from_dgl", "to_dgl"]

ID, ID_UTF8, ID_LEN = "graphrec_id", "graphrec_id_utf8", "graphrec_id_len"
WEIGHT = "weight"


def _dgl() -> tuple[Any, Any]:
    try:
        import dgl
        import torch
    except Exception as exc:  # DGL raises FileNotFoundError/OSError, not ImportError, beside a newer torch
        raise MissingDependencyError(
            "DGL interop needs dgl (pip install 'graphrec[dgl]'); DGL 2.1 loads only beside torch <= 2.2.1, "
            f"so use its own environment (make venv-dgl). Import failed: {type(exc).__name__}: {str(exc)[:160]}"
        ) from None
    return dgl, torch


def _id_data(ids: IdMap) -> dict[str, np.ndarray]:
    """Node data carrying the external ids (see the module docstring)."""
    if ids.is_int or len(ids) == 0:
        return {ID: ids.ids.astype(np.int64)}
    arrays = ids_to_arrays("ids", ids)
    utf8, offsets = arrays["ids.utf8"], arrays["ids.offsets"]
    lengths = np.diff(offsets)
    padded = np.zeros((len(ids), int(lengths.max())), dtype=np.uint8)
    rows = np.repeat(np.arange(len(ids)), lengths)
    padded[rows, np.arange(utf8.size) - offsets[:-1][rows]] = utf8
    return {ID_UTF8: padded, ID_LEN: lengths.astype(np.int64)}


def _ids_from_data(node_type: str, data: Any, n: int) -> IdMap:
    if ID in data:
        return ids_from_arrays({node_type: _numpy(data[ID]).astype(np.int64)}, node_type)
    if ID_UTF8 in data and ID_LEN in data:
        padded, lengths = _numpy(data[ID_UTF8]).astype(np.uint8), _numpy(data[ID_LEN]).astype(np.int64)
        if padded.ndim != 2 or lengths.shape != (n,) or (lengths < 0).any() or (lengths > padded.shape[1]).any():
            raise InvalidParameterError(f"node type {node_type!r}: malformed {ID_UTF8}/{ID_LEN} node data")
        mask = np.arange(padded.shape[1])[None, :] < lengths[:, None]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return ids_from_arrays({f"{node_type}.utf8": padded[mask], f"{node_type}.offsets": offsets}, node_type)
    return IdMap(np.arange(n, dtype=np.int64))


def _numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else tensor)


def _padded_tags(tags: sp.csr_matrix) -> np.ndarray:
    counts = np.diff(tags.indptr)
    out = np.full((tags.shape[0], int(counts.max(initial=0))), -1, dtype=np.int64)
    rows = np.repeat(np.arange(tags.shape[0]), counts)
    out[rows, np.arange(tags.nnz) - tags.indptr[:-1][rows]] = tags.indices
    return out


def to_dgl(graph: HeteroGraph, *, side_info: SideInfo | None = None, reverse: bool = True) -> Any:
    """The graph as a ``dgl.DGLGraph`` heterograph (see the module docstring for the layout).

    Parameters
    ----------
    graph : HeteroGraph
    side_info : SideInfo, optional
        Side-info of ``graph``'s notes, in its note order (e.g. :func:`graphrec.graph.side_info_from_graph`),
        written as note data.
    reverse : bool
        Add the ``rev_`` edge type of every relation.

    Raises
    ------
    InvalidParameterError
        If the side-info does not match the graph's notes.
    MissingDependencyError
        If DGL cannot be imported.

    Examples
    --------
    >>> g = to_dgl(graph, side_info=side_info_from_graph(graph))  # doctest: +SKIP
    >>> g.edges[("user", "engages", "note")].data["weight"].dtype  # doctest: +SKIP
    torch.float32
    """
    dgl, torch = _dgl()
    edge_types: list[EdgeType] = list(graph.edge_types)
    if reverse:
        edge_types += [(dst, f"rev_{rel}", src) for src, rel, dst in graph.edge_types]
    matrices = {et: graph.relation(et) for et in edge_types}
    data: dict[EdgeType, tuple[Any, Any]] = {}
    for et, m in matrices.items():
        rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        data[et] = (torch.from_numpy(rows), torch.from_numpy(m.indices.astype(np.int64)))
    g = dgl.heterograph(data, num_nodes_dict={t: graph.num_nodes(t) for t in graph.node_types}, idtype=torch.int64)
    for et, m in matrices.items():
        g.edges[et].data[WEIGHT] = torch.from_numpy(np.ascontiguousarray(m.data, dtype=np.float32))
    for t in graph.node_types:
        for key, value in _id_data(graph.id_map(t)).items():
            g.nodes[t].data[key] = torch.from_numpy(value)
    if side_info is not None:
        for key, value in _note_data(graph, side_info).items():
            g.nodes["note"].data[key] = torch.from_numpy(value)
    return g


def _note_data(graph: HeteroGraph, side_info: SideInfo) -> dict[str, np.ndarray]:
    n = graph.num_nodes("note")
    if side_info.n_notes != n:
        raise InvalidParameterError(f"side_info describes {side_info.n_notes} notes; the graph has {n}")
    out: dict[str, np.ndarray] = {}
    if side_info.text is not None:
        out["text"] = np.ascontiguousarray(side_info.text, dtype=np.float32)
    if side_info.authors is not None:
        out["author"] = np.asarray(side_info.authors, dtype=np.int64)
    if side_info.tags is not None:
        out["tags"] = _padded_tags(sp.csr_matrix(side_info.tags))
    return out


def from_dgl(g: Any) -> HeteroGraph:
    """A :class:`HeteroGraph` from a DGL heterograph (the inverse of :func:`to_dgl`).

    Raises
    ------
    InvalidParameterError
        If weights are not one per edge, negative or not finite, or id node data are malformed.
    """
    _dgl()
    id_maps = {t: _ids_from_data(t, g.nodes[t].data, int(g.num_nodes(t))) for t in g.ntypes}
    canonical = [tuple(et) for et in g.canonical_etypes]
    relations: dict[EdgeType, sp.csr_matrix] = {}
    for et in canonical:
        src, rel, dst = et
        if rel.startswith("rev_"):
            forward = (dst, rel[4:], src)
            if forward in canonical:
                continue
            et_out, transpose = forward, True
        else:
            et_out, transpose = (src, rel, dst), False
        u, v = (_numpy(x).astype(np.int64) for x in g.edges(etype=et, order="eid"))
        frame = g.edges[et].data
        w = _numpy(frame[WEIGHT]).astype(np.float32) if WEIGHT in frame else np.ones(u.size, np.float32)
        if w.ndim == 2 and w.shape[1] == 1:
            w = w[:, 0]
        if w.shape != u.shape:
            raise InvalidParameterError(f"edge type {et}: '{WEIGHT}' must hold one value per edge; got {w.shape}")
        shape = (g.num_nodes(src), g.num_nodes(dst))
        m = sp.coo_matrix((w, (u, v)), shape=shape).tocsr()  # sums parallel edges
        relations[et_out] = m.T.tocsr() if transpose else m
    return HeteroGraph(id_maps, relations)
