"""Benchmark: a 7-"day" temporal replay — live updates on a frozen model against daily full rebuilds.

The bundled sample has no daily rhythm, so a "day" is a slice of 2% of the events in time
order: the model is trained on the first 86%, and the last 14% are replayed as 7 days. On each
day ``d``:

* **live**: the base engine (trained once) plus :meth:`RecallEngine.update` with the events of
  days ``1..d-1`` and :meth:`RecallEngine.add_notes` with the notes first engaged in them (the
  GNN's side-info encoder embeds those; tags and authors, no text, for speed);
* **rebuild**: the same GNN configuration retrained from scratch on everything before day ``d``
  (graph, training, Swing, bundle), what a daily batch job does.

Both recall for the users active on day ``d``; truth = their day-``d`` notes they had not
engaged before. recall@20 = hits / truth size, averaged over users. Reported per day and on
average: the ratio live / rebuild (goal >= 0.95) and the cost ratio (seconds to apply the live
updates / seconds to rebuild).

Usage::

    python benchmarks/replay.py --out benchmarks/results/replay.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import machine, write_json

from graphrec._table import format_table
from graphrec.graph import build_graph, side_info_from_graph
from graphrec.io import read_interactions, read_notes
from graphrec.jobs.bundle import bundle_from_model
from graphrec.model import GNNConfig, GNNRecommender
from graphrec.recall import RecallEngine

K = 20


def build_engine(frame: pd.DataFrame, notes: pd.DataFrame, cfg: GNNConfig, out: Path) -> RecallEngine:
    """Train from scratch on ``frame`` and load the bundle (the rebuild path)."""
    seen = notes[notes["note_id"].isin(frame["note_id"].unique())]
    graph = build_graph(frame, seen)
    model = GNNRecommender(cfg, show_progress=False).fit(graph, side_info_from_graph(graph))
    bundle_from_model(graph, model, frame, out, swing_top_k=100)
    return RecallEngine.load(out)


def _recall(engine: RecallEngine, users: list[Any], truth: list[set[Any]]) -> float:
    ids = engine.recall(users, K).ids
    return float(np.mean([len(set(r.tolist()) & t) / len(t) for r, t in zip(ids, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "sample")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--day-fraction", type=float, default=0.02)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    frame = read_interactions(args.data / "interactions.parquet").sort_values("timestamp", kind="stable")
    notes = read_notes(args.data / "notes.jsonl")
    cfg = GNNConfig(batch_size=1024, epochs=30, patience=3)
    n = len(frame)
    day = int(n * args.day_fraction)
    start = n - args.days * day
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        base = build_engine(frame.iloc[:start], notes, cfg, tmp / "base")
        base_seconds = time.perf_counter() - t
        live = base
        for d in range(args.days):
            lo, hi = start + d * day, start + (d + 1) * day
            past, today = frame.iloc[:lo], frame.iloc[lo:hi]
            if d > 0:  # live: yesterday's events and the notes first seen in them
                yesterday = frame.iloc[lo - day : lo]
                t = time.perf_counter()
                known = live.bundle.ids["note"].index(yesterday["note_id"].to_numpy(), missing="ignore") >= 0
                new_ids = pd.unique(yesterday["note_id"].to_numpy()[~known])
                if new_ids.size:
                    live = live.add_notes(notes[notes["note_id"].isin(new_ids)])
                live = live.update(yesterday)
                live_seconds = time.perf_counter() - t
            else:
                live_seconds = 0.0
            t = time.perf_counter()
            rebuilt = build_engine(past, notes, cfg, tmp / f"day{d}") if d > 0 else base
            rebuild_seconds = time.perf_counter() - t if d > 0 else base_seconds
            engaged = past.groupby("user_id")["note_id"].agg(set)
            truth_by_user = {u: set(g) - engaged.get(u, set()) for u, g in today.groupby("user_id")["note_id"]}
            users = [u for u, t_ in truth_by_user.items() if t_]
            truth = [truth_by_user[u] for u in users]
            r_live, r_rebuild = _recall(live, users, truth), _recall(rebuilt, users, truth)
            rows.append(
                {
                    "day": d + 1,
                    "users": len(users),
                    "live": r_live,
                    "rebuild": r_rebuild,
                    "ratio": r_live / max(r_rebuild, 1e-12),
                    "live_seconds": live_seconds,
                    "rebuild_seconds": rebuild_seconds,
                }
            )
            print(
                f"day {d + 1}: {len(users)} users, live {r_live:.4f}, rebuild {r_rebuild:.4f}, "
                f"update {live_seconds:.2f}s, rebuild {rebuild_seconds:.1f}s",
                flush=True,
            )
    replayed = [r for r in rows if r["day"] > 1]
    summary = {
        # Day 1 serves the base model on both paths (nothing to replay yet): the means skip it.
        "mean_live": float(np.mean([r["live"] for r in replayed])),
        "mean_rebuild": float(np.mean([r["rebuild"] for r in replayed])),
        "cost_ratio": sum(r["live_seconds"] for r in replayed) / sum(r["rebuild_seconds"] for r in replayed),
    }
    summary["ratio"] = summary["mean_live"] / summary["mean_rebuild"]
    cols = ["day", "users", "live", "rebuild", "ratio", "live_seconds", "rebuild_seconds"]
    print(format_table(cols, [[r[c] for c in cols] for r in rows]))
    print(
        f"mean recall@{K} over days 2..{args.days}: live {summary['mean_live']:.4f}, rebuild {summary['mean_rebuild']:.4f}, "
        f"ratio {summary['ratio']:.3f}; cost ratio (update / rebuild seconds) {summary['cost_ratio']:.4f}"
    )
    if args.out:
        write_json(args.out, {"rows": rows, "summary": summary, "machine": machine(), "command": " ".join(sys.argv)})


if __name__ == "__main__":
    main()
