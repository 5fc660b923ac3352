"""GNN estimator: training quality, options, cold-note embedding, early stopping, checkpoints, bad input.

The sampler, propagation and losses have their own reference tests (``test_gnn_*.py``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.evaluate import cold_note_split, evaluate_scorer, random_split, relevance_matrix
from graphrec.exceptions import ArtifactError, InvalidParameterError, NotFittedError
from graphrec.graph import (
    ENGAGES,
    HAS_TAG,
    HeteroGraph,
    SideInfo,
    build_graph,
    side_info_for_notes,
    side_info_from_graph,
)
from graphrec.index import NoteEncoder
from graphrec.io import IdMap
from graphrec.model import ColdValidation, GNNRecommender, MostPopular
from graphrec.model.gnn.modules import NoteSide
from graphrec.model.gnn.trainer import EarlyStopping

FAST = {"dim": 16, "epochs": 8, "batch_size": 512, "lr": 1e-2, "show_progress": False}
STEADY = {**FAST, "lr_decays": 0}  # no learning-rate drops: a refit is then a plain run


@pytest.fixture(scope="module")
def graph(small_tables):
    interactions, notes = small_tables
    return build_graph(interactions, notes)


def test_fit_beats_popularity_and_is_reproducible(small_tables):
    interactions, notes = small_tables
    split = random_split(interactions, seed=0)
    g = build_graph(split.train, notes)
    users, items = g.id_map("user"), g.id_map("note")
    train, _ = relevance_matrix(split.train, users, items)
    test, _ = relevance_matrix(split.test, users, items)
    side = side_info_from_graph(g)
    model = GNNRecommender(**FAST).fit(g, side)
    assert model.log_.epochs_run >= 1 and np.isfinite(model.log_.best_valid_recall)
    gnn = evaluate_scorer(model, train, test, show_progress=False)
    pop = evaluate_scorer(MostPopular().fit(train), train, test, show_progress=False)
    assert gnn["recall@20"] > 1.2 * pop["recall@20"], (gnn, pop)
    again = GNNRecommender(**FAST).fit(g, side)  # seeded: the same bits (next test)
    np.testing.assert_array_equal(again.user_embeddings_, model.user_embeddings_)
    assert model.tag_embeddings_ is not None and model.tag_embeddings_.shape == (g.num_nodes("tag"), 16)


def test_two_fits_give_the_same_bits_on_cpu():
    """Without torch's deterministic algorithms the backward of the step's indexing accumulates in
    a varying order: on this graph the two fits differed by ~1e-7 after one epoch."""
    from graphrec.testing import make_ugc_dataset

    data = make_ugc_dataset(n_users=800, n_notes=1500, n_engagements=20_000, seed=0)
    g = build_graph(data.interactions, data.notes)
    fits = [GNNRecommender(epochs=1, refreshes=1, valid_fraction=0.0, show_progress=False).fit(g) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].note_embeddings_, fits[1].note_embeddings_)
    np.testing.assert_array_equal(fits[0].user_embeddings_, fits[1].user_embeddings_)
    assert not torch.are_deterministic_algorithms_enabled()  # the process-wide setting is restored


@pytest.mark.parametrize(
    "options",
    [
        {"loss": "bpr"},
        {"loss": "ccl", "similarity": "cosine"},
        {"layers": 1, "fanout": 2, "refreshes": 1},
        {"user_positives": 1, "extra_negatives": 0},
        {"pda_gamma": 0.1},
        {"similar_weight": 1.0},
        {"similarity": "cosine"},
        {"cold_extra_negatives": 64},
    ],
)
def test_loss_options_train(graph, options):
    model = GNNRecommender(**{**FAST, "epochs": 2}, **options).fit(graph, side_info_from_graph(graph))
    assert np.isfinite(model.user_embeddings_).all() and np.isfinite(model.log_.history[-1]["loss"])
    if options.get("similarity") == "cosine":  # exported as unit vectors, new notes too
        np.testing.assert_allclose(np.linalg.norm(model.note_embeddings_, axis=1), 1.0, rtol=1e-5)
        new = model.embed_new_notes(side_info_from_graph(graph))
        np.testing.assert_allclose(np.linalg.norm(new[new.any(axis=1)], axis=1), 1.0, rtol=1e-5)


@pytest.fixture(scope="module")
def cold_split(small_ugc):
    """A graph without 20% of the notes; those notes' side-info and test engagements."""
    from graphrec.io import validate_interactions, validate_notes

    interactions = validate_interactions(small_ugc.interactions)
    notes = validate_notes(small_ugc.notes)
    split = cold_note_split(interactions, fraction=0.2, seed=0)
    cold = np.asarray(split.held_out_notes)
    g = build_graph(split.train, notes.loc[~notes["note_id"].isin(cold)])
    cold_notes = notes.set_index("note_id").loc[cold].reset_index()
    side, stats = side_info_for_notes(cold_notes, users=g.id_map("user"), tags=g.id_map("tag"))
    assert stats["unknown_tags"] >= 0
    test, _ = relevance_matrix(split.test, g.id_map("user"), IdMap(cold))
    return g, side, test


