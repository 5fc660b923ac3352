"""Train/test splits of an interaction table.

Every split moves whole ``(user, note)`` pairs, never single events, so a test pair never leaks
into training through another event type. The test side is judged on *engagements*: pairs with
at least one event of positive weight (see :func:`graphrec.evaluate.relevance_matrix`).

* :func:`temporal_split`: one global cut-off time; a pair is in test when its first engagement is
  at or after the cut-off and it was not engaged before.
* :func:`leave_last_k_split`: per user, the ``k`` pairs engaged last; users with ``k`` or fewer
  engaged pairs stay whole in train.
* :func:`cold_note_split`: a seeded sample of notes held out whole (all their rows go to test),
  for cold-start evaluation; those notes stay in the graph through their side-info only.
* :func:`random_split`: per user, engaged pairs to test with a seeded probability (for logs
  without usable times); every user keeps at least one pair in train.
* :func:`given_split`: a split that came with the data (LightGCN's ``train.txt``/``test.txt``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from graphrec._validation import check_float, check_int
from graphrec.exceptions import InvalidParameterError, SchemaError
from graphrec.io.interactions import engaged_mask

__all__ = ["Split", "cold_note_split", "given_split", "leave_last_k_split", "random_split", "temporal_split"]


@dataclass(frozen=True)
class Split:
    """A train/test partition of interaction rows.

    Attributes
    ----------
    train, test : pandas.DataFrame
        Interaction tables (the validated schema).
    kind : str
        Which split made it.
    params : dict
        Its parameters (cut-off, k, seed ...).
    held_out_notes : numpy.ndarray or None
        For cold-note splits, the note ids held out whole.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    kind: str
    params: dict[str, object] = field(default_factory=dict)
    held_out_notes: np.ndarray | None = None


def _check(interactions: pd.DataFrame, *, need_time: bool) -> None:
    cols = ["user_id", "note_id", "event_type"] + (["timestamp"] if need_time else [])
    missing = [c for c in cols if c not in interactions.columns]
    if missing:
        raise SchemaError(f"interactions: missing column(s) {', '.join(missing)}")
    if len(interactions) == 0:
        raise SchemaError("interactions: the table has no rows")


def _pair_codes(interactions: pd.DataFrame) -> np.ndarray:
    u = pd.factorize(interactions["user_id"].to_numpy())[0].astype(np.int64)
    n_codes, uniques = pd.factorize(interactions["note_id"].to_numpy())
    return u * max(1, len(uniques)) + n_codes


