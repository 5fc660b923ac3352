"""What one training step touches: its engagements, its nodes and their one-hop neighbourhoods.

* :func:`epoch_rows` cuts each user's engagements into *rows* of at most ``user_positives``,
  in a seeded random order, and shuffles the rows; a step takes ``batch_size // user_positives``
  rows. A row's user is scored once against the step's candidates for all of its engagements,
  so the softmax costs ``rows x candidates`` instead of ``engagements x candidates``, while a
  user still gets ``degree / user_positives`` updates per epoch (a whole user per row updated
  heavy users once an epoch and learned much more slowly per epoch on Gowalla).
* :class:`NeighbourSampler` gives each target node its one-hop row of ``A``: exact when the
  node has at most ``fanout`` neighbours, otherwise ``fanout`` draws with replacement with
  probability ``A_vw / a_v`` (``a_v`` the row sum), each weighted ``a_v / fanout``, so the
  sampled row is an unbiased estimate of the exact one. It also maps node ids to positions in a
  step's list of distinct nodes in time proportional to the step, with one reusable marker array.
* :func:`split_validation` holds out a share of each user's engagements for early stopping.

The kernels are numba; ``tests/model/test_gnn_sampling.py`` checks them against plain Python.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from graphrec._validation import check_int

__all__ = ["Engagements", "NeighbourSampler", "epoch_rows", "split_validation"]


@numba.njit(cache=True)
def _row_cumsum(indptr: np.ndarray, data: np.ndarray) -> np.ndarray:  # pragma: no cover - numba
    out = np.empty(data.size, np.float64)
    for v in range(indptr.size - 1):
        acc = 0.0
        for e in range(indptr[v], indptr[v + 1]):
            acc += data[e]
            out[e] = acc
    return out


@numba.njit(cache=True)
def _one_hop(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    cum: np.ndarray,
    targets: np.ndarray,
    fanout: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - numba
    np.random.seed(seed)  # noqa: NPY002 - numba's generator, seeded per call
    t = targets.size
    ptr = np.zeros(t + 1, np.int64)
    for k in range(t):
        v = targets[k]
        ptr[k + 1] = ptr[k] + min(indptr[v + 1] - indptr[v], fanout)
    nbr = np.empty(ptr[t], np.int64)
    val = np.empty(ptr[t], np.float32)
    for k in range(t):
        v = targets[k]
        lo, hi = indptr[v], indptr[v + 1]
        out = ptr[k]
        if hi - lo <= fanout:
            for e in range(lo, hi):
                nbr[out] = indices[e]
                val[out] = data[e]
                out += 1
        else:
            total = cum[hi - 1]
            for _ in range(fanout):
                r = np.random.random() * total  # noqa: NPY002 - numba's generator
                a, b = lo, hi - 1
                while a < b:  # first edge whose cumulative weight exceeds r
                    m = (a + b) // 2
                    if cum[m] <= r:
                        a = m + 1
                    else:
                        b = m
                nbr[out] = indices[a]
                val[out] = total / fanout
                out += 1
    return ptr, nbr, val


@numba.njit(cache=True)
def _dedupe(nodes: np.ndarray, mark: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - numba
    uniq = np.empty(nodes.size, np.int64)
    inverse = np.empty(nodes.size, np.int64)
    n = 0
    for k in range(nodes.size):
        v = nodes[k]
        if mark[v] < 0:
            mark[v] = n
            uniq[n] = v
            n += 1
        inverse[k] = mark[v]
    for k in range(n):
        mark[uniq[k]] = -1
    return uniq[:n], inverse


@numba.njit(cache=True)
def _engaged(
    indptr: np.ndarray, indices: np.ndarray, row_user: np.ndarray, candidates: np.ndarray, mark: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - numba
    for j in range(candidates.size):
        if mark[candidates[j]] < 0:
            mark[candidates[j]] = j
    n = 0
    for r in range(row_user.size):
        u = row_user[r]
        for e in range(indptr[u], indptr[u + 1]):
            if mark[indices[e]] >= 0:
                n += 1
    rows = np.empty(n, np.int64)
    cols = np.empty(n, np.int64)
    k = 0
    for r in range(row_user.size):
        u = row_user[r]
        for e in range(indptr[u], indptr[u + 1]):
            c = mark[indices[e]]
            if c >= 0:
                rows[k] = r
                cols[k] = c
                k += 1
    for j in range(candidates.size):
        mark[candidates[j]] = -1
    return rows, cols


class Engagements:
    """Which (row, candidate) pairs of a step are engagements of the row's user (in training data).

    Scans each row's user's engagements once with a reusable marker array over notes, so a step
    costs the sum of its rows' user degrees.
    """

    def __init__(self, engages: sp.csr_matrix) -> None:
        r = sp.csr_matrix(engages)
        self.indptr = np.asarray(r.indptr, dtype=np.int64)
        self.indices = np.asarray(r.indices, dtype=np.int64)
        self._mark = np.full(r.shape[1], -1, dtype=np.int64)

    def pairs(self, row_user: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)``: row ``rows[k]``'s user engaged candidate ``candidates[cols[k]]`` (first occurrence)."""
        return _engaged(
            self.indptr,
            self.indices,
            np.ascontiguousarray(row_user, dtype=np.int64),
            np.ascontiguousarray(candidates, dtype=np.int64),
            self._mark,
        )