def test_cold_notes_from_side_info_beat_tag_popularity(cold_split):
    g, side, test = cold_split
    model = GNNRecommender(**FAST).fit(g, side_info_from_graph(g))
    emb = model.embed_new_notes(side)
    assert emb.shape == (side.n_notes, 16)
    # The numpy encoder computes what the torch module computes.
    trainer = model.trainer_
    ref = trainer.embed_side(NoteSide(side, tag_offset=trainer.side.tag_offset, device=torch.device("cpu"))).numpy()
    np.testing.assert_allclose(emb[side.usable()], ref[side.usable()], rtol=1e-4, atol=1e-5)
    empty = sp.csr_matrix(test.shape, dtype=np.float32)
    gnn = evaluate_scorer(lambda b: model.user_embeddings_[b] @ emb.T, empty, test, show_progress=False)
    tags = side.tags.toarray()
    engages = g.relation(ENGAGES).copy()
    engages.data[:] = 1
    tag_pop = (np.asarray(engages.sum(axis=0)).ravel() @ g.relation(HAS_TAG)) / 1.0
    score = (tags @ tag_pop) / np.maximum(tags.sum(axis=1), 1)
    base = evaluate_scorer(lambda b: np.tile(score, (b.size, 1)), empty, test, show_progress=False)
    assert gnn["recall@20"] >= 2 * base["recall@20"], (gnn, base)


def test_cold_validation_chooses_the_epoch_and_checks_its_input(cold_split):
    g, side, test = cold_split
    train_side = side_info_from_graph(g)
    cold = ColdValidation(side, test)
    model = GNNRecommender(**{**FAST, "patience": 100}).fit(g, train_side, cold_validation=cold)
    history = model.log_.history
    assert all("valid_recall@20" in h and "valid_cold_recall@20" in h for h in history)
    curve = [h["valid_cold_recall@20"] for h in history]
    assert model.log_.best_valid_recall == max(curve)
    assert model.log_.best_epoch == history[int(np.argmax(curve))]["epoch"]
    # The kept weights are the best epoch's: the cold metric, recomputed, is the best one.
    new = model.embed_new_notes(side)
    empty = sp.csr_matrix(test.shape, dtype=np.float32)
    again = evaluate_scorer(lambda b: model.user_embeddings_[b] @ new.T, empty, test, show_progress=False)
    assert again["recall@20"] == pytest.approx(max(curve), abs=1e-6)
    with pytest.raises(InvalidParameterError, match="needs side_info"):
        GNNRecommender(**FAST).fit(g, cold_validation=cold)
    with pytest.raises(InvalidParameterError, match="shape"):
        GNNRecommender(**FAST).fit(g, train_side, cold_validation=ColdValidation(side, test[:, :-1]))
    with pytest.raises(InvalidParameterError, match="no engagements"):
        GNNRecommender(**FAST).fit(g, train_side, cold_validation=ColdValidation(side, test * 0))


def test_new_note_without_side_info_gets_zero_vector(graph):
    model = GNNRecommender(**{**FAST, "epochs": 1}).fit(graph, side_info_from_graph(graph))
    side = SideInfo(2, tags=sp.csr_matrix((2, graph.num_nodes("tag")), dtype=np.float32), authors=np.array([-1, 0]))
    emb = model.embed_new_notes(side)
    assert not emb[0].any() and emb[1].any()
    plain = GNNRecommender(**{**FAST, "epochs": 1}).fit(graph)
    with pytest.raises(InvalidParameterError, match="without side-info"):
        plain.embed_new_notes(side)


