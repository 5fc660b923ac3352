from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphrec.exceptions import SchemaError
from graphrec.io import read_notes, read_users, validate_notes


def test_notes_from_all_formats(tmp_path):
    rows = [
        {
            "note_id": 1,
            "author_id": "u1",
            "tags": ["food", "ramen"],
            "title": "Ramen",
            "text": "best ramen",
            "category": "food",
            "created_at": 100,
        },
        {
            "note_id": 2,
            "author_id": None,
            "tags": [],
            "title": None,
            "text": "x",
            "category": "food",
            "created_at": None,
        },
    ]
    (tmp_path / "n.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "n.parquet")
    (tmp_path / "n.csv").write_text(
        "note_id,author_id,tags,title,text,category,created_at\n1,u1,food|ramen,Ramen,best ramen,food,100\n2,,,,x,food,\n"
    )
    for name in ("n.jsonl", "n.parquet", "n.csv"):
        df = read_notes(tmp_path / name)
        assert df["tags"].tolist() == [("food", "ramen"), ()], name
        assert df["title"].tolist() == ["Ramen", ""], name
        assert df["author_id"].tolist()[0] == "u1" and pd.isna(df["author_id"].iloc[1]), name
        assert df["created_at"].iloc[0] == 100 and pd.isna(df["created_at"].iloc[1]), name


def test_optional_columns_may_be_absent():
    df = validate_notes(pd.DataFrame({"note_id": ["a", "b"]}))
    assert df["tags"].tolist() == [(), ()]
    assert df["author_id"].isna().all()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "n.jsonl",
            '{"note_id": 1, "tags": "food"}\n{"note_id": 2, "tags": "x"}\n',
            r"n.jsonl: column tags must be a list of strings; got type string",
        ),
        (
            "n.jsonl",
            '{"note_id": 1, "tags": ["food"]}\n{"note_id": 2, "tags": "x"}\n',
            r"n.jsonl: cannot read as jsonl.*tags",
        ),
        ("n.csv", "note_id,tags\n1,a||b\n", r"n.csv line 2: tags holds an empty tag"),
        ("n.csv", "note_id,title\n1,a\n2,b\n1,c\n", r"n.csv line 4: note_id 1 repeats n.csv line 2"),
        ("n.csv", "title\na\n", r"missing required column\(s\) note_id"),
    ],
)
def test_bad_notes_tables_are_named(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(SchemaError, match=message):
        read_notes(tmp_path / name)


def test_users_table(tmp_path):
    (tmp_path / "u.csv").write_text("user_id,region\n1,north\n2,south\n")
    df = read_users(tmp_path / "u.csv")
    assert df.columns.tolist() == ["user_id", "region"]
    (tmp_path / "u.csv").write_text("user_id,region\n1,north\n1,south\n")
    with pytest.raises(SchemaError, match=r"u.csv line 3: user_id 1 repeats"):
        read_users(tmp_path / "u.csv")
