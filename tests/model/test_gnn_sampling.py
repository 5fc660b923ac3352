"""The GNN's sampler against plain-Python references: one-hop rows, node indexing, epoch rows."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.exceptions import InvalidParameterError
from graphrec.model.gnn.sampling import NeighbourSampler, epoch_rows, split_validation


def _graph(seed: int = 0, n: int = 40, density: float = 0.15) -> sp.csr_matrix:
    m = sp.random(n, n, density=density, random_state=seed, format="csr", dtype=np.float32)
    m = sp.csr_matrix(m + m.T)
    m.setdiag(0)
    m.eliminate_zeros()
    m.sort_indices()
    return m


def _reference_row(a: sp.csr_matrix, v: int) -> dict[int, float]:
    """Row ``v`` of ``a`` as {neighbour: weight}, read entry by entry."""
    dense = a.toarray()
    return {int(w): float(dense[v, w]) for w in range(a.shape[1]) if dense[v, w] != 0}


def test_rows_up_to_the_fanout_are_exact():
    a = _graph()
    degree = np.diff(a.indptr)
    sampler = NeighbourSampler(a, fanout=int(degree.max()))
    targets = np.array([3, 0, 3, 17, 39])
    ptr, nbr, val = sampler.one_hop(targets, seed=1)
    for k, v in enumerate(targets):
        got = dict(zip(nbr[ptr[k] : ptr[k + 1]].tolist(), val[ptr[k] : ptr[k + 1]].tolist(), strict=True))
        assert got == pytest.approx(_reference_row(a, v))


def test_sampled_rows_draw_neighbours_with_importance_weights_and_are_unbiased():
    a = _graph(seed=2, n=30, density=0.5)
    v = int(np.argmax(np.diff(a.indptr)))
    ref = _reference_row(a, v)
    fanout = 4
    assert len(ref) > fanout
    sampler = NeighbourSampler(a, fanout=fanout)
    total = sum(ref.values())
    estimate: dict[int, float] = {}
    runs = 4000
    for seed in range(runs):
        ptr, nbr, val = sampler.one_hop(np.array([v]), seed=seed)
        assert ptr.tolist() == [0, fanout]
        assert set(nbr.tolist()) <= set(ref)  # only real neighbours
        np.testing.assert_allclose(val, total / fanout, rtol=1e-6)  # weight a_v / fanout each
        for w, x in zip(nbr.tolist(), val.tolist(), strict=True):
            estimate[w] = estimate.get(w, 0.0) + x / runs
    # E[sampled row] = exact row: each neighbour's mean weight is within 4 standard errors
    for w, exact in ref.items():
        p = exact / total
        se = total * np.sqrt(p * (1 - p) / (fanout * runs))
        assert abs(estimate.get(w, 0.0) - exact) < 4 * se + 1e-6, (w, estimate.get(w), exact)


def test_one_hop_is_seeded_and_handles_isolated_nodes():
    a = _graph(seed=3, n=25, density=0.4)
    a = sp.csr_matrix(sp.block_diag([a, sp.csr_matrix((2, 2), dtype=np.float32)]))
    sampler = NeighbourSampler(a, fanout=3)
    targets = np.array([0, 25, 5, 26])
    first = sampler.one_hop(targets, seed=7)
    again = sampler.one_hop(targets, seed=7)
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)
    ptr = first[0]
    assert ptr[2] - ptr[1] == 0 and ptr[4] - ptr[3] == 0  # isolated nodes: empty rows
    with pytest.raises(InvalidParameterError, match="fanout"):
        NeighbourSampler(a, fanout=0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 19), max_size=60))
def test_index_matches_a_dictionary(nodes):
    sampler = NeighbourSampler(sp.csr_matrix((20, 20), dtype=np.float32), fanout=1)
    uniq, where = sampler.index(np.array(nodes, dtype=np.int64))
    expected: dict[int, int] = {}
    for v in nodes:
        expected.setdefault(v, len(expected))
    assert uniq.tolist() == list(expected)
    assert where.tolist() == [expected[v] for v in nodes]
    again, _ = sampler.index(np.array(nodes, dtype=np.int64))  # the marker array was reset
    assert again.tolist() == uniq.tolist()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(0, 1000))
def test_epoch_rows_partition_each_users_engagements(per_row, seed):
    r = sp.random(12, 30, density=0.3, random_state=seed % 50, format="csr", dtype=np.float32)
    r.data[:] = 1
    row_user, row_ptr, items = epoch_rows(r, per_row, np.random.default_rng(seed))
    sizes = np.diff(row_ptr)
    assert items.size == r.nnz and row_ptr[-1] == r.nnz
    assert (sizes >= 1).all() and (sizes <= per_row).all()
    seen: dict[int, list[int]] = {}
    for j, u in enumerate(row_user):
        seen.setdefault(int(u), []).extend(items[row_ptr[j] : row_ptr[j + 1]].tolist())
    for u in range(r.shape[0]):
        assert sorted(seen.get(u, [])) == sorted(r.indices[r.indptr[u] : r.indptr[u + 1]].tolist())
        # a user is cut into ceil(degree / per_row) rows
        assert (row_user == u).sum() == -(-(r.indptr[u + 1] - r.indptr[u]) // per_row)


def test_split_validation_keeps_two_per_user_and_is_disjoint():
    r = sp.random(50, 80, density=0.2, random_state=2, format="csr", dtype=np.float32)
    r.data[:] = 1
    train, valid = split_validation(r, 0.3, seed=1)
    assert (train.multiply(valid)).nnz == 0
    assert abs(train + valid - r).max() == 0
    counts = np.diff(r.indptr)
    kept = np.diff(train.indptr)
    assert (kept[counts >= 3] >= 2).all() and (kept[counts < 3] == counts[counts < 3]).all()
    held = np.diff(valid.indptr)
    assert (held[counts >= 3] >= 1).all()
    # about the asked share is held out
    assert abs(valid.nnz / r.nnz - 0.3) < 0.1
