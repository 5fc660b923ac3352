"""The top-k kernel against a sort-based reference: ties, non-finite scores, padding, batching."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from graphrec._topk import FEW_ROWS, THRESHOLD_MIN_K, _threshold_row, topk, topk_rows


def _reference(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row's finite entries by (score descending, column ascending); pad with -1 / -inf."""
    idx = np.full((s.shape[0], k), -1, dtype=np.int64)
    vals = np.full((s.shape[0], k), -np.inf)
    for r in range(s.shape[0]):
        finite = np.flatnonzero(np.isfinite(s[r]))
        best = finite[np.lexsort((finite, -s[r, finite]))][:k]
        idx[r, : best.size], vals[r, : best.size] = best, s[r, best]
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


def _wide_rows(rng: np.random.Generator, k: int) -> np.ndarray:
    """Rows of ``16 k + 3`` columns that take each branch of the threshold path (see graphrec._topk)."""
    n_cols = 16 * k + 3
    sampled = np.arange(n_cols) % (k // 16) == 0  # the columns the threshold's sample reads
    rows = [
        rng.normal(size=n_cols),  # distinct scores: the threshold holds
        np.round(rng.normal(size=n_cols), 1),  # many ties at the k-th score
        np.round(rng.normal(size=n_cols), 3),
        np.sort(rng.normal(size=n_cols)),  # best entries last: the sample sees them
        np.full(n_cols, 0.5),  # every entry tied: the buffer overflows, the heap takes it
        np.r_[np.full(n_cols - 40, np.nan), rng.normal(size=40)],  # fewer finite entries than k
        np.r_[np.full(n_cols // 2, -np.inf), rng.normal(size=n_cols - n_cols // 2)],
        np.where(rng.random(n_cols) < 0.1, np.inf, rng.normal(size=n_cols)),  # +inf is never returned
        np.where(rng.random(n_cols) < 0.3, np.nan, rng.exponential(size=n_cols)),
        np.where(sampled, rng.normal(size=n_cols), -10.0),  # a skewed sample: fewer than k entries reach t
    ]
    return np.stack(rows)


def test_the_threshold_path_for_large_k_matches_the_sorted_reference():
    rng = np.random.default_rng(0)
    for k in (THRESHOLD_MIN_K, 100, 257):
        for dtype in (np.float32, np.float64):
            s = _wide_rows(rng, k).astype(dtype)
            s = np.tile(s, (2, 1))  # more than FEW_ROWS rows: the heap / threshold kernel
            ref_idx, ref_vals = _reference(s, k)
            idx, vals = topk_rows(s, k)
            np.testing.assert_array_equal(idx, ref_idx)
            np.testing.assert_array_equal(vals, ref_vals.astype(dtype))


def test_the_threshold_path_is_taken_where_it_holds_and_declined_where_not():
    rng = np.random.default_rng(1)
    k = 100
    rows = _wide_rows(rng, k)
    out_idx, out_val = np.full(k, -1), np.full(k, -np.inf)
    taken = [bool(_threshold_row(row, k, out_idx, out_val)) for row in rows]
    # distinct scores take it; all-tied (overflow), too few finite, skewed sample decline
    assert taken[0] and taken[3] and not taken[4] and not taken[5] and not taken[9], taken


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
