"""LightGCN propagation over the weighted heterogeneous graph, exact and historical.

One node set ``[users | notes | tags]``; the relations are blocks of one symmetric matrix ``W``
(``user–engages–note`` with its edge weights, ``note–has_tag–tag`` times ``tag_weight``,
``note–similar–note`` symmetrised times ``similar_weight``), normalised to
``A = D^-1/2 W D^-1/2`` (:func:`propagation_matrix`). The model's output is LightGCN's layer mean
``F = P x``, ``P = (I + A + ... + A^L) / (L + 1)``, of the layer-0 vectors ``x``
(:func:`propagate`, PyTorch Geometric's ``LGConv`` over a ``torch.sparse`` CSR matrix).

Training never runs that product per step. :class:`History` keeps a snapshot ``x̄`` of the layer-0
vectors and its exact propagation ``F̄ = P x̄``, refreshed a fixed number of times per epoch (each
refresh is ``L`` sparse products: linear in the graph). A step needs ``F`` only for its targets
``T`` (the batch's users and candidate notes), and since ``P`` is linear::

    F_T = F̄_T + (P (x - x̄))_T ≈ F̄_T + α (x - x̄)_T + α Â_T (x - x̄),    α = 1 / (L + 1)

where ``Â_T`` is the targets' rows of ``A``, exact or sampled (:mod:`.sampling`). Right after a
refresh the forward value is exact; between refreshes only the deeper terms
(``A^2 (x - x̄)`` and beyond) are stale. Gradients reach each target's own layer-0 vector and its
(sampled) neighbours', so one step costs work proportional to the batch times the fan-out,
whatever the size of the graph (the GNNAutoScale idea, with LightGCN's linearity making the
historical part exact at refresh time).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.nn import LGConv

from graphrec.exceptions import InvalidParameterError
from graphrec.graph import ENGAGES, HAS_TAG, SIMILAR, HeteroGraph

__all__ = ["History", "SymmetricLGConv", "propagate", "propagation_matrix", "torch_csr"]


def _check_weights(name: str, m: sp.csr_matrix) -> None:
    if m.nnz and not np.isfinite(m.data).all():
        raise InvalidParameterError(f"relation {name} has NaN or infinite edge weights")
    if m.nnz and (m.data < 0).any():
        raise InvalidParameterError(f"relation {name} has negative edge weights")


def propagation_matrix(
    graph: HeteroGraph, engages: sp.csr_matrix | None = None, *, tag_weight: float = 1.0, similar_weight: float = 0.0
) -> tuple[sp.csr_matrix, dict[str, int]]:
    """The symmetric normalised matrix ``D^-1/2 W D^-1/2`` over ``[users | notes | tags]``.

    ``engages`` overrides the graph's ``user–engages–note`` weights (for a training subset or
    debiased weights). Tags take part when the graph has ``note–has_tag–tag`` and
    ``tag_weight > 0``; Swing neighbours when it has ``note–similar–note`` and
    ``similar_weight > 0``. Nodes without edges get an empty row. Returns the matrix (float32,
    sorted indices) and the node offsets ``{"user", "note", "tag", "end"}``.
    """
    if not graph.has_relation(ENGAGES):
        raise InvalidParameterError(f"the graph has no {ENGAGES} relation; the GNN needs user–note engagements")
    r = sp.csr_matrix(graph.relation(ENGAGES) if engages is None else engages, dtype=np.float32)
    _check_weights(str(ENGAGES), r)
    if r.nnz == 0:
        raise InvalidParameterError("the graph has no user–note engagements to learn from")
    nu, nn_ = r.shape
    nt = graph.num_nodes("tag") if (tag_weight > 0 and graph.has_relation(HAS_TAG)) else 0
    blocks: list[list[Any]] = [[None, r, None], [r.T, None, None], [None, None, None]]
    if nt:
        t = graph.relation(HAS_TAG).astype(np.float32)
        _check_weights(str(HAS_TAG), t)
        blocks[1][2] = t * np.float32(tag_weight)
        blocks[2][1] = blocks[1][2].T
    if similar_weight > 0 and graph.has_relation(SIMILAR):
        s = graph.relation(SIMILAR).astype(np.float32)
        _check_weights(str(SIMILAR), s)
        s = s.maximum(s.T) * np.float32(similar_weight)
        s.setdiag(0)
        blocks[1][1] = s
    sizes = [nu, nn_, nt]
    for i, n in enumerate(sizes):  # sp.bmat needs each block row/column sized
        if blocks[i][i] is None:
            blocks[i][i] = sp.csr_matrix((n, n), dtype=np.float32)
    keep = [i for i, n in enumerate(sizes) if n > 0]
    w = sp.bmat([[blocks[i][j] for j in keep] for i in keep], format="csr", dtype=np.float32)
    w.eliminate_zeros()
    deg = np.asarray(w.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    a = (sp.diags(inv) @ w @ sp.diags(inv)).tocsr().astype(np.float32)
    a.sort_indices()
    return a, {"user": 0, "note": nu, "tag": nu + nn_, "end": nu + nn_ + nt}


def torch_csr(a: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """A scipy CSR matrix as a ``torch.sparse_csr_tensor`` (int64 indices, float32 values)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(np.asarray(a.indptr, dtype=np.int64)),
            torch.from_numpy(np.asarray(a.indices, dtype=np.int64)),
            torch.from_numpy(np.asarray(a.data, dtype=np.float32)),
            size=a.shape,
            device=device,
        )


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ x`` for a symmetric sparse ``A``; the gradient is ``A @ grad`` (no transpose)."""

    @staticmethod
    def forward(ctx: Any, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, ctx.adj @ grad


class SymmetricLGConv(LGConv):
    """PyG's :class:`~torch_geometric.nn.LGConv` on a pre-normalised symmetric ``torch.sparse`` matrix."""

    def __init__(self) -> None:
        super().__init__(normalize=False)

    def message_and_aggregate(self, adj_t: Any, x: torch.Tensor) -> torch.Tensor:
        return _SymmetricSpMM.apply(adj_t, x)


