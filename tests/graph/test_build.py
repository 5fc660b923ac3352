from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _helpers import tiny_interactions

from graphrec.exceptions import InvalidParameterError, SchemaError
from graphrec.graph import AUTHORED, ENGAGES, HAS_TAG, build_graph
from graphrec.io import DEFAULT_EVENT_WEIGHTS, validate_interactions, validate_notes


def test_tiny_graph_exact_weights():
    g = build_graph(validate_interactions(tiny_interactions()))
    m = g.relation(ENGAGES).toarray()
    # users a, b, c; notes 1, 2, 3. a: click+like on 1, click on 2; b: click on 2, impression on 3 (not an edge);
    # c: two clicks on 3 at different times (both count).
    assert g.id_map("user").ids.tolist() == ["a", "b", "c"]
    assert m.tolist() == [[3.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]
    assert g.relation(("note", "rev_engages", "user")).toarray().tolist() == m.T.tolist()
    assert build_graph(validate_interactions(tiny_interactions()), weighting="binary").relation(ENGAGES).sum() == 4
    logw = build_graph(validate_interactions(tiny_interactions()), weighting="log1p").relation(ENGAGES).toarray()
    np.testing.assert_allclose(logw, np.log1p(m), rtol=1e-6)


def _reference_engages(interactions: pd.DataFrame, weights) -> dict:
    out: dict = {}
    for r in interactions.itertuples(index=False):
        key = (str(r.user_id), int(r.note_id))
        out[key] = out.get(key, 0.0) + weights[str(r.event_type)]
    return {k: v for k, v in out.items() if v > 0}


def test_engages_matches_reference_on_synthetic(small_tables):
    interactions, notes = small_tables
    g = build_graph(interactions, notes)
    m = g.relation(ENGAGES).tocoo()
    users, notes_ = g.id_map("user").ids, g.id_map("note").ids
    got = {(str(users[i]), int(notes_[j])): float(v) for i, j, v in zip(m.row, m.col, m.data, strict=True)}
    want = _reference_engages(interactions, DEFAULT_EVENT_WEIGHTS)
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-6)


def test_side_info_relations(small_ugc, small_tables):
    interactions, notes = small_tables
    g = build_graph(interactions, notes)
    assert g.num_nodes("note") == len(small_ugc.notes)  # every note with side-info is a node
    tags = g.relation(HAS_TAG)
    n_tags = sum(len(t) for t in small_ugc.notes["tags"])
    assert tags.nnz == n_tags and set(tags.data) == {1.0}
    authored = g.relation(AUTHORED)
    assert authored.nnz == len(small_ugc.notes)
    # The author of the first note, looked up through the id maps, is the generator's author.
    first = g.id_map("note").index([small_ugc.notes["note_id"].iloc[0]])[0]
    author_row = authored[:, first].nonzero()[0][0]
    assert g.id_map("user").ids[author_row] == small_ugc.notes["author_id"].iloc[0]


def test_cold_notes_and_unknown_authors_are_nodes():
    inter = validate_interactions(tiny_interactions())
    notes = validate_notes(pd.DataFrame({"note_id": [1, 99], "author_id": ["zed", None], "tags": [["x"], ["x", "y"]]}))
    g = build_graph(inter, notes)
    assert 99 in g.id_map("note").ids.tolist()
    assert "zed" in g.id_map("user").ids.tolist()
    assert g.relation(ENGAGES)[:, g.id_map("note").index([99])[0]].nnz == 0
    assert g.meta["n_notes_without_side_info"] == 2  # notes 2 and 3


def test_bad_inputs():
    with pytest.raises(SchemaError, match="event_type must be categorical"):
        build_graph(tiny_interactions())
    with pytest.raises(SchemaError, match="missing column note_id"):
        build_graph(pd.DataFrame({"user_id": [1]}))
    inter = validate_interactions(tiny_interactions())
    with pytest.raises(SchemaError, match="no rows"):
        build_graph(inter.iloc[:0])
    with pytest.raises(InvalidParameterError, match=r"event type 'like' occurs in the interactions but has no weight"):
        build_graph(inter, event_weights={"click": 1.0, "impression": 0.0})
    with pytest.raises(InvalidParameterError, match=r"event_weights\['click'\] must be a finite float >= 0; got nan"):
        build_graph(inter, event_weights={**DEFAULT_EVENT_WEIGHTS, "click": float("nan")})
    with pytest.raises(InvalidParameterError, match=r"`weighting` must be one of"):
        build_graph(inter, weighting="max")
