"""GNN embeddings: LightGCN-style propagation over the weighted heterogeneous graph, with an
inductive side-info encoder so that notes without interactions still get an embedding.

Design
------
**One propagation matrix, typed by relation coefficients.** Users, notes and tags are laid out
as one node set ``[users | notes | tags]``. The (weighted) relations are placed as blocks of one
symmetric matrix ``W``: ``user–engages–note`` with its edge weights (plain counts, event
weights, or the debiased weights of :mod:`graphrec.weights`), ``note–has_tag–tag`` scaled by
``tag_weight`` and ``note–similar–note`` (Swing, symmetrised) scaled by ``similar_weight``.
``A = D^-1/2 W D^-1/2`` is propagated with PyTorch Geometric's :class:`~torch_geometric.nn.LGConv`
(``normalize=False``) over a ``torch.sparse`` CSR matrix, so no pyg-lib/torch-sparse is needed.
Because ``A`` is symmetric, the backward pass is ``A @ grad`` again, one more sparse product
like the forward's, instead of torch's generic path through the transpose (on Gowalla, 2 CPU
cores: 0.77 s for the 3-layer backward that way, against 0.22 s for the 3-layer forward);
:class:`SymmetricLGConv` does that. The output is LightGCN's
layer mean ``(e0 + A e0 + ... + A^L e0) / (L + 1)``. Relation coefficients are the "typed
projection": one scalar per relation, cheap and easy to reason about (a per-relation matrix
buys little once propagation is linear).

**Note representation.** Layer 0 of note ``n`` is ``id(n) + g * s(n)``: its ID embedding plus
a gated (per-dimension sigmoid ``g``) side-info vector ``s(n)`` from :class:`SideInfoEncoder`:
a projection of the note's text vector (all-MiniLM-L6-v2), the mean of its tags' layer-0
embeddings and its author's layer-0 user embedding, summed and passed through a residual MLP.
A brand-new note has no ID embedding and no edges; its embedding is ``s(n)`` alone. So that
``s(n)`` lives in the same space as propagated notes, training adds a *cold view* loss (weight
``cold_weight``): the same softmax with every positive note replaced by ``s(n)``, in the
spirit of DropoutNet. Its negatives are the batch's other ``s(n)`` plus, with
``cold_extra_negatives > 0``, that many uniform draws of training notes' ``s(n)`` (a brand-new
note competes with other brand-new notes, not with propagated ones). Without any side-info the
model is a weighted (heterogeneous) LightGCN.

**Losses.** ``similarity`` is ``"dot"`` (raw inner products) or ``"cosine"`` (unit vectors
in the loss, and exported as unit vectors so inner-product serving ranks by cosine).
``"softmax"`` (default): sampled softmax with in-batch negatives at temperature
``temperature`` plus ``extra_negatives`` uniform ones shared by the batch, logQ-corrected for
the popularity of in-batch negatives. ``"bpr"``: one uniform negative per positive. ``"ccl"``:
SimpleX's cosine contrastive loss (needs ``similarity="cosine"``): ``1 - cos(u, i)`` plus
``ccl_negative_weight`` times the mean of ``relu(cos(u, j) - ccl_margin)`` over the
``extra_negatives`` uniform negatives shared by the batch. Options:
``cl_weight > 0`` adds the XSimGCL regulariser (uniform noise of size ``cl_eps`` added at every
layer; InfoNCE between the final and the layer-``cl_layer`` view, so it costs no extra
propagation); ``pda_gamma > 0`` adds PDA's popularity term ``gamma * log(pop)`` to training
logits only, so ranking with the plain score removes the popularity confounder; ``l2`` is
LightGCN's penalty on the batch's layer-0 embeddings (sum of squares / batch size). With the
softmax loss it must be far stronger than LightGCN's 1e-4 to matter: 0.1 (the default) lifted
Gowalla's validation recall@20 from a peak of 0.199 (epoch 8) to 0.2196 (epoch 20) and test
recall@20 (with the refit) from 0.1607 to 0.1844; 1e-3 changed nothing, 1.0 underfits.

**Trainer.** Full-graph propagation every step (no sampler), Adam, CPU by default and CUDA
when ``device="cuda"`` (or ``"auto"`` finds one); a held-out ``valid_fraction`` of engagements
drives early stopping on Recall@20 (``patience`` evaluations without improvement); the best
weights are restored at the end. A model meant for *new* notes can stop on them instead:
``fit(..., cold_validation=ColdValidation(side_info, engagements))`` takes notes held out whole
and stops where the side-info encoder alone recalls them best (``valid_cold_recall@20``; the
warm figure is still logged). Cold recall peaks well before warm recall: on CiteULike's cold
split, warm validation recall peaked at epoch 24, recall of held-out cold items at epoch 8–12,
and stopping there lifted cold Recall@100 by about 4% (``benchmarks/README.md``, cold_notes.py).
With ``refit=True`` (and a carved-out validation set) the model is then trained again from the same seed on *all* engagements for the best epoch count:
the held-out share costs light users most (one of a user's eight items is 12%), and the final
model should not lose it. With ``checkpoint_dir`` the trainer writes the best and the
latest state (``.npz`` + JSON, atomic, no pickle) and ``fit`` resumes from the latest one
(same configuration; only ``epochs`` may change, to extend a run); the refit phase keeps its own
state in ``checkpoint_dir/refit``, so an interrupted refit resumes too.
Runs are seeded. ``fit`` returns ``self``; embeddings come out as numpy arrays
(``user_embeddings_``, ``note_embeddings_``, ``tag_embeddings_``) and :meth:`embed_new_notes`
embeds side-info of unseen notes.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.nn import LGConv

from graphrec._atomic import atomic_file
from graphrec._progress import progress
from graphrec._validation import check_choice, check_float, check_int
from graphrec.exceptions import ArtifactError, InvalidParameterError, NotFittedError
from graphrec.graph import ENGAGES, HAS_TAG, SIMILAR, HeteroGraph
from graphrec.model.encoder import NoteEncoder
from graphrec.model.side_info import SideInfo

__all__ = [
    "ColdValidation",
    "GNNConfig",
    "GNNRecommender",
    "SideInfoEncoder",
    "SymmetricLGConv",
    "propagation_matrix",
    "split_validation",
]

_log = logging.getLogger(__name__)
_FORMAT = "graphrec.gnn"
_VERSION = 1


@dataclass(frozen=True)
class GNNConfig:
    """Hyper-parameters of :class:`GNNRecommender`.

    Defaults are the best settings measured so far (``benchmarks/README.md``: a tuning split of
    Gowalla's training data), except ``refit``: it is off because it doubles training time,
    although it gained 6.5% recall@20 there; ``benchmarks/lightgcn_protocol.py`` turns it on.
    """

    dim: int = 64
    layers: int = 3
    loss: str = "softmax"
    similarity: str = "dot"
    temperature: float = 0.15
    extra_negatives: int = 1024
    logq: bool = True
    batch_size: int = 4096
    lr: float = 2e-3
    l2: float = 0.1
    epochs: int = 100
    tag_weight: float = 1.0
    similar_weight: float = 0.0
    cold_weight: float = 0.5
    cold_extra_negatives: int = 0
    ccl_margin: float = 0.9
    ccl_negative_weight: float = 150.0
    cl_weight: float = 0.0
    cl_eps: float = 0.1
    cl_tau: float = 0.2
    cl_layer: int = 1
    pda_gamma: float = 0.0
    valid_fraction: float = 0.05
    refit: bool = False
    eval_every: int = 1
    patience: int = 3
    seed: int = 0
    device: str = "auto"

    def validated(self) -> GNNConfig:
        """Check every field; raise :class:`InvalidParameterError` naming the first bad one."""
        check_int("dim", self.dim, minimum=1)
        check_int("layers", self.layers, minimum=0)
        check_choice("loss", self.loss, ("softmax", "bpr", "ccl"))
        if self.loss == "ccl" and self.similarity != "cosine":
            raise InvalidParameterError("loss='ccl' is a cosine loss; set similarity='cosine' with it")
        check_float("ccl_margin", self.ccl_margin, minimum=-1.0, maximum=1.0)
        check_int("extra_negatives", self.extra_negatives, minimum=1 if self.loss == "ccl" else 0)
        check_int("cold_extra_negatives", self.cold_extra_negatives, minimum=0)
        check_choice("similarity", self.similarity, ("dot", "cosine"))
        check_float("temperature", self.temperature, minimum=0.0, exclusive_minimum=True)
        check_int("batch_size", self.batch_size, minimum=2)
        check_float("lr", self.lr, minimum=0.0, exclusive_minimum=True)
        check_float("l2", self.l2, minimum=0.0)
        check_int("epochs", self.epochs, minimum=1)
        for name in (
            "tag_weight",
            "similar_weight",
            "cold_weight",
            "ccl_negative_weight",
            "cl_weight",
            "cl_eps",
            "pda_gamma",
        ):
            check_float(name, getattr(self, name), minimum=0.0)
        check_float("cl_tau", self.cl_tau, minimum=0.0, exclusive_minimum=True)
        check_int("cl_layer", self.cl_layer, minimum=0)
        if self.cl_weight > 0 and self.cl_layer > self.layers:
            raise InvalidParameterError(f"`cl_layer` must be <= layers ({self.layers}); got {self.cl_layer}")
        check_float("valid_fraction", self.valid_fraction, minimum=0.0, maximum=0.5)
        check_int("eval_every", self.eval_every, minimum=1)
        check_int("patience", self.patience, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        return self


# --------------------------------------------------------------------------------------------
# Propagation


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
    ``similar_weight > 0``. Returns the matrix and the node offsets ``{"user", "note", "tag"}``.
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


def _torch_csr(a: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(a.indptr.astype(np.int64)),
            torch.from_numpy(a.indices.astype(np.int64)),
            torch.from_numpy(a.data.astype(np.float32)),
            size=a.shape,
            device=device,
        )


def split_validation(engages: sp.csr_matrix, fraction: float, *, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Hold out ``fraction`` of each user's engagements, at least one (users with >= 3; 2 stay in train).

    Every user with >= 3 engagements is validated, light users included, so early stopping
    tracks the per-user mean that test metrics take rather than the heavy users' taste.
    """
    r = sp.csr_matrix(engages)
    rng = np.random.default_rng(seed)
    counts = np.diff(r.indptr)
    take = np.maximum(np.floor(counts * fraction + rng.random(counts.size)).astype(np.int64), 1)
    take = np.where(counts >= 3, np.minimum(take, counts - 2), 0)
    held = np.zeros(r.nnz, dtype=bool)
    for u in np.flatnonzero(take):
        lo = r.indptr[u]
        held[lo + rng.choice(counts[u], size=take[u], replace=False)] = True
    rows = np.repeat(np.arange(r.shape[0]), counts)
    train = sp.csr_matrix((r.data[~held], (rows[~held], r.indices[~held])), shape=r.shape)
    valid = sp.csr_matrix((np.ones(held.sum(), np.float32), (rows[held], r.indices[held])), shape=r.shape)
    return train, valid


# --------------------------------------------------------------------------------------------
# Modules


def _sparse_rows(m: sp.csr_matrix, device: torch.device, *, mean: bool) -> torch.Tensor:
    m = sp.csr_matrix(m, dtype=np.float32)
    m.data[:] = 1.0
    if mean:
        counts = np.maximum(np.diff(m.indptr), 1).astype(np.float32)
        m = sp.diags(1.0 / counts) @ m
    return _torch_csr(sp.csr_matrix(m), device)


class SideInfoEncoder(nn.Module):
    """``s(n) = h + W2 relu(W1 h)``, ``h = P text + mean(tag embeddings) + author embedding``.

    Tag and author vectors are the layer-0 embeddings of the tag and user nodes, passed in at
    call time, so the encoder shares them with the graph.
    """

    def __init__(self, dim: int, text_dim: int) -> None:
        super().__init__()
        self.text = nn.Linear(text_dim, dim, bias=False) if text_dim else None
        self.hidden = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self,
        text: torch.Tensor | None,
        tags: torch.Tensor | None,
        tag_emb: torch.Tensor | None,
        authors: torch.Tensor | None,
        user_emb: torch.Tensor,
        n: int,
    ) -> torch.Tensor:
        h = user_emb.new_zeros((n, user_emb.shape[1]))
        if text is not None and self.text is not None:
            h = h + self.text(text)
        if tags is not None and tag_emb is not None:
            h = h + tags @ tag_emb
        if authors is not None:
            known = authors >= 0
            h = h + user_emb[authors.clamp(min=0)] * known.unsqueeze(1)
        return h + self.out(F.relu(self.hidden(h)))


