"""Shared fixtures of the recall tests: a PureSVD bundle over the small synthetic tables."""

from __future__ import annotations

import pytest

from graphrec.graph import ENGAGES, HAS_TAG, build_graph, recency_matrix
from graphrec.index import load_bundle, write_bundle
from graphrec.model import PureSVD, tag_embeddings
from graphrec.weights import swing


@pytest.fixture(scope="session")
def bundle_dir(small_tables, tmp_path_factory):
    interactions, notes = small_tables
    g = build_graph(interactions, notes)
    svd = PureSVD(dim=16).fit(g.relation(ENGAGES))
    ids = {"user": g.id_map("user"), "note": g.id_map("note"), "tag": g.id_map("tag")}
    out = tmp_path_factory.mktemp("b") / "bundle"
    write_bundle(
        out,
        ids=ids,
        embeddings={
            "user": svd.user_embeddings_,
            "note": svd.note_embeddings_,
            "tag": tag_embeddings(g.relation(HAS_TAG), svd.note_embeddings_),
        },
        history=recency_matrix(interactions, ids["user"], ids["note"]),
        similar=swing(g.relation(ENGAGES), top_k=20),
        note_tags=g.relation(HAS_TAG),
        config={"model": "puresvd", "dim": 16},
    )
    return out


@pytest.fixture(scope="session")
def engine_bundle(bundle_dir):
    return load_bundle(bundle_dir)
