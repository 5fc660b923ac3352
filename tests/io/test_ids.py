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
