"""Job: the end-to-end demo on the bundled sample (``graphrec demo --out DIR``).

Today it reads the sample (parquet interactions, JSONL notes, CSV users), splits it in time,
builds the graph from the training part, saves it under ``DIR/graph``, and evaluates the
popularity and ItemCF baselines with full ranking; the figures go to ``DIR/metrics.json``.
Later stages (edge weights, GNN, index bundle, cold start) plug in here as they land.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from graphrec._atomic import atomic_file
from graphrec.evaluate import ItemCFRecommender, MostPopular, evaluate_scorer, relevance_matrix, temporal_split
from graphrec.exceptions import InvalidParameterError
from graphrec.graph import build_graph
from graphrec.io import read_interactions, read_notes, read_users

__all__ = ["DemoConfig", "default_data_dir", "run"]

SAMPLE_FILES = {"interactions": "interactions.parquet", "notes": "notes.jsonl", "users": "users.csv"}


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
    models: dict[str, MostPopular | ItemCFRecommender] = {
        "popularity": MostPopular(),
        "itemcf (cosine)": ItemCFRecommender(top_k=config.itemcf_top_k, alpha=0.5),
        f"itemcf (alpha={config.itemcf_alpha})": ItemCFRecommender(
            top_k=config.itemcf_top_k, alpha=config.itemcf_alpha
        ),
    }
    for name, model in models.items():
        t = time.perf_counter()
        model.fit(train)
        results[name] = evaluate_scorer(model.score, train, test, ks=(config.k,))
        timings[f"{name}_seconds"] = time.perf_counter() - t
    report = {
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
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    with atomic_file(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True))
    return report
