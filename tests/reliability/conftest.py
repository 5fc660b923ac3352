from __future__ import annotations

import pytest
from reliability._world import World

from graphrec.cli import main
from graphrec.graph import AUTHORED, HAS_TAG, HeteroGraph, recency_matrix
from graphrec.index import write_bundle
from graphrec.io import read_interactions
from graphrec.jobs.bundle import BundleConfig
from graphrec.jobs.bundle import run as run_bundle
from graphrec.model import GNNRecommender, side_info_from_graph


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    data = root / "data"
    assert main(["synth", "--out", str(data), "--users", "150", "--notes", "250", "--engagements", "3000"]) == 0
    graph_dir = root / "graph"
    args = ["build-graph", "--interactions", str(data / "interactions.parquet"), "--notes", str(data / "notes.jsonl")]
    assert main([*args, "--out", str(graph_dir)]) == 0
    interactions = read_interactions(data / "interactions.parquet")
    run_bundle(BundleConfig(interactions=str(data / "interactions.parquet"), out=str(root / "bundle"), dim=8))
    graph = HeteroGraph.load(graph_dir)
    model = GNNRecommender(dim=8, epochs=1, batch_size=512, show_progress=False).fit(graph, side_info_from_graph(graph))
    ids = {t: graph.id_map(t) for t in graph.node_types}
    write_bundle(
        root / "cold_bundle",
        ids=ids,
        embeddings={"user": model.user_embeddings_, "note": model.note_embeddings_},
        history=recency_matrix(interactions, ids["user"], ids["note"]),
        note_tags=graph.relation(HAS_TAG),
        authored=graph.relation(AUTHORED) if graph.has_relation(AUTHORED) else None,
        encoder=model.note_encoder(),
    )
    return World(
        root=root,
        data=data,
        graph=graph_dir,
        bundle=root / "bundle",
        cold_bundle=root / "cold_bundle",
        first_user=str(ids["user"].ids[0]),
        warm_note=ids["note"].ids[0],
    )
