from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.exceptions import InvalidParameterError, NotFittedError, SchemaError
from graphrec.graph import ENGAGES, build_graph
from graphrec.weights import PopularityDebiaser


@pytest.fixture(scope="module")
def fitted(small_tables):
    interactions, notes = small_tables
    graph = build_graph(interactions, notes)
    deb = PopularityDebiaser(refute_simulations=2, max_units=5_000, seed=1).fit(graph, notes=notes)
    return graph, notes, deb


def _reference_weights(x, propensity, popular, clip, strength=1.0):
    """Straight from the documented rule, one user at a time."""
    out = np.zeros(x.nnz)
    for u in range(x.shape[0]):
        lo, hi = x.indptr[u], x.indptr[u + 1]
        new = []
        for k in range(lo, hi):
            e = min(max(propensity[k], clip), 1 - clip)
            ipw = (1 / e if popular[x.indices[k]] else 1 / (1 - e)) ** strength
            new.append(x.data[k] * ipw)
        if new:
            scale = x.data[lo:hi].sum() / sum(new)
            out[lo:hi] = np.array(new) * scale
    return out


def test_report_has_estimate_and_three_refutations(fitted, tmp_path):
    _graph, _notes, deb = fitted
    r = deb.report_
    assert set(r["common_causes"]) >= {"user_activity", "note_age"}
    assert any(c.startswith("category_") for c in r["common_causes"])
    assert set(r["refutations"]) == {"random_common_cause", "placebo_treatment_refuter", "data_subset_refuter"}
    assert np.isfinite(r["estimate_ate"])
    # A placebo treatment has no effect: its estimate is far closer to 0 than the real one.
    assert abs(r["refutations"]["placebo_treatment_refuter"]["new_effect"]) < 0.5 * abs(r["estimate_ate"]) + 0.02
    deb.write_report(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["estimator"].startswith("backdoor.propensity_score_weighting")


def test_weights_match_reference_and_preserve_user_totals(fitted):
    graph, _notes, deb = fitted
    x, w = graph.relation(ENGAGES), deb.edge_weights_
    assert (w.indptr == x.indptr).all() and (w.indices == x.indices).all()
    want = _reference_weights(x, deb.edge_propensity_, deb.popular_, deb.clip)
    np.testing.assert_allclose(w.data, want, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(w.sum(axis=1)).ravel(), np.asarray(x.sum(axis=1)).ravel(), rtol=1e-4)
    assert (w.data > 0).all() and np.isfinite(w.data).all()
    assert deb.popular_.mean() == pytest.approx(0.2, abs=0.01)


def test_strength_interpolates(small_tables):
    interactions, notes = small_tables
    graph = build_graph(interactions, notes)
    x = graph.relation(ENGAGES)
    half = PopularityDebiaser(strength=0.5, refute_simulations=1, max_units=3_000, seed=1).fit(graph, notes=notes)
    want = _reference_weights(x, half.edge_propensity_, half.popular_, half.clip, strength=0.5)
    np.testing.assert_allclose(half.edge_weights_.data, want, rtol=1e-5)
    none = PopularityDebiaser(strength=0.0, refute_simulations=1, max_units=3_000, seed=1).fit(graph, notes=notes)
    np.testing.assert_allclose(none.edge_weights_.data, x.data, rtol=1e-5)


def test_transform_replaces_engages(fitted):
    graph, _notes, deb = fitted
    g2 = deb.transform(graph)
    assert (g2.relation(ENGAGES) != deb.edge_weights_).nnz == 0
    assert g2.meta["debias"]["method"] == "ips"
    with pytest.raises(NotFittedError):
        PopularityDebiaser().transform(graph)


def test_exposures_are_used_when_given(small_tables):
    interactions, notes = small_tables
    graph = build_graph(interactions, notes)
    imp = interactions[interactions["event_type"].astype(str) == "impression"]
    u = graph.id_map("user").index(imp["user_id"])
    n = graph.id_map("note").index(imp["note_id"])
    exposures = sp.csr_matrix((np.ones(len(imp)), (u, n)), shape=graph.relation(ENGAGES).shape)
    deb = PopularityDebiaser(refute_simulations=1, max_units=3_000, common_causes=["user_activity"]).fit(
        graph, exposures=exposures
    )
    assert deb.report_["units"]["non_engaged_from"] == "exposures without engagement"
    assert deb.report_["common_causes"] == ["user_activity"]


def test_errors(small_tables):
    interactions, notes = small_tables
    graph = build_graph(interactions, notes)
    with pytest.raises(
        SchemaError, match="common cause note_age needs column created_at in the notes table, which is not given"
    ):
        PopularityDebiaser(common_causes=["user_activity", "note_age"]).fit(graph)
    with pytest.raises(SchemaError, match="needs column category in the notes table, which is missing or empty"):
        PopularityDebiaser(common_causes=["category"]).fit(graph, notes=notes.drop(columns=["category"]))
    with pytest.raises(InvalidParameterError, match="unknown common cause"):
        PopularityDebiaser(common_causes=["weather"]).fit(graph)
    with pytest.raises(InvalidParameterError, match=r"`clip` must be a finite float > 0.0 and <= 0.5; got 0.7"):
        PopularityDebiaser(clip=0.7).fit(graph)
    with pytest.raises(InvalidParameterError, match="exposures have shape"):
        PopularityDebiaser().fit(graph, exposures=sp.csr_matrix((2, 2)))