class HeteroLightGCN(nn.Module):
    """Embedding tables, the side-info encoder and the propagation (see the module docstring)."""

    def __init__(
        self, n_users: int, n_notes: int, n_tags: int, dim: int, layers: int, text_dim: int, side: bool
    ) -> None:
        super().__init__()
        self.n_users, self.n_notes, self.n_tags = n_users, n_notes, n_tags
        self.user = nn.Embedding(n_users, dim)
        self.note = nn.Embedding(n_notes, dim)
        self.tag = nn.Embedding(max(n_tags, 1), dim)
        for e in (self.user, self.note, self.tag):
            nn.init.normal_(e.weight, std=0.1)
        self.encoder = SideInfoEncoder(dim, text_dim) if side else None
        self.gate = nn.Parameter(torch.zeros(dim)) if side else None
        self.conv = SymmetricLGConv()
        self.layers = layers

    def side(self, text: Any, tags: Any, authors: Any, n: int) -> torch.Tensor:
        assert self.encoder is not None
        return self.encoder(text, tags, self.tag.weight if self.n_tags else None, authors, self.user.weight, n)

    def layer0(self, side: torch.Tensor | None) -> torch.Tensor:
        note = self.note.weight
        if side is not None and self.gate is not None:
            note = note + torch.sigmoid(self.gate) * side
        parts = [self.user.weight, note] + ([self.tag.weight[: self.n_tags]] if self.n_tags else [])
        return torch.cat(parts)

    def propagate(
        self, x: torch.Tensor, adj: torch.Tensor, *, noise: float = 0.0, keep: int = -1
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Layer mean of ``x`` propagated ``layers`` times; also layer ``keep``'s output (or None)."""
        total = x
        kept = x if keep == 0 else None
        for layer in range(1, self.layers + 1):
            x = self.conv(x, adj)
            if noise > 0:
                x = x + torch.sign(x) * F.normalize(torch.rand_like(x), dim=1) * noise
            total = total + x
            if layer == keep:
                kept = x
        return total / (self.layers + 1), kept


# --------------------------------------------------------------------------------------------
# Estimator


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("device='cuda' but torch sees no CUDA device")
    return torch.device(name)


def recall_at_k(
    user_emb: torch.Tensor,
    note_emb: torch.Tensor,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    *,
    k: int = 20,
    batch: int = 2048,
) -> float:
    """Mean Recall@k (hits / ``|test_u|``, LightGCN's definition) by exact scoring, train items masked."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    if users.size == 0:
        return float("nan")
    total = 0.0
    for s in range(0, users.size, batch):
        b = users[s : s + batch]
        scores = user_emb[torch.from_numpy(b).to(user_emb.device)] @ note_emb.T
        tr = train[b]
        rows = torch.from_numpy(np.repeat(np.arange(b.size), np.diff(tr.indptr))).to(scores.device)
        scores[rows, torch.from_numpy(tr.indices.astype(np.int64)).to(scores.device)] = -torch.inf
        top = torch.topk(scores, k, dim=1).indices.cpu().numpy()
        te = test[b]
        hit = np.zeros(top.shape, dtype=bool)
        for i in range(b.size):
            hit[i] = np.isin(top[i], te.indices[te.indptr[i] : te.indptr[i + 1]])
        total += float((hit.sum(axis=1) / np.diff(te.indptr)).sum())
    return total / users.size


@dataclass(frozen=True)
class ColdValidation:
    """Notes held out *whole* (no node, no edge) with their users' engagements, for early stopping.

    ``engagements`` is users (the training graph's) x these notes, in ``side_info``'s order.
    Passed to :meth:`GNNRecommender.fit`, it makes training stop and keep the weights where the
    side-info encoder alone recalls these notes best (``valid_cold_recall@20``), instead of where
    the warm validation engagements are recalled best.
    """

    side_info: SideInfo
    engagements: sp.csr_matrix


@dataclass(frozen=True)
class _ColdValidationTensors:
    tensors: dict[str, torch.Tensor | None]
    engagements: sp.csr_matrix  # users x these notes


@dataclass
class TrainingLog:
    """What :meth:`GNNRecommender.fit` did: per-evaluation validation recall, timings, best epoch.

    ``best_valid_recall`` is the metric that chose the best epoch: ``valid_cold_recall@20`` when
    ``fit`` had a :class:`ColdValidation`, else ``valid_recall@20``. ``train_seconds`` counts all
    training, a refit's ``refit_seconds`` included.
    """

    epochs_run: int = 0
    best_epoch: int = 0
    best_valid_recall: float = float("nan")
    train_seconds: float = 0.0
    stopped_early: bool = False
    refit_epochs: int = 0
    refit_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


class GNNRecommender:
    """Train :class:`HeteroLightGCN` on a :class:`~graphrec.graph.HeteroGraph`; sklearn-style.

    >>> from graphrec.testing import make_ugc_dataset
    >>> from graphrec.graph import build_graph
    >>> data = make_ugc_dataset(n_users=60, n_notes=80, n_engagements=900, seed=1)
    >>> g = build_graph(data.interactions, data.notes)
    >>> model = GNNRecommender(dim=8, epochs=2, batch_size=256, show_progress=False).fit(g)
    >>> model.user_embeddings_.shape, model.note_embeddings_.shape
    ((60, 8), (80, 8))
    """

    def __init__(
        self,
        config: GNNConfig | None = None,
        *,
        checkpoint_dir: str | Path | None = None,
        show_progress: bool | None = None,
        **overrides: Any,
    ) -> None:
        base = config or GNNConfig()
        unknown = set(overrides) - {f.name for f in fields(GNNConfig)}
        if unknown:
            raise InvalidParameterError(f"unknown GNN option(s): {sorted(unknown)}")
        self.config = GNNConfig(**{**asdict(base), **overrides}).validated()
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.show_progress = show_progress

    # ---- public API --------------------------------------------------------------------

    def fit(
        self,
        graph: HeteroGraph,
        side_info: SideInfo | None = None,
        *,
        validation: sp.csr_matrix | None = None,
        cold_validation: ColdValidation | None = None,
    ) -> GNNRecommender:
        """Train on ``graph`` (and ``side_info`` of its notes); returns ``self``.

        ``validation`` (users x notes, disjoint from the graph's engagements) drives early
        stopping; without it ``valid_fraction`` of the engagements is held out for that.
        ``cold_validation`` (needs ``side_info``): brand-new notes and their engagements; early
        stopping then follows how well they are recalled from side-info alone (the warm
        validation recall is still logged). Use it when the model is for cold notes: their
        recall peaks earlier in training than warm recall does.
        """
        cfg = self.config
        device = _resolve_device(cfg.device)
        if not graph.has_relation(ENGAGES):
            raise InvalidParameterError(f"the graph has no {ENGAGES} relation; the GNN needs user–note engagements")
        everything = sp.csr_matrix(graph.relation(ENGAGES), dtype=np.float32)
        engages, carved = everything, False
        if validation is None and cfg.valid_fraction > 0:
            engages, validation = split_validation(everything, cfg.valid_fraction, seed=cfg.seed)
            carved = True
        if validation is not None and validation.shape != engages.shape:
            raise InvalidParameterError(f"validation has shape {validation.shape}; engagements have {engages.shape}")
        n_notes = engages.shape[1]
        if side_info is not None and side_info.n_notes != n_notes:
            raise InvalidParameterError(f"side_info covers {side_info.n_notes} notes; the graph has {n_notes}")
        side = side_info if side_info is not None and not side_info.empty else None
        self._device = device
        self._side_tensors = self._tensors(side, device) if side is not None else None
        cold = self._cold_validation_tensors(cold_validation, side, engages.shape[0])
        log = TrainingLog()
        adj = self._train(graph, engages, side, validation, cfg.epochs, log, self.checkpoint_dir, cold)
        if cfg.refit and carved and log.best_epoch:
            # The held-out engagements go back in; the best epoch count found with them out is reused.
            _log.info("refit on all engagements for %d epochs", log.best_epoch)
            again = TrainingLog()
            refit_dir = self.checkpoint_dir / "refit" if self.checkpoint_dir is not None else None
            adj = self._train(graph, everything, side, None, log.best_epoch, again, refit_dir)
            log.refit_epochs, log.refit_seconds = again.epochs_run, again.train_seconds
            log.train_seconds += again.train_seconds
        self.log_ = log
        users, notes, tags = self._embed(adj)
        self.user_embeddings_ = users.cpu().numpy()
        self.note_embeddings_ = notes.cpu().numpy()
        self.tag_embeddings_ = tags.cpu().numpy() if self.model_.n_tags else None
        return self

    def note_encoder(self) -> NoteEncoder:
        """The trained side-info encoder as numpy arrays (for bundles and cold start)."""
        self._check_fitted()
        enc = self.model_.encoder
        if enc is None:
            raise InvalidParameterError("the model was trained without side-info; it cannot embed new notes")

        def arr(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)

        return NoteEncoder(
            user0=arr(self.model_.user.weight),
            tag0=arr(self.model_.tag.weight[: self.model_.n_tags]),
            w_hidden=arr(enc.hidden.weight),
            b_hidden=arr(enc.hidden.bias),
            w_out=arr(enc.out.weight),
            b_out=arr(enc.out.bias),
            w_text=arr(enc.text.weight) if enc.text is not None else None,
            normalize=self.config.similarity == "cosine",
        )

    def embed_new_notes(self, side_info: SideInfo) -> np.ndarray:
        """Embeddings of notes the model never saw, from their side-info alone, ``(n, dim)``.

        Tags and authors must be in the training graph's index spaces (see
        :func:`graphrec.model.side_info.side_info_for_notes`). Notes with no usable side-info get
        a zero vector; callers should check :meth:`SideInfo.usable` and fall back.
        """
        return self.note_encoder()(side_info)

    # ---- training internals ------------------------------------------------------------

    def _train(
        self,
        graph: HeteroGraph,
        engages: sp.csr_matrix,
        side: SideInfo | None,
        validation: sp.csr_matrix | None,
        epochs: int,
        log: TrainingLog,
        checkpoint_dir: Path | None,
        cold: _ColdValidationTensors | None = None,
    ) -> torch.Tensor:
        """Build a fresh model on ``engages`` and train it up to ``epochs``; returns the propagation matrix.

        With ``validation`` (or ``cold``: then it chooses), stops after ``patience`` evaluations
        without improvement and keeps the best weights. With ``checkpoint_dir``, saves (and
        resumes from) its state there.
        """
        cfg = self.config
        device = self._device
        torch.manual_seed(cfg.seed)
        adj_np, offsets = propagation_matrix(
            graph, engages, tag_weight=cfg.tag_weight, similar_weight=cfg.similar_weight
        )
        n_users, n_notes = engages.shape
        n_tags = offsets["end"] - offsets["tag"]
        text_dim = int(side.text.shape[1]) if side is not None and side.text is not None else 0
        self.model_ = HeteroLightGCN(n_users, n_notes, n_tags, cfg.dim, cfg.layers, text_dim, side is not None).to(
            device
        )
        adj = _torch_csr(adj_np, device)

        binary = engages.copy()
        binary.data[:] = 1.0
        binary.eliminate_zeros()
        pos_u = np.repeat(np.arange(n_users), np.diff(binary.indptr)).astype(np.int64)
        pos_i = binary.indices.astype(np.int64)
        pop = np.asarray(binary.sum(axis=0)).ravel() + 1.0
        log_pop = torch.from_numpy(np.log(pop).astype(np.float32)).to(device)
        opt = torch.optim.Adam(self.model_.parameters(), lr=cfg.lr)
        best_state = None
        bad = 0
        start_epoch = self._resume(opt, log, checkpoint_dir) if checkpoint_dir is not None else 0
        if start_epoch and (checkpoint_dir / "best.npz").exists():  # type: ignore[operator]
            best_state = self._load_state(checkpoint_dir / "best.npz")  # type: ignore[operator]
        if log.stopped_early:  # a resumed run that had already stopped: nothing left to train
            start_epoch = epochs
        t0 = time.perf_counter() - log.train_seconds
        n_batches = max(1, math.ceil(pos_u.size / cfg.batch_size))
        for epoch in progress(
            range(start_epoch, epochs), desc="GNN epochs", total=max(epochs - start_epoch, 0), enable=self.show_progress
        ):
            self.model_.train()
            # Per-epoch seeds: a run resumed from a checkpoint draws what an uninterrupted one would.
            rng = np.random.default_rng([cfg.seed, epoch])
            torch.manual_seed(cfg.seed * 100_003 + epoch)
            order = rng.permutation(pos_u.size)
            losses = []
            for b in range(n_batches):
                idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                loss = self._step(adj, pos_u[idx], pos_i[idx], n_notes, log_pop, rng)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            log.epochs_run = epoch + 1
            entry = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0}
            if ((validation is not None and validation.nnz) or cold) and (epoch + 1) % cfg.eval_every == 0:
                users, notes, _ = self._embed(adj)
                if validation is not None and validation.nnz:
                    entry["valid_recall@20"] = recall_at_k(users, notes, binary, sp.csr_matrix(validation), k=20)
                if cold is not None:
                    new_notes = self._embed_side(cold.tensors, cold.engagements.shape[1])
                    no_train = sp.csr_matrix(cold.engagements.shape, dtype=np.float32)  # nothing to mask
                    entry["valid_cold_recall@20"] = recall_at_k(users, new_notes, no_train, cold.engagements, k=20)
                score = entry["valid_cold_recall@20" if cold is not None else "valid_recall@20"]
                if not score <= log.best_valid_recall:  # first or better
                    log.best_valid_recall, log.best_epoch, bad = score, epoch + 1, 0
                    best_state = {k: v.detach().clone() for k, v in self.model_.state_dict().items()}
                    if checkpoint_dir is not None:
                        self._save_state(checkpoint_dir / "best.npz", best_state)
                else:
                    bad += 1
            log.train_seconds = time.perf_counter() - t0
            log.history.append(entry)
            _log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in entry.items() if k != "epoch"))
            log.stopped_early = bad >= cfg.patience
            if checkpoint_dir is not None:
                self._checkpoint(opt, log, checkpoint_dir)
            if log.stopped_early:
                break
        if best_state is not None:
            self.model_.load_state_dict(best_state)
        log.train_seconds = time.perf_counter() - t0
        return adj

    def _tensors(self, side: SideInfo, device: torch.device) -> dict[str, torch.Tensor | None]:
        return {
            "text": torch.from_numpy(np.ascontiguousarray(side.text, dtype=np.float32)).to(device)
            if side.text is not None
            else None,
            "tags": _sparse_rows(side.tags, device, mean=True) if side.tags is not None else None,
            "authors": torch.from_numpy(np.asarray(side.authors, dtype=np.int64)).to(device)
            if side.authors is not None
            else None,
        }

    def _side_all(self) -> torch.Tensor | None:
        return None if self._side_tensors is None else self._side(self._side_tensors, self.model_.n_notes)

    def _side(self, t: dict[str, torch.Tensor | None], n: int) -> torch.Tensor:
        """``s(n)`` for ``n`` notes from their side-info tensors (see :meth:`_tensors`)."""
        return self.model_.side(t["text"], t["tags"] if self.model_.n_tags else None, t["authors"], n)

    def _step(
        self,
        adj: torch.Tensor,
        u: np.ndarray,
        i: np.ndarray,
        n_notes: int,
        log_pop: torch.Tensor,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        cfg = self.config
        dev = self._device
        m = self.model_
        side = self._side_all()
        x0 = m.layer0(side)
        use_cl = cfg.cl_weight > 0
        final, kept = m.propagate(x0, adj, noise=cfg.cl_eps if use_cl else 0.0, keep=cfg.cl_layer if use_cl else -1)
        ut = torch.from_numpy(u).to(dev)
        it = torch.from_numpy(i).to(dev)
        ue = final[ut]
        ie = final[m.n_users + it]
        pda = cfg.pda_gamma
        if cfg.loss == "bpr":
            neg = torch.from_numpy(rng.integers(0, n_notes, size=u.size)).to(dev)
            ne = final[m.n_users + neg]
            diff = (ue * ie).sum(1) - (ue * ne).sum(1)
            if pda:
                diff = diff + pda * (log_pop[it] - log_pop[neg])
            loss = -F.logsigmoid(diff).mean()
            reg_items = torch.cat([it, neg])
        elif cfg.loss == "ccl":
            uniform = torch.from_numpy(rng.integers(0, n_notes, size=cfg.extra_negatives)).to(dev)
            negatives = F.normalize(final[m.n_users + uniform], dim=1)
            loss = self._ccl(ue, ie, negatives)
            reg_items = torch.cat([it, uniform])
        else:
            notes = final[m.n_users : m.n_users + n_notes]
            loss, extra = self._softmax(ue, ie, it, notes, cfg.extra_negatives, log_pop, rng)
            reg_items = torch.cat([it, extra]) if extra is not None else it
        if side is not None and cfg.cold_weight > 0:
            if cfg.loss == "ccl":  # the same negatives, against the side-info-only positives
                cold = self._ccl(ue, side[it], negatives)
            else:
                cold, _ = self._softmax(ue, side[it], it, side, cfg.cold_extra_negatives, log_pop, rng)
            loss = loss + cfg.cold_weight * cold
        if cfg.l2 > 0:
            reg = x0[ut].pow(2).sum() + x0[m.n_users + reg_items].pow(2).sum()
            loss = loss + cfg.l2 * reg / u.size
        if use_cl and kept is not None:
            uu = torch.unique(ut)
            ii = m.n_users + torch.unique(it)
            loss = loss + cfg.cl_weight * (
                _info_nce(final[uu], kept[uu], cfg.cl_tau) + _info_nce(final[ii], kept[ii], cfg.cl_tau)
            )
        return loss

    def _ccl(self, ue: torch.Tensor, ie: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """SimpleX's cosine contrastive loss: ``1 - cos(u, i) + w * mean_j relu(cos(u, j) - margin)``.

        ``negatives`` are unit vectors shared by the batch (uniform draws).
        """
        cfg = self.config
        ue, ie = F.normalize(ue, dim=1), F.normalize(ie, dim=1)
        pos = 1.0 - (ue * ie).sum(1)
        neg = F.relu(ue @ negatives.T - cfg.ccl_margin).mean(1)
        return (pos + cfg.ccl_negative_weight * neg).mean()

    def _softmax(
        self,
        ue: torch.Tensor,
        ie: torch.Tensor,
        it: torch.Tensor,
        notes: torch.Tensor,
        n_extra: int,
        log_pop: torch.Tensor,
        rng: np.random.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """In-batch sampled softmax (+ ``n_extra`` shared uniform negatives, rows of ``notes``).

        Positives are on the diagonal; returns the loss and the drawn note indices (or None).
        """
        cfg = self.config
        if cfg.similarity == "cosine":
            ue, ie = F.normalize(ue, dim=1), F.normalize(ie, dim=1)
        logits = ue @ ie.T / cfg.temperature
        # another row's positive that is this row's positive too is not a negative
        same = it.unsqueeze(0) == it.unsqueeze(1)
        same.fill_diagonal_(False)
        if cfg.logq:
            logits = logits - (log_pop[it] - log_pop[it].mean()).unsqueeze(0)
        if cfg.pda_gamma:
            logits = logits + cfg.pda_gamma * log_pop[it].unsqueeze(0)
        logits = logits.masked_fill(same, -torch.inf)
        extra = None
        if n_extra:
            extra = torch.from_numpy(rng.integers(0, notes.shape[0], size=n_extra)).to(ue.device)
            negatives = notes[extra]
            if cfg.similarity == "cosine":
                negatives = F.normalize(negatives, dim=1)
            more = ue @ negatives.T / cfg.temperature
            if cfg.pda_gamma:
                more = more + cfg.pda_gamma * log_pop[extra].unsqueeze(0)
            logits = torch.cat([logits, more], dim=1)
        target = torch.arange(ue.shape[0], device=ue.device)
        return F.cross_entropy(logits, target), extra

    @torch.no_grad()
    def _embed(self, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Final user, note and tag embeddings (one propagation)."""
        self.model_.eval()
        x0 = self.model_.layer0(self._side_all())
        final, _ = self.model_.propagate(x0, adj)
        if self.config.similarity == "cosine":  # served by inner product: store unit vectors
            final = F.normalize(final, dim=1)
        nu, nn_ = self.model_.n_users, self.model_.n_notes
        return final[:nu], final[nu : nu + nn_], final[nu + nn_ :]

    @torch.no_grad()
    def _embed_side(self, tensors: dict[str, torch.Tensor | None], n: int) -> torch.Tensor:
        """Side-info-only embeddings of notes outside the graph (as :meth:`embed_new_notes`)."""
        self.model_.eval()
        out = self._side(tensors, n)
        return F.normalize(out, dim=1) if self.config.similarity == "cosine" else out

    def _cold_validation_tensors(
        self, cold: ColdValidation | None, side: SideInfo | None, n_users: int
    ) -> _ColdValidationTensors | None:
        """Check ``cold`` against the training data; its side-info as tensors (or None)."""
        if cold is None:
            return None
        if side is None:
            raise InvalidParameterError("cold_validation needs side_info: new notes are embedded from it")
        eng = sp.csr_matrix(cold.engagements, dtype=np.float32, copy=True)
        eng.eliminate_zeros()
        if eng.shape != (n_users, cold.side_info.n_notes):
            raise InvalidParameterError(
                f"cold_validation engagements have shape {eng.shape}; expected (users, new notes) = "
                f"({n_users}, {cold.side_info.n_notes})"
            )
        if eng.nnz == 0:
            raise InvalidParameterError("cold_validation has no engagements to validate on")
        for part in ("text", "tags"):
            ours, theirs = getattr(side, part), getattr(cold.side_info, part)
            if (ours is None) != (theirs is None) or (ours is not None and ours.shape[1] != theirs.shape[1]):
                raise InvalidParameterError(f"cold_validation side_info {part} does not match the training side_info's")
        return _ColdValidationTensors(self._tensors(cold.side_info, self._device), eng)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("GNNRecommender is not fitted; call fit(graph) first")

    # ---- checkpoints (npz + json; never pickle) ----------------------------------------

    def _save_state(
        self, path: Path, state: dict[str, torch.Tensor], extra: dict[str, np.ndarray] | None = None
    ) -> None:
        arrays: dict[str, Any] = {f"model/{k}": v.detach().cpu().numpy() for k, v in state.items()}
        arrays.update(extra or {})
        with atomic_file(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    def _load_state(self, path: Path) -> dict[str, torch.Tensor]:
        try:
            with np.load(path, allow_pickle=False) as z:
                state = {
                    k[len("model/") :]: torch.from_numpy(z[k]).to(self._device)
                    for k in z.files
                    if k.startswith("model/")
                }
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{path}: unreadable checkpoint ({exc})") from exc
        own = self.model_.state_dict()
        if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
            raise ArtifactError(f"{path}: checkpoint does not match this model's graph/config; delete it to start over")
        return state

    def _checkpoint(self, opt: torch.optim.Optimizer, log: TrainingLog, directory: Path) -> None:
        extra: dict[str, np.ndarray] = {}
        params = [p for g in opt.param_groups for p in g["params"]]
        for j, p in enumerate(params):
            for name, value in opt.state.get(p, {}).items():
                extra[f"opt/{j}/{name}"] = torch.as_tensor(value).detach().cpu().numpy()
        self._save_state(directory / "latest.npz", self.model_.state_dict(), extra)
        meta = {"format": _FORMAT, "version": _VERSION, "config": asdict(self.config), "log": asdict(log)}
        with atomic_file(directory / "latest.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=2))

    def _resume(self, opt: torch.optim.Optimizer, log: TrainingLog, directory: Path) -> int:
        meta_path = directory / "latest.json"
        if not meta_path.exists() or not (directory / "latest.npz").exists():
            return 0
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{meta_path}: unreadable checkpoint metadata ({exc})") from exc
        # More (or fewer) epochs may be asked of a resumed run; anything else must match.
        same = {k: v for k, v in asdict(self.config).items() if k != "epochs"}
        if meta.get("format") != _FORMAT or {k: v for k, v in meta.get("config", {}).items() if k != "epochs"} != same:
            raise ArtifactError(
                f"{meta_path}: checkpoint was written with another configuration; delete it to start over"
            )
        self.model_.load_state_dict(self._load_state(directory / "latest.npz"))
        with np.load(directory / "latest.npz", allow_pickle=False) as z:
            params = [p for g in opt.param_groups for p in g["params"]]
            for j, p in enumerate(params):
                keys = [k for k in z.files if k.startswith(f"opt/{j}/")]
                if keys:
                    opt.state[p] = {k.split("/")[-1]: torch.from_numpy(z[k]).to(self._device) for k in keys}
        for k, v in meta["log"].items():
            setattr(log, k, v)
        return int(log.epochs_run)


def _info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    a = F.normalize(a, dim=1)
    b = F.normalize(b, dim=1)
    logits = a @ b.T / tau
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))
