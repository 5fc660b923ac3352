"""Small hand-built tables shared by tests (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import pandas as pd


def tiny_interactions() -> pd.DataFrame:
    """Three users, three notes, hand-checkable weights."""
    return pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b", "c", "c"],
            "note_id": [1, 1, 2, 2, 3, 3, 3],
            "event_type": ["click", "like", "click", "click", "impression", "click", "click"],
            "timestamp": [10, 11, 12, 13, 14, 15, 16],
            "value": [5.0, None, 1.0, 2.0, None, 3.0, 4.0],
        }
    )


def write_encoder_bundle(path, graph, interactions):
    """A bundle from a tiny GNN with a note encoder (what cold start needs), for service and
    reliability tests; returns the id maps."""
    from graphrec.graph import AUTHORED, HAS_TAG, recency_matrix
    from graphrec.index import write_bundle
    from graphrec.model import GNNRecommender, side_info_from_graph

    model = GNNRecommender(dim=8, epochs=1, batch_size=512, show_progress=False).fit(graph, side_info_from_graph(graph))
    ids = {t: graph.id_map(t) for t in graph.node_types}
    write_bundle(
        path,
        ids=ids,
        embeddings={"user": model.user_embeddings_, "note": model.note_embeddings_},
        history=recency_matrix(interactions, ids["user"], ids["note"]),
        note_tags=graph.relation(HAS_TAG),
        authored=graph.relation(AUTHORED) if graph.has_relation(AUTHORED) else None,
        encoder=model.note_encoder(),
    )
    return ids