def test_note_encoder_round_trip_and_corruption(graph, tmp_path):
    model = GNNRecommender(**{**FAST, "epochs": 1}).fit(graph, side_info_from_graph(graph))
    enc = model.note_encoder()
    enc.save(tmp_path / "encoder.npz")
    again = NoteEncoder.load(tmp_path / "encoder.npz")
    side = side_info_from_graph(graph)
    np.testing.assert_array_equal(again(side), enc(side))
    np.savez(tmp_path / "bad.npz", user0=np.zeros((2, 3)))
    with pytest.raises(ArtifactError, match="lacks"):
        NoteEncoder.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ArtifactError, match="unreadable"):
        NoteEncoder.load(tmp_path / "junk.npz")


def test_checkpoint_resume_and_mismatch(graph, tmp_path):
    ck = tmp_path / "ck"
    first = GNNRecommender(**{**FAST, "epochs": 2, "patience": 50}, checkpoint_dir=ck).fit(graph)
    assert (ck / "latest.npz").exists() and (ck / "best.npz").exists()
    meta = json.loads((ck / "latest.json").read_text())
    assert meta["log"]["epochs_run"] == 2
    # Another learning rate is another run: refused, and the earlier files are left as they were.
    before = (ck / "latest.npz").read_bytes()
    with pytest.raises(ArtifactError, match="another configuration"):
        GNNRecommender(**{**FAST, "epochs": 2, "patience": 50, "lr": 0.5}, checkpoint_dir=ck).fit(graph)
    assert (ck / "latest.npz").read_bytes() == before
    done = GNNRecommender(**{**FAST, "epochs": 2, "patience": 50}, checkpoint_dir=ck).fit(graph)
    assert done.log_.epochs_run == 2 and len(done.log_.history) == 2
    np.testing.assert_allclose(done.user_embeddings_, first.user_embeddings_, rtol=1e-5, atol=1e-6)
    # Extending the run resumes from epoch 2 and equals an uninterrupted 3-epoch run.
    extended = GNNRecommender(**{**FAST, "epochs": 3, "patience": 50}, checkpoint_dir=ck).fit(graph)
    assert [h["epoch"] for h in extended.log_.history] == [1, 2, 3]
    straight = GNNRecommender(**{**FAST, "epochs": 3, "patience": 50}).fit(graph)
    np.testing.assert_allclose(extended.user_embeddings_, straight.user_embeddings_, rtol=1e-4, atol=1e-5)
    (ck / "latest.npz").write_bytes(b"not an npz")
    with pytest.raises(ArtifactError, match="unreadable checkpoint"):
        GNNRecommender(**{**FAST, "epochs": 2, "patience": 50}, checkpoint_dir=ck).fit(graph)


def test_refit_retrains_on_everything_for_the_best_epoch_count(graph, tmp_path):
    model = GNNRecommender(**{**STEADY, "epochs": 6, "refit": True}).fit(graph)
    log = model.log_
    assert log.best_epoch >= 1 and log.refit_epochs == log.best_epoch
    assert log.train_seconds >= log.refit_seconds > 0
    # The refit is exactly a run without validation for that many epochs (same seed, same draws).
    plain = GNNRecommender(**{**STEADY, "epochs": log.best_epoch, "valid_fraction": 0.0}).fit(graph)
    np.testing.assert_allclose(model.user_embeddings_, plain.user_embeddings_, rtol=1e-4, atol=1e-5)
    # With a checkpoint directory the refit keeps its own state, and a rerun resumes both phases.
    ck = tmp_path / "ck"
    saved = GNNRecommender(**{**STEADY, "epochs": 6, "refit": True}, checkpoint_dir=ck).fit(graph)
    np.testing.assert_allclose(saved.user_embeddings_, model.user_embeddings_, rtol=1e-4, atol=1e-5)
    assert json.loads((ck / "refit" / "latest.json").read_text())["log"]["epochs_run"] == log.best_epoch
    resumed = GNNRecommender(**{**STEADY, "epochs": 6, "refit": True}, checkpoint_dir=ck).fit(graph)
    assert resumed.log_.refit_epochs == log.best_epoch
    np.testing.assert_allclose(resumed.user_embeddings_, model.user_embeddings_, rtol=1e-5, atol=1e-6)
    # Without a carved-out validation set there is nothing to refit.
    nothing = GNNRecommender(**{**STEADY, "epochs": 2, "refit": True, "valid_fraction": 0.0}).fit(graph)
    assert nothing.log_.refit_epochs == 0


