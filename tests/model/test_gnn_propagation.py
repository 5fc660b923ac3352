"""Propagation: the matrix against a dense reference, historical propagation against exact LightGCN."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.exceptions import InvalidParameterError
from graphrec.graph import ENGAGES, HAS_TAG, SIMILAR, HeteroGraph, build_graph
from graphrec.io import IdMap
from graphrec.model.gnn import propagation_matrix
from graphrec.model.gnn.propagation import History, SymmetricLGConv, propagate, torch_csr
from graphrec.model.gnn.sampling import NeighbourSampler


def _dense_reference(graph: HeteroGraph, tag_weight: float, similar_weight: float) -> np.ndarray:
    """D^-1/2 W D^-1/2 built entry by entry from the relations (slow, obviously right)."""
    r = graph.relation(ENGAGES).toarray()
    nu, nn = r.shape
    t = graph.relation(HAS_TAG).toarray() * tag_weight
    nt = t.shape[1]
    w = np.zeros((nu + nn + nt, nu + nn + nt))
    for u in range(nu):
        for n in range(nn):
            w[u, nu + n] = w[nu + n, u] = r[u, n]
    for n in range(nn):
        for k in range(nt):
            w[nu + n, nu + nn + k] = w[nu + nn + k, nu + n] = t[n, k]
    if graph.has_relation(SIMILAR):
        s = graph.relation(SIMILAR).toarray() * similar_weight
        for a in range(nn):
            for b in range(nn):
                if a != b:
                    w[nu + a, nu + b] = max(w[nu + a, nu + b], s[a, b], s[b, a])
    d = w.sum(axis=1)
    out = np.zeros_like(w)
    for i, j in zip(*np.nonzero(w), strict=True):
        out[i, j] = w[i, j] / np.sqrt(d[i] * d[j])
    return out


@pytest.fixture(scope="module")
def small_graph(small_tables):
    interactions, notes = small_tables
    sub = interactions.loc[interactions["note_id"].isin(notes["note_id"].iloc[:40])]
    g = build_graph(sub, notes.iloc[:40])
    n = g.num_nodes("note")
    sim = sp.random(n, n, density=0.05, random_state=0, format="csr", dtype=np.float32)
    return g.with_relation(SIMILAR, sim)


def test_propagation_matrix_matches_dense_reference(small_graph):
    a, off = propagation_matrix(small_graph, tag_weight=0.5, similar_weight=2.0)
    assert off["note"] == small_graph.num_nodes("user") and off["end"] == a.shape[0]
    np.testing.assert_allclose(a.toarray(), _dense_reference(small_graph, 0.5, 2.0), rtol=1e-5, atol=1e-7)
    assert abs(a - a.T).max() < 1e-6


def test_symmetric_conv_forward_and_gradient_match_dense():
    rng = np.random.default_rng(0)
    m = sp.random(30, 30, density=0.2, random_state=1, format="csr", dtype=np.float32)
    m = sp.csr_matrix(m + m.T)
    dense = torch.tensor(m.toarray())
    x = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y = SymmetricLGConv()(x, torch_csr(m, torch.device("cpu")))
    y_ref = dense @ x_ref
    torch.testing.assert_close(y, y_ref)
    g = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    (y * g).sum().backward()
    (y_ref * g).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)


def _history_forward(a: sp.csr_matrix, hist: History, x: torch.Tensor, targets: np.ndarray, fanout: int, seed: int = 0):
    sampler = NeighbourSampler(a, fanout)
    ptr, nbr, val = sampler.one_hop(targets, seed)
    nodes, where = sampler.index(np.concatenate([targets, nbr]))
    t = targets.size
    block = hist.block_matrix(where[:t], ptr, where[t:], val, nodes.size)
    rows = x[torch.from_numpy(nodes)].detach().clone().requires_grad_(True)
    return hist.forward(torch.from_numpy(targets), torch.from_numpy(nodes), rows, block), rows, nodes


def test_history_is_exact_lightgcn_at_refresh_and_tracks_changes_one_hop(small_graph):
    a, _ = propagation_matrix(small_graph, tag_weight=1.0)
    n, layers = a.shape[0], 3
    rng = np.random.default_rng(1)
    x0 = torch.tensor(rng.normal(size=(n, 5)), dtype=torch.float32)
    dense = torch.tensor(a.toarray(), dtype=torch.float64)
    p = sum(torch.linalg.matrix_power(dense, k) for k in range(layers + 1)) / (layers + 1)  # P, densely
    hist = History(torch_csr(a, torch.device("cpu")), layers)
    hist.refresh(x0)
    full = int(np.diff(a.indptr).max())
    targets = np.array([0, 7, n - 1, 7, 30])
    out, rows, nodes = _history_forward(a, hist, x0, targets, full)
    torch.testing.assert_close(out.double(), (p @ x0.double())[targets], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(propagate(x0, hist.adj, layers).double(), p @ x0.double(), rtol=1e-4, atol=1e-5)
    # After a change, the layer-0 and one-hop terms are live, the deeper ones stay at the snapshot:
    x1 = x0 + torch.tensor(rng.normal(scale=0.1, size=x0.shape), dtype=torch.float32)
    out, rows, nodes = _history_forward(a, hist, x1, targets, full)
    alpha = 1.0 / (layers + 1)
    one_hop = alpha * (torch.eye(n, dtype=torch.float64) + dense)
    expected = (p @ x0.double() + one_hop @ (x1 - x0).double())[targets]
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-5)
    # ... and the gradient reaches each target and its neighbours with exactly those weights.
    g = torch.tensor(rng.normal(size=out.shape), dtype=torch.float32)
    (out * g).sum().backward()
    ref = (one_hop[targets].T @ g.double())[torch.from_numpy(nodes)]
    torch.testing.assert_close(rows.grad.double(), ref, rtol=1e-4, atol=1e-5)


def test_history_with_sampled_rows_is_unbiased(small_graph):
    a, _ = propagation_matrix(small_graph, tag_weight=1.0)
    n, layers = a.shape[0], 2
    rng = np.random.default_rng(2)
    x0 = torch.zeros((n, 3))
    hist = History(torch_csr(a, torch.device("cpu")), layers)
    hist.refresh(x0)
    x1 = torch.tensor(rng.normal(size=(n, 3)), dtype=torch.float32)
    target = np.array([int(np.argmax(np.diff(a.indptr)))])
    exact = (1.0 / (layers + 1)) * (x1[target] + torch.tensor(a[target].toarray()) @ x1)
    runs = [_history_forward(a, hist, x1, target, fanout=2, seed=s)[0] for s in range(3000)]
    mean = torch.stack(runs).mean(0)
    torch.testing.assert_close(mean, exact, rtol=0.05, atol=0.02)


def test_propagation_matrix_bad_input():
    ids = {"user": IdMap(np.arange(3)), "note": IdMap(np.arange(2))}
    with pytest.raises(InvalidParameterError, match="no user–note engagements"):
        propagation_matrix(HeteroGraph(ids, {ENGAGES: sp.csr_matrix((3, 2), dtype=np.float32)}))
    with pytest.raises(InvalidParameterError, match="needs user–note engagements"):
        propagation_matrix(HeteroGraph(ids, {}))
    good = HeteroGraph(ids, {ENGAGES: sp.csr_matrix(np.ones((3, 2), np.float32))})
    bad = sp.csr_matrix(np.array([[1.0, np.nan], [0, 1], [1, 0]], dtype=np.float32))
    with pytest.raises(InvalidParameterError, match="NaN"):
        propagation_matrix(good, bad)
    with pytest.raises(InvalidParameterError, match="negative"):
        propagation_matrix(good, -sp.csr_matrix(np.ones((3, 2), np.float32)))
