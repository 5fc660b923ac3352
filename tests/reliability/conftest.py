from __future__ import annotations

import pytest
from _helpers import write_encoder_bundle
from reliability._world import World

from graphrec.cli import main
from graphrec.graph import HeteroGraph, build_graph
from graphrec.io import read_interactions
from graphrec.jobs.bundle import bundle_from_graph


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    data = root / "data"
    assert main(["synth", "--out", str(data), "--users", "150", "--notes", "250", "--engagements", "3000"]) == 0
    graph_dir = root / "graph"
    args = ["build-graph", "--interactions", str(data / "interactions.parquet"), "--notes", str(data / "notes.jsonl")]
    assert main([*args, "--out", str(graph_dir)]) == 0
    interactions = read_interactions(data / "interactions.parquet")
    bundle_from_graph(build_graph(interactions), interactions, root / "bundle", dim=8)
    ids = write_encoder_bundle(root / "cold_bundle", HeteroGraph.load(graph_dir), interactions)
    return World(
        root=root,
        data=data,
        graph=graph_dir,
        bundle=root / "bundle",
        cold_bundle=root / "cold_bundle",
        first_user=str(ids["user"].ids[0]),
        warm_note=ids["note"].ids[0],
    )
