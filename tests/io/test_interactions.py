from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _helpers import tiny_interactions
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.exceptions import SchemaError
from graphrec.io import collapse_duplicates, read_interactions, validate_interactions


def _write(tmp_path, df: pd.DataFrame, fmt: str):
    path = tmp_path / f"interactions.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True)
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_read_all_formats_agree(tmp_path, fmt):
    df = read_interactions(_write(tmp_path, tiny_interactions(), fmt))
    assert df["user_id"].tolist() == ["a", "a", "a", "b", "b", "c", "c"]
    assert df["note_id"].dtype == np.int64
    assert df["note_id"].tolist() == [1, 1, 2, 2, 3, 3, 3]
    assert df["event_type"].astype(str).tolist()[:2] == ["click", "like"]
    assert df["timestamp"].tolist() == [10, 11, 12, 13, 14, 15, 16]
    assert df["value"].tolist() == [5.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0]


def test_text_ids_that_look_like_integers_become_integers(tmp_path):
    p = tmp_path / "i.csv"
    p.write_text("user_id,note_id,event_type,timestamp\n42,007,click,1\n43,8,click,2\n")
    df = read_interactions(p)
    assert df["user_id"].dtype == np.int64  # "42" and 42 are one user
    assert df["note_id"].tolist() == ["007", "8"]  # "007" is not canonical, so the column stays text


def test_iso_and_datetime_timestamps(tmp_path):
    p = tmp_path / "i.csv"
    p.write_text(
        "user_id,note_id,event_type,timestamp\n1,1,click,2026-01-01T00:00:10Z\n1,2,click,2026-01-01T00:00:20Z\n"
    )
    assert read_interactions(p)["timestamp"].tolist() == [1767225610, 1767225620]
    df = tiny_interactions().assign(timestamp=pd.to_datetime([10] * 7, unit="s"))
    assert validate_interactions(df, collapse=False)["timestamp"].tolist() == [10] * 7


def test_event_names_are_normalised():
    df = tiny_interactions().assign(
        event_type=["Click", "LIKE", "click", "Follow-Author", "impression", "click", "share"]
    )
    out = validate_interactions(df)
    assert out["event_type"].astype(str).tolist()[3] == "follow_author"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("user_id,note_id,event_type\n1,2,click\n", r"interactions.csv: missing required column\(s\) timestamp"),
        ("user_id,note_id,event_type,timestamp\n1,,click,5\n", r"interactions.csv line 2: note_id is empty"),
        ("user_id,note_id,event_type,timestamp\n1,2,click,5\n ,2,click,6\n", r"line 3: user_id is empty"),
        (
            "user_id,note_id,event_type,timestamp\n1,2,click,5\n1,3,teleport,6\n",
            r"line 3: event_type 'teleport' is not a configured",
        ),
        (
            "user_id,note_id,event_type,timestamp,value\n1,2,click,5,-1\n",
            r"line 2: value must be a finite number >= 0; got -1.0",
        ),
        (
            "user_id,note_id,event_type,timestamp,value\n1,2,click,5,1\n1,2,like,5,nan\n",
            r"line 3: value must be a finite number >= 0; got nan",
        ),
        ("user_id,note_id,event_type,timestamp\n1,2,click,yesterday\n", r"line 2: timestamp 'yesterday' is neither"),
        ("user_id,note_id,event_type,timestamp\n1,2,click,\n", r"line 2: timestamp is empty"),
        ("user_id,note_id,event_type,timestamp\n", r"interactions.csv.*no data rows"),
        ("", r"interactions.csv: the file is empty"),
    ],
)
def test_bad_csv_is_named_by_file_line_and_column(tmp_path, content, match):
    p = tmp_path / "interactions.csv"
    p.write_text(content)
    with pytest.raises(SchemaError, match=match):
        read_interactions(p)


