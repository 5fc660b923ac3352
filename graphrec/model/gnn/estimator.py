"""The scikit-learn-style estimator: :class:`GNNRecommender` (fit, embeddings, encoder export)."""

from __future__ import annotations

import logging
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.exceptions import InvalidParameterError
from graphrec.graph import ENGAGES, HeteroGraph
from graphrec.graph.side_info import SideInfo
from graphrec.index.encoder import NoteEncoder
from graphrec.model.base import EmbeddingRecommender
from graphrec.model.gnn.collective import Collective
from graphrec.model.gnn.collective import current as current_collective
from graphrec.model.gnn.config import GNNConfig
from graphrec.model.gnn.sampling import split_validation
from graphrec.model.gnn.trainer import ColdValidation, Trainer, TrainingLog

__all__ = ["GNNRecommender"]

_log = logging.getLogger("graphrec.model.gnn")


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("device='cuda' but torch sees no CUDA device")
    return torch.device(name)


class GNNRecommender(EmbeddingRecommender):
    """Train the heterogeneous LightGCN of :mod:`graphrec.model.gnn` on a graph; sklearn-style.

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
        export_dir: str | Path | None = None,
        show_progress: bool | None = None,
        **overrides: Any,
    ) -> None:
        base = config or GNNConfig()
        unknown = set(overrides) - {f.name for f in fields(GNNConfig)}
        if unknown:
            raise InvalidParameterError(f"unknown GNN option(s): {sorted(unknown)}")
        self.config = GNNConfig(**{**asdict(base), **overrides})
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        #: Where ``fit`` computes the final embeddings in bounded memory (:mod:`.export`); the
        #: ``*_embeddings_`` attributes are then read-only memory maps of its ``.npy`` files.
        self.export_dir = Path(export_dir) if export_dir is not None else None
        self.show_progress = show_progress

    def fit(
        self,
        graph: HeteroGraph,
        side_info: SideInfo | None = None,
        *,
        validation: sp.csr_matrix | None = None,
        cold_validation: ColdValidation | None = None,
        collective: Collective | None = None,
    ) -> GNNRecommender:
        """Train on ``graph`` (and ``side_info`` of its notes); returns ``self``.

        ``validation`` (users x notes, disjoint from the graph's engagements) drives early
        stopping; without it ``valid_fraction`` of the engagements is held out for that.
        ``cold_validation`` (needs ``side_info``): brand-new notes and their engagements; early
        stopping then follows how well they are recalled from side-info alone (the warm
        validation recall is still logged). With ``refit`` and a carved-out validation set, the
        model is trained again from the same seed on *all* engagements for the best epoch count.

        Sparse corners are trained, not refused: users with fewer than 3 engagements are never
        held out for validation; users and notes without engagements (and an empty tag or
        similar relation) add no edges, so their embedding is their layer-0 vector (ID, plus
        side-info for notes). A graph without any engagement raises
        :class:`~graphrec.exceptions.InvalidParameterError`, as do negative or non-finite weights.

        Data-parallel: called in every rank of a ``torch.distributed`` process group of 2+ ranks
        (``torchrun``, Spark's ``TorchDistributor``; see :mod:`graphrec.jobs.train`), each rank
        computes one shard of every step and the ranks combine gradients
        (:mod:`graphrec.model.gnn.collective`). ``collective`` overrides that choice, e.g.
        ``LocalShards(2)`` computes the same two shards in this process.
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
        cold = _check_cold(cold_validation, side, engages.shape[0])
        log = TrainingLog()
        comm = collective if collective is not None else current_collective()
        trainer = Trainer(cfg, graph, engages, side, device, show_progress=self.show_progress, collective=comm)
        trainer.run(cfg.epochs, log, validation=validation, cold=cold, checkpoint_dir=self.checkpoint_dir)
        if cfg.refit and carved and log.best_epoch:
            # The held-out engagements go back in; the best epoch count found with them out is reused.
            _log.info("refit on all engagements for %d epochs", log.best_epoch)
            again = TrainingLog()
            refit_dir = self.checkpoint_dir / "refit" if self.checkpoint_dir is not None else None
            trainer = Trainer(cfg, graph, everything, side, device, show_progress=self.show_progress, collective=comm)
            drops = [d for d in log.lr_drops if d < log.best_epoch]
            trainer.run(log.best_epoch, again, checkpoint_dir=refit_dir, lr_drops=drops)
            log.refit_epochs, log.refit_seconds = again.epochs_run, again.train_seconds
            log.train_seconds += again.train_seconds
        self.log_ = log
        self.trainer_ = trainer
        if self.export_dir is not None:
            paths = trainer.export(self.export_dir)
            users, notes, tags = (np.load(paths[k], mmap_mode="r") for k in ("user", "note", "tag"))
        else:
            users, notes, tags = (t.cpu().numpy() for t in trainer.embed())
        self.user_embeddings_ = users
        self.note_embeddings_ = notes
        self.tag_embeddings_ = tags if trainer.n_tags else None
        self.encodes_new_notes_ = trainer.encoder is not None
        return self

    def note_encoder(self) -> NoteEncoder:
        """The trained side-info encoder as numpy arrays (for bundles and cold start)."""
        self._check_fitted()
        t = self.trainer_
        enc = t.encoder
        if enc is None:
            raise InvalidParameterError("the model was trained without side-info; it cannot embed new notes")

        def arr(x: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)

        o = t.offsets
        return NoteEncoder(
            user0=arr(t.table[: o["note"]]),
            tag0=arr(t.table[o["tag"] : o["end"]]),
            w_hidden=arr(enc.hidden.weight),
            b_hidden=arr(enc.hidden.bias),
            w_out=arr(enc.out.weight),
            b_out=arr(enc.out.bias),
            w_text=arr(enc.text.weight) if enc.text is not None else None,
            normalise=self.config.similarity == "cosine",
        )

    def embed_new_notes(self, side_info: SideInfo) -> np.ndarray:
        """Embeddings of notes the model never saw, from their side-info alone, ``(n, dim)``.

        Tags and authors must be in the training graph's index spaces (see
        :func:`graphrec.graph.side_info.side_info_for_notes`). Notes with no usable side-info get
        a zero vector; callers should check :meth:`SideInfo.usable` and fall back.
        """
        return self.note_encoder()(side_info)


def _check_cold(cold: ColdValidation | None, side: SideInfo | None, n_users: int) -> ColdValidation | None:
    """Check ``cold`` against the training data; a copy with clean engagements (or None)."""
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
    return ColdValidation(cold.side_info, eng)