class NeighbourSampler:
    """One-hop rows of a sparse matrix for a step's target nodes (see the module docstring)."""

    def __init__(self, adj: sp.csr_matrix, fanout: int) -> None:
        a = sp.csr_matrix(adj)
        self.fanout = check_int("fanout", fanout, minimum=1)
        self.indptr = np.asarray(a.indptr, dtype=np.int64)
        self.indices = np.asarray(a.indices, dtype=np.int64)
        self.data = np.asarray(a.data, dtype=np.float32)
        self.cum = _row_cumsum(self.indptr, self.data.astype(np.float64))
        self._mark = np.full(a.shape[0], -1, dtype=np.int64)

    def one_hop(self, targets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indptr, neighbours, weights)``: row ``k`` is target ``k``'s exact or sampled row."""
        t = np.ascontiguousarray(targets, dtype=np.int64)
        return _one_hop(self.indptr, self.indices, self.data, self.cum, t, self.fanout, int(seed))

    def index(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct ``nodes`` in order of first appearance, and each node's position among them."""
        return _dedupe(np.ascontiguousarray(nodes, dtype=np.int64), self._mark)


def epoch_rows(
    engages: sp.csr_matrix, user_positives: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch's batch rows: ``(row_user, row_ptr, items)`` in shuffled row order.

    Row ``j`` holds user ``row_user[j]``'s engagements ``items[row_ptr[j]:row_ptr[j + 1]]``
    (at most ``user_positives`` of them); every engagement of ``engages`` is in exactly one row.
    """
    r = sp.csr_matrix(engages)
    counts = np.diff(r.indptr)
    users = np.repeat(np.arange(r.shape[0], dtype=np.int64), counts)
    order = np.lexsort((rng.random(r.nnz), users))  # engagements by user, shuffled within user
    rank = np.arange(r.nnz) - np.repeat(r.indptr[:-1], counts)
    per_user = -(-counts // user_positives)
    first_row = np.concatenate([[0], np.cumsum(per_user)])
    row_of = first_row[users] + rank // user_positives  # non-decreasing along `order`
    n_rows = int(first_row[-1])
    sizes = np.bincount(row_of, minlength=n_rows)
    items = np.asarray(r.indices, dtype=np.int64)[order]
    row_user = np.repeat(np.arange(r.shape[0], dtype=np.int64), per_user)
    shuffled = rng.permutation(n_rows)
    starts = np.concatenate([[0], np.cumsum(sizes)])[shuffled]
    new_sizes = sizes[shuffled]
    gather = np.repeat(starts, new_sizes) + (np.arange(r.nnz) - np.repeat(np.cumsum(new_sizes) - new_sizes, new_sizes))
    return row_user[shuffled], np.concatenate([[0], np.cumsum(new_sizes)]), items[gather]


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
    rows = np.repeat(np.arange(r.shape[0]), counts)
    order = np.lexsort((rng.random(r.nnz), rows))  # a random order within each user
    rank = np.arange(r.nnz) - np.repeat(r.indptr[:-1], counts)
    held = np.zeros(r.nnz, dtype=bool)
    held[order] = rank < take[rows]
    train = sp.csr_matrix((r.data[~held], (rows[~held], r.indices[~held])), shape=r.shape)
    valid = sp.csr_matrix((np.ones(held.sum(), np.float32), (rows[held], r.indices[held])), shape=r.shape)
    return train, valid
