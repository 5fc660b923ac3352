from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.exceptions import ArtifactError, InvalidParameterError
from graphrec.graph import ENGAGES, SIMILAR, HeteroGraph, build_graph
from graphrec.io import IdMap


def _equal(a: HeteroGraph, b: HeteroGraph) -> None:
    assert a.node_types == b.node_types and a.edge_types == b.edge_types
    for t in a.node_types:
        assert a.id_map(t) == b.id_map(t)
    for et in a.edge_types:
        diff = a.relation(et) != b.relation(et)
        assert diff.nnz == 0
        assert b.relation(et).dtype == np.float32


def test_save_load_round_trip(tmp_path, small_tables):
    g = build_graph(*small_tables)
    g = g.with_relation(
        SIMILAR, sp.random(g.num_nodes("note"), g.num_nodes("note"), density=0.01, random_state=0, format="csr")
    )
    g.save(tmp_path / "g")
    back = HeteroGraph.load(tmp_path / "g")
    _equal(g, back)
    assert back.meta["weighting"] == "sum"
    assert back.id_map("user").ids.dtype.kind == "O"  # text ids survive without pickle (as str objects)
    assert all(type(v) is str for v in back.id_map("user").ids)
    # Relations are in scipy's own .npz layout: scipy.sparse.load_npz reads them as they are.
    name = json.loads((tmp_path / "g" / "manifest.json").read_text())["relations"][0]["file"]
    assert (sp.load_npz(tmp_path / "g" / name) != g.relation(ENGAGES)).nnz == 0


def test_save_replaces_atomically_and_leaves_no_temp(tmp_path, small_tables):
    g = build_graph(*small_tables)
    g.save(tmp_path / "g")
    g.save(tmp_path / "g")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["g"]


def test_failed_save_keeps_earlier_artifact(tmp_path, small_tables, monkeypatch):
    g = build_graph(*small_tables)
    g.save(tmp_path / "g")
    before = (tmp_path / "g" / "manifest.json").read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("graphrec.graph.hetero.write_manifest", boom)
    with pytest.raises(OSError, match="disk full"):
        g.save(tmp_path / "g")
    assert (tmp_path / "g" / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["g"]


def test_corrupt_artifacts_are_named(tmp_path, small_tables):
    g = build_graph(*small_tables)
    g.save(tmp_path / "g")
    rel = tmp_path / "g" / "relations" / "user__engages__note.npz"
    data = rel.read_bytes()
    rel.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"user__engages__note.npz: checksum mismatch"):
        HeteroGraph.load(tmp_path / "g")
    rel.unlink()
    with pytest.raises(ArtifactError, match=r"user__engages__note.npz: missing"):
        HeteroGraph.load(tmp_path / "g")
    manifest = tmp_path / "g" / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(ArtifactError, match=r"manifest.json: not valid JSON"):
        HeteroGraph.load(tmp_path / "g")
    g.save(tmp_path / "g")
    m = json.loads(manifest.read_text())
    m["format_version"] = 99
    manifest.write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match=r"format_version 99 is not supported"):
        HeteroGraph.load(tmp_path / "g")
    with pytest.raises(ArtifactError, match=r"not a saved graphrec graph"):
        HeteroGraph.load(tmp_path / "nothing")


def test_validation_of_relations():
    ids = {"user": IdMap([1, 2]), "note": IdMap([1])}
    with pytest.raises(InvalidParameterError, match=r"expected shape \(2, 1\)"):
        HeteroGraph(ids, {ENGAGES: sp.csr_matrix(np.ones((1, 1)))})
    with pytest.raises(InvalidParameterError, match="weights must be finite"):
        HeteroGraph(ids, {ENGAGES: sp.csr_matrix(np.array([[np.nan], [1.0]]))})
    with pytest.raises(InvalidParameterError, match="weights must be >= 0"):
        HeteroGraph(ids, {ENGAGES: sp.csr_matrix(np.array([[-1.0], [1.0]]))})
    with pytest.raises(InvalidParameterError, match="node type 'tag' has no id map"):
        HeteroGraph(ids, {("note", "has_tag", "tag"): sp.csr_matrix((1, 1))})
    with pytest.raises(InvalidParameterError, match="rev_ ones are derived"):
        HeteroGraph(ids, {("note", "rev_engages", "user"): sp.csr_matrix((1, 2))})
    g = HeteroGraph(ids, {ENGAGES: sp.csr_matrix(np.array([[1.0], [0.0]]))})
    with pytest.raises(InvalidParameterError, match="the graph has no relation"):
        g.relation(("user", "authored", "note"))
    with pytest.raises(InvalidParameterError, match="unknown node type 'tag'"):
        g.num_nodes("tag")


def test_input_matrix_is_not_mutated():
    m = sp.csr_matrix((np.array([1.0, 0.0, 2.0]), np.array([0, 0, 0]), np.array([0, 2, 3])), shape=(2, 1))
    HeteroGraph({"user": IdMap([1, 2]), "note": IdMap([1])}, {ENGAGES: m})
    assert m.nnz == 3