def test_resuming_a_run_that_stopped_early_trains_no_further(graph, tmp_path):
    options = {**FAST, "epochs": 40, "patience": 1, "lr": 5e-2}
    first = GNNRecommender(**options, checkpoint_dir=tmp_path).fit(graph)
    assert first.log_.stopped_early and first.log_.epochs_run < 40
    again = GNNRecommender(**options, checkpoint_dir=tmp_path).fit(graph)
    assert again.log_.epochs_run == first.log_.epochs_run
    np.testing.assert_allclose(again.user_embeddings_, first.user_embeddings_, rtol=1e-5, atol=1e-6)


def test_bad_input(graph):
    with pytest.raises(InvalidParameterError, match="dim"):
        GNNRecommender(dim=0)
    with pytest.raises(InvalidParameterError, match="unknown GNN option"):
        GNNRecommender(dimension=8)
    with pytest.raises(NotFittedError):
        GNNRecommender().embed_new_notes(SideInfo(1))
    ids = {"user": IdMap(np.arange(3)), "note": IdMap(np.arange(2))}
    with pytest.raises(InvalidParameterError, match="no user–note engagements"):
        GNNRecommender(**FAST).fit(HeteroGraph(ids, {ENGAGES: sp.csr_matrix((3, 2), dtype=np.float32)}))
    with pytest.raises(InvalidParameterError, match="needs user–note engagements"):
        GNNRecommender(**FAST).fit(HeteroGraph(ids, {}))
    with pytest.raises(InvalidParameterError, match="side_info covers"):
        GNNRecommender(**FAST).fit(graph, SideInfo(3, authors=np.zeros(3, dtype=np.int64)))
    with pytest.raises(InvalidParameterError, match="cosine loss"):
        GNNRecommender(loss="ccl")
    with pytest.raises(InvalidParameterError, match="extra_negatives"):
        GNNRecommender(loss="ccl", similarity="cosine", extra_negatives=0)
    with pytest.raises(InvalidParameterError, match="cold_extra_negatives"):
        GNNRecommender(cold_extra_negatives=-1)
    # sampler and schedule parameters out of range
    with pytest.raises(InvalidParameterError, match="`fanout` must be an int >= 1; got 0"):
        GNNRecommender(fanout=0)
    with pytest.raises(InvalidParameterError, match="`refreshes` must be an int >= 1"):
        GNNRecommender(refreshes=0)
    with pytest.raises(InvalidParameterError, match="`user_positives` must be an int >= 1"):
        GNNRecommender(user_positives=-2)
    with pytest.raises(InvalidParameterError, match=r"`user_positives` \(64\) must be <= batch_size \(32\)"):
        GNNRecommender(user_positives=64, batch_size=32)
    with pytest.raises(InvalidParameterError, match="`layers` must be an int >= 1"):
        GNNRecommender(layers=0)
    with pytest.raises(InvalidParameterError, match="`patience`"):
        GNNRecommender(patience=0)


def test_time_budget_ends_training_and_keeps_the_best_weights(graph):
    model = GNNRecommender(**{**FAST, "epochs": 50, "time_budget": 1e-6}).fit(graph)
    log = model.log_
    assert log.out_of_time and not log.stopped_early and log.epochs_run == 1 and log.best_epoch == 1
    with pytest.raises(InvalidParameterError, match=r"`time_budget` must be a finite float > 0\.0"):
        GNNRecommender(time_budget=0)


