"""Data-parallel steps: how a step's shards are computed and their gradients combined.

A training step (:meth:`.Trainer.step`) takes a *global batch* of user rows: ``batch_size``
engagements per shard, as DDP's per-process batch, so ``W`` workers take ``W`` times the rows of
one and an epoch has ``1 / W`` of the steps. (Cutting one worker's batch into ``W`` parts instead
would leave each worker more than ``1 / W`` of the work: the nodes a step gathers overlap less in
a smaller batch. Measured in ``benchmarks/README.md``, section ``distributed_training.py``.) The
rows are cut into ``W`` contiguous parts; shard ``s`` draws ``extra_negatives`` uniform negatives
and its neighbour samples from ``default_rng([step_seed, s])`` (``step_seed`` from the epoch's
generator, the same on every worker), computes its loss exactly as a one-worker step does
(in-batch candidates are the shard's own, as in any data-parallel two-tower training) and
backpropagates it weighted by its share of the batch's engagements. The step's loss is the
weighted sum, so its gradient is the engagement-weighted mean of the workers' gradients. Any
``W`` works: the rows are cut as evenly as they go (shards differ by at most one row), and a
shard left without rows (the epoch's last step can be short) contributes nothing but still takes
part in the collectives.

* :class:`LocalShards` computes the ``W`` shards one after another in one process: the reference
  that a data-parallel run must match, and what tests compare against.
* :class:`ProcessGroup` runs inside a ``torch.distributed`` process group (gloo on CPU, NCCL on
  GPU), one shard per rank. The embedding table's gradient is row-sparse, so DDP's dense
  all-reduce does not fit it: each rank all-gathers the ``(row ids, row gradients)`` it touched
  (one packed tensor, padded to the largest), every rank sums them in rank order into the union
  of rows and applies the same row-wise Adam step, so the tables stay identical without ever
  being broadcast. The side-info encoder's dense gradients are all-reduced (sum), as DDP does.
  The row gradients travel in bfloat16 by default (``GNNConfig.grad_wire``; the idea of
  PyTorch's ``bf16_compress_hook``), which halves the bytes of the one collective that grows
  with the batch; :class:`LocalShards` gets each shard's gradients rounded the same way, so the
  two stay equal to the bit. (Rank-owned rows, ZeRO stage 1 for the table, were measured and
  rejected on one host: each rank then runs Adam on ``1 / W`` of the rows, but the float32
  all-gather of the updated rows moves more bytes than it saves; ``benchmarks/README.md``,
  section ``distributed_training.py``.)

Full propagations (the history refreshes and the exact embeddings for validation) are split by
node rows: each rank multiplies its contiguous block of rows of ``A`` and the blocks are
all-gathered, so a refresh costs ``1 / W`` of the work per rank and gives every rank the same
result. Validation users are divided among the ranks too (their recall means combined, weighted
by users), so early stopping decides the same on every rank; only rank 0 writes checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from graphrec.model.gnn.optim import RowAdam
from graphrec.model.gnn.propagation import propagate

__all__ = ["Collective", "LocalShards", "ProcessGroup"]


class Collective:
    """One process, one shard: the trainer's plain path (no sharding)."""

    shards = 1
    rank = 0

    @property
    def is_writer(self) -> bool:
        """Whether this process writes checkpoints."""
        return self.rank == 0

    def local_shards(self) -> Sequence[int]:
        """The shards this process computes."""
        return range(self.shards)

    def update_table(
        self, optim: RowAdam, rows: list[torch.Tensor], grads: list[torch.Tensor], loss: float, wire: torch.dtype
    ) -> float:
        """Step ``optim`` on every shard's touched ``rows``: each distinct row gets the sum of its
        shards' ``grads`` (in shard order; they come in their wire precision ``wire``,
        ``GNNConfig.grad_wire``). Returns the loss summed over the shards."""
        mine_rows, mine_grads = self._concat(rows, grads, optim.table.shape[1], wire)
        optim.step_summed(mine_rows, mine_grads.float())
        return loss

    @staticmethod
    def _concat(
        rows: list[torch.Tensor], grads: list[torch.Tensor], dim: int, wire: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's shards' rows and gradients in one tensor each (gradients in ``wire``),
        empty ones when it drew no rows (a rank still sends its empty part to the others)."""
        if not rows:
            return torch.empty(0, dtype=torch.long), torch.empty(0, dim, dtype=wire)
        return torch.cat(rows), torch.cat(grads)

    def sum_grads(self, params: Sequence[torch.Tensor]) -> None:
        """Sum dense gradients over the shards (in place); one process already has the sum."""

    def barrier(self) -> None:
        """Wait for every process."""

    def propagate(self, x: torch.Tensor, adj: torch.Tensor, layers: int) -> torch.Tensor:
        """LightGCN's layer mean of ``x`` over ``adj`` (:func:`.propagate`)."""
        return propagate(x, adj, layers)

    def part(self, items: np.ndarray) -> np.ndarray:
        """The part of ``items`` (e.g. validation users) this process evaluates: all of them here."""
        return items

    def weighted_mean(self, value: float, weight: float) -> float:
        """The mean of the processes' ``value`` weighted by ``weight`` (here: ``value``)."""
        return value


class LocalShards(Collective):
    """``shards`` shards computed one after another in this process (the single-process reference)."""

    def __init__(self, shards: int) -> None:
        self.shards = shards

    def sum_grads(self, params: Sequence[torch.Tensor]) -> None:
        for p in params:  # as ProcessGroup does: a parameter no shard reached gets a zero gradient
            if p.grad is None:
                p.grad = torch.zeros_like(p)


class ProcessGroup(Collective):
    """One shard per rank of the current ``torch.distributed`` process group (module docstring)."""

    def __init__(self) -> None:
        import torch.distributed as dist

        self._dist = dist
        self.rank = dist.get_rank()
        self.shards = dist.get_world_size()
        self._block_of: torch.Tensor | None = None  # the matrix whose row block is cached
        self._block = torch.empty(0)

    def local_shards(self) -> Sequence[int]:
        return [self.rank]

    def update_table(
        self, optim: RowAdam, rows: list[torch.Tensor], grads: list[torch.Tensor], loss: float, wire: torch.dtype
    ) -> float:
        dist = self._dist
        packed = _pack(*self._concat(rows, grads, optim.table.shape[1], wire))
        head = torch.tensor([float(packed.shape[0]), loss], dtype=torch.float64)
        heads = [torch.empty(2, dtype=torch.float64) for _ in range(self.shards)]
        dist.all_gather(heads, head)
        every_rows, every_grads = _unpack(self._gather_rows(packed, [int(h[0]) for h in heads]))
        optim.step_summed(every_rows, every_grads.float())  # every rank's rows, in rank order
        return float(sum(float(h[1]) for h in heads))

    def sum_grads(self, params: Sequence[torch.Tensor]) -> None:
        if not params:
            return
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        self._dist.all_reduce(flat)
        at = 0
        for p in params:
            p.grad = flat[at : at + p.numel()].view_as(p).clone()
            at += p.numel()

    def barrier(self) -> None:
        self._dist.barrier()

    def part(self, items: np.ndarray) -> np.ndarray:
        return items[self.rank :: self.shards]

    def weighted_mean(self, value: float, weight: float) -> float:
        sums = torch.tensor([value * weight, weight], dtype=torch.float64)
        self._dist.all_reduce(sums)
        return float(sums[0] / sums[1]) if float(sums[1]) > 0 else float("nan")

    def propagate(self, x: torch.Tensor, adj: torch.Tensor, layers: int) -> torch.Tensor:
        """The layer mean with each rank multiplying its block of rows (module docstring)."""
        n = adj.shape[0]
        bounds = [n * r // self.shards for r in range(self.shards + 1)]
        lo, hi = bounds[self.rank], bounds[self.rank + 1]
        if self._block_of is not adj:
            crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
            a, b = int(crow[lo]), int(crow[hi])
            self._block = torch.sparse_csr_tensor(crow[lo : hi + 1] - a, col[a:b], val[a:b], size=(hi - lo, n))
            self._block_of = adj
        sizes = [bounds[r + 1] - bounds[r] for r in range(self.shards)]
        total, h = x, x
        for _ in range(layers):
            h = self._gather_rows(self._block @ h, sizes)
            total = total + h
        return total / (layers + 1)

    def _gather_rows(self, part: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        """Every rank's ``part`` (``sizes[r]`` rows each) stacked in rank order: all-gather pads
        to the largest part, the padding is cut off again."""
        padded = torch.cat([part, part.new_zeros(max(sizes) - part.shape[0], part.shape[1])])
        parts = [torch.empty_like(padded) for _ in range(self.shards)]
        self._dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:k] for p, k in zip(parts, sizes, strict=True)])


def _pack(rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``[row id | values]`` in one tensor of ``values``' dtype: the id's int32 bits take 4 bytes'
    worth of columns (ids < 2**31, carried bit-exact)."""
    id_cols = 4 // values.element_size()
    ids = rows.to(torch.int32).contiguous().view(values.dtype).reshape(-1, id_cols)
    return torch.cat([ids, values], dim=1)


def _unpack(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The row ids (int64) and values of :func:`_pack`'s tensor."""
    id_cols = 4 // packed.element_size()
    ids = packed[:, :id_cols].contiguous().view(torch.int32).reshape(-1).long()
    return ids, packed[:, id_cols:]


def current() -> ProcessGroup | None:
    """:class:`ProcessGroup` when called inside an initialised process group of 2+ ranks, else None."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return ProcessGroup()
    return None
