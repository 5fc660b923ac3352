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


def write_encoder_bundle(path, graph, interactions, *, swing_top_k=None, text=None):
    """A bundle from a tiny GNN with a note encoder (what cold start needs), for service and
    reliability tests; ``text``: per-note text vectors the encoder also takes. Returns the id maps."""
    from graphrec.graph import side_info_from_graph
    from graphrec.jobs.bundle import bundle_from_model
    from graphrec.model import GNNRecommender

    side = side_info_from_graph(graph, text=text)
    model = GNNRecommender(dim=8, epochs=1, batch_size=512, show_progress=False).fit(graph, side)
    bundle_from_model(graph, model, interactions, path, swing_top_k=swing_top_k)
    return {t: graph.id_map(t) for t in graph.node_types}
