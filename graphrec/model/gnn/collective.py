"""Data-parallel steps: how a step's shards are computed and their gradients combined.

A training step (:meth:`.Trainer.step`) takes a *global batch* of user rows. With ``W`` shards
the rows are cut into ``W`` contiguous parts; shard ``s`` draws its negatives and neighbour
samples from ``default_rng([step_seed, s])`` (``step_seed`` from the epoch's generator, the same
on every worker), computes its loss (in-batch candidates are the shard's own, as in any
data-parallel two-tower training) and backpropagates it weighted by its share of the batch's
engagements. The step's loss is the weighted sum, so its gradient is the sum of the shards'.

* :class:`LocalShards` computes the ``W`` shards one after another in one process: the reference
  that a data-parallel run must match, and what tests compare against.
* :class:`ProcessGroup` runs inside a ``torch.distributed`` process group (gloo on CPU, NCCL on
  GPU), one shard per rank. The embedding table's gradient is row-sparse, so DDP's dense
  all-reduce does not fit it: each rank all-gathers the ``(row ids, row gradients)`` it touched
  (padded to the largest), every rank sums them in rank order into the union of rows, and applies
  the same row-wise Adam step, so the tables stay identical without ever being broadcast. The
  side-info encoder's dense gradients are all-reduced (sum), as DDP does.

Everything else (history refreshes, validation, early stopping) is computed identically on every
rank from identical tables; only rank 0 writes checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

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

    def combine_rows(
        self, rows: list[torch.Tensor], grads: list[torch.Tensor], loss: float, dim: int
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """All shards' touched rows and row gradients (in shard order) and the summed loss."""
        if not rows:
            return torch.empty(0, dtype=torch.long), torch.empty(0, dim), loss
        return torch.cat(rows), torch.cat(grads), loss

    def sum_grads(self, params: Sequence[torch.Tensor]) -> None:
        """Sum dense gradients over the shards (in place); one process already has the sum."""

    def barrier(self) -> None:
        """Wait for every process."""


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

    def local_shards(self) -> Sequence[int]:
        return [self.rank]

    def combine_rows(
        self, rows: list[torch.Tensor], grads: list[torch.Tensor], loss: float, dim: int
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        dist = self._dist
        mine_rows, mine_grads, _ = super().combine_rows(rows, grads, loss, dim)
        size = torch.tensor([mine_rows.numel()], dtype=torch.long)
        sizes = [torch.zeros(1, dtype=torch.long) for _ in range(self.shards)]
        dist.all_gather(sizes, size)
        longest = max(int(s) for s in sizes)
        pad = longest - mine_rows.numel()
        padded_rows = torch.cat([mine_rows, torch.zeros(pad, dtype=torch.long)])
        padded_grads = torch.cat([mine_grads.to(torch.float32), torch.zeros(pad, dim)])
        all_rows = [torch.empty(longest, dtype=torch.long) for _ in range(self.shards)]
        all_grads = [torch.empty(longest, dim) for _ in range(self.shards)]
        dist.all_gather(all_rows, padded_rows)
        dist.all_gather(all_grads, padded_grads)
        total = torch.tensor([loss], dtype=torch.float64)
        dist.all_reduce(total)
        n = [int(s) for s in sizes]
        return (
            torch.cat([r[:k] for r, k in zip(all_rows, n, strict=True)]),
            torch.cat([g[:k] for g, k in zip(all_grads, n, strict=True)]),
            float(total),
        )

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


def current() -> Any:
    """:class:`ProcessGroup` when called inside an initialised process group of 2+ ranks, else None."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return ProcessGroup()
    return None
