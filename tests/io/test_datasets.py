"""Loaders of public formats, on tiny files written here in each format (never ../shared)."""

from __future__ import annotations

import pytest

from graphrec.exceptions import SchemaError
from graphrec.io import load_citeulike, load_lastfm_hetrec, load_lightgcn_split, load_movielens


def test_lightgcn_split(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1 2\n1 2\n2 0 3\n")
    (tmp_path / "test.txt").write_text("0 3\n1 0 1\n2\n")
    train, test = load_lightgcn_split(tmp_path)
    assert list(zip(train["user_id"], train["note_id"], strict=True)) == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 2),
        (2, 0),
        (2, 3),
    ]
    assert list(zip(test["user_id"], test["note_id"], strict=True)) == [(0, 3), (1, 0), (1, 1)]
    (tmp_path / "test.txt").write_text("0 3\n1 x\n")
    with pytest.raises(SchemaError, match=r"test.txt line 2: expected whitespace-separated integers"):
        load_lightgcn_split(tmp_path)
    (tmp_path / "train.txt").unlink()
    with pytest.raises(SchemaError, match=r"train.txt: no such file"):
        load_lightgcn_split(tmp_path)


def test_lastfm(tmp_path):
    (tmp_path / "user_artists.dat").write_text("userID\tartistID\tweight\n2\t51\t100\n2\t52\t5\n3\t51\t7\n")
    (tmp_path / "tags.dat").write_bytes("tagID\ttagValue\n1\tmetal\n2\tcaf\xe9\n".encode("latin-1"))
    (tmp_path / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n2\t51\t1\t1\t4\t2009\n3\t51\t1\t1\t4\t2009\n3\t51\t2\t1\t4\t2009\n"
    )
    (tmp_path / "artists.dat").write_text("id\tname\turl\tpictureURL\n51\tBand A\tu\tp\n52\tBand B\tu\tp\n")
    inter, notes = load_lastfm_hetrec(tmp_path)
    assert inter["value"].tolist() == [100.0, 5.0, 7.0]
    assert notes.set_index("note_id")["tags"].to_dict() == {51: ("metal", "café"), 52: ()}
    assert notes["title"].tolist() == ["Band A", "Band B"]


def test_movielens(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4.0,100\n1,11,2.0,101\n2,10,5.0,102\n")
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n10,"Heat (1995)",Action|Crime\n11,Toy Story (1995),(no genres listed)\n'
    )
    (tmp_path / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,10, Heist ,5\n")
    inter, notes = load_movielens(tmp_path, min_rating=3.0)
    assert len(inter) == 2 and inter["timestamp"].tolist() == [100, 102]
    assert notes.set_index("note_id")["tags"].to_dict() == {10: ("Action", "Crime", "heist"), 11: ()}
    assert notes["category"].tolist() == ["Action", ""]


def test_citeulike(tmp_path):
    (tmp_path / "users.dat").write_text("2 0 2\n1 1")  # last line without newline, as in the real file
    (tmp_path / "item-tag.dat").write_text("1 1\n0\n2 0 1")
    (tmp_path / "tags.dat").write_text("networks\nbiology\n")
    (tmp_path / "titles.txt").write_text("Paper A\nPaper B\nPaper C\n")
    inter, notes = load_citeulike(tmp_path, titles=tmp_path / "titles.txt")
    assert list(zip(inter["user_id"], inter["note_id"], strict=True)) == [(0, 0), (0, 2), (1, 1)]
    assert notes["tags"].tolist() == [("biology",), (), ("networks", "biology")]
    assert notes["title"].tolist() == ["Paper A", "Paper B", "Paper C"]
    (tmp_path / "users.dat").write_text("3 0 2\n")
    with pytest.raises(SchemaError, match=r"users.dat line 1: count 3 but 2 items follow"):
        load_citeulike(tmp_path)
