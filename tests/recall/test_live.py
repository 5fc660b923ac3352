"""Live updates: new events and notes without retraining, checked against request-time history
(the rule they follow) and against the engine they came from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _helpers import write_encoder_bundle

from graphrec.exceptions import InvalidParameterError
from graphrec.graph import build_graph
from graphrec.recall import RecallEngine


@pytest.fixture(scope="module")
def engine(small_tables, tmp_path_factory):
    interactions, notes = small_tables
    path = tmp_path_factory.mktemp("live") / "bundle"
    write_encoder_bundle(path, build_graph(interactions, notes), interactions)
    return RecallEngine.load(path)


@pytest.fixture(scope="module")
def text_engine(small_tables, tmp_path_factory):
    """An engine whose note encoder also takes 16-d text vectors (random: no text model needed)."""
    interactions, notes = small_tables
    graph = build_graph(interactions, notes)
    text = np.random.default_rng(0).normal(size=(graph.num_nodes("note"), 16)).astype(np.float32)
    path = tmp_path_factory.mktemp("live-text") / "bundle"
    write_encoder_bundle(path, graph, interactions, text=text)
    return RecallEngine.load(path)


def _events(user, notes, start=2_000_000_000):
    return pd.DataFrame(
        {"user_id": user, "note_id": notes, "event_type": "click", "timestamp": np.arange(len(notes)) + start}
    )


def test_update_equals_request_time_history(engine):
    note_ids = engine.bundle.ids["note"].ids
    clicks = [note_ids[5], note_ids[9], note_ids[11]]
    known = str(engine.known_users()[3])
    events = pd.concat([_events("brand-new", [*clicks, "no-such-note"]), _events(known, clicks)])
    live = engine.update(events)
    assert live.last_update == {"events": 7, "unknown_notes": 1, "users": 2, "new_pairs": live.last_update["new_pairs"]}
    for user in ("brand-new", known):
        got = live.recall([user], k=20)
        want = engine.recall([user], k=20, history=[clicks])
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_array_equal(got.channels, want.channels)
        assert not got.fallback[0]
    pop = engine.bundle.popularity
    assert (live.bundle.popularity - pop).sum() == live.last_update["new_pairs"] >= 3
    # Copy-on-write: the engine it came from is unchanged.
    assert engine.recall(["brand-new"], k=5).fallback[0] and not engine.delta
    # A later update appends; a repeated note moves to its latest position.
    again = live.update(_events("brand-new", [clicks[0]], start=2_100_000_000))
    assert (
        again.delta["brand-new"].tolist() == engine.bundle.ids["note"].index([clicks[1], clicks[2], clicks[0]]).tolist()
    )


def test_add_and_remove_notes(engine, small_tables):
    _, notes = small_tables
    template = notes.iloc[:3]
    new = template.assign(note_id=[9_000_001, 9_000_002, 9_000_003])
    users = list(engine.known_users()[:5])
    live = engine.add_notes(new)
    assert live.last_update["notes"] == 3 and len(live.bundle.ids["note"]) == len(engine.bundle.ids["note"]) + 3
    # Embedded by the bundle's encoder: a new note's vector equals its template's encoding.
    from graphrec.graph.side_info import side_info_for_encoder

    b = engine.bundle
    side, _ = side_info_for_encoder(new, b.encoder, users=b.ids["user"], tags=b.ids.get("tag"))
    rows = live.bundle.ids["note"].index(new["note_id"])
    np.testing.assert_allclose(live.bundle.embeddings["note"][rows], b.encoder(side), rtol=1e-6)
    sim = live.similar_notes([9_000_001], k=5)
    assert not sim.fallback[0] and (sim.ids[0] != live.sentinel).all()
    aud = live.audience([9_000_002], k=3)
    assert not aud.fallback[0] and aud.ids.shape == (1, 3)
    # Removing them again gives back the original engine's answers exactly (the renumbering is exact).
    back = live.remove_notes([9_000_001, 9_000_002, 9_000_003, 123456789])
    assert back.last_update == {"removed": 3, "unknown": 1}
    np.testing.assert_array_equal(back.recall(users, k=20).ids, engine.recall(users, k=20).ids)
    first = [b.ids["note"].ids[0]]
    np.testing.assert_array_equal(back.similar_notes(first, k=10).ids, engine.similar_notes(first, k=10).ids)
    # A removed note is never recalled, even from someone's history or the delta.
    gone = b.ids["note"].ids[0]
    without = engine.update(_events("u-new", [gone, b.ids["note"].ids[1]])).remove_notes([gone])
    assert gone not in without.recall([*users, "u-new"], k=50, exclude_seen=False).ids
    assert without.delta["u-new"].size == 1


def test_live_update_errors(engine, small_tables):
    _, notes = small_tables
    with pytest.raises(InvalidParameterError, match="already in the engine"):
        engine.add_notes(notes.iloc[:1])
    with pytest.raises(InvalidParameterError, match="same kind"):
        engine.add_notes(notes.iloc[:1].assign(note_id=["text-id"]))
    plain = RecallEngine(engine.bundle.__class__(**{**engine.bundle.__dict__, "encoder": None}))
    with pytest.raises(InvalidParameterError, match="needs a bundle with a note encoder"):
        plain.add_notes(notes.iloc[:1].assign(note_id=[9_999_999]))


def test_saved_live_engine_and_graphrec_refresh(engine, small_tables, tmp_path):
    from graphrec.cli import main

    _, notes = small_tables
    note_ids = engine.bundle.ids["note"].ids
    events = _events("fresh-user", [note_ids[2], note_ids[7]])
    new = notes.iloc[:2].assign(note_id=[8_000_001, 8_000_002])
    live = engine.add_notes(new).update(events)
    live.save(tmp_path / "saved")
    back = RecallEngine.load(tmp_path / "saved")  # a restart loses nothing
    assert {k: v.tolist() for k, v in back.delta.items()} == {k: v.tolist() for k, v in live.delta.items()}
    users = ["fresh-user", *map(str, engine.known_users()[:3])]
    np.testing.assert_array_equal(back.recall(users, k=20).ids, live.recall(users, k=20).ids)
    np.testing.assert_array_equal(back.similar_notes([8_000_001], k=5).ids, live.similar_notes([8_000_001], k=5).ids)
    # The same from the shell, in place.
    events.to_csv(tmp_path / "events.csv", index=False)
    new.assign(tags=new["tags"].map(list)).to_json(tmp_path / "new.jsonl", orient="records", lines=True)
    bundle = tmp_path / "in-place"
    engine.save(bundle)
    args = ["refresh", "--bundle", str(bundle), "--interactions", str(tmp_path / "events.csv")]
    assert main([*args, "--notes", str(tmp_path / "new.jsonl")]) == 0
    refreshed = RecallEngine.load(bundle)
    np.testing.assert_array_equal(refreshed.recall(users, k=20).ids, live.recall(users, k=20).ids)
    assert main(["refresh", "--bundle", str(bundle)]) == 2


@pytest.fixture(scope="module")
def swing_engine(small_tables, tmp_path_factory):
    interactions, notes = small_tables
    path = tmp_path_factory.mktemp("live-swing") / "bundle"
    write_encoder_bundle(path, build_graph(interactions, notes), interactions, swing_top_k=20)
    return RecallEngine.load(path)


def test_update_recomputes_the_swing_rows_of_touched_notes_exactly(swing_engine):
    import scipy.sparse as sp

    engine = swing_engine
    from graphrec.weights import SwingConfig, swing_rows

    assert engine.bundle.similar is not None
    users, notes = engine.bundle.ids["user"], engine.bundle.ids["note"]
    known, fresh_user = str(users.ids[4]), "someone-new"
    picked = notes.ids[[3, 10, 40, 41]]
    events = pd.concat([_events(known, picked[:2]), _events(fresh_user, picked[1:])], ignore_index=True)
    live = engine.update(events)
    counts = live.last_update
    touched = np.unique(notes.index(picked))
    assert counts["swing_rows_recomputed"] >= 1
    # Reference: the whole binary history with the new pairs (the new user as an extra row).
    hist = engine.history_csr.tolil(copy=True)
    hist[users.index([known])[0], notes.index(picked[:2])] = 1.0
    full = sp.vstack(
        [hist.tocsr(), sp.csr_matrix((np.ones(3), ([0, 0, 0], notes.index(picked[1:]))), shape=(1, len(notes)))]
    )
    widest = int(np.diff(engine.bundle.similar.indptr).max())
    want = swing_rows(full.tocsr(), touched, SwingConfig(top_k=widest))
    got = live.bundle.similar[touched]
    np.testing.assert_allclose(got.toarray(), want.toarray(), rtol=1e-6)
    others = np.setdiff1d(np.arange(len(notes)), touched)
    assert (live.bundle.similar[others] != engine.bundle.similar[others]).nnz == 0


def test_add_notes_with_precomputed_text_vectors(text_engine, engine, small_tables, tmp_path):
    from graphrec.cli import main
    from graphrec.graph.side_info import side_info_for_notes

    _, notes = small_tables
    new = notes.iloc[:4].assign(note_id=[9_100_001, 9_100_002, 9_100_003, 9_100_004])
    vectors = np.random.default_rng(1).normal(size=(4, 16)).astype(np.float32)
    b = text_engine.bundle
    assert b.encoder.text_dim == 16
    live = text_engine.add_notes(new, text_vectors=vectors)
    # Row i of the vectors is note i's text: the encoder's output on exactly that side-info.
    side, _ = side_info_for_notes(new, users=b.ids["user"], tags=b.ids.get("tag"), text=vectors)
    rows = live.bundle.ids["note"].index(new["note_id"])
    np.testing.assert_allclose(live.bundle.embeddings["note"][rows], b.encoder(side), rtol=1e-6)
    swapped = text_engine.add_notes(new, text_vectors=vectors[::-1])
    assert not np.allclose(swapped.bundle.embeddings["note"][rows], live.bundle.embeddings["note"][rows])
    assert not live.similar_notes([9_100_003], k=5).fallback[0]
    # The same from the shell: a .npy beside the notes file.
    bundle = tmp_path / "bundle"
    text_engine.save(bundle)
    new.assign(tags=new["tags"].map(list)).to_json(tmp_path / "new.jsonl", orient="records", lines=True)
    np.save(tmp_path / "vectors.npy", vectors)
    args = ["refresh", "--bundle", str(bundle), "--notes", str(tmp_path / "new.jsonl")]
    assert main([*args, "--text-vectors", str(tmp_path / "vectors.npy")]) == 0
    refreshed = RecallEngine.load(bundle)
    np.testing.assert_allclose(refreshed.bundle.embeddings["note"][rows], live.bundle.embeddings["note"][rows])
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main([*args, "--text-vectors", str(tmp_path / "objects.npy")]) == 2  # never unpickled
    assert main(["refresh", "--bundle", str(bundle), "--text-vectors", str(tmp_path / "vectors.npy")]) == 2


def test_text_vector_errors(text_engine, engine, small_tables):
    _, notes = small_tables
    new = notes.iloc[:3].assign(note_id=[9_200_001, 9_200_002, 9_200_003])
    good = np.zeros((3, 16), np.float32)
    with pytest.raises(InvalidParameterError, match=r"shape \(2, 16\); expected \(3, 16\)"):
        text_engine.add_notes(new, text_vectors=good[:2])
    with pytest.raises(InvalidParameterError, match=r"shape \(3, 8\); expected \(3, 16\)"):
        text_engine.add_notes(new, text_vectors=good[:, :8])
    bad = good.copy()
    bad[2, 5] = np.nan
    with pytest.raises(InvalidParameterError, match="row 2 holds NaN"):
        text_engine.add_notes(new, text_vectors=bad)
    with pytest.raises(InvalidParameterError, match="not a numeric array"):
        text_engine.add_notes(new, text_vectors=[["a"] * 16] * 3)
    with pytest.raises(InvalidParameterError, match="trained without text"):
        engine.add_notes(new, text_vectors=good)
