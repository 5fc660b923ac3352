"""Write a LightGCN-format split (``train.txt`` / ``test.txt``: ``user item item ...``, 0-based ids)
from another dataset, so ``lightgcn_protocol.py`` can run on data it was not tuned on.

Each user's items go to test with probability ``--test-fraction`` (seeded; every user keeps one
training item), the split LightGCN's authors used for Gowalla.

Usage::

    python benchmarks/to_lightgcn_format.py --lastfm ../shared/data/lastfm-hetrec2011-2k --out DIR
    python benchmarks/to_lightgcn_format.py --citeulike ../shared/data/citeulike-a --out DIR
    python benchmarks/to_lightgcn_format.py --tuning-from ../shared/data/gowalla-lightgcn --users 0.35 --out DIR
    python benchmarks/to_lightgcn_format.py --synthetic dense --out DIR     # >= 80 training items per user
    python benchmarks/to_lightgcn_format.py --synthetic sparse --out DIR    # <= 10 training items per user

``--synthetic dense|sparse`` draws a log from :func:`graphrec.testing.make_ugc_dataset` (seeded):
dense is 1,500 users x 4,000 notes with 260,000 engagements, sparse 20,000 users x 10,000 notes
with 100,000 engagements.

``--tuning-from DIR`` splits DIR's ``train.txt`` only (optionally a seeded share ``--users`` of its
users), so configurations can be compared without ever looking at DIR's ``test.txt``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from graphrec._atomic import atomic_file
from graphrec.evaluate import random_split
from graphrec.io import load_citeulike, load_lastfm_hetrec
from graphrec.io.datasets import read_adjacency_lines
from graphrec.testing import make_ugc_dataset

#: Synthetic logs for data nobody tuned on: a dense one (>= 80 training items per user on average)
#: and a sparse one (<= 10).
SYNTHETIC = {
    "dense": {"n_users": 1_500, "n_notes": 4_000, "n_engagements": 260_000},
    "sparse": {"n_users": 20_000, "n_notes": 10_000, "n_engagements": 100_000},
}


def _write(path: Path, table: pd.DataFrame, users: pd.Index, items: pd.Index) -> None:
    u = users.get_indexer(table["user_id"])
    i = items.get_indexer(table["note_id"])
    by_user = pd.Series(i).groupby(u).apply(lambda s: " ".join(map(str, np.unique(s.to_numpy()))))
    with atomic_file(path) as tmp:
        tmp.write_text("".join(f"{uu} {items_}\n" for uu, items_ in by_user.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--lastfm", type=Path)
    src.add_argument("--citeulike", type=Path)
    src.add_argument("--tuning-from", type=Path, help="a LightGCN-format directory: split its train.txt only")
    src.add_argument("--synthetic", choices=sorted(SYNTHETIC), help="a seeded synthetic log")
    ap.add_argument("--users", type=float, default=1.0, help="with --tuning-from: share of users kept (seeded)")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.tuning_from:
        u, i = read_adjacency_lines(args.tuning_from / "train.txt")
        kept = np.random.default_rng(args.seed).random(int(u.max()) + 1) < args.users
        interactions = pd.DataFrame({"user_id": u[kept[u]], "note_id": i[kept[u]], "event_type": "click"})
    elif args.lastfm:
        interactions, _ = load_lastfm_hetrec(args.lastfm)
    elif args.synthetic:
        data = make_ugc_dataset(**SYNTHETIC[args.synthetic], with_text=False, string_ids=False, seed=args.seed)
        interactions = data.interactions.loc[
            data.interactions["event_type"] == "click", ["user_id", "note_id", "event_type"]
        ]
    else:
        interactions, _ = load_citeulike(args.citeulike)
    split = random_split(interactions, test_fraction=args.test_fraction, seed=args.seed)
    users = pd.Index(np.unique(interactions["user_id"]))
    items = pd.Index(np.unique(interactions["note_id"]))
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "train.txt", split.train, users, items)
    _write(args.out / "test.txt", split.test, users, items)
    n_train = split.train[["user_id", "note_id"]].drop_duplicates().shape[0]
    print(
        f"{args.out}: {len(users)} users, {len(items)} items, {len(split.train)} train / {len(split.test)} test "
        f"rows, {n_train / len(users):.1f} distinct training items per user"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