def test_isolated_nodes_light_users_and_empty_relations_train():
    """Notes nobody engaged, users with one engagement, a tag relation without edges: all fine."""
    from graphrec.graph import AUTHORED

    r = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]], dtype=np.float32))
    ids = {"user": IdMap(np.arange(4)), "note": IdMap(np.arange(4)), "tag": IdMap(np.arange(2))}
    g = HeteroGraph(
        ids,
        {
            ENGAGES: r,
            HAS_TAG: sp.csr_matrix((4, 2), dtype=np.float32),
            AUTHORED: sp.csr_matrix((4, 4), dtype=np.float32),
        },
    )
    model = GNNRecommender(**{**FAST, "epochs": 2, "valid_fraction": 0.0}).fit(g, side_info_from_graph(g))
    assert np.isfinite(model.user_embeddings_).all() and np.isfinite(model.note_embeddings_).all()
    assert model.note_embeddings_.shape == (4, 16) and model.tag_embeddings_.shape == (2, 16)


def test_early_stopping_follows_the_trend():
    # A flat curve stops once patience has passed without a new best.
    flat = EarlyStopping(3)
    for s in [0.5, 0.4, 0.45, 0.41]:
        flat.update(s)
    assert flat.stop
    # A curve still rising through noise keeps going past plain patience ...
    rising = EarlyStopping(3)
    for s in [0.10, 0.20, 0.19, 0.195, 0.198]:
        rising.update(s)
    assert rising.since_best == 3 and rising.slope() > 0 and not rising.stop
    # ... until 3 x patience evaluations without a new best.
    for s in [0.199, 0.1995, 0.1996, 0.1997, 0.1998, 0.1999]:
        rising.update(s)
    assert rising.since_best == 9 and rising.stop
    # After a learning-rate drop, patience counts afresh from the best so far.
    flat.restart()
    assert not flat.stop and flat.best == 0.5
    for s in [0.3, 0.3, 0.3]:
        flat.update(s)
    assert flat.stop


def test_plateaus_drop_the_learning_rate_and_a_refit_replays_the_drops(graph):
    options = {**FAST, "epochs": 30, "patience": 1, "lr": 5e-2, "lr_decay": 0.5, "lr_decays": 2}
    model = GNNRecommender(**options, refit=True).fit(graph)
    log = model.log_
    # training stops only once both drops are spent
    assert len(log.lr_drops) == 2 and log.stopped_early
    lrs = [h["lr"] for h in log.history]
    for k, drop in enumerate(log.lr_drops):  # after each drop the rate is halved again
        assert lrs[drop] == pytest.approx(5e-2 * 0.5 ** (k + 1))
    dropped = [h["epoch"] for h in log.history if h.get("lr_dropped")]
    assert dropped == log.lr_drops
    assert log.refit_epochs == log.best_epoch
    # the refit trained at the rate the first run had reached by its best epoch
    replayed = sum(d < log.best_epoch for d in log.lr_drops)
    assert model.trainer_.optim.lr == pytest.approx(5e-2 * 0.5**replayed)


def test_each_data_parallel_shard_takes_a_whole_batch(graph, monkeypatch):
    """W shards take W x ``batch_size`` engagements per step (DDP's per-process batch), so an epoch
    has 1 / W of the steps, each computing W shard losses."""
    from graphrec.model.gnn import LocalShards
    from graphrec.model.gnn.trainer import Trainer

    rows: dict[int, list[int]] = {1: [], 2: []}
    losses = {1: 0, 2: 0}
    step, shard_loss = Trainer.step, Trainer._shard_loss

    def counting_step(self, row_user, *args):
        rows[self.collective.shards].append(int(row_user.size))
        return step(self, row_user, *args)

    def counting_loss(self, *args):
        losses[self.collective.shards] += 1
        return shard_loss(self, *args)

    monkeypatch.setattr(Trainer, "step", counting_step)
    monkeypatch.setattr(Trainer, "_shard_loss", counting_loss)
    cfg = {**FAST, "epochs": 1, "batch_size": 64, "user_positives": 8, "valid_fraction": 0.0}
    GNNRecommender(**cfg).fit(graph)
    GNNRecommender(**cfg).fit(graph, collective=LocalShards(2))
    assert set(rows[1][:-1]) == {8} and set(rows[2][:-1]) == {16}  # user rows per step
    assert sum(rows[1]) == sum(rows[2]) and len(rows[2]) == -(-len(rows[1]) // 2)
    assert losses[1] == len(rows[1]) and losses[2] >= 2 * len(rows[2]) - 1
