"""Cold start: seeds, fallback, look-alike, round simulation, tuning, bundle and CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from graphrec.cli import main
from graphrec.coldstart import Boosts, ColdStart, LookalikeConfig, tune_boosts, tune_lookalike
from graphrec.coldstart.experiment import cold_start_from_model, truth_sets
from graphrec.coldstart.simulation import baseline_audiences, simulate_rounds
from graphrec.evaluate import audience_metrics, cold_note_split
from graphrec.exceptions import InvalidParameterError, NotFittedError
from graphrec.graph import AUTHORED, HAS_TAG, build_graph, recency_matrix, side_info_for_notes, side_info_from_graph
from graphrec.index import write_bundle
from graphrec.io import validate_interactions, validate_notes
from graphrec.model import GNNRecommender


@pytest.fixture(scope="module")
def setup(small_ugc):
    interactions = validate_interactions(small_ugc.interactions)
    notes = validate_notes(small_ugc.notes)
    split = cold_note_split(interactions, fraction=0.2, seed=0)
    cold_ids = np.asarray(split.held_out_notes)
    graph = build_graph(split.train, notes.loc[~notes["note_id"].isin(cold_ids)])
    model = GNNRecommender(dim=16, epochs=8, batch_size=512, lr=1e-2, show_progress=False).fit(
        graph, side_info_from_graph(graph)
    )
    cold = cold_start_from_model(model, graph, split.train, candidates=200)
    rows = notes.set_index("note_id").loc[cold_ids].reset_index()
    side, _ = side_info_for_notes(rows, users=graph.id_map("user"), tags=graph.id_map("tag"))
    truth = truth_sets(split.test, cold_ids, graph)
    return {"graph": graph, "model": model, "cold": cold, "side": side, "truth": truth, "split": split, "rows": rows}


def test_audience_metrics_by_hand():
    exposed = [np.array([1, 2, 3]), np.array([4, 5, 6]), np.array([7])]
    truth = [np.array([2, 9]), np.array([], dtype=np.int64), np.array([8])]
    m = audience_metrics(exposed, truth, budget=3)
    assert m["precision@3"] == pytest.approx((1 / 3 + 0) / 2)
    assert m["recall@3"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["hit_rate@3"] == pytest.approx(0.5) and m["n_notes"] == 2


def test_seeds_beat_tag_match_and_random(setup):
    cold, side, truth = setup["cold"], setup["side"], setup["truth"]
    seeds = cold.seeds(side, 20)
    assert all(len(u) == 20 and not fb for u, _, fb in seeds)
    assert all((np.diff(s) <= 1e-12).all() for _, s, _ in seeds)  # best first
    ours = audience_metrics([u for u, _, _ in seeds], truth, budget=20)
    base = baseline_audiences(cold.features_.history, side, budget=20, note_tags=setup["graph"].relation(HAS_TAG))
    tag = audience_metrics(base["tag_match"], truth, budget=20)
    rnd = audience_metrics(base["random_active"], truth, budget=20)
    assert ours["precision@20"] > tag["precision@20"] > rnd["precision@20"]


def test_candidate_features_match_a_loop_reference(setup):
    """Tag and author features recomputed user by user from the history (the docstring's formulas)."""
    cold, side, graph = setup["cold"], setup["side"], setup["graph"]
    hist = sp.csr_matrix(cold.features_.history)
    note_tags = sp.csr_matrix(graph.relation(HAS_TAG))
    authored = sp.csr_matrix(graph.relation(AUTHORED))
    emb = cold.encoder_(side)
    for j, c in list(enumerate(cold.candidate_features(side)))[:5]:
        tags = side.tags[j].indices
        author = int(side.authors[j])
        carriers = {t: note_tags[:, t].nonzero()[0] for t in tags}  # notes with tag t
        # engagements of all users with notes carrying tag t
        everyone = {t: sum(np.isin(hist[v].indices, carriers[t]).sum() for v in range(hist.shape[0])) for t in tags}
        tag_raw, author_raw = [], []
        for u in c.users:
            engaged = hist[u].indices
            per_tag = [np.isin(engaged, carriers[t]).sum() / everyone[t] if everyone[t] else 0.0 for t in tags]
            tag_raw.append(np.mean(per_tag) if per_tag else 0.0)
            by_author = authored[author].indices if author >= 0 else np.empty(0, np.int64)
            author_raw.append(len(np.intersect1d(engaged, by_author)) / max(len(engaged), 1))
        tag_raw, author_raw = np.array(tag_raw), np.array(author_raw)
        dots = cold.features_.embeddings[c.users].astype(np.float64) @ emb[j].astype(np.float64)
        np.testing.assert_allclose(c.features[:, 0], dots / np.abs(dots).max(), rtol=1e-6)
        np.testing.assert_allclose(c.features[:, 1], author_raw / max(author_raw.max(), 1e-300), atol=1e-12)
        np.testing.assert_allclose(c.features[:, 2], tag_raw / max(tag_raw.max(), 1e-300), atol=1e-12)
        assert c.features[:, :3].max() <= 1.0 + 1e-12


def test_rounds_never_reexpose_and_lookalike_needs_positives(setup):
    cold, side, truth = setup["cold"], setup["side"], setup["truth"]
    rounds = simulate_rounds(cold, side, truth, budget=15, rounds=3)
    for j in range(side.n_notes):
        seen = np.concatenate([rounds[r][j] for r in range(3)])
        assert np.unique(seen).size == seen.size
    cands = cold.candidate_features(side)
    emb = cold.encoder_(side)
    first, _ = cands[0].rank(cold.boosts.vector(), 15)
    users, _, continued = cold.expand(emb[0], np.empty(0, np.int64), first, 15, seed_candidates=cands[0])
    nxt, _ = cands[0].rank(cold.boosts.vector(), 30)
    assert continued and users.tolist() == nxt[15:].tolist()
    users, _, continued = cold.expand(emb[0], first[:2], first, 15, seed_candidates=cands[0])
    assert not continued and users.size == 15 and not np.isin(users, first).any()


def test_no_side_info_falls_back_and_is_flagged(setup):
    cold, graph = setup["cold"], setup["graph"]
    empty = pd.DataFrame({"note_id": ["blank", "tagged"], "tags": [[], [graph.id_map("tag").ids[0], "never-seen"]]})
    _, stats = cold.side_info(empty)
    assert stats["unknown_tags"] == 1
    table = cold.plan(empty, 5)
    assert list(table.columns) == ["note_id", "user_id", "score", "round", "fallback"]
    flags = table.groupby("note_id")["fallback"].first()
    assert bool(flags["blank"]) and not bool(flags["tagged"])
    assert (table.groupby("note_id").size() == 5).all()
    with pytest.raises(Exception, match="note_id"):
        cold.plan(pd.DataFrame({"tags": [[]]}), 5)


def test_tuning_never_worse_than_start(setup):
    cold, side, truth = setup["cold"], setup["side"], setup["truth"]
    res = tune_boosts(cold, side, truth, budget=20, n_trials=8, seed=0)
    assert res.best_recall >= res.default_recall and isinstance(res.boosts, Boosts)
    la = tune_lookalike(cold, side, truth, budget=20, n_trials=4, seed=0)
    assert la.best_recall >= la.default_recall - 1e-12
    # continuing down the seed ranking is one of the points tried: never below 2N seeds
    seeds_2n = [c.rank(cold.boosts.vector(), 40)[0] for c in cold.candidate_features(side)]
    assert la.best_recall >= audience_metrics(seeds_2n, truth, budget=40)["recall@40"] - 1e-12
    assert {t["number"] for t in la.trials} == set(range(4))
    # Tuners return parameters; they never change the ColdStart they were given.
    assert cold.boosts == Boosts() and cold.lookalike == LookalikeConfig()
    tuned = cold.with_params(boosts=res.boosts, lookalike=la.lookalike)
    assert tuned.boosts == res.boosts and tuned.lookalike == la.lookalike and cold.boosts == Boosts()
    assert tuned.seed_ranker_ is cold.seed_ranker_ and tuned.features_ is cold.features_  # shared, not rebuilt


def test_bad_parameters(setup):
    with pytest.raises(InvalidParameterError, match="author"):
        Boosts(author=-1.0)
    with pytest.raises(InvalidParameterError, match="cf_weight"):
        LookalikeConfig(cf_weight=-1.0)
    cold = setup["cold"]
    with pytest.raises(InvalidParameterError, match="user_embeddings"):
        ColdStart().fit(
            user_ids=cold.user_ids_,
            user_embeddings=np.zeros((2, 4)),
            history=cold.features_.history,
            encoder=cold.encoder_,
        )
    with pytest.raises(NotFittedError, match="ColdStart is not fitted"):
        ColdStart().seeds(setup["side"], 5)


def test_bundle_and_cli(setup, tmp_path):
    graph, model, split = setup["graph"], setup["model"], setup["split"]
    ids = {t: graph.id_map(t) for t in graph.node_types}
    write_bundle(
        tmp_path / "b",
        ids=ids,
        embeddings={"user": model.user_embeddings_, "note": model.note_embeddings_},
        history=recency_matrix(split.train, ids["user"], ids["note"]),
        note_tags=graph.relation(HAS_TAG),
        authored=graph.relation(AUTHORED),
        encoder=model.note_encoder(),
    )
    from_bundle = ColdStart.from_bundle(tmp_path / "b", candidates=200)
    a = from_bundle.seeds(setup["side"], 10)
    b = setup["cold"].seeds(setup["side"], 10)
    assert all(x[0].tolist() == y[0].tolist() for x, y in zip(a, b))
    notes_path = tmp_path / "new.jsonl"
    setup["rows"].iloc[:3].assign(note_id=["n1", "n2", "n3"]).to_json(notes_path, orient="records", lines=True)
    out = tmp_path / "aud.csv"

    def cli(bundle: str) -> int:
        return main(
            [
                "coldstart",
                "--bundle",
                str(tmp_path / bundle),
                "--notes",
                str(notes_path),
                "--budget",
                "7",
                "--out",
                str(out),
            ]
        )

    assert cli("b") == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["note_id", "user_id", "score", "round", "fallback"] and len(table) == 21
    # A bundle without an encoder cannot embed new notes: a clear error, exit status 2.
    write_bundle(
        tmp_path / "plain",
        ids=ids,
        embeddings={"user": model.user_embeddings_, "note": model.note_embeddings_},
        history=sp.csr_matrix((len(ids["user"]), len(ids["note"])), dtype=np.float32),
    )
    assert cli("plain") == 2
