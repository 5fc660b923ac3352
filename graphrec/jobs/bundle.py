"""Job: build a serving bundle (embeddings, faiss indexes, Swing neighbours, history) for recall.

One mechanism, :func:`bundle_from_embeddings`: user and note embeddings trained anywhere (a
graphrec model, DGL, another library) plus the graph they were trained on become a bundle that
:class:`graphrec.recall.RecallEngine` serves. Around it:

* :func:`bundle_from_graph`: the quick, training-free bundle, embeddings from
  :class:`graphrec.model.PureSVD` (a closed-form peer of the GNN), no note encoder (so no cold
  start);
* :func:`bundle_from_model`: a fitted :class:`graphrec.model.GNNRecommender`, with its side-info
  encoder. The batch chain (:mod:`graphrec.jobs.chain`, ``graphrec run``) builds GNN bundles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphrec.graph import AUTHORED, ENGAGES, HAS_TAG, SIMILAR, HeteroGraph, recency_matrix
from graphrec.index import NoteEncoder, write_bundle
from graphrec.model import PureSVD
from graphrec.model import tag_embeddings as mean_tag_embeddings
from graphrec.recall import fold_in
from graphrec.weights import swing

__all__ = ["bundle_from_embeddings", "bundle_from_graph", "bundle_from_model"]


def bundle_from_embeddings(
    graph: HeteroGraph,
    out: str | Path,
    *,
    note_embeddings: Any,
    user_embeddings: Any = None,
    tag_embeddings: Any = None,
    interactions: pd.DataFrame | None = None,
    swing_top_k: int | None = None,
    encoder: NoteEncoder | None = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write a serving bundle for embeddings of ``graph``'s notes (and users) to ``out``.

    Parameters
    ----------
    graph : HeteroGraph
        The graph the embeddings were trained on; rows follow its id maps.
    note_embeddings : array (n_notes, dim)
        Any array-like (a torch tensor: ``t.detach().cpu().numpy()``).
    user_embeddings : array (n_users, dim), optional
        Default: folded in from each user's history (:func:`graphrec.recall.fold_in`, the
        request-time rule), for models that learn note embeddings only (PinSAGE, item2vec).
    tag_embeddings : array (n_tags, dim), optional
        Default (when the graph has tags): each tag's mean note embedding.
    interactions : DataFrame, optional
        The training log; gives the history its recency. Default: the graph's engagements, all
        equally recent.
    swing_top_k : int, optional
        Compute Swing neighbours (the Swing channel) with this many per note. Default: the
        graph's ``note–similar–note`` relation when it has one (e.g. from
        :func:`graphrec.weights.with_swing`), else no Swing channel.
    encoder : NoteEncoder, optional
        A side-info encoder for new notes (cold start, ``add_notes``).
    config : dict, optional
        JSON-serialisable description, hashed into the manifest.
    """
    ids = {t: graph.id_map(t) for t in graph.node_types}
    engages = graph.relation(ENGAGES)
    if interactions is not None:
        history = recency_matrix(interactions, ids["user"], ids["note"])
    else:
        history = engages.copy()
        history.data[:] = 1.0
    notes = np.asarray(note_embeddings, dtype=np.float32)
    users = fold_in(history, notes) if user_embeddings is None else user_embeddings
    embeddings = {"user": users, "note": notes}
    note_tags = graph.relation(HAS_TAG) if graph.has_relation(HAS_TAG) else None
    if tag_embeddings is not None:
        embeddings["tag"] = tag_embeddings
    elif note_tags is not None:
        embeddings["tag"] = mean_tag_embeddings(note_tags, notes)
    if swing_top_k:
        similar = swing(engages, top_k=swing_top_k)
    else:
        similar = graph.relation(SIMILAR) if graph.has_relation(SIMILAR) else None
    return write_bundle(
        out,
        ids=ids,
        embeddings=embeddings,
        history=history,
        similar=similar,
        note_tags=note_tags,
        authored=graph.relation(AUTHORED) if graph.has_relation(AUTHORED) else None,
        encoder=encoder,
        config={"users": "given" if user_embeddings is not None else "fold_in", **(config or {})},
    )


def bundle_from_graph(
    graph: HeteroGraph,
    interactions: pd.DataFrame,
    out: str | Path,
    *,
    dim: int = 64,
    swing_top_k: int = 100,
    config: dict[str, Any] | None = None,
) -> Path:
    """Embed ``graph``'s engagements with PureSVD, compute Swing and write the bundle to ``out``."""
    svd = PureSVD(dim=dim).fit(graph.relation(ENGAGES))
    return bundle_from_embeddings(
        graph,
        out,
        note_embeddings=svd.note_embeddings_,
        user_embeddings=svd.user_embeddings_,
        interactions=interactions,
        swing_top_k=swing_top_k,
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
    return bundle_from_embeddings(
        graph,
        out,
        note_embeddings=model.note_embeddings_,
        user_embeddings=model.user_embeddings_,
        interactions=interactions,
        swing_top_k=swing_top_k,
        encoder=model.note_encoder() if model.encodes_new_notes_ else None,
        config={"embeddings": "gnn", **(config or {})},
    )
