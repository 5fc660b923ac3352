"""The training loop: batches of user rows, historical propagation, early stopping, checkpoints.

One epoch (:meth:`Trainer.run`): the engagements are cut into user rows (:func:`.epoch_rows`);
each step takes ``batch_size // user_positives`` rows per worker (data-parallel, :mod:`.collective`:
``W`` workers take ``W`` times as many rows per step, so an epoch has ``1 / W`` of the steps),
and on each worker's rows

1. its targets are the rows' users, the distinct notes they engaged (in-batch candidates) and
   ``extra_negatives`` uniform notes;
2. :class:`.NeighbourSampler` gives each target its one-hop row (exact up to ``fanout``
   neighbours, sampled above); the step gathers the table rows of targets, neighbours and the
   tag/author nodes the side-info encoder reads;
3. :class:`.History` turns their live layer-0 vectors into the targets' propagated embeddings;
4. the loss (:mod:`.losses`), plus the cold view and L2, is backpropagated to those rows only,
   which :class:`.RowAdam` updates; the encoder's dense weights take an ordinary Adam step.

The history is refreshed ``refreshes`` times per epoch, the first at step 0, so an epoch costs
``refreshes`` full propagations plus work proportional to the engagements: linear in the graph.
After each ``eval_every`` epochs the exact embeddings score the validation engagements
(:func:`graphrec.evaluate.evaluate_scorer`, recall@20; or the cold validation notes from side-info
alone), and :class:`EarlyStopping` decides.

Reproducibility: every draw is seeded by ``(seed, epoch)``, and on CPU :meth:`Trainer.run` trains
under torch's deterministic algorithms (:func:`_deterministic_on_cpu`). Without them the backward
of a step's indexing (``index_put_`` with accumulation) adds rows in an order that varies between
runs, and training amplifies those last-bit differences into different models and different
early-stopping epochs. With them, two fits of one config give the same weights to the bit
(``tests/model/test_gnn.py``); what it cost and what it changed are measured in
``benchmarks/README.md`` (section ``decentralised.py``). The process-wide setting is restored when
training ends. On GPU the setting is left alone (cuBLAS and scatter kernels need more than this
flag to be deterministic).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from graphrec._progress import progress
from graphrec.evaluate.ranking import evaluate_scorer
from graphrec.graph import HeteroGraph
from graphrec.graph.side_info import SideInfo
from graphrec.model.gnn import checkpoint as ck
from graphrec.model.gnn.collective import Collective
from graphrec.model.gnn.config import GNNConfig
from graphrec.model.gnn.export import export_propagation
from graphrec.model.gnn.losses import bpr, candidate_bias, ccl, sampled_softmax
from graphrec.model.gnn.modules import NoteSide, SideInfoEncoder
from graphrec.model.gnn.optim import ParamAdam, RowAdam
from graphrec.model.gnn.propagation import History, propagation_matrix, torch_csr
from graphrec.model.gnn.sampling import Engagements, NeighbourSampler, epoch_rows

__all__ = ["ColdValidation", "EarlyStopping", "Trainer", "TrainingLog"]

_log = logging.getLogger("graphrec.model.gnn")


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


@dataclass
class TrainingLog:
    """What :meth:`GNNRecommender.fit` did: per-evaluation validation recall, timings, best epoch.

    ``best_valid_recall`` is the metric that chose the best epoch: ``valid_cold_recall@20`` when
    ``fit`` had a :class:`ColdValidation`, else ``valid_recall@20``. ``train_seconds`` counts all
    training (evaluation included), a refit's ``refit_seconds`` included. ``lr_drops``: the
    epochs after which the learning rate was multiplied by ``lr_decay``. ``out_of_time``: training
    ended because ``time_budget`` was spent.
    """

    epochs_run: int = 0
    best_epoch: int = 0
    best_valid_recall: float = float("nan")
    train_seconds: float = 0.0
    stopped_early: bool = False
    out_of_time: bool = False
    refit_epochs: int = 0
    refit_seconds: float = 0.0
    lr_drops: list[int] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)


class EarlyStopping:
    """Patience measured against the trend of the validation curve.

    Stop when ``patience`` evaluations have passed without a new best *and* the least-squares
    slope of the last ``2 * patience + 1`` scores is not positive, or when ``3 * patience``
    evaluations have passed without a new best whatever the slope. A curve that is still rising
    through noise keeps training; a flat or falling one stops as plain patience would.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.scores: list[float] = []
        self.best = -math.inf
        self.since_best = 0

    def restart(self) -> None:
        """Start counting patience afresh (after a learning-rate drop); the best score stays."""
        self.since_best = 0
        self.scores = self.scores[-1:]

    def update(self, score: float) -> bool:
        """Record a score; True when it is the best so far."""
        self.scores.append(score)
        if score > self.best:
            self.best, self.since_best = score, 0
            return True
        self.since_best += 1
        return False

    def slope(self) -> float:
        tail = np.asarray(self.scores[-(2 * self.patience + 1) :], dtype=np.float64)
        if tail.size < 2:
            return 0.0
        x = np.arange(tail.size, dtype=np.float64)
        return float(np.polyfit(x, tail, 1)[0])

    @property
    def stop(self) -> bool:
        if self.since_best >= 3 * self.patience:
            return True
        return self.since_best >= self.patience and self.slope() <= 0.0


