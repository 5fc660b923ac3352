"""DGL interop, run in the DGL lane only (``make test-dgl``: its own environment, torch 2.2.1 + DGL
2.1). The main suite deselects the ``dgl`` marker; nothing here imports DGL at module level."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.exceptions import InvalidParameterError
from graphrec.graph import ENGAGES, HAS_TAG, HeteroGraph, SideInfo, build_graph, side_info_from_graph
from graphrec.io import IdMap
from graphrec.jobs.bundle import bundle_from_embeddings
from graphrec.recall import ChannelConfig, RecallEngine

pytestmark = pytest.mark.dgl


@pytest.fixture(scope="module")
def dgl():
    import dgl as module  # a failure here fails the lane: it is meant to run where DGL loads

    return module


@pytest.fixture(scope="module")
def graph(small_tables):
    return build_graph(*small_tables)


def _assert_same(a: HeteroGraph, b: HeteroGraph) -> None:
    assert set(a.node_types) == set(b.node_types)
    for t in a.node_types:
        assert a.id_map(t) == b.id_map(t), t
    assert set(a.edge_types) == set(b.edge_types)
    for et in a.edge_types:
        x, y = a.relation(et), b.relation(et)
        np.testing.assert_array_equal(x.indptr, y.indptr)
        np.testing.assert_array_equal(x.indices, y.indices)
        np.testing.assert_array_equal(x.data, y.data)


def test_round_trip_is_exact_with_text_and_int_ids(dgl, graph, tmp_path):
    from graphrec.interop.dgl import from_dgl, to_dgl

    g = to_dgl(graph)
    assert set(g.ntypes) == set(graph.node_types)
    for src, rel, dst in graph.edge_types:
        assert g.num_edges((src, rel, dst)) == g.num_edges((dst, f"rev_{rel}", src)) == graph.num_edges((src, rel, dst))
    _assert_same(graph, from_dgl(g))
    # ... and through DGL's own file format.
    dgl.save_graphs(str(tmp_path / "g.bin"), [g])
    (loaded,), _ = dgl.load_graphs(str(tmp_path / "g.bin"))
    _assert_same(graph, from_dgl(loaded))


@pytest.mark.parametrize("ids", [["b", "a", "ü-ñ", "a-much-longer-id"], [7, -3, 100, 2]])
def test_ids_of_every_kind_and_weights_round_trip(dgl, ids):
    from graphrec.interop.dgl import from_dgl, to_dgl

    m = sp.csr_matrix(np.array([[0.5, 0, 2.0], [0, 0, 0], [1.25, 3.0, 0], [0, 0, 7.0]], dtype=np.float32))
    graph = HeteroGraph(
        {"user": IdMap(ids), "note": IdMap(["x", "y", "z"]), "tag": IdMap([1])}, {("user", "engages", "note"): m}
    )
    g = to_dgl(graph, reverse=False)
    assert g.canonical_etypes == [("user", "engages", "note")] and g.num_nodes("tag") == 1
    w = g.edges[("user", "engages", "note")].data["weight"].numpy()
    np.testing.assert_array_equal(w, m.data)
    _assert_same(graph, from_dgl(g))


def test_side_info_becomes_note_data(dgl, graph):
    from graphrec.interop.dgl import to_dgl

    text = np.random.default_rng(0).normal(size=(graph.num_nodes("note"), 6)).astype(np.float32)
    side = side_info_from_graph(graph, text=text)
    nd = to_dgl(graph, side_info=side).nodes["note"].data
    np.testing.assert_array_equal(nd["text"].numpy(), text)
    np.testing.assert_array_equal(nd["author"].numpy(), side.authors)
    tags = nd["tags"].numpy()
    ht = graph.relation(HAS_TAG)
    for n in range(graph.num_nodes("note")):
        row = tags[n]
        np.testing.assert_array_equal(row[row >= 0], ht.indices[ht.indptr[n] : ht.indptr[n + 1]])
        assert (row[(row >= 0).sum() :] == -1).all()
    with pytest.raises(InvalidParameterError, match="side_info describes 3 notes"):
        to_dgl(graph, side_info=SideInfo(3))


def test_graphs_made_in_dgl_come_back(dgl):
    """No ids (0..n-1), no weights (1.0), parallel edges summed, a rev_-only type transposed."""
    import torch

    from graphrec.interop.dgl import from_dgl

    g = dgl.heterograph(
        {
            ("user", "engages", "note"): (torch.tensor([0, 0, 1]), torch.tensor([1, 1, 0])),
            ("tag", "rev_has_tag", "note"): (torch.tensor([0, 1]), torch.tensor([1, 1])),
        },
        num_nodes_dict={"user": 2, "note": 2, "tag": 2},
    )
    back = from_dgl(g)
    assert back.id_map("user").ids.tolist() == [0, 1]
    np.testing.assert_array_equal(back.relation(ENGAGES).toarray(), [[0, 2], [1, 0]])
    np.testing.assert_array_equal(back.relation(("note", "has_tag", "tag")).toarray(), [[0, 0], [1, 1]])


def test_bad_weights_are_clear_errors(dgl, graph):
    import torch

    from graphrec.interop.dgl import from_dgl, to_dgl

    g = to_dgl(graph, reverse=False)
    et = ("user", "engages", "note")
    w = g.edges[et].data["weight"]
    g.edges[et].data["weight"] = torch.stack([w, w], 1)
    with pytest.raises(InvalidParameterError, match="one value per edge"):
        from_dgl(g)
    g.edges[et].data["weight"] = -w
    with pytest.raises(InvalidParameterError, match="weights must be >= 0"):
        from_dgl(g)


def test_dgl_trained_embeddings_are_served_by_the_recall_engine(dgl, graph, small_tables, tmp_path):
    """Note vectors computed on the DGL side (a weighted message-passing step) come back through
    the bundle, and the engine serves them: similar notes and user recall are exact top-k."""
    import dgl.function as fn
    import torch

    from graphrec.interop.dgl import to_dgl

    g = to_dgl(graph)
    torch.manual_seed(0)
    g.nodes["user"].data["h"] = torch.randn(g.num_nodes("user"), 8)
    rev = ("note", "rev_engages", "user")
    sub = g.edge_type_subgraph([("user", "engages", "note")])
    sub.update_all(fn.u_mul_e("h", "weight", "m"), fn.mean("m", "h"))
    note_emb = sub.nodes["note"].data["h"].numpy()
    assert g.num_edges(rev) == graph.num_edges(ENGAGES)

    out = bundle_from_embeddings(graph, tmp_path / "bundle", note_embeddings=note_emb, interactions=small_tables[0])
    engine = RecallEngine.load(out, ChannelConfig(weights={"embedding": 1.0}))
    notes = graph.id_map("note").ids
    sim = engine.similar_notes(notes[:3], k=5)
    for r in range(3):
        scores = note_emb.astype(np.float64) @ note_emb[r].astype(np.float64)
        scores[r] = -np.inf
        np.testing.assert_allclose(sim.scores[r], np.sort(scores)[::-1][:5], rtol=1e-5)
    res = engine.recall(list(graph.id_map("user").ids[:4]), k=10)
    assert (res.channels[res.scores > -np.inf] == "embedding").all() and not res.fallback.any()
