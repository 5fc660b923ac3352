"""Job: the end-to-end demo on the bundled sample (``graphrec demo --out DIR``).

Today it reads the sample (parquet interactions, JSONL notes, CSV users), splits it in time,
builds the graph from the training part, saves it under ``DIR/graph``, estimates popularity's
effect on engagement with DoWhy and debiases the edge weights (report in
``DIR/debias_report.json``), and evaluates popularity, ItemCF, Swing and weighted ItemCF with and
without the debiased weights by full ranking; then it builds the serving bundle (PureSVD
embeddings, faiss indexes, Swing neighbours) under ``DIR/bundle``, evaluates the multi-channel
recall engine the same way and shows example recalls; the figures go to ``DIR/metrics.json``.
Later stages (edge weights, GNN, index bundle, cold start) plug in here as they land.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphrec._atomic import atomic_file
from graphrec.evaluate import (
    ItemCFRecommender,
    MostPopular,
    SwingRecommender,
    evaluate_scorer,
    relevance_matrix,
    temporal_split,
)
from graphrec.exceptions import InvalidParameterError
from graphrec.graph import ENGAGES, build_graph
from graphrec.io import IdMap, read_interactions, read_notes, read_users
from graphrec.recall import RecallEngine
from graphrec.weights import PopularityDebiaser
from pipelines.bundle import bundle_from_graph

__all__ = ["DemoConfig", "default_data_dir", "run"]

SAMPLE_FILES = {"interactions": "interactions.parquet", "notes": "notes.jsonl", "users": "users.csv"}


def _engine_scorer(engine: RecallEngine, user_map: IdMap, n_notes: int, k: int) -> Callable[[np.ndarray], np.ndarray]:
    """Adapt the engine's top-k recall to the harness's scorer interface (rank as score)."""
    note_map = engine.bundle.ids["note"]

    def score(users: np.ndarray) -> np.ndarray:
        res = engine.recall(list(user_map.ids[users]), k=k)
        out = np.full((len(users), n_notes), -np.inf, dtype=np.float32)
        for r in range(len(users)):
            valid = np.isfinite(res.scores[r])
            out[r, note_map.index(res.ids[r][valid])] = np.arange(int(valid.sum()), 0, -1)
        return out

    return score


def default_data_dir() -> Path:
    """``data/sample`` under the working directory, else under the repository holding this package."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base / "data" / "sample"
        if (candidate / SAMPLE_FILES["interactions"]).is_file():
            return candidate
    raise InvalidParameterError("cannot find data/sample; run from the repository root or pass --data DIR")


@dataclass(frozen=True)
class DemoConfig:
    """Options of the demo job."""

    out: str = "artifacts/demo"
    data: str | None = None
    test_fraction: float = 0.2
    k: int = 20
    itemcf_top_k: int = 100
    #: ItemCF's popularity exponent for the second ItemCF row (< 0.5 favours popular neighbours).
    itemcf_alpha: float = 0.2
    refute_simulations: int = 3
    dim: int = 64
    example_users: int = 3


def run(config: DemoConfig) -> dict[str, Any]:
    """Run the demo; returns everything written to ``metrics.json``."""
    data = Path(config.data) if config.data else default_data_dir()
    out = Path(config.out)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    interactions = read_interactions(data / SAMPLE_FILES["interactions"])
    notes = read_notes(data / SAMPLE_FILES["notes"])
    users = read_users(data / SAMPLE_FILES["users"])
    timings["read_seconds"] = time.perf_counter() - t

    t = time.perf_counter()
    split = temporal_split(interactions, test_fraction=config.test_fraction)
    graph = build_graph(split.train, notes, users=users)
    graph.save(out / "graph")
    timings["build_graph_seconds"] = time.perf_counter() - t

    user_map, note_map = graph.id_map("user"), graph.id_map("note")
    train, _ = relevance_matrix(split.train, user_map, note_map)
    test, dropped = relevance_matrix(split.test, user_map, note_map)
    results: dict[str, dict[str, float]] = {}
    t = time.perf_counter()
    debiaser = PopularityDebiaser(refute_simulations=config.refute_simulations, seed=0).fit(graph, notes=notes)
    debiaser.write_report(out / "debias_report.json")
    timings["debias_seconds"] = time.perf_counter() - t
    top_k = config.itemcf_top_k
    models: dict[str, tuple[MostPopular | ItemCFRecommender | SwingRecommender, Any]] = {
        "popularity": (MostPopular(), train),
        "itemcf (cosine)": (ItemCFRecommender(top_k=top_k, alpha=0.5), train),
        f"itemcf (alpha={config.itemcf_alpha})": (ItemCFRecommender(top_k=top_k, alpha=config.itemcf_alpha), train),
        "swing": (SwingRecommender(top_k=top_k), train),
        "itemcf weighted": (ItemCFRecommender(top_k=top_k, binary=False), graph.relation(ENGAGES)),
        "itemcf weighted, debiased": (ItemCFRecommender(top_k=top_k, binary=False), debiaser.edge_weights_),
    }
    for name, (model, fit_on) in models.items():
        t = time.perf_counter()
        model.fit(fit_on)
        results[name] = evaluate_scorer(model.score, train, test, ks=(config.k,))
        timings[f"{name}_seconds"] = time.perf_counter() - t
    t = time.perf_counter()
    bundle_from_graph(graph, split.train, out / "bundle", dim=config.dim, swing_top_k=top_k)
    engine = RecallEngine.load(out / "bundle")
    timings["bundle_seconds"] = time.perf_counter() - t
    results["recall engine (all channels)"] = evaluate_scorer(
        _engine_scorer(engine, user_map, len(note_map), config.k), train, test, ks=(config.k,)
    )
    examples = engine.known_users()[: config.example_users]
    res = engine.recall(list(examples), k=5)
    report = {
        "examples": [
            {
                "user": str(u),
                "notes": [str(x) for x in res.ids[i]],
                "channels": list(map(str, res.channels[i])),
                "scores": res.scores[i].tolist(),
            }
            for i, u in enumerate(examples)
        ],
        "config": asdict(config) | {"data": str(data)},
        "data": {
            "rows": len(interactions),
            "duplicates_collapsed": int(interactions.attrs.get("n_duplicates_collapsed", 0)),
            "notes": len(notes),
            "users": len(users),
        },
        "split": {
            "kind": split.kind,
            **split.params,
            "train_rows": len(split.train),
            "test_rows": len(split.test),
            **dropped,
        },
        "graph": graph.summary(),
        "metrics": results,
        "debias": {k: debiaser.report_[k] for k in ("estimate_ate", "refutations", "common_causes", "weights")},
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    with atomic_file(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True))
    return report