@contextmanager
def _deterministic_on_cpu(device: torch.device) -> Iterator[None]:
    """Torch's deterministic algorithms while training on CPU; the previous setting afterwards."""
    if device.type != "cpu":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


@dataclass
class _Cold:
    side: NoteSide
    engagements: sp.csr_matrix


class Trainer:
    """Builds the model for ``engages`` (users x notes) over ``graph`` and trains it (module docstring)."""

    def __init__(
        self,
        config: GNNConfig,
        graph: HeteroGraph,
        engages: sp.csr_matrix,
        side: SideInfo | None,
        device: torch.device,
        *,
        show_progress: bool | None = None,
        collective: Collective | None = None,
    ) -> None:
        cfg = self.config = config
        self.device = device
        #: How a step's shards are computed and combined (:mod:`.collective`); one shard by default.
        self.collective = collective or Collective()
        self.show_progress = show_progress
        torch.manual_seed(cfg.seed)
        adj, offsets = propagation_matrix(graph, engages, tag_weight=cfg.tag_weight, similar_weight=cfg.similar_weight)
        self.offsets = offsets
        self.n_users, self.n_notes = engages.shape
        self.n_tags = offsets["end"] - offsets["tag"]
        self.sampler = NeighbourSampler(adj, cfg.fanout)
        self.history = History(torch_csr(adj, device), cfg.layers, propagator=self.collective.propagate)
        self.table = (torch.randn(offsets["end"], cfg.dim) * 0.1).to(device)
        self.optim = RowAdam(self.table, cfg.lr)
        self.side = NoteSide(side, tag_offset=offsets["tag"] if self.n_tags else None, device=device) if side else None
        self.encoder = SideInfoEncoder(cfg.dim, self.side.text_dim).to(device) if self.side else None
        self.encoder_optim = ParamAdam(list(self.encoder.parameters()), cfg.lr) if self.encoder else None
        binary = sp.csr_matrix(engages, dtype=np.float32, copy=True)
        binary.eliminate_zeros()
        binary.data[:] = 1.0
        self.engages = binary
        self.engaged = Engagements(binary)
        pop = np.asarray(binary.sum(axis=0)).ravel() + 1.0
        self.log_pop = torch.from_numpy(np.log(pop).astype(np.float32)).to(device)
        # a step's cost follows the distinct nodes it gathers (targets and their one-hop rows)
        self.steps_done = 0
        self.nodes_gathered = 0

    # ---- layer 0 and exact embeddings ---------------------------------------------------

    def layer0(self) -> torch.Tensor:
        """Layer-0 vectors of every node (table plus gated side-info on notes)."""
        x = self.table
        if self.side is not None and self.encoder is not None:
            batch = self.side.batch()
            s = NoteSide.encode(self.encoder, batch, self.table[torch.from_numpy(batch.nodes()).to(self.device)])
            lo, hi = self.offsets["note"], self.offsets["tag"]
            x = torch.cat([x[:lo], x[lo:hi] + self.encoder.gated(s), x[hi:]])
        return x

    @torch.no_grad()
    def embed(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Exact user, note and tag embeddings (one full propagation)."""
        out = self.collective.propagate(self.layer0(), self.history.adj, self.config.layers)
        if self.config.similarity == "cosine":  # served by inner product: store unit vectors
            out = F.normalize(out, dim=1)
        o = self.offsets
        return out[: o["note"]], out[o["note"] : o["tag"]], out[o["tag"] : o["end"]]

    @torch.no_grad()
    def export(self, directory: Path, *, buffer_mb: float = 256) -> dict[str, Path]:
        """The same embeddings as :meth:`embed`, computed in node-row partitions into
        ``directory/{user,note,tag}.npy`` in bounded memory (:mod:`.export`)."""
        x = self.layer0().detach().cpu().numpy()
        s = self.sampler  # its CSR arrays are A's
        return export_propagation(
            x,
            (s.indptr, s.indices, s.data),
            self.config.layers,
            directory,
            offsets=self.offsets,
            collective=self.collective,
            normalise=self.config.similarity == "cosine",
            buffer_mb=buffer_mb,
        )

    @torch.no_grad()
    def embed_side(self, side: NoteSide) -> torch.Tensor:
        """Side-info-only embeddings of notes outside the graph."""
        assert self.encoder is not None
        batch = side.batch()
        out = NoteSide.encode(self.encoder, batch, self.table[torch.from_numpy(batch.nodes()).to(self.device)])
        return F.normalize(out, dim=1) if self.config.similarity == "cosine" else out

    # ---- one step -------------------------------------------------------------------------

    def step(self, row_user: np.ndarray, row_ptr: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> float:
        """One optimiser step on the rows ``row_user`` holding ``items`` (see the module docstring);
        with several shards, each computed here or on its own rank (:mod:`.collective`)."""
        comm = self.collective
        if comm.shards == 1:
            if self.encoder_optim is not None:
                self.encoder_optim.zero_grad()
            loss, rows, x_all = self._shard_loss(row_user, row_ptr, items, rng)
            loss.backward()
            assert x_all.grad is not None
            self.optim.step(rows, x_all.grad)
            if self.encoder_optim is not None:
                self.encoder_optim.step()
            return float(loss.detach())
        step_seed = int(rng.integers(2**62))
        wire = torch.bfloat16 if self.config.grad_wire == "bfloat16" else torch.float32
        bounds = np.linspace(0, row_user.size, comm.shards + 1).astype(np.int64)
        if self.encoder_optim is not None:
            self.encoder_optim.zero_grad()
        rows_parts, grad_parts, total = [], [], 0.0
        for s in comm.local_shards():
            lo, hi = int(bounds[s]), int(bounds[s + 1])
            if hi == lo:
                continue
            ptr = row_ptr[lo : hi + 1]
            share = (ptr[-1] - ptr[0]) / max(1, items.size)
            shard_rng = np.random.default_rng([step_seed, s])
            loss, rows, x_all = self._shard_loss(row_user[lo:hi], ptr - ptr[0], items[ptr[0] : ptr[-1]], shard_rng)
            (loss * share).backward()
            assert x_all.grad is not None
            rows_parts.append(rows)
            grad_parts.append(x_all.grad.to(wire))  # the precision the shards' gradients travel in
            total += share * float(loss.detach())
        total = comm.update_table(self.optim, rows_parts, grad_parts, total, wire)
        if self.encoder_optim is not None:
            comm.sum_grads(self.encoder_optim.params)
            self.encoder_optim.step()
        return total

    def _shard_loss(
        self,
        row_user: np.ndarray,
        row_ptr: np.ndarray,
        items: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The loss of one worker's rows of a step (the whole step with one worker), the table rows
        it gathered and their live vectors."""
        cfg, dev, o = self.config, self.device, self.offsets
        sizes = np.diff(row_ptr)
        pos_row_np = np.repeat(np.arange(row_user.size), sizes)
        cand, pos_col_np = np.unique(items, return_inverse=True)
        n_extra = items.size if cfg.loss == "bpr" else cfg.extra_negatives
        extra = rng.integers(0, self.n_notes, size=n_extra)
        users, row_of = np.unique(row_user, return_inverse=True)
        targets = np.concatenate([users, o["note"] + cand, o["note"] + extra])
        ptr, nbr, val = self.sampler.one_hop(targets, int(rng.integers(2**31)))
        nodes, where = self.sampler.index(np.concatenate([targets, nbr]))
        t = targets.size
        self.steps_done += 1
        self.nodes_gathered += nodes.size
        block = self.history.block_matrix(where[:t], ptr, where[t:], val, nodes.size)

        # side-info of the notes among the step's nodes (+ uniform cold negatives)
        note_pos = np.flatnonzero((nodes >= o["note"]) & (nodes < o["tag"]))
        cold_extra = rng.integers(0, self.n_notes, size=cfg.cold_extra_negatives) if self.side else extra[:0]
        side_batch = self.side.batch(np.concatenate([nodes[note_pos] - o["note"], cold_extra])) if self.side else None
        gathered, at = self.sampler.index(np.concatenate([nodes, side_batch.nodes() if side_batch else nodes[:0]]))
        rows = torch.from_numpy(gathered).to(dev)
        x_all = self.table[rows].requires_grad_(True)
        x = x_all[: nodes.size]
        s = None
        if side_batch is not None and self.encoder is not None:
            s = NoteSide.encode(self.encoder, side_batch, x_all[torch.from_numpy(at[nodes.size :]).to(dev)])
            x = x.index_add(0, torch.from_numpy(note_pos).to(dev), self.encoder.gated(s[: note_pos.size]))
        out = self.history.forward(torch.from_numpy(targets).to(dev), rows[: nodes.size], x, block)

        n_users, n_cand = users.size, cand.size
        user_vec = out[:n_users][torch.from_numpy(row_of).to(dev)]
        cand_vec = out[n_users:]
        pos_row = torch.from_numpy(pos_row_np).to(dev)
        pos_col = torch.from_numpy(pos_col_np.reshape(-1)).to(dev)
        cand_ids_np = np.concatenate([cand, extra])
        cand_ids = torch.from_numpy(cand_ids_np).to(dev)
        # the rows' users' other training engagements among the candidates are not negatives
        kr, kc = self.engaged.pairs(row_user, cand_ids_np)
        known = (torch.from_numpy(kr).to(dev), torch.from_numpy(kc).to(dev))
        if cfg.loss == "softmax":
            bias = candidate_bias(pos_col, n_cand, self.log_pop[cand_ids], logq=cfg.logq, pda_gamma=cfg.pda_gamma)
            loss = sampled_softmax(
                user_vec,
                cand_vec,
                pos_row,
                pos_col,
                bias,
                temperature=cfg.temperature,
                cosine=cfg.similarity == "cosine",
                known=known,
            )
        elif cfg.loss == "bpr":
            u, p, n = user_vec[pos_row], cand_vec[pos_col], cand_vec[n_cand:]
            loss = bpr(u, p, n)
        else:
            loss = self._ccl(user_vec[pos_row], cand_vec[pos_col], cand_vec[n_cand:])

        if s is not None and cfg.cold_weight > 0:
            # the cold view: every positive note replaced by its side-info vector s(n)
            own = np.full(nodes.size, -1, np.int64)
            own[note_pos] = np.arange(note_pos.size)
            cand_side = s[torch.from_numpy(own[where[n_users : n_users + n_cand]]).to(dev)]
            if cfg.loss == "ccl":
                cold = self._ccl(user_vec[pos_row], cand_side[pos_col], cand_vec[n_cand:])
            else:
                in_batch = known[1] < n_cand  # the cold view's uniform negatives are other draws
                cold_ids = torch.from_numpy(np.concatenate([cand, cold_extra])).to(dev)
                cold_bias = candidate_bias(
                    pos_col, n_cand, self.log_pop[cold_ids], logq=cfg.logq, pda_gamma=cfg.pda_gamma
                )
                cold = sampled_softmax(
                    user_vec,
                    torch.cat([cand_side, s[note_pos.size :]]),
                    pos_row,
                    pos_col,
                    cold_bias,
                    temperature=cfg.temperature,
                    cosine=cfg.similarity == "cosine",
                    known=(known[0][in_batch], known[1][in_batch]),
                )
            loss = loss + cfg.cold_weight * cold
        if cfg.l2 > 0:
            # LightGCN's penalty on the layer-0 vectors of each engagement's user and note and the negatives
            count = np.zeros(nodes.size, np.float32)
            np.add.at(count, where[:n_users], np.bincount(row_of, weights=sizes, minlength=n_users))
            np.add.at(count, where[n_users : n_users + n_cand], np.bincount(pos_col_np.reshape(-1), minlength=n_cand))
            np.add.at(count, where[n_users + n_cand : t], 1.0)
            reg = (x.pow(2).sum(1) * torch.from_numpy(count).to(dev)).sum()
            loss = loss + cfg.l2 * reg / items.size
        return loss, rows, x_all

    def _ccl(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        return ccl(
            users, positives, negatives, margin=self.config.ccl_margin, negative_weight=self.config.ccl_negative_weight
        )

    # ---- epochs -----------------------------------------------------------------------------

    def epoch(self, epoch: int) -> float:
        """Train one epoch (seeded by ``(seed, epoch)``, so a resumed run draws what a straight one would)."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, epoch])
        row_user, row_ptr, items = epoch_rows(self.engages, cfg.user_positives, rng)
        per_step = max(1, cfg.batch_size // cfg.user_positives) * self.collective.shards
        n_steps = max(1, math.ceil(row_user.size / per_step))
        refresh_at = set(np.linspace(0, n_steps, min(cfg.refreshes, n_steps), endpoint=False).astype(int).tolist())
        losses = []
        for step in range(n_steps):
            if step in refresh_at:
                with torch.no_grad():
                    self.history.refresh(self.layer0())
            lo, hi = step * per_step, min((step + 1) * per_step, row_user.size)
            ptr = row_ptr[lo : hi + 1]
            losses.append(self.step(row_user[lo:hi], ptr - ptr[0], items[ptr[0] : ptr[-1]], rng))
        return float(np.mean(losses))

    def _set_lr(self, drops: int) -> float:
        lr = self.config.lr * self.config.lr_decay**drops
        self.optim.lr = lr
        if self.encoder_optim is not None:
            self.encoder_optim.lr = lr
        return lr

    def run(
        self,
        epochs: int,
        log: TrainingLog,
        *,
        validation: sp.csr_matrix | None = None,
        cold: ColdValidation | None = None,
        checkpoint_dir: Path | None = None,
        lr_drops: list[int] | None = None,
    ) -> None:
        """Train up to ``epochs``, stopping early on ``validation`` (or ``cold``); keep the best weights.

        On a plateau the learning rate drops (at most ``lr_decays`` times) before training stops.
        ``lr_drops``: without validation, replay these drops (a refit follows its first run).
        """
        with _deterministic_on_cpu(self.device):
            self._run(epochs, log, validation, cold, checkpoint_dir, lr_drops)

    def _run(
        self,
        epochs: int,
        log: TrainingLog,
        validation: sp.csr_matrix | None,
        cold: ColdValidation | None,
        checkpoint_dir: Path | None,
        lr_drops: list[int] | None,
    ) -> None:
        cfg = self.config
        cold_side = (
            _Cold(NoteSide(cold.side_info, tag_offset=self.side.tag_offset, device=self.device), cold.engagements)
            if cold is not None and self.side is not None
            else None
        )
        valid = self._subsample(validation) if validation is not None and validation.nnz else None
        start = self._resume(log, checkpoint_dir) if checkpoint_dir is not None else 0
        best = self._load_best(checkpoint_dir) if start and checkpoint_dir is not None else None
        stopper = EarlyStopping(cfg.patience)
        for h in log.history:  # a resumed run replays its evaluations
            if self._metric(cold_side) in h:
                stopper.update(h[self._metric(cold_side)])
            if h.get("lr_dropped"):
                stopper.restart()
        if lr_drops is not None:
            log.lr_drops = list(lr_drops)
        if log.stopped_early or log.out_of_time:  # a resumed run that had already stopped
            start = epochs
        t0 = time.perf_counter() - log.train_seconds
        bar = progress(range(start, epochs), desc="GNN epochs", total=max(epochs - start, 0), enable=self.show_progress)
        for epoch in bar:
            lr = self._set_lr(sum(d <= epoch for d in log.lr_drops))
            entry: dict[str, float] = {"epoch": epoch + 1, "lr": lr, "loss": self.epoch(epoch)}
            log.epochs_run = epoch + 1
            if (valid is not None or cold_side is not None) and (epoch + 1) % cfg.eval_every == 0:
                entry.update(self._evaluate(valid, cold_side))
                if stopper.update(entry[self._metric(cold_side)]):
                    log.best_valid_recall, log.best_epoch = stopper.best, epoch + 1
                    best = self._weights()
                    if checkpoint_dir is not None and self.collective.is_writer:
                        ck.save_arrays(checkpoint_dir / "best.npz", best)
            entry["seconds"] = time.perf_counter() - t0
            log.train_seconds = entry["seconds"]
            log.history.append(entry)
            _log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in entry.items() if k != "epoch"))
            if stopper.stop and lr_drops is None and len(log.lr_drops) < cfg.lr_decays:
                log.lr_drops.append(epoch + 1)
                entry["lr_dropped"] = 1.0
                stopper.restart()
            log.stopped_early = stopper.stop
            log.out_of_time = cfg.time_budget is not None and lr_drops is None and entry["seconds"] >= cfg.time_budget
            if checkpoint_dir is not None:
                if self.collective.is_writer:
                    self._checkpoint(log, checkpoint_dir)
                self.collective.barrier()  # no rank runs ahead of the last written epoch
            if log.stopped_early or log.out_of_time:
                break
        if best is not None:
            self._set_weights(best)
        log.train_seconds = time.perf_counter() - t0

    @staticmethod
    def _metric(cold: _Cold | None) -> str:
        return "valid_cold_recall@20" if cold is not None else "valid_recall@20"

    def _subsample(self, validation: sp.csr_matrix) -> sp.csr_matrix:
        """At most ``valid_users`` validation users (seeded), so evaluation cost stays bounded."""
        v = sp.csr_matrix(validation, dtype=np.float32)
        users = np.flatnonzero(np.diff(v.indptr) > 0)
        if users.size <= self.config.valid_users:
            return v
        keep = np.random.default_rng([self.config.seed, 1]).choice(users, self.config.valid_users, replace=False)
        mask = np.zeros(v.shape[0], np.float32)
        mask[keep] = 1.0
        return sp.csr_matrix(sp.diags(mask) @ v)

    def _evaluate(self, valid: sp.csr_matrix | None, cold: _Cold | None) -> dict[str, float]:
        users, notes, _ = self.embed()
        u = users.cpu().numpy()
        out = {}
        if valid is not None:
            n = notes.cpu().numpy()
            comm = self.collective
            rows = np.flatnonzero(np.diff(valid.indptr) > 0)
            mine = comm.part(rows)
            if mine.size == rows.size:
                part = valid
            else:  # data-parallel: this rank's share of the validation users
                mask = np.zeros(valid.shape[0], np.float32)
                mask[mine] = 1.0
                part = sp.csr_matrix(sp.diags(mask) @ valid)
            recall, weight = 0.0, 0.0
            if mine.size:
                m = evaluate_scorer(lambda b: u[b] @ n.T, self.engages, part, ks=(20,), show_progress=False)
                recall, weight = m["recall@20"], m["n_users"]
            out["valid_recall@20"] = comm.weighted_mean(recall, weight)
        if cold is not None:
            new = self.embed_side(cold.side).cpu().numpy()
            empty = sp.csr_matrix(cold.engagements.shape, dtype=np.float32)
            m = evaluate_scorer(lambda b: u[b] @ new.T, empty, cold.engagements, ks=(20,), show_progress=False)
            out["valid_cold_recall@20"] = m["recall@20"]
        return out

    # ---- weights and checkpoints ----------------------------------------------------------

    def _weights(self) -> dict[str, torch.Tensor]:
        state = {"table": self.table.detach().clone()}
        if self.encoder is not None:
            state.update({f"encoder/{k}": v.detach().clone() for k, v in self.encoder.state_dict().items()})
        return state

    def _set_weights(self, state: dict[str, torch.Tensor]) -> None:
        self.table.copy_(state["table"])
        if self.encoder is not None:
            self.encoder.load_state_dict(
                {k[len("encoder/") :]: v for k, v in state.items() if k.startswith("encoder/")}
            )

    def _full_state(self) -> dict[str, torch.Tensor]:
        state = self._weights()
        state.update({f"adam/{k}": v for k, v in self.optim.state().items()})
        if self.encoder_optim is not None:
            state.update({f"encoder_adam/{k}": v for k, v in self.encoder_optim.state().items()})
        return state

    def _checkpoint(self, log: TrainingLog, directory: Path) -> None:
        ck.save_arrays(directory / "latest.npz", self._full_state())
        ck.write_meta(directory, self.config, log.__dict__, shards=self.collective.shards)

    def _resume(self, log: TrainingLog, directory: Path) -> int:
        saved = ck.read_meta(directory, self.config, shards=self.collective.shards)
        if saved is None:
            return 0
        state = ck.load_arrays(directory / "latest.npz", self._full_state(), self.device)
        self._set_weights(state)
        self.optim.load({k[len("adam/") :]: v for k, v in state.items() if k.startswith("adam/")})
        if self.encoder_optim is not None:
            self.encoder_optim.load(
                {k[len("encoder_adam/") :]: v for k, v in state.items() if k.startswith("encoder_adam/")}
            )
        for k, v in saved.items():
            setattr(log, k, v)
        return int(log.epochs_run)

    def _load_best(self, directory: Path) -> dict[str, torch.Tensor] | None:
        path = directory / "best.npz"
        return ck.load_arrays(path, self._weights(), self.device) if path.exists() else None
