"""Benchmark: recall for users the model never saw, from their first clicks given at request time.

Protocol (issue 22, "Request-time history"): 10% of the users with at least 15 distinct notes are
held out whole (seeded). Each held-out user's notes are ordered by first engagement (datasets
without times: a seeded shuffle); the first ``n`` in {1, 3, 5, 10} are given, and the notes after
the first 10 are the truth for every ``n`` (so the columns share one target). Compared, recall@20
(hits / number of truth notes, the harness's convention) averaged over held-out users:

* ``popularity``: the most popular training notes (the engine's fallback for unknown users);
* ``request-time``: the model trained *without* the held-out users; their ``n`` notes are passed
  as ``history=`` to :meth:`graphrec.recall.RecallEngine.recall` (all channels, and the embedding
  channel alone);
* ``trained``: the same model configuration retrained *with* the held-out users' ``n`` notes in
  the graph (the same information, put in by retraining); the engine recalls for them as known
  users.

``ratio`` = request-time / trained. Goal: >= 0.70 at n = 5.

Usage::

    python benchmarks/request_history.py --sample --lastfm ../shared/data/lastfm-hetrec2011-2k \\
        --out benchmarks/results/request_history.json
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
from graphrec.graph import ENGAGES, HAS_TAG, build_graph, recency_matrix, side_info_from_graph
from graphrec.index import write_bundle
from graphrec.io import load_lastfm_hetrec, load_lightgcn_split, read_interactions, read_notes
from graphrec.model import GNNConfig, GNNRecommender
from graphrec.recall import RecallEngine
from graphrec.weights import swing

NS = (1, 3, 5, 10)
K = 20


def _engine(frame: pd.DataFrame, notes: pd.DataFrame | None, cfg: GNNConfig, tmp: Path) -> tuple[RecallEngine, float]:
    graph = build_graph(frame, notes)
    t = time.perf_counter()
    model = GNNRecommender(cfg, show_progress=False).fit(graph, side_info_from_graph(graph))
    seconds = time.perf_counter() - t
    ids = {t: graph.id_map(t) for t in graph.node_types}
    embeddings = {"user": model.user_embeddings_, "note": model.note_embeddings_}
    out = tmp / f"bundle-{len(list(tmp.iterdir()))}"
    write_bundle(
        out,
        ids=ids,
        embeddings=embeddings,
        history=recency_matrix(frame, ids["user"], ids["note"]),
        similar=swing(graph.relation(ENGAGES), top_k=100),
        note_tags=graph.relation(HAS_TAG) if graph.has_relation(HAS_TAG) else None,
    )
    return RecallEngine.load(out), seconds


def _recall_at(ids: np.ndarray, truth: list[set[Any]]) -> float:
    return float(np.mean([len(set(row.tolist()) & t) / len(t) for row, t in zip(ids, truth, strict=True)]))


def run_dataset(
    name: str, frame: pd.DataFrame, notes: pd.DataFrame | None, *, seed: int, cfg: GNNConfig
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    if frame["timestamp"].nunique() <= 1:  # no times: a seeded order stands in for the click order
        frame["timestamp"] = rng.permutation(len(frame))
    first = frame.sort_values(["timestamp", "note_id"]).drop_duplicates(["user_id", "note_id"])
    counts = first.groupby("user_id").size()
    eligible = np.sort(counts.index[counts >= 15].to_numpy())
    held = set(rng.choice(eligible, size=max(1, len(counts) // 10), replace=False).tolist()) if eligible.size else set()
    held_users = sorted(held)
    order = {u: g["note_id"].tolist() for u, g in first[first["user_id"].isin(held)].groupby("user_id")}
    truth = [set(order[u][max(NS) :]) for u in held_users]
    rest = frame[~frame["user_id"].isin(held)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base, base_seconds = _engine(rest, notes, cfg, tmp)
        pop = base.bundle.popularity.astype(np.float64)
        note_ids = base.bundle.ids["note"]
        for n in NS:
            given = [order[u][:n] for u in held_users]
            pop_ids = []
            for g in given:
                p = pop.copy()
                idx = note_ids.index(g, missing="ignore")
                p[idx[idx >= 0]] = -np.inf
                pop_ids.append(note_ids.ids[np.argsort(-p, kind="stable")[:K]])
            queries = [f"held-out-{i}" for i in range(len(held_users))]
            t = time.perf_counter()
            req_all = base.recall(queries, K, history=given).ids
            req_seconds = time.perf_counter() - t
            req_emb = base.recall(queries, K, history=given, channels=("embedding",)).ids
            given_rows = first[first["user_id"].isin(held)].groupby("user_id").head(n)
            trained_frame = pd.concat(
                [rest, frame.merge(given_rows[["user_id", "note_id"]], on=["user_id", "note_id"])]
            )
            trained, trained_seconds = _engine(trained_frame, notes, cfg, tmp)
            tr_all = trained.recall(held_users, K).ids
            tr_emb = trained.recall(held_users, K, channels=("embedding",)).ids
            row = {
                "dataset": name,
                "n": n,
                "users": len(held_users),
                "popularity": _recall_at(np.array(pop_ids), truth),
                "request_all": _recall_at(req_all, truth),
                "trained_all": _recall_at(tr_all, truth),
                "request_embedding": _recall_at(req_emb, truth),
                "trained_embedding": _recall_at(tr_emb, truth),
                "request_ms_per_user": 1000 * req_seconds / max(1, len(held_users)),
                "train_seconds_without": base_seconds,
                "train_seconds_with": trained_seconds,
            }
            row["ratio_all"] = row["request_all"] / max(row["trained_all"], 1e-12)
            row["ratio_embedding"] = row["request_embedding"] / max(row["trained_embedding"], 1e-12)
            rows.append(row)
            print(
                f"{name} n={n}: popularity {row['popularity']:.4f}, request-time {row['request_all']:.4f} "
                f"(embedding {row['request_embedding']:.4f}), trained {row['trained_all']:.4f} "
                f"(embedding {row['trained_embedding']:.4f})",
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", action="store_true", help="data/sample")
    parser.add_argument("--lastfm", type=Path, help="HetRec Last.fm-2k directory")
    parser.add_argument("--gowalla", type=Path, help="LightGCN-format Gowalla directory (train.txt + test.txt, pooled)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cfg = GNNConfig()
    rows: list[dict[str, Any]] = []
    if args.sample:
        root = Path(__file__).resolve().parents[1] / "data" / "sample"
        frame = read_interactions(root / "interactions.parquet")
        notes = read_notes(root / "notes.jsonl")
        rows += run_dataset(
            "sample", frame, notes, seed=args.seed, cfg=GNNConfig(batch_size=1024, epochs=30, patience=3)
        )
    if args.lastfm:
        frame, notes = load_lastfm_hetrec(args.lastfm)
        rows += run_dataset("lastfm-2k", frame, notes, seed=args.seed, cfg=cfg)
    if args.gowalla:
        # The LightGCN files have no times: both halves are pooled and a seeded order stands in.
        train, test = load_lightgcn_split(args.gowalla)
        rows += run_dataset("gowalla", pd.concat([train, test], ignore_index=True), None, seed=args.seed, cfg=cfg)
    cols = [
        "dataset",
        "n",
        "users",
        "popularity",
        "request_all",
        "trained_all",
        "ratio_all",
        "request_embedding",
        "trained_embedding",
        "ratio_embedding",
    ]
    print(format_table(cols, [[r[c] for c in cols] for r in rows]))
    if args.out:
        write_json(args.out, {"rows": rows, "k": K, "machine": machine(), "command": " ".join(sys.argv)})


if __name__ == "__main__":
    main()
