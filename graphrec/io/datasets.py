"""Loaders for public dataset formats, from a local path only (nothing is downloaded).

Each loader returns tables in graphrec's schema (already validated), so they feed
:func:`graphrec.graph.build_graph` and the evaluation harness directly. Logs without an event
type or a time get ``event_type="click"`` and ``timestamp=0``; the original strength of a
preference (a listen count, a rating) goes to ``value``.

* :func:`load_lightgcn_split`: the LightGCN / NGCF split (``train.txt``, ``test.txt``; each line
  ``user item item ...``, 0-based ids).
* :func:`load_lastfm_hetrec`: HetRec 2011 Last.fm-2k (``user_artists.dat``,
  ``user_taggedartists.dat``, ``tags.dat``, ``artists.dat``).
* :func:`load_movielens`: MovieLens CSV releases (``ratings.csv``, ``movies.csv``, optional ``tags.csv``).
* :func:`load_citeulike`: CiteULike-a (``users.dat``, ``item-tag.dat``, ``tags.dat``, optional titles).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from graphrec.exceptions import SchemaError
from graphrec.io.interactions import validate_interactions
from graphrec.io.notes import validate_notes

__all__ = [
    "interactions_from_pairs",
    "load_citeulike",
    "load_lastfm_hetrec",
    "load_lightgcn_split",
    "load_movielens",
    "read_adjacency_lines",
]


def _file(root: Path, name: str) -> Path:
    p = root / name
    if not p.is_file():
        raise SchemaError(f"{p}: no such file (expected in {root})")
    return p


def read_adjacency_lines(path: str | os.PathLike[str], *, with_count: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``head item item ...`` lines into ``(rows, items)`` int64 arrays.

    The row of line ``i`` is its first token (LightGCN format), or ``i`` itself when
    ``with_count`` is True (CiteULike format: the first token counts the items that follow and is
    checked). Blank lines are allowed only as ``with_count`` rows with count 0.
    """
    p = Path(path)
    rows: list[np.ndarray] = []
    items: list[np.ndarray] = []
    with open(p, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            try:
                values = np.array(parts, dtype=np.int64)
            except ValueError:
                raise SchemaError(
                    f"{p.name} line {lineno}: expected whitespace-separated integers; got {line[:60]!r}"
                ) from None
            if with_count:
                if values[0] != values.size - 1:
                    raise SchemaError(f"{p.name} line {lineno}: count {values[0]} but {values.size - 1} items follow")
                head, rest = lineno - 1, values[1:]
            else:
                head, rest = int(values[0]), values[1:]
            if (rest < 0).any() or head < 0:
                raise SchemaError(f"{p.name} line {lineno}: ids must be >= 0")
            rows.append(np.full(rest.size, head, dtype=np.int64))
            items.append(rest)
    if not rows:
        raise SchemaError(f"{p}: the file has no data lines")
    return np.concatenate(rows), np.concatenate(items)


def interactions_from_pairs(
    users: np.ndarray, items: np.ndarray, *, value: np.ndarray | None = None, source: str
) -> pd.DataFrame:
    """A validated interaction table (``click`` events at time 0) from parallel id arrays."""
    return validate_interactions(
        pd.DataFrame(
            {
                "user_id": users,
                "note_id": items,
                "event_type": pd.Categorical.from_codes(np.zeros(users.size, dtype=np.int8), categories=["click"]),
                "timestamp": np.zeros(users.size, dtype=np.int64),
                "value": np.zeros(users.size, dtype=np.float32) if value is None else value.astype(np.float32),
            }
        ),
        source=source,
    )


def load_lightgcn_split(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``train.txt`` and ``test.txt`` of a LightGCN-format dataset directory.

    Returns
    -------
    (train, test) : pair of pandas.DataFrame
        Interaction tables with integer ``user_id``/``note_id`` as in the files.

    Examples
    --------
    >>> train, test = load_lightgcn_split("../shared/data/gowalla-lightgcn")  # doctest: +SKIP
    """
    root = Path(path)
    out = []
    for name in ("train.txt", "test.txt"):
        u, i = read_adjacency_lines(_file(root, name))
        out.append(interactions_from_pairs(u, i, source=name))
    return out[0], out[1]


def load_lastfm_hetrec(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read HetRec 2011 Last.fm-2k: listens as interactions, artists (with their tags) as notes.

    ``value`` is the listen count; an artist's tags are every tag any user gave it (names from
    ``tags.dat``), most used first; the artist name is the title. Artists without a row in
    ``artists.dat`` still appear in the interactions.
    """
    root = Path(path)
    ua = pd.read_csv(_file(root, "user_artists.dat"), sep="\t")
    for col in ("userID", "artistID", "weight"):
        if col not in ua.columns:
            raise SchemaError(f"user_artists.dat: missing column {col}")
    interactions = interactions_from_pairs(
        ua["userID"].to_numpy(np.int64),
        ua["artistID"].to_numpy(np.int64),
        value=ua["weight"].to_numpy(),
        source="user_artists.dat",
    )
    tags = pd.read_csv(_file(root, "tags.dat"), sep="\t", encoding="latin-1")
    tagged = pd.read_csv(_file(root, "user_taggedartists.dat"), sep="\t")
    names = dict(zip(tags["tagID"], tags["tagValue"].astype(str).str.strip(), strict=True))
    tagged["tag"] = tagged["tagID"].map(names)
    if tagged["tag"].isna().any():
        row = int(np.flatnonzero(tagged["tag"].isna().to_numpy())[0])
        raise SchemaError(
            f"user_taggedartists.dat line {row + 2}: tagID {tagged['tagID'].iloc[row]} is not in tags.dat"
        )
    tagged = tagged[tagged["tag"] != ""]
    counts = (
        tagged.groupby(["artistID", "tag"])
        .size()
        .reset_index(name="n")
        .sort_values(["artistID", "n", "tag"], ascending=[True, False, True])
    )
    tag_lists = counts.groupby("artistID")["tag"].agg(tuple)
    artists = pd.read_csv(_file(root, "artists.dat"), sep="\t", quoting=3, dtype={"name": str})
    notes = pd.DataFrame(
        {
            "note_id": artists["id"].to_numpy(np.int64),
            "tags": [tag_lists.get(a, ()) for a in artists["id"]],
            "title": artists["name"].fillna("").astype(str).to_numpy(),
        }
    )
    return interactions, validate_notes(notes, source="artists.dat")


def load_movielens(path: str | os.PathLike[str], *, min_rating: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a MovieLens CSV release (``ratings.csv``, ``movies.csv``, optional ``tags.csv``).

    Ratings >= ``min_rating`` become ``click`` events with the rating as ``value`` and the
    original timestamp; movies become notes with their genres as category (the first) and tags
    (genres plus user tags from ``tags.csv``), and the title.
    """
    root = Path(path)
    ratings = pd.read_csv(_file(root, "ratings.csv"))
    for col in ("userId", "movieId", "rating", "timestamp"):
        if col not in ratings.columns:
            raise SchemaError(f"ratings.csv: missing column {col}")
    ratings = ratings[ratings["rating"] >= min_rating]
    if ratings.empty:
        raise SchemaError(f"ratings.csv: no ratings >= min_rating={min_rating}")
    frame = pd.DataFrame(
        {
            "user_id": ratings["userId"].to_numpy(np.int64),
            "note_id": ratings["movieId"].to_numpy(np.int64),
            "event_type": pd.Categorical.from_codes(np.zeros(len(ratings), dtype=np.int8), categories=["click"]),
            "timestamp": ratings["timestamp"].to_numpy(np.int64),
            "value": ratings["rating"].to_numpy(np.float32),
        }
    )
    interactions = validate_interactions(frame, source="ratings.csv")
    movies = pd.read_csv(_file(root, "movies.csv"))
    genres = movies["genres"].fillna("").astype(str).str.split("|")
    genre_lists = [tuple(g for g in gs if g and g != "(no genres listed)") for gs in genres]
    extra: dict[int, tuple[str, ...]] = {}
    if (root / "tags.csv").is_file():
        user_tags = pd.read_csv(root / "tags.csv")
        user_tags["tag"] = user_tags["tag"].astype(str).str.strip().str.lower()
        user_tags = user_tags[user_tags["tag"] != ""]
        extra = {int(k): tuple(dict.fromkeys(v)) for k, v in user_tags.groupby("movieId")["tag"]}
    notes = pd.DataFrame(
        {
            "note_id": movies["movieId"].to_numpy(np.int64),
            "tags": [
                tuple(dict.fromkeys(g + extra.get(int(m), ())))
                for g, m in zip(genre_lists, movies["movieId"], strict=True)
            ],
            "title": movies["title"].fillna("").astype(str).to_numpy(),
            "category": [g[0] if g else "" for g in genre_lists],
        }
    )
    return interactions, validate_notes(notes, source="movies.csv")


def load_citeulike(
    path: str | os.PathLike[str], *, titles: str | os.PathLike[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read CiteULike-a: ``users.dat`` (line u: ``count item item ...``), ``item-tag.dat``, ``tags.dat``.

    Parameters
    ----------
    path : path
        The directory with the ``.dat`` files.
    titles : path, optional
        A text file with one title per line, line i = item i (default: ``titles_TopicModelsVB/
        citeutitles.txt`` under ``path`` when present).
    """
    root = Path(path)
    u, i = read_adjacency_lines(_file(root, "users.dat"), with_count=True)
    interactions = interactions_from_pairs(u, i, source="users.dat")
    item_rows, tag_ids = read_adjacency_lines(_file(root, "item-tag.dat"), with_count=True)
    tag_names = np.array(_file(root, "tags.dat").read_text(encoding="utf-8").splitlines())
    if tag_ids.size and tag_ids.max() >= tag_names.size:
        raise SchemaError(f"item-tag.dat: tag id {tag_ids.max()} but tags.dat has {tag_names.size} tags")
    n_items = int(item_rows.max()) + 1 if item_rows.size else 0
    n_items = max(n_items, int(i.max()) + 1)
    title_path = Path(titles) if titles is not None else root / "titles_TopicModelsVB" / "citeutitles.txt"
    title_list = title_path.read_text(encoding="utf-8").splitlines() if title_path.is_file() else []
    if title_list and len(title_list) < n_items:
        raise SchemaError(f"{title_path}: {len(title_list)} titles for {n_items} items")
    bounds = np.searchsorted(item_rows, np.arange(n_items + 1))
    notes = pd.DataFrame(
        {
            "note_id": np.arange(n_items, dtype=np.int64),
            "tags": [
                tuple(dict.fromkeys(tag_names[tag_ids[bounds[k] : bounds[k + 1]]].tolist())) for k in range(n_items)
            ],
            "title": title_list[:n_items] if title_list else [""] * n_items,
        }
    )
    return interactions, validate_notes(notes, source="item-tag.dat")
