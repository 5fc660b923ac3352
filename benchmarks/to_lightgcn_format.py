"""Write a LightGCN-format split (``train.txt`` / ``test.txt``: ``user item item ...``, 0-based ids)
from another dataset, so ``lightgcn_protocol.py`` can run on data it was not tuned on.

Each user's items go to test with probability ``--test-fraction`` (seeded; every user keeps one
training item), the split LightGCN's authors used for Gowalla.

Usage::

    python benchmarks/to_lightgcn_format.py --lastfm ../shared/data/lastfm-hetrec2011-2k --out DIR
    python benchmarks/to_lightgcn_format.py --citeulike ../shared/data/citeulike-a --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from graphrec._atomic import atomic_file
from graphrec.evaluate import random_split
from graphrec.io import load_citeulike, load_lastfm_hetrec


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
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    interactions, _ = load_lastfm_hetrec(args.lastfm) if args.lastfm else load_citeulike(args.citeulike)
    split = random_split(interactions, test_fraction=args.test_fraction, seed=args.seed)
    users = pd.Index(np.unique(interactions["user_id"]))
    items = pd.Index(np.unique(interactions["note_id"]))
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "train.txt", split.train, users, items)
    _write(args.out / "test.txt", split.test, users, items)
    print(
        f"{args.out}: {len(users)} users, {len(items)} items, {len(split.train)} train / {len(split.test)} test pairs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
