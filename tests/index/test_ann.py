from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.exceptions import ArtifactError, InvalidParameterError
from graphrec.index import AnnIndex, IndexConfig


def _exact(vectors, queries, k):
    """Reference: float64 scores, each pair's products added in order; per query the ``k`` best by
    (score descending, index ascending), padded with index -1 and score -inf."""
    v, q = vectors.astype(np.float64), queries.astype(np.float64)
    s = np.zeros((len(q), len(v)))
    for t in range(v.shape[1]):
        s += q[:, t, None] * v[None, :, t]
    ids = np.full((len(q), k), -1)
    scores = np.full((len(q), k), -np.inf)
    for r, row in enumerate(s):
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]
        ids[r, : len(order)], scores[r, : len(order)] = order, row[order]
    return ids, scores


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_recall_against_exact_search(kind):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3_000, 16)).astype(np.float32)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    index = AnnIndex.build(vectors, kind=kind, nlist=32, nprobe=16)
    ids, scores = index.search(queries, 10)
    want, _ = _exact(vectors, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, want, strict=True)])
    assert recall >= (1.0 if kind == "flat" else 0.9)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, ids, axis=1), rtol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_flat_is_exact_sorted_and_batch_equals_single(n, k, seed):
    rng = np.random.default_rng(seed)
    vectors = rng.integers(-2, 3, size=(n, 4)).astype(np.float32)  # many ties
    queries = rng.integers(-2, 3, size=(5, 4)).astype(np.float32)
    index = AnnIndex.build(vectors, kind="flat")
    ids, scores = index.search(queries, k)
    np.testing.assert_array_equal(ids, _exact(vectors, queries, k)[0])
    assert np.isneginf(scores[ids < 0]).all()
    for i in range(5):
        one, _ = index.search(queries[i : i + 1], k)
        np.testing.assert_array_equal(one[0], ids[i])


@pytest.mark.parametrize(("n", "dim", "k"), [(400, 16, 10), (300, 64, 120), (50, 8, 80), (500, 32, 1)])
def test_flat_two_pass_search_equals_float64_scoring(n, dim, k):
    rng = np.random.default_rng(n + dim + k)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    queries = rng.normal(size=(6, dim)).astype(np.float32)
    ids, scores = AnnIndex.build(vectors, kind="flat").search(queries, k)
    want_ids, want_scores = _exact(vectors, queries, k)  # k > n: padded with -1 / -inf
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores.astype(np.float32))


def test_flat_search_orders_near_ties_that_float32_cannot_tell_apart():
    rng = np.random.default_rng(3)
    base = rng.normal(size=32).astype(np.float32)
    # 300 rows a few float32 ulps apart in one coordinate each: their scores differ by less than
    # float32 summation's rounding, so a float32 ranking alone would misorder them.
    vectors = np.repeat(base[None, :], 300, axis=0)
    for j in range(300):
        c = j % 32
        vectors[j, c] += np.float32((j % 7 - 3) * np.spacing(base[c]))
    queries = rng.normal(size=(8, 32)).astype(np.float32)
    ids, scores = AnnIndex.build(vectors, kind="flat").search(queries, 15)
    want_ids, want_scores = _exact(vectors, queries, 15)
    float32_ids = np.array([np.lexsort((np.arange(300), -row))[:15] for row in queries @ vectors.T])
    assert (float32_ids != want_ids).any()  # the case needs the float64 pass
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores.astype(np.float32))


def test_flat_search_stays_exact_where_float32_would_overflow():
    rng = np.random.default_rng(4)
    vectors = (rng.normal(size=(60, 8)) * 1e19).astype(np.float32)  # products of 1e38 and beyond
    queries = (rng.normal(size=(3, 8)) * 1e19).astype(np.float32)
    ids, _ = AnnIndex.build(vectors, kind="flat").search(queries, 7)
    np.testing.assert_array_equal(ids, _exact(vectors, queries, 7)[0])


def test_flat_search_scores_do_not_depend_on_the_batch():
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(3000, 24)).astype(np.float32)
    queries = rng.normal(size=(200, 24)).astype(np.float32)  # several blocks of queries
    index = AnnIndex.build(vectors, kind="flat")
    ids, scores = index.search(queries, 40)
    for i in (0, 57, 199):
        one_ids, one_scores = index.search(queries[i : i + 1], 40)
        np.testing.assert_array_equal(one_ids[0], ids[i])
        np.testing.assert_array_equal(one_scores[0], scores[i])


def test_auto_kind_and_normalise():
    rng = np.random.default_rng(1)
    small = AnnIndex.build(rng.normal(size=(100, 8)))
    assert small.kind == "flat"
    big = AnnIndex.build(rng.normal(size=(300, 8)), exact_threshold=200)
    assert big.kind == "ivf"
    cos = AnnIndex.build(np.array([[10.0, 0.0], [0.6, 0.8]]), normalise=True)
    ids, scores = cos.search(np.array([[0.0, 1.0]]), 2)
    assert ids.tolist() == [[1, 0]] and scores[0, 0] == pytest.approx(0.8)


