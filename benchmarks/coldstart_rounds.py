"""Benchmark: cold-start audiences in rounds (seeds, then look-alikes) against baselines.

Protocol: :mod:`graphrec.coldstart.experiment` (notes held out whole; boosts tuned with optuna on
separate held-out tuning notes; round 1 = ``N`` seeds, round 2 = ``N`` look-alikes from the
seeds' ground-truth feedback). Datasets:

* ``--synthetic``: :func:`graphrec.testing.make_ugc_dataset` (3,000 users, 6,000 notes), 10% of
  notes cold; N = 50. ``--synthetic-tastes G``: the same with ``G`` latent taste groups (half of
  the interest-driven engagements stay within the user's group; no side-info shows the group).
* ``--citeulike DIR --split DIR``: CiteULike-a, DropoutNet's cold items (titles + tags); N = 50.
* ``--lastfm DIR``: Last.fm-2k, 10% of artists with >= 5 listeners held out whole (names + tags); N = 20.

Targets (issue 6): seeds beat tag-match by >= 20% relative precision@N; seeds + look-alike beat
2N seeds in cumulative recall.

Usage::

    python benchmarks/coldstart_rounds.py --synthetic --citeulike ../shared/data/citeulike-a \
        --split ../shared/data/citeulike-a-dropoutnet-split --lastfm ../shared/data/lastfm-hetrec2011-2k \
        --out benchmarks/results/coldstart_rounds.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import machine, write_json

from graphrec._table import format_table
from graphrec.coldstart.experiment import run_experiment
from graphrec.evaluate import cold_note_split
from graphrec.io import load_citeulike, load_lastfm_hetrec
from graphrec.io.datasets import interactions_from_pairs
from graphrec.model.gnn import GNNConfig
from graphrec.testing import make_ugc_dataset


def _synthetic(args: argparse.Namespace, cfg: GNNConfig, *, taste_groups: int = 1) -> dict[str, Any]:
    data = make_ugc_dataset(n_users=3000, n_notes=6000, n_engagements=80_000, taste_groups=taste_groups, seed=11)
    split = cold_note_split(data.interactions, fraction=0.1, seed=0)
    return run_experiment(
        split.train,
        split.test,
        data.notes,
        np.asarray(split.held_out_notes),
        budget=50,
        gnn=cfg,
        n_trials=args.trials,
        text_cache=args.cache / f"synthetic-{taste_groups}.npz",
    )


def _citeulike(args: argparse.Namespace, cfg: GNNConfig) -> dict[str, Any]:
    _, notes = load_citeulike(args.citeulike)
    cold = args.split / "eval" / "cold"
    tr = pd.read_csv(cold / "train.csv", header=None, names=["u", "i", "r"])
    te = pd.read_csv(cold / "test.csv", header=None, names=["u", "i", "r"])
    ids = np.sort(pd.read_csv(cold / "test_item_ids.csv", header=None)[0].to_numpy() - 1)
    train = interactions_from_pairs(tr["u"].to_numpy() - 1, tr["i"].to_numpy() - 1, source=str(cold / "train.csv"))
    test = interactions_from_pairs(te["u"].to_numpy() - 1, te["i"].to_numpy() - 1, source=str(cold / "test.csv"))
    return run_experiment(
        train, test, notes, ids, budget=50, gnn=cfg, n_trials=args.trials, text_cache=args.cache / "citeulike.npz"
    )


def _lastfm(args: argparse.Namespace, cfg: GNNConfig) -> dict[str, Any]:
    interactions, notes = load_lastfm_hetrec(args.lastfm)
    split = cold_note_split(interactions, fraction=0.1, min_engagements=5, seed=0)
    return run_experiment(
        split.train,
        split.test,
        notes,
        np.asarray(split.held_out_notes),
        budget=20,
        min_engagements=5,
        gnn=cfg,
        n_trials=args.trials,
        text_cache=args.cache / "lastfm.npz",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument(
        "--synthetic-tastes",
        type=int,
        default=0,
        metavar="G",
        help="also run the synthetic data with G latent taste groups (make_ugc_dataset(taste_groups=G))",
    )
    ap.add_argument("--citeulike", type=Path)
    ap.add_argument("--split", type=Path, help="citeulike-a-dropoutnet-split directory")
    ap.add_argument("--lastfm", type=Path)
    ap.add_argument("--epochs", type=int, default=GNNConfig.epochs)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--cache", type=Path, default=Path("artifacts/text-cache"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = GNNConfig(epochs=args.epochs)
    runs = {}
    if args.synthetic:
        runs["synthetic"] = _synthetic(args, cfg)
    if args.synthetic_tastes > 1:
        runs[f"synthetic_{args.synthetic_tastes}_tastes"] = _synthetic(args, cfg, taste_groups=args.synthetic_tastes)
    if args.citeulike:
        if not args.split:
            ap.error("--citeulike needs --split")
        runs["citeulike_cold"] = _citeulike(args, cfg)
    if args.lastfm:
        runs["lastfm_cold_artists"] = _lastfm(args, cfg)
    out: dict[str, Any] = {"config": cfg.__dict__, "runs": runs, "machine": machine()}
    for name, res in runs.items():
        n = res["budget"]
        rows = []
        for method, m in res["metrics"].items():
            b = 2 * n if "2N" in method else n
            rows.append([method, f"{m[f'precision@{b}']:.4f}", f"{m[f'recall@{b}']:.4f}", f"{m[f'hit_rate@{b}']:.4f}"])
        print(f"\n{name} (N = {n}, {res['counts']['cold_notes_with_truth']} cold notes)")
        print(format_table(["method", "precision", "recall", "hit rate"], rows))
        m = res["metrics"]
        checks = {
            "seeds_vs_tag_match_precision": m["seeds (round 1)"][f"precision@{n}"] / m["tag_match"][f"precision@{n}"]
            if "tag_match" in m
            else None,
            "cumulative_vs_2n_seeds_recall": m["seeds + look-alike (cumulative 2N)"][f"recall@{2 * n}"]
            / m["seeds only 2N"][f"recall@{2 * n}"],
        }
        res["checks"] = checks
        print(checks)
    write_json(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