_CONV = SymmetricLGConv()


def propagate(x: torch.Tensor, adj: torch.Tensor, layers: int) -> torch.Tensor:
    """LightGCN's layer mean ``(x + A x + ... + A^layers x) / (layers + 1)``."""
    total, h = x, x
    for _ in range(layers):
        h = _CONV(h, adj)
        total = total + h
    return total / (layers + 1)


class _BlockMM(torch.autograd.Function):
    """``M @ d`` for a sparse block ``M`` whose transpose is given (CPU CSR backward is slow)."""

    @staticmethod
    def forward(ctx: Any, m: torch.Tensor, mt: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        ctx.mt = mt
        return m @ d

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        return None, None, ctx.mt @ grad


class History:
    """Historical propagation: ``F_T = F̄_T + α (x - x̄)_T + α Â_T (x - x̄)`` (module docstring).

    ``refresh(x)`` stores the snapshot and its exact propagation; ``forward`` evaluates the
    targets of one step from the live layer-0 rows of the step's nodes.
    """

    def __init__(
        self,
        adj: torch.Tensor,
        layers: int,
        *,
        propagator: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor] = propagate,
    ) -> None:
        self.adj = adj
        self.layers = layers
        #: The full propagation (:func:`propagate`, or a data-parallel split of it).
        self.propagator = propagator
        self.alpha = 1.0 / (layers + 1)
        self.snapshot: torch.Tensor | None = None
        self.output: torch.Tensor | None = None

    @torch.no_grad()
    def refresh(self, x: torch.Tensor) -> None:
        self.snapshot = x.detach().clone()
        self.output = self.propagator(self.snapshot, self.adj, self.layers)

    def forward(
        self, targets: torch.Tensor, nodes: torch.Tensor, x: torch.Tensor, block: sp.csr_matrix
    ) -> torch.Tensor:
        """``F`` for ``targets`` (node ids, ``(t,)``).

        ``nodes`` (``(n,)``) are the step's distinct node ids and ``x`` (``(n, dim)``) their live
        layer-0 vectors; ``block`` (``(t, n)``, CSR) holds ``α`` on each target's own column plus
        ``α Â`` on its neighbours' (see :meth:`block_matrix`).
        """
        if self.snapshot is None or self.output is None:
            raise RuntimeError("History.refresh must run before History.forward")
        delta = x - self.snapshot[nodes]
        m = torch_csr(block, x.device)
        mt = torch_csr(block.T.tocsr(), x.device)
        return self.output[targets] + _BlockMM.apply(m, mt, delta)

    def block_matrix(
        self, target_pos: np.ndarray, indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_nodes: int
    ) -> sp.csr_matrix:
        """The ``(t, n)`` block ``α I_T + α Â_T`` from the sampler's one-hop rows (local columns)."""
        t = target_pos.size
        hop = sp.csr_matrix((vals * np.float32(self.alpha), cols, indptr), shape=(t, n_nodes))
        own = sp.csr_matrix((np.full(t, self.alpha, np.float32), (np.arange(t), target_pos)), shape=(t, n_nodes))
        return sp.csr_matrix(hop + own)
