"""Conversions from :class:`HeteroGraph` to PyTorch Geometric inputs.

* :func:`to_hetero_data`: a ``torch_geometric.data.HeteroData`` with ``num_nodes`` per node type
  and, per relation and its reverse, ``edge_index`` (int64, shape ``(2, E)``) and
  ``edge_weight`` (float32, shape ``(E,)``).
* :func:`bipartite_edge_index`: the user–note edges LightGCN-style models propagate over, either
  as a bipartite ``(2, E)`` index (row 0 users, row 1 notes) or, with ``homogeneous=True``, on one
  node set where notes are offset by ``n_users`` and both directions are present.

torch and torch_geometric are imported when these functions are called, not with graphrec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from graphrec.exceptions import InvalidParameterError, MissingDependencyError
from graphrec.graph.build import ENGAGES
from graphrec.graph.hetero import EdgeType, HeteroGraph, _reverse

if TYPE_CHECKING:
    import torch

__all__ = ["bipartite_edge_index", "csr_to_edge_index", "to_hetero_data"]


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise MissingDependencyError("this conversion needs torch; install graphrec with its dependencies") from exc
    return torch


def csr_to_edge_index(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``(edge_index, edge_weight)`` of a CSR matrix: rows are sources, columns targets."""
    m = sp.csr_matrix(matrix)
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return np.vstack([rows, m.indices.astype(np.int64)]), m.data.astype(np.float32, copy=False)


def to_hetero_data(graph: HeteroGraph, *, reverse: bool = True) -> Any:
    """Convert to ``torch_geometric.data.HeteroData`` (with ``rev_`` relations when ``reverse``).

    Examples
    --------
    >>> data = to_hetero_data(graph)  # doctest: +SKIP
    >>> data["user", "engages", "note"].edge_index.shape  # doctest: +SKIP
    torch.Size([2, 1234])
    """
    torch = _torch()
    try:
        from torch_geometric.data import HeteroData
    except ImportError as exc:
        raise MissingDependencyError("to_hetero_data needs torch_geometric (pip install torch_geometric)") from exc
    data = HeteroData()
    for t in graph.node_types:
        data[t].num_nodes = graph.num_nodes(t)
    edge_types: list[EdgeType] = list(graph.edge_types)
    if reverse:
        edge_types += [_reverse(et) for et in graph.edge_types]
    for et in edge_types:
        index, weight = csr_to_edge_index(graph.relation(et))
        data[et].edge_index = torch.from_numpy(index)
        data[et].edge_weight = torch.from_numpy(np.ascontiguousarray(weight))
    return data


def bipartite_edge_index(
    graph: HeteroGraph, *, edge_type: EdgeType = ENGAGES, homogeneous: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """User–note edges as torch tensors ``(edge_index, edge_weight)``.

    Parameters
    ----------
    graph : HeteroGraph
    edge_type : (src, rel, dst)
        The bipartite relation (default user–engages–note).
    homogeneous : bool
        If True, place both node types on one index space (``dst`` offset by ``n_src``) and add
        both directions, the layout ``torch_geometric.nn.LGConv`` expects.

    Raises
    ------
    InvalidParameterError
        If the graph lacks the relation or it has no edges.
    """
    torch = _torch()
    if not graph.has_relation(edge_type):
        raise InvalidParameterError(f"the graph has no relation {edge_type}; it has {graph.edge_types}")
    matrix = graph.relation(edge_type)
    if matrix.nnz == 0:
        raise InvalidParameterError(f"relation {edge_type} has no edges")
    index, weight = csr_to_edge_index(matrix)
    if homogeneous:
        n_src = matrix.shape[0]
        fwd = np.vstack([index[0], index[1] + n_src])
        index = np.hstack([fwd, fwd[::-1]])
        weight = np.concatenate([weight, weight])
    return torch.from_numpy(np.ascontiguousarray(index)), torch.from_numpy(np.ascontiguousarray(weight))
