from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.exceptions import InvalidParameterError
from graphrec.graph import ENGAGES, HAS_TAG, HeteroGraph, bipartite_edge_index, build_graph, to_hetero_data
from graphrec.io import IdMap


def test_hetero_data_matches_relations(small_tables):
    g = build_graph(*small_tables)
    data = to_hetero_data(g)
    assert data["user"].num_nodes == g.num_nodes("user")
    for et in [ENGAGES, HAS_TAG, ("tag", "rev_has_tag", "note")]:
        ei, ew = data[et].edge_index, data[et].edge_weight
        assert ei.dtype == torch.int64 and ew.dtype == torch.float32
        dense = torch.zeros(g.relation(et).shape)
        dense[ei[0], ei[1]] = ew
        np.testing.assert_array_equal(dense.numpy(), g.relation(et).toarray())
    data.validate()


def test_bipartite_and_homogeneous_edge_index():
    m = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]], dtype=np.float32))
    g = HeteroGraph({"user": IdMap([0, 1]), "note": IdMap([0, 1, 2])}, {ENGAGES: m})
    ei, ew = bipartite_edge_index(g)
    assert ei.tolist() == [[0, 0, 1], [0, 2, 1]] and ew.tolist() == [1.0, 2.0, 3.0]
    hi, hw = bipartite_edge_index(g, homogeneous=True)
    assert hi.tolist() == [[0, 0, 1, 2, 4, 3], [2, 4, 3, 0, 0, 1]]
    assert hw.tolist() == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    with pytest.raises(InvalidParameterError, match="has no relation"):
        bipartite_edge_index(g, edge_type=("user", "authored", "note"))
    empty = HeteroGraph({"user": IdMap([0]), "note": IdMap([0])}, {ENGAGES: sp.csr_matrix((1, 1))})
    with pytest.raises(InvalidParameterError, match="has no edges"):
        bipartite_edge_index(empty)


def test_lgconv_runs_on_homogeneous_layout(small_tables):
    from torch_geometric.nn import LGConv

    g = build_graph(*small_tables)
    ei, ew = bipartite_edge_index(g, homogeneous=True)
    n = g.num_nodes("user") + g.num_nodes("note")
    out = LGConv()(torch.ones(n, 4), ei, ew)
    assert out.shape == (n, 4) and torch.isfinite(out).all()
