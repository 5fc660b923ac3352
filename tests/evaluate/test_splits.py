from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graphrec.evaluate import cold_note_split, given_split, leave_last_k_split, temporal_split
from graphrec.exceptions import InvalidParameterError, SchemaError
from graphrec.io import validate_interactions


def _pairs(df):
    return set(zip(df["user_id"], df["note_id"], strict=True))


def test_temporal_split_moves_whole_pairs(small_tables):
    interactions, _ = small_tables
    s = temporal_split(interactions, test_fraction=0.25)
    assert len(s.train) + len(s.test) == len(interactions)
    assert not _pairs(s.train) & _pairs(s.test)
    engaged_test = s.test[s.test["event_type"].astype(str) != "impression"]
    assert engaged_test["timestamp"].min() >= s.params["cutoff"]


def test_temporal_split_explicit_cutoff():
    df = validate_interactions(
        pd.DataFrame(
            {
                "user_id": [1, 1, 1, 2],
                "note_id": [1, 1, 2, 1],
                "event_type": ["click", "like", "click", "impression"],
                "timestamp": [1, 5, 6, 7],
            }
        )
    )
    s = temporal_split(df, cutoff=5)
    # pair (1,1) was first engaged at t=1: its later like stays in train; (1,2) goes to test;
    # (2,1) is an impression only, never an engagement, so it stays in train.
    assert _pairs(s.train) == {(1, 1), (2, 1)} and _pairs(s.test) == {(1, 2)}


def test_leave_last_k_reference(small_tables):
    interactions, _ = small_tables
    s = leave_last_k_split(interactions, k=2)
    engaged = interactions[interactions["event_type"].astype(str) != "impression"]
    want = set()
    for user, grp in engaged.groupby("user_id"):
        first = grp.reset_index().groupby("note_id").agg(ts=("timestamp", "min"), row=("index", "min"))
        if len(first) <= 2:
            continue
        last = first.sort_values(["ts", "row"]).index[-2:]
        want |= {(user, n) for n in last}
    assert _pairs(s.test) == want
    assert not _pairs(s.train) & _pairs(s.test)


def test_cold_note_split_holds_notes_out_whole(small_tables):
    interactions, _ = small_tables
    s = cold_note_split(interactions, fraction=0.1, min_engagements=3, seed=1)
    held = set(s.held_out_notes.tolist())
    assert held == set(s.test["note_id"])
    assert not held & set(s.train["note_id"])
    again = cold_note_split(interactions, fraction=0.1, min_engagements=3, seed=1)
    np.testing.assert_array_equal(again.held_out_notes, s.held_out_notes)
    with pytest.raises(InvalidParameterError, match="no note has >= 100000 engaged users"):
        cold_note_split(interactions, min_engagements=100_000)


def test_split_errors(small_tables):
    interactions, _ = small_tables
    with pytest.raises(SchemaError, match=r"missing column\(s\) timestamp"):
        temporal_split(interactions.drop(columns=["timestamp"]))
    with pytest.raises(InvalidParameterError, match=r"`k` must be an int >= 1"):
        leave_last_k_split(interactions, k=0)
    with pytest.raises(InvalidParameterError, match=r"`test_fraction`"):
        temporal_split(interactions, test_fraction=1.5)
    assert given_split(interactions, interactions).kind == "given"


def test_random_split_is_seeded_and_keeps_a_train_pair_per_user(small_tables):
    from graphrec.evaluate import random_split

    interactions, _ = small_tables
    a = random_split(interactions, test_fraction=0.3, seed=4)
    b = random_split(interactions, test_fraction=0.3, seed=4)
    assert _pairs(a.test) == _pairs(b.test)
    assert not _pairs(a.train) & _pairs(a.test)
    engaged = interactions[interactions["event_type"].astype(str) != "impression"]
    users_engaged = set(engaged["user_id"])
    train_engaged = a.train[a.train["event_type"].astype(str) != "impression"]
    assert users_engaged == set(train_engaged["user_id"])
    share = len(_pairs(a.test)) / len(_pairs(engaged))
    assert 0.15 < share < 0.35
