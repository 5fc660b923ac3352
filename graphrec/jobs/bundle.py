"""Job: build a serving bundle (embeddings, faiss indexes, Swing neighbours, history) for recall.

This is the quick, training-free bundle: embeddings from :class:`graphrec.model.PureSVD` (a
closed-form peer of the GNN), tag embeddings the mean of their notes', no note encoder (so no
cold start). The batch chain (:mod:`graphrec.jobs.chain`, ``graphrec run``) builds GNN bundles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from graphrec.graph import AUTHORED, ENGAGES, HAS_TAG, HeteroGraph, recency_matrix
from graphrec.index import write_bundle
from graphrec.model import PureSVD, tag_embeddings
from graphrec.weights import swing

__all__ = ["bundle_from_graph", "bundle_from_model"]


def bundle_from_graph(
    graph: HeteroGraph,
    interactions: pd.DataFrame,
    out: str | Path,
    *,
    dim: int = 64,
    swing_top_k: int = 100,
    config: dict[str, Any] | None = None,
) -> Path:
    """Embed ``graph``'s engagements, compute Swing and write the bundle to ``out``."""
    engages = graph.relation(ENGAGES)
    svd = PureSVD(dim=dim).fit(engages)
    ids = {t: graph.id_map(t) for t in graph.node_types}
    embeddings = {"user": svd.user_embeddings_, "note": svd.note_embeddings_}
    note_tags = None
    if graph.has_relation(HAS_TAG):
        note_tags = graph.relation(HAS_TAG)
        embeddings["tag"] = tag_embeddings(note_tags, svd.note_embeddings_)
    return write_bundle(
        out,
        ids=ids,
        embeddings=embeddings,
        history=recency_matrix(interactions, ids["user"], ids["note"]),
        similar=swing(engages, top_k=swing_top_k),
        note_tags=note_tags,
        config={"embeddings": "puresvd", "dim": dim, "swing_top_k": swing_top_k, **(config or {})},
    )


def bundle_from_model(
    graph: HeteroGraph,
    model: Any,
    interactions: pd.DataFrame,
    out: str | Path,
    *,
    swing_top_k: int | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write the bundle of a fitted :class:`graphrec.model.GNNRecommender` over ``graph``: its user
    and note embeddings, its side-info encoder (so cold start and ``add_notes`` work), history,
    note tags, authorship and, with ``swing_top_k``, Swing neighbours."""
    ids = {t: graph.id_map(t) for t in graph.node_types}
    return write_bundle(
        out,
        ids=ids,
        embeddings={"user": model.user_embeddings_, "note": model.note_embeddings_},
        history=recency_matrix(interactions, ids["user"], ids["note"]),
        similar=swing(graph.relation(ENGAGES), top_k=swing_top_k) if swing_top_k else None,
        note_tags=graph.relation(HAS_TAG) if graph.has_relation(HAS_TAG) else None,
        authored=graph.relation(AUTHORED) if graph.has_relation(AUTHORED) else None,
        encoder=model.note_encoder() if model.encodes_new_notes_ else None,
        config={"embeddings": "gnn", **(config or {})},
    )
