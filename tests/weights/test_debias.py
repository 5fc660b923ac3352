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
    deb = PopularityDebiaser(propensity="covariates", refute_simulations=2, max_units=5_000, seed=1)
    return graph, notes, deb.fit(graph, notes=notes)


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
    options = {"propensity": "covariates", "refute_simulations": 1, "max_units": 3_000, "seed": 1}
    half = PopularityDebiaser(strength=0.5, **options).fit(graph, notes=notes)
    want = _reference_weights(x, half.edge_propensity_, half.popular_, half.clip, strength=0.5)
    np.testing.assert_allclose(half.edge_weights_.data, want, rtol=1e-5)
    none = PopularityDebiaser(strength=0.0, **options).fit(graph, notes=notes)
    np.testing.assert_allclose(none.edge_weights_.data, x.data, rtol=1e-5)


def _reference_popularity_weights(x, strength):
    """The popularity model straight from the documented rule: ipw = (max pop / pop_i) ** strength
    per edge (pop = engaged users per note), then each user's total restored."""
    pop = np.array([(x[:, j] > 0).sum() for j in range(x.shape[1])], dtype=float)
    out = np.zeros(x.nnz)
    for u in range(x.shape[0]):
        lo, hi = x.indptr[u], x.indptr[u + 1]
        new = np.array([x.data[k] * (pop.max() / pop[x.indices[k]]) ** strength for k in range(lo, hi)])
        if new.size:
            out[lo:hi] = new * x.data[lo:hi].sum() / new.sum()
    return out


def test_popularity_propensity_is_the_default_and_matches_its_reference(small_tables):
    interactions, notes = small_tables
    graph = build_graph(interactions, notes)
    x = graph.relation(ENGAGES)
    deb = PopularityDebiaser(refute_simulations=1, max_units=3_000, seed=1).fit(graph, notes=notes)
    assert deb.report_["propensity"]["model"] == "popularity" and deb.report_["propensity"]["strength"] == 0.15
    np.testing.assert_allclose(deb.edge_weights_.data, _reference_popularity_weights(x, 0.15), rtol=1e-5)
    np.testing.assert_allclose(deb.edge_weights(1.0).data, _reference_popularity_weights(x, 1.0), rtol=1e-5)
    np.testing.assert_allclose(deb.edge_weights(0.0).data, x.data, rtol=1e-5)
    # Weight moves from popular notes to the tail, within every user.
    before, after = (
        deb.report_["weights"]["tail_weight_share_before"],
        deb.report_["weights"]["tail_weight_share_after"],
    )
    assert after > before
    assert np.isfinite(deb.report_["estimate_ate"]) and len(deb.report_["refutations"]) == 3
    assert deb.transform(graph).meta["debias"]["propensity"] == "popularity"
    with pytest.raises(InvalidParameterError, match="propensity"):
        PopularityDebiaser(propensity="learned").fit(graph)


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