def test_save_load_round_trip_and_corruption(tmp_path):
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(500, 8)).astype(np.float32)
    for kind in ("flat", "hnsw", "ivf"):
        index = AnnIndex.build(vectors, kind=kind, nlist=8)
        index.save(tmp_path / f"{kind}.faiss")
        back = AnnIndex.load(tmp_path / f"{kind}.faiss", vectors, index.params, kind)
        q = rng.normal(size=(7, 8))
        np.testing.assert_array_equal(back.search(q, 5)[0], index.search(q, 5)[0])
    (tmp_path / "bad.faiss").write_bytes(b"not an index")
    with pytest.raises(ArtifactError, match=r"bad.faiss: not a faiss flat index \(header b'not '\)"):
        AnnIndex.load(tmp_path / "bad.faiss", vectors, IndexConfig(), "flat")
    (tmp_path / "bad.faiss").write_bytes(b"IwFl" + b"\0" * 20_000)
    with pytest.raises(ArtifactError, match=r"bad.faiss: not a readable faiss index"):
        AnnIndex.load(tmp_path / "bad.faiss", vectors, IndexConfig(), "ivf")
    with pytest.raises(ArtifactError, match="index holds 500 x 8 vectors; the embeddings are 10 x 8"):
        AnnIndex.load(tmp_path / "ivf.faiss", vectors[:10], IndexConfig(), "ivf")


def test_errors():
    with pytest.raises(InvalidParameterError, match="must be a 2-D array"):
        AnnIndex.build(np.zeros(5))
    with pytest.raises(InvalidParameterError, match="NaN or inf"):
        AnnIndex.build(np.array([[np.nan, 1.0]]))
    with pytest.raises(InvalidParameterError, match="`kind` must be one of"):
        AnnIndex.build(np.eye(3), kind="lsh")
    index = AnnIndex.build(np.eye(3))
    with pytest.raises(InvalidParameterError, match="queries have dimension 2; the index has 3"):
        index.search(np.zeros((1, 2)), 1)
    with pytest.raises(InvalidParameterError, match=r"`k` must be an int >= 1; got 0"):
        index.search(np.zeros((1, 3)), 0)
    ids, scores = index.search(np.ones((1, 3)), 5)  # more than there are
    assert ids.tolist() == [[0, 1, 2, -1, -1]] and np.isneginf(scores[0, 3:]).all()


def test_tuned_shares_the_build_and_changes_only_search():
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(2_000, 8)).astype(np.float32)
    q = rng.normal(size=(20, 8)).astype(np.float32)
    ivf = AnnIndex.build(vectors, kind="ivf", nlist=64, nprobe=1)
    wide = ivf.tuned(nprobe=64)  # every list: exact
    exact = AnnIndex.build(vectors, kind="flat")
    np.testing.assert_array_equal(wide.search(q, 10)[0], exact.search(q, 10)[0])
    assert ivf.params.nprobe == 1 and wide._index is ivf._index
    narrow_recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(ivf.search(q, 10)[0], exact.search(q, 10)[0], strict=True)]
    )
    assert narrow_recall < 1.0
    with pytest.raises(InvalidParameterError, match="`nprobe` must be an int >= 1"):
        ivf.tuned(nprobe=0)


@pytest.mark.parametrize("normalise", [False, True])
def test_ivf_built_in_shards_searches_like_the_one_shot_build(normalise):
    """Trained on the sampled rows, filled in three shards by 'other workers' (each gets the empty
    index as bytes and sends its shard back as bytes), merged: the same results as build()."""
    import faiss

    rng = np.random.default_rng(3)
    x = (rng.normal(size=(6000, 16)) + 3 * rng.normal(size=(40, 16))[rng.integers(0, 40, 6000)]).astype(np.float32)
    params = IndexConfig(kind="ivf", nlist=16, nprobe=4, normalise=normalise)
    one = AnnIndex.build(x, params)
    rows = AnnIndex.sample_rows(len(x), params)
    assert rows.size == 256 * 16 and np.all(np.diff(rows) > 0)
    empty = faiss.serialize_index(AnnIndex.train_empty(x[rows], len(x), params))
    bounds = [0, 1500, 1501, 6000]
    shards = [
        faiss.serialize_index(AnnIndex.fill_shard(faiss.deserialize_index(empty), x[a:b], a, params))
        for a, b in itertools.pairwise(bounds)
    ]
    merged = AnnIndex.merge_shards([faiss.deserialize_index(s) for s in shards], x, params)
    q = rng.normal(size=(200, 16)).astype(np.float32)
    for a, b in zip(one.search(q, 25), merged.search(q, 25), strict=True):
        np.testing.assert_array_equal(a, b)


def test_sharded_build_other_kinds():
    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    flat = IndexConfig(kind="flat")
    assert AnnIndex.sample_rows(300, flat).size == 0 and AnnIndex.train_empty(x[:0], 300, flat) is None
    merged = AnnIndex.merge_shards([None, None], x, flat)
    np.testing.assert_array_equal(merged.search(x[:5], 3)[0], AnnIndex.build(x, flat).search(x[:5], 3)[0])
    hnsw = IndexConfig(kind="hnsw")
    empty = AnnIndex.train_empty(x[:0], 300, hnsw)
    with pytest.raises(InvalidParameterError, match="HNSW indexes are built in one piece"):
        AnnIndex.fill_shard(empty, x[100:], 100, hnsw)
    shard = AnnIndex.fill_shard(empty, x[:100], 0, hnsw)
    with pytest.raises(InvalidParameterError, match="HNSW indexes are built in one piece"):
        AnnIndex.merge_shards([shard, shard], x[:200], hnsw)
    ivf = IndexConfig(kind="ivf", nlist=4)
    part = AnnIndex.fill_shard(AnnIndex.train_empty(x, 300, ivf), x[:100], 0, ivf)
    with pytest.raises(InvalidParameterError, match="the shards hold 100 rows; vectors has 300"):
        AnnIndex.merge_shards([part], x, ivf)
