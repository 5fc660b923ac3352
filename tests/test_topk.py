"""The top-k kernel against a sort-based reference: ties, non-finite scores, padding, batching."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from graphrec._topk import FEW_ROWS, topk, topk_rows


def _reference(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row's finite entries by (score descending, column ascending); pad with -1 / -inf."""
    idx = np.full((s.shape[0], k), -1, dtype=np.int64)
    vals = np.full((s.shape[0], k), -np.inf)
    for r in range(s.shape[0]):
        entries = sorted((-float(s[r, j]), j) for j in range(s.shape[1]) if np.isfinite(s[r, j]))[:k]
        for t, (neg, j) in enumerate(entries):
            idx[r, t], vals[r, t] = j, -neg
    return idx, vals


scores = arrays(
    np.float32,
    st.tuples(st.integers(1, 6), st.integers(1, 30)),
    elements=st.sampled_from([0.0, 1.0, -1.0, 2.5, 2.5, np.nan, np.inf, -np.inf, 0.25]),
)


@settings(max_examples=200, deadline=None)
@given(scores, st.integers(1, 35))
def test_topk_rows_matches_a_sorted_reference(s, k):
    ref_idx, ref_vals = _reference(s, k)
    # Both exact paths: the partition one (a serving-sized batch) and the heap one (more rows).
    idx, vals = topk_rows(s, k)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(vals, ref_vals.astype(np.float32))
    reps = FEW_ROWS // s.shape[0] + 1
    idx, vals = topk_rows(np.tile(s, (reps, 1)), k)
    np.testing.assert_array_equal(idx, np.tile(ref_idx, (reps, 1)))
    np.testing.assert_array_equal(vals, np.tile(ref_vals.astype(np.float32), (reps, 1)))


def test_topk_rows_is_independent_of_batching_and_leaves_its_input_alone():
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=(50, 400)), 1)  # many ties
    before = s.copy()
    idx, vals = topk_rows(s, 20)
    np.testing.assert_array_equal(s, before)
    for lo in range(0, 50, 7):
        part_idx, part_vals = topk_rows(s[lo : lo + 7], 20)
        np.testing.assert_array_equal(part_idx, idx[lo : lo + 7])
        np.testing.assert_array_equal(part_vals, vals[lo : lo + 7])


def test_topk_of_one_vector_drops_padding_and_non_finite():
    s = np.array([0.5, np.nan, 2.0, 2.0, -np.inf, 1.0])
    idx, vals = topk(s, 10)
    assert idx.tolist() == [2, 3, 5, 0] and vals.tolist() == [2.0, 2.0, 1.0, 0.5]
    assert topk(s, 0)[0].size == 0 and topk(np.empty(0), 3)[0].size == 0
