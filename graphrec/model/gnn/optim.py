"""Row-wise ("lazy") Adam for the embedding table: a step costs the rows it touches.

Dense Adam updates every parameter on every step, zero gradients included: ``O(table)`` per step,
which makes an epoch quadratic in the graph. :class:`RowAdam` keeps Adam's two moments per row
and updates only the rows a step gathered (TensorFlow's LazyAdam; torch's ``SparseAdam`` does the
same but needs coalesced sparse gradients). Bias correction uses the global step count.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

__all__ = ["ParamAdam", "RowAdam"]


@numba.njit(parallel=True, cache=True)
def _row_adam(
    w: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    rows: np.ndarray,
    g: np.ndarray,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    c1: float,
    c2: float,
) -> None:  # pragma: no cover - numba
    for k in numba.prange(rows.size):
        r = rows[k]
        for j in range(w.shape[1]):
            gj = g[k, j]
            mj = b1 * m[r, j] + (1.0 - b1) * gj
            vj = b2 * v[r, j] + (1.0 - b2) * gj * gj
            m[r, j] = mj
            v[r, j] = vj
            w[r, j] -= lr * (mj / c1) / (np.sqrt(vj / c2) + eps)


@numba.njit(cache=True)
def _sum_rows(
    rows: np.ndarray, g: np.ndarray, mark: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - numba
    uniq = np.empty(rows.size, np.int64)
    out = np.empty((rows.size, g.shape[1]), np.float32)
    n = 0
    for k in range(rows.size):
        r = rows[k]
        s = mark[r]
        if s < 0:
            mark[r] = n
            uniq[n] = r
            for j in range(g.shape[1]):
                out[n, j] = g[k, j]
            n += 1
        else:
            for j in range(g.shape[1]):
                out[s, j] += g[k, j]
    for k in range(n):
        mark[uniq[k]] = -1
    return uniq[:n], out[:n]


class RowAdam:
    """Adam on selected rows of ``table`` (updated in place)."""

    def __init__(
        self, table: torch.Tensor, lr: float, *, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.table = table
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.m = torch.zeros_like(table)
        self.v = torch.zeros_like(table)
        self.steps = 0
        self._mark: np.ndarray | None = None  # step_summed's row -> slot marker (all -1 between calls)

    @torch.no_grad()
    def step(self, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Apply ``grad`` (``(len(rows), dim)``) to the distinct ``rows`` of the table."""
        self.steps += 1
        c1 = 1 - self.beta1**self.steps
        c2 = 1 - self.beta2**self.steps
        if self.table.device.type == "cpu" and self.table.is_contiguous():
            # one fused pass over the touched rows (the torch path below makes six)
            _row_adam(
                self.table.numpy(),
                self.m.numpy(),
                self.v.numpy(),
                rows.numpy(),
                grad.contiguous().numpy(),
                self.lr,
                self.beta1,
                self.beta2,
                self.eps,
                c1,
                c2,
            )
            return
        m = self.m[rows].mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
        v = self.v[rows].mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        self.m[rows] = m
        self.v[rows] = v
        self.table[rows] -= self.lr * (m / c1) / ((v / c2).sqrt_() + self.eps)

    @torch.no_grad()
    def step_summed(self, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """:meth:`step` for ``rows`` that may repeat: each distinct row gets the sum of its
        gradients (in order of appearance), in one pass with a reusable marker array."""
        if self.table.device.type == "cpu":
            if self._mark is None:
                self._mark = np.full(self.table.shape[0], -1, dtype=np.int64)
            union, summed = _sum_rows(rows.numpy(), grad.contiguous().numpy(), self._mark)
            self.step(torch.from_numpy(union), torch.from_numpy(summed))
            return
        union, where = torch.unique(rows, return_inverse=True)
        self.step(union, torch.zeros(union.numel(), grad.shape[1], device=grad.device).index_add_(0, where, grad))

    def state(self) -> dict[str, torch.Tensor]:
        return {"m": self.m, "v": self.v, "steps": torch.tensor(self.steps)}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        self.m.copy_(state["m"])
        self.v.copy_(state["v"])
        self.steps = int(state["steps"])


class ParamAdam:
    """Plain Adam over a list of dense parameters, with its state always materialised.

    (``torch.optim.Adam`` creates its state on the first step, so a checkpoint written before it
    would differ in shape from one written after; this one checkpoints the same keys always.)
    """

    def __init__(
        self, params: list[torch.Tensor], lr: float, *, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.params = params
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        c1 = 1 - self.beta1**self.steps
        c2 = 1 - self.beta2**self.steps
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            m.mul_(self.beta1).add_(p.grad, alpha=1 - self.beta1)
            v.mul_(self.beta2).addcmul_(p.grad, p.grad, value=1 - self.beta2)
            p -= self.lr * (m / c1) / ((v / c2).sqrt() + self.eps)

    def state(self) -> dict[str, torch.Tensor]:
        out = {"steps": torch.tensor(self.steps)}
        for j, (m, v) in enumerate(zip(self.m, self.v, strict=True)):
            out[f"m/{j}"], out[f"v/{j}"] = m, v
        return out

    def load(self, state: dict[str, torch.Tensor]) -> None:
        for j, (m, v) in enumerate(zip(self.m, self.v, strict=True)):
            m.copy_(state[f"m/{j}"])
            v.copy_(state[f"v/{j}"])
        self.steps = int(state["steps"])
