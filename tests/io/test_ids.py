from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphrec.exceptions import InvalidParameterError
from graphrec.io import IdMap


def test_sorted_and_independent_of_row_order():
    assert IdMap.from_values([3, 1, 2, 1]) == IdMap.from_values([1, 2, 3])
    assert IdMap.from_values([3, 1]).ids.tolist() == [1, 3]


def test_int_and_text_unify_as_text():
    m = IdMap.from_values(np.array([1, 2]), np.array(["x"]))
    assert m.ids.tolist() == ["1", "2", "x"]
    assert m.index(["x", "1"]).tolist() == [2, 0]


def test_unknown_ids():
    m = IdMap([10, 20])
    with pytest.raises(InvalidParameterError, match=r"unknown user_id: 30 \(1 of 2 not in the map\)"):
        m.index([10, 30], what="user_id")
    assert m.index([10, 30, "20", "x"], missing="ignore").tolist() == [0, -1, 1, -1]
    assert IdMap([]).index([1], missing="ignore").tolist() == [-1]
    with pytest.raises(InvalidParameterError, match="ids must be unique"):
        IdMap([1, 1])
    with pytest.raises(InvalidParameterError, match="out of range"):
        m.external([2])


@given(
    st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=5), min_size=1, max_size=30)
)
def test_round_trip(values):
    m = IdMap.from_values(values)
    assert m.external(m.index(values)).tolist() == [str(v) for v in values]


def test_text_ids_are_objects_and_round_trip_through_utf8_offsets():
    from graphrec.io.ids import ids_from_arrays, ids_to_arrays

    m = IdMap.from_values(["é", "a" * 1000, "b", "中文"])
    assert m.ids.dtype == object and all(type(v) is str for v in m.ids)
    arrays = ids_to_arrays("user", m)
    assert set(arrays) == {"user.utf8", "user.offsets"} and arrays["user.utf8"].nbytes < 1100
    assert ids_from_arrays(arrays, "user") == m
    assert ids_from_arrays(ids_to_arrays("n", IdMap([5, 2])), "n") == IdMap([2, 5])
    # Files written before the offsets format (fixed-width text) still load.
    assert ids_from_arrays({"user": np.array(["a", "b"])}, "user") == IdMap(["a", "b"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {**a, "u.offsets": a["u.offsets"][::-1].copy()}, "offsets are not a monotone"),
        (lambda a: {**a, "u.offsets": a["u.offsets"].astype(np.float64)}, "expected int64 offsets"),
        (lambda a: {**a, "u.utf8": np.frombuffer(b"\xff\xfe" + a["u.utf8"].tobytes()[2:], np.uint8)}, "invalid text"),
        (
            lambda a: {"u.utf8": np.frombuffer(b"bcaa", np.uint8), "u.offsets": np.array([0, 1, 2, 4], np.int64)},
            "not stored in sorted order",
        ),
        (lambda a: {}, "not stored"),
    ],
)
def test_malformed_stored_ids(change, message):
    from graphrec.io.ids import ids_from_arrays, ids_to_arrays

    arrays = ids_to_arrays("u", IdMap(["aa", "b", "c"]))
    with pytest.raises(InvalidParameterError, match=message):
        ids_from_arrays(change(arrays), "u")


def test_id_rules_long_minus_zero_and_whitespace():
    import pyarrow as pa

    from graphrec.exceptions import SchemaError
    from graphrec.io._tables import TableSource
    from graphrec.io.ids import MAX_ID_LENGTH, normalise_ids

    src = TableSource("x.csv", "csv")
    with pytest.raises(
        SchemaError, match=rf"x.csv line 3: user_id is 2,000 characters long; ids may have at most {MAX_ID_LENGTH}"
    ):
        normalise_ids(pa.chunked_array([["a", "b" * 2000]]), name="user_id", source=src)
    # "-0" is not the integer 0: a column holding it is text, and "0" and "-0" stay two ids.
    ids = normalise_ids(pa.chunked_array([["0", "-0", " 7", "7"]]), name="user_id", source=src)
    assert ids.tolist() == ["0", "-0", "7", "7"] and ids.dtype == object
    assert normalise_ids(pa.chunked_array([["0", " 7"]]), name="user_id", source=src).tolist() == [0, 7]
