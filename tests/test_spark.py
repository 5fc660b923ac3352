"""The Spark engine equals the embedded one on test data (needs pyspark and a JVM)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.spark
pyspark = pytest.importorskip("pyspark")

from graphrec.exceptions import SchemaError  # noqa: E402
from graphrec.graph import build_graph, pair_matrix  # noqa: E402
from graphrec.io import read_user_note_pairs, validate_interactions, validate_notes  # noqa: E402
from graphrec.jobs.swing import SwingJobConfig, neighbour_table, run  # noqa: E402
from graphrec.spark import build_graph_spark, get_spark, swing_spark  # noqa: E402
from graphrec.testing import make_ugc_dataset  # noqa: E402
from graphrec.weights import swing  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    session = get_spark(master="local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = make_ugc_dataset(n_users=120, n_notes=150, n_engagements=1_500, impressions_per_engagement=0.3, seed=11)
    root = tmp_path_factory.mktemp("spark")
    d.interactions.assign(event_type=d.interactions["event_type"].astype(str)).to_parquet(
        root / "i.parquet", index=False
    )
    d.notes.assign(tags=d.notes["tags"].map(list)).to_parquet(root / "n.parquet", index=False)
    return d, root


def test_swing_equals_embedded_engine(spark, data):
    _d, root = data
    pairs = read_user_note_pairs(root / "i.parquet")
    m, _u, notes = pair_matrix(pairs["user_id"], pairs["note_id"])
    for params in (
        {"top_k": 0},
        {"top_k": 5, "alpha": 0.5, "beta": 0.3, "user_alpha": 2.0},
        {"top_k": 0, "min_cooccurrence": 3},
    ):
        want = neighbour_table(swing(m, **params), notes.ids)
        got = swing_spark(str(root / "i.parquet"), spark=spark, **params)
        assert len(got) == len(want) > 0, params
        assert (got["note_id"].to_numpy() == want["note_id"].to_numpy()).all()
        np.testing.assert_allclose(got["score"].to_numpy(), want["score"].to_numpy(), rtol=1e-5)
        if params["top_k"] == 0:  # with top_k, float ties may order differently at the cut
            assert (got["neighbour_id"].to_numpy() == want["neighbour_id"].to_numpy()).all()


def test_swing_cap_samples_deterministically(spark, data):
    _d, root = data
    a = swing_spark(str(root / "i.parquet"), spark=spark, top_k=0, max_users_per_item=3, seed=1)
    b = swing_spark(str(root / "i.parquet"), spark=spark, top_k=0, max_users_per_item=3, seed=1)
    pd.testing.assert_frame_equal(a, b)


def test_graph_build_equals_embedded_engine(spark, data):
    d, root = data
    local = build_graph(validate_interactions(d.interactions), validate_notes(d.notes))
    remote = build_graph_spark(str(root / "i.parquet"), str(root / "n.parquet"), spark=spark)
    assert local.node_types == remote.node_types
    for t in local.node_types:
        assert local.id_map(t) == remote.id_map(t), t
    assert set(local.edge_types) == set(remote.edge_types)
    for et in local.edge_types:
        np.testing.assert_allclose(local.relation(et).toarray(), remote.relation(et).toarray(), rtol=1e-6)


def test_swing_job_on_spark_and_errors(spark, data, tmp_path):
    _d, root = data
    report = run(
        SwingJobConfig(interactions=str(root / "i.parquet"), out=str(tmp_path / "n.csv"), engine="spark", top_k=3)
    )
    assert report["pairs_out"] == len(pd.read_csv(tmp_path / "n.csv"))
    (tmp_path / "bad.csv").write_text("user_id,item\n1,2\n")
    with pytest.raises(SchemaError, match=r"bad.csv: missing required column\(s\) note_id"):
        swing_spark(str(tmp_path / "bad.csv"), spark=spark)
    (tmp_path / "bad.csv").write_text("user_id,note_id,event_type,timestamp\n1,2,teleport,3\n")
    with pytest.raises(SchemaError, match="event_type 'teleport' is not a configured event type"):
        build_graph_spark(str(tmp_path / "bad.csv"), spark=spark)


def test_spark_ids_follow_the_io_id_rule():
    """One id rule: what Spark hands back is typed exactly as graphrec.io types a text column."""
    import pyarrow as pa

    from graphrec.io import TableSource, normalise_ids
    from graphrec.spark.engine import _normalise

    for values in (["1", "20", "-3"], ["-0", "1"], ["007", "1"], ["a", "1"]):
        ours = _normalise(np.array(values, dtype=object))
        io = normalise_ids(pa.array(values), name="id", source=TableSource("x"))
        assert ours.dtype == io.dtype and ours.tolist() == io.tolist(), values
    assert _normalise(np.array(["-0", "1"], dtype=object)).dtype == object  # "-0" is text, not 0