def _split_by_pairs(
    interactions: pd.DataFrame, pair: np.ndarray, test_pairs: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    in_test = np.isin(pair, test_pairs)
    return interactions.loc[~in_test].reset_index(drop=True), interactions.loc[in_test].reset_index(drop=True)


def temporal_split(
    interactions: pd.DataFrame,
    *,
    cutoff: int | None = None,
    test_fraction: float = 0.2,
    event_weights: Mapping[str, float] | None = None,
) -> Split:
    """Split at a global time: pairs first engaged at or after ``cutoff`` go to test.

    Parameters
    ----------
    cutoff : int, optional
        Unix seconds. Default: the ``1 - test_fraction`` quantile of engagement times.
    test_fraction : float
        Used only to choose the default cut-off.
    """
    _check(interactions, need_time=True)
    test_fraction = check_float("test_fraction", test_fraction, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    engaged = engaged_mask(interactions, event_weights)
    if not engaged.any():
        raise SchemaError("interactions: no engagement events (all event weights are 0)")
    ts = interactions["timestamp"].to_numpy()
    if cutoff is None:
        cutoff = int(np.quantile(ts[engaged], 1.0 - test_fraction))
    pair = _pair_codes(interactions)
    first = pd.Series(ts[engaged]).groupby(pair[engaged]).min()
    test_pairs = first.index.to_numpy()[first.to_numpy() >= cutoff]
    train, test = _split_by_pairs(interactions, pair, test_pairs)
    # Pairs engaged before the cut-off keep their later events in train; pairs only ever
    # impressed stay in train, where they are not engagements either.
    return Split(train, test, "temporal", {"cutoff": int(cutoff)})


def leave_last_k_split(
    interactions: pd.DataFrame, *, k: int = 1, event_weights: Mapping[str, float] | None = None
) -> Split:
    """Per user, the ``k`` most recently (first-)engaged pairs go to test.

    Users with ``k`` or fewer engaged pairs contribute nothing to test. Ties in time are broken
    by row order (later rows count as more recent).
    """
    _check(interactions, need_time=True)
    k = check_int("k", k, minimum=1)
    engaged = engaged_mask(interactions, event_weights)
    pair = _pair_codes(interactions)
    users = pd.factorize(interactions["user_id"].to_numpy())[0]
    frame = pd.DataFrame(
        {"pair": pair[engaged], "user": users[engaged], "ts": interactions["timestamp"].to_numpy()[engaged]}
    )
    frame["row"] = np.arange(len(frame))
    first = frame.groupby("pair", sort=False).agg(user=("user", "first"), ts=("ts", "min"), row=("row", "min"))
    first = first.sort_values(["user", "ts", "row"], ascending=[True, False, False])
    rank = first.groupby("user").cumcount().to_numpy()
    n_pairs = first.groupby("user")["ts"].transform("size").to_numpy()
    test_pairs = first.index.to_numpy()[(rank < k) & (n_pairs > k)]
    train, test = _split_by_pairs(interactions, pair, test_pairs)
    return Split(train, test, "leave_last_k", {"k": k})


def cold_note_split(
    interactions: pd.DataFrame,
    *,
    fraction: float = 0.1,
    min_engagements: int = 1,
    seed: int = 0,
    event_weights: Mapping[str, float] | None = None,
) -> Split:
    """Hold out a seeded ``fraction`` of the notes with >= ``min_engagements`` engaged users, whole."""
    _check(interactions, need_time=False)
    fraction = check_float("fraction", fraction, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    min_engagements = check_int("min_engagements", min_engagements, minimum=1)
    engaged = engaged_mask(interactions, event_weights)
    sub = interactions.loc[engaged, ["user_id", "note_id"]].drop_duplicates()
    counts = sub.groupby("note_id").size()
    eligible = np.sort(counts.index.to_numpy()[counts.to_numpy() >= min_engagements])
    if eligible.size == 0:
        raise InvalidParameterError(f"no note has >= {min_engagements} engaged users; lower min_engagements")
    n_hold = max(1, round(fraction * eligible.size))
    held = np.sort(np.random.default_rng(seed).choice(eligible, size=n_hold, replace=False))
    in_test = np.isin(interactions["note_id"].to_numpy(), held)
    return Split(
        interactions.loc[~in_test].reset_index(drop=True),
        interactions.loc[in_test].reset_index(drop=True),
        "cold_note",
        {"fraction": fraction, "min_engagements": min_engagements, "seed": seed},
        held_out_notes=held,
    )


def random_split(
    interactions: pd.DataFrame,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    event_weights: Mapping[str, float] | None = None,
) -> Split:
    """Each user's engaged pairs go to test with probability ``test_fraction`` (seeded), for
    logs without usable times. Users keep at least one engaged pair in train."""
    _check(interactions, need_time=False)
    test_fraction = check_float("test_fraction", test_fraction, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    engaged = engaged_mask(interactions, event_weights)
    pair = _pair_codes(interactions)
    users = pd.factorize(interactions["user_id"].to_numpy())[0]
    pairs = pd.DataFrame({"pair": pair[engaged], "user": users[engaged]}).drop_duplicates("pair")
    pairs = pairs.sort_values("pair", kind="stable")
    rng = np.random.default_rng(seed)
    pairs["u"] = rng.random(len(pairs))
    pairs["rank"] = pairs.groupby("user")["u"].rank(method="first")
    # The pair with the user's smallest draw always stays in train, so no user is left without one.
    to_test = (pairs["u"].to_numpy() < test_fraction) & (pairs["rank"].to_numpy() > 1)
    train, test = _split_by_pairs(interactions, pair, pairs["pair"].to_numpy()[to_test])
    return Split(train, test, "random", {"test_fraction": test_fraction, "seed": seed})


def given_split(train: pd.DataFrame, test: pd.DataFrame) -> Split:
    """Wrap a split that ships with a dataset (e.g. :func:`graphrec.io.load_lightgcn_split`)."""
    _check(train, need_time=False)
    _check(test, need_time=False)
    return Split(train, test, "given")
