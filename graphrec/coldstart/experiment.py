"""The cold-start experiment end to end: split, train, tune, replay rounds, compare baselines.

:func:`run_experiment` is what ``benchmarks/coldstart_rounds.py``, notebook 4 and the demo run:

1. ``train`` (everything but the cold test notes) loses a further ``tune_fraction`` of its notes
   with at least ``min_engagements`` engaged users (use the rule that picked the test notes, so
   tuning sees the same population), whole: the *tuning notes*; the GNN trains on the rest with side-info (text, tags, authors);
2. boosts, then look-alike weights, are tuned (:func:`graphrec.coldstart.tune_boosts`,
   :func:`graphrec.coldstart.tune_lookalike`) on the tuning notes;
3. the cold test notes are replayed in rounds (:func:`graphrec.coldstart.simulation.simulate_rounds`)
   and scored with :func:`graphrec.evaluate.audience_metrics`, next to the baselines.

Ground truth is restricted to users the model knows (unknown users cannot be targeted).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec.coldstart.audience import ColdStart
from graphrec.coldstart.features import Boosts
from graphrec.coldstart.simulation import baseline_audiences, simulate_rounds
from graphrec.coldstart.tuning import tune_boosts, tune_lookalike
from graphrec.evaluate import audience_metrics
from graphrec.evaluate.splits import cold_note_split
from graphrec.graph import AUTHORED, HAS_TAG, HeteroGraph, build_graph, recency_matrix
from graphrec.graph.side_info import SideInfo, encode_texts, note_texts, side_info_for_notes, side_info_from_graph
from graphrec.io.interactions import engaged_mask
from graphrec.model.gnn import GNNConfig, GNNRecommender

__all__ = ["cold_start_from_model", "replay", "run_experiment", "truth_sets"]


def truth_sets(interactions: pd.DataFrame, note_ids: np.ndarray, graph: HeteroGraph) -> list[np.ndarray]:
    """Engaged known users (graph user indices) of each note in ``note_ids``."""
    engaged = interactions.loc[engaged_mask(interactions), ["user_id", "note_id"]]
    users = graph.id_map("user").index(engaged["user_id"].to_numpy(), missing="ignore")
    notes = pd.Index(note_ids).get_indexer(engaged["note_id"])
    ok = (users >= 0) & (notes >= 0)
    groups = pd.Series(users[ok]).groupby(notes[ok]).apply(lambda s: np.unique(s.to_numpy()))
    return [groups.get(j, np.empty(0, np.int64)) for j in range(len(note_ids))]


def cold_start_from_model(
    model: GNNRecommender, graph: HeteroGraph, interactions: pd.DataFrame, **options: Any
) -> ColdStart:
    """A :class:`ColdStart` over a fitted GNN and its training graph."""
    ids = {t: graph.id_map(t) for t in graph.node_types}
    return ColdStart(**options).fit(
        user_ids=ids["user"],
        user_embeddings=model.user_embeddings_,
        history=recency_matrix(interactions, ids["user"], ids["note"]),
        encoder=model.note_encoder(),
        tag_ids=ids.get("tag"),
        note_tags=graph.relation(HAS_TAG) if graph.has_relation(HAS_TAG) else None,
        authored=graph.relation(AUTHORED) if graph.has_relation(AUTHORED) else None,
    )


def _text(notes: pd.DataFrame, cache: Path | None) -> np.ndarray | None:
    texts = note_texts(notes)
    if not any(texts):
        return None
    return encode_texts(texts, cache=cache)


def run_experiment(
    train: pd.DataFrame,
    test: pd.DataFrame,
    notes: pd.DataFrame,
    cold_ids: np.ndarray,
    *,
    budget: int,
    tune_fraction: float = 0.1,
    min_engagements: int = 1,
    n_trials: int = 40,
    lookalike_trials: int = 30,
    gnn: GNNConfig | None = None,
    use_text: bool = True,
    text_cache: Path | None = None,
    seed: int = 0,
    show_progress: bool | None = None,
) -> dict[str, Any]:
    """Run the protocol of the module docstring; returns metrics per method and round, and timings."""
    t0 = time.perf_counter()
    tune_split = cold_note_split(train, fraction=tune_fraction, min_engagements=min_engagements, seed=seed + 1)
    tune_ids = np.asarray(tune_split.held_out_notes)
    held = np.concatenate([np.asarray(cold_ids), tune_ids])
    warm_notes = notes.loc[~notes["note_id"].isin(held)].reset_index(drop=True)
    graph = build_graph(tune_split.train, warm_notes)
    text_all = _text(notes, text_cache) if use_text else None
    pos = pd.Index(notes["note_id"])

    def side_for(ids: np.ndarray) -> SideInfo:
        rows = notes.set_index("note_id").loc[ids].reset_index()
        text = text_all[pos.get_indexer(ids)] if text_all is not None else None
        tags = graph.id_map("tag") if "tag" in graph.node_types else None
        return side_info_for_notes(rows, users=graph.id_map("user"), tags=tags, text=text)[0]

    warm_text = text_all[pos.get_indexer(graph.id_map("note").ids)] if text_all is not None else None
    t_train = time.perf_counter()
    model = GNNRecommender(gnn or GNNConfig(), show_progress=show_progress).fit(
        graph, side_info_from_graph(graph, text=warm_text)
    )
    train_seconds = time.perf_counter() - t_train
    cold = cold_start_from_model(model, graph, tune_split.train)
    test_side = side_for(np.asarray(cold_ids))
    truth = truth_sets(test, np.asarray(cold_ids), graph)
    out = replay(
        cold,
        side_for(tune_ids),
        truth_sets(tune_split.test, tune_ids, graph),
        test_side,
        truth,
        budget=budget,
        note_tags=graph.relation(HAS_TAG) if graph.has_relation(HAS_TAG) else None,
        n_trials=n_trials,
        lookalike_trials=lookalike_trials,
        seed=seed,
    )
    return {
        **out,
        "counts": {
            "cold_notes": len(cold_ids),
            "cold_notes_with_truth": int(sum(len(t) > 0 for t in truth)),
            "tuning_notes": int(tune_ids.size),
            "users": int(graph.num_nodes("user")),
            "cold_notes_without_side_info": int((~test_side.usable()).sum()),
        },
        "gnn": {
            "train_seconds": train_seconds,
            "epochs_run": model.log_.epochs_run,
            "best_epoch": model.log_.best_epoch,
        },
        "seconds": time.perf_counter() - t0,
    }


def replay(
    cold: ColdStart,
    tune_side: SideInfo,
    tune_truth: list[np.ndarray],
    test_side: SideInfo,
    truth: list[np.ndarray],
    *,
    budget: int,
    note_tags: sp.spmatrix | None = None,
    n_trials: int = 40,
    lookalike_trials: int = 30,
    seed: int = 0,
) -> dict[str, Any]:
    """Steps 2 and 3 of the protocol on a built :class:`ColdStart` (tuned copies of it are replayed).

    Returns ``budget``, ``metrics`` (per method), the tuned ``boosts`` and ``lookalike`` weights,
    and ``tuning`` summaries. Besides the baselines, ``tag feature only`` ranks
    the seed candidates by the tag feature alone (an ablation of the seed score).
    """
    tuned = tune_boosts(cold, tune_side, tune_truth, budget=budget, n_trials=n_trials, seed=seed)
    cold = cold.with_params(boosts=tuned.boosts)
    tuned_la = tune_lookalike(cold, tune_side, tune_truth, budget=budget, n_trials=lookalike_trials, seed=seed)
    cold = cold.with_params(lookalike=tuned_la.lookalike)

    rounds = simulate_rounds(cold, test_side, truth, budget=budget, rounds=2)
    cands = cold.candidate_features(test_side)
    seeds_2n = [c.rank(cold.boosts.vector(), 2 * budget)[0] for c in cands]
    base = baseline_audiences(cold.features_.history, test_side, budget=budget, note_tags=note_tags, seed=seed)
    results: dict[str, dict[str, float]] = {
        "seeds (round 1)": audience_metrics(rounds[0], truth, budget=budget),
        "look-alike (round 2)": audience_metrics(rounds[1], truth, budget=budget),
        "seeds + look-alike (cumulative 2N)": audience_metrics(
            [np.concatenate([a, b]) for a, b in zip(rounds[0], rounds[1])], truth, budget=2 * budget
        ),
        "seeds only 2N": audience_metrics(seeds_2n, truth, budget=2 * budget),
    }
    if note_tags is not None:
        only_tag = Boosts(embedding=0.0, author=0.0, tag=1.0, activity=0.0, recency=0.0).vector()
        results["tag feature only"] = audience_metrics(
            [c.rank(only_tag, budget)[0] for c in cands], truth, budget=budget
        )
    for name, sets in base.items():
        results[name] = audience_metrics(sets, truth, budget=budget)
    return {
        "budget": budget,
        "metrics": results,
        "boosts": asdict(tuned.boosts),
        "lookalike": tuned_la.params,
        "tuning": {
            "boosts": {"best_recall": tuned.best_recall, "default_recall": tuned.default_recall, "n_trials": n_trials},
            "lookalike": {
                "best_cumulative_recall": tuned_la.best_recall,
                "default_cumulative_recall": tuned_la.default_recall,
                "n_trials": lookalike_trials,
            },
        },
    }