def test_wrong_types_in_parquet(tmp_path):
    p = tmp_path / "x.parquet"
    pq.write_table(
        pa.table({"user_id": [1.5, 2.0], "note_id": [1, 2], "event_type": ["click"] * 2, "timestamp": [1, 2]}), p
    )
    with pytest.raises(
        SchemaError, match=r"x.parquet: column user_id must hold integer or string ids; got type double"
    ):
        read_interactions(p)
    pq.write_table(
        pa.table({"user_id": [1, None], "note_id": [1, 2], "event_type": ["click"] * 2, "timestamp": [1, 2]}), p
    )
    with pytest.raises(SchemaError, match=r"x.parquet row 2: user_id is empty"):
        read_interactions(p)
    pq.write_table(
        pa.table({"user_id": [1], "note_id": [1], "event_type": ["click"], "timestamp": [1], "value": ["x"]}), p
    )
    with pytest.raises(SchemaError, match=r"column value must be numeric"):
        read_interactions(p)


def test_jsonl_mixed_id_types_and_unsupported_suffix(tmp_path):
    p = tmp_path / "i.jsonl"
    p.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"user_id": 1, "note_id": 1, "event_type": "click", "timestamp": 1},
                {"user_id": "x", "note_id": 1, "event_type": "click", "timestamp": 1},
            ]
        )
    )
    with pytest.raises(SchemaError, match=r"i.jsonl: cannot read as jsonl"):
        read_interactions(p)
    with pytest.raises(SchemaError, match=r"unsupported file type '.xlsx'"):
        read_interactions(tmp_path / "i.xlsx")
    with pytest.raises(SchemaError, match=r"no such file"):
        read_interactions(tmp_path / "missing.csv")


def test_unknown_events_can_be_dropped_and_are_counted():
    df = tiny_interactions().assign(
        event_type=["click", "teleport", "click", "click", "impression", "click", "teleport"]
    )
    out = validate_interactions(df, unknown_events="drop")
    assert len(out) == 5
    assert out.attrs["n_unknown_events_dropped"] == 2
    extended = validate_interactions(df, event_types=("click", "impression", "teleport"))
    assert len(extended) == 7


def test_duplicate_rule_collapses_exact_repeats_only():
    df = tiny_interactions()
    dup = pd.concat([df, df.iloc[[0, 3]]], ignore_index=True)
    dup.loc[len(dup)] = ["a", 1, "click", 99, 1.0]  # same pair and type, other time: not a duplicate
    out = validate_interactions(dup)
    assert out.attrs["n_duplicates_collapsed"] == 2
    assert len(out) == len(df) + 1
    assert validate_interactions(dup, collapse=False).attrs["n_duplicates_collapsed"] == 0


def _collapse_reference(df: pd.DataFrame) -> pd.DataFrame:
    seen, keep = set(), []
    for row in df.itertuples(index=False):
        key = (row.user_id, row.note_id, str(row.event_type), row.timestamp)
        keep.append(key not in seen)
        seen.add(key)
    return df.loc[keep].reset_index(drop=True)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.sampled_from(["click", "like"]), st.integers(0, 2)),
        min_size=1,
        max_size=40,
    )
)
def test_collapse_matches_reference(rows):
    df = validate_interactions(
        pd.DataFrame(rows, columns=["user_id", "note_id", "event_type", "timestamp"]), collapse=False
    )
    got, n = collapse_duplicates(df)
    want = _collapse_reference(df)
    assert n == len(df) - len(want)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_categorical=False)


def test_all_null_value_column_and_mixed_id_types_from_pandas():
    frame = pd.DataFrame(
        {
            "user_id": [1, "u2"],
            "note_id": ["n1", 7],
            "event_type": "click",
            "timestamp": [10, 11],
            "value": [None, None],
        }
    )
    out = validate_interactions(frame)
    assert out["value"].tolist() == [0.0, 0.0]
    assert out["user_id"].tolist() == ["1", "u2"] and out["note_id"].tolist() == ["n1", "7"]
