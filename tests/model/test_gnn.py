"""GNN: propagation against dense references, training, cold-note embedding, checkpoints, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.evaluate import cold_note_split, evaluate_scorer, random_split, relevance_matrix
from graphrec.evaluate.baselines import MostPopular
from graphrec.exceptions import ArtifactError, InvalidParameterError, NotFittedError
from graphrec.graph import ENGAGES, HAS_TAG, SIMILAR, HeteroGraph, build_graph
from graphrec.io import IdMap
from graphrec.model import (
    ColdValidation,
    GNNRecommender,
    NoteEncoder,
    SideInfo,
    propagation_matrix,
    side_info_for_notes,
    side_info_from_graph,
)
from graphrec.model.gnn import SymmetricLGConv, _torch_csr, recall_at_k, split_validation

FAST = {"dim": 16, "epochs": 8, "batch_size": 512, "lr": 1e-2, "show_progress": False}


def _dense_reference(graph: HeteroGraph, tag_weight: float, similar_weight: float) -> np.ndarray:
    """D^-1/2 W D^-1/2 built entry by entry from the relations (slow, obviously right)."""
    r = graph.relation(ENGAGES).toarray()
    nu, nn = r.shape
    t = graph.relation(HAS_TAG).toarray() * tag_weight
    nt = t.shape[1]
    w = np.zeros((nu + nn + nt, nu + nn + nt))
    for u in range(nu):
        for n in range(nn):
            w[u, nu + n] = w[nu + n, u] = r[u, n]
    for n in range(nn):
        for k in range(nt):
            w[nu + n, nu + nn + k] = w[nu + nn + k, nu + n] = t[n, k]
    if graph.has_relation(SIMILAR):
        s = graph.relation(SIMILAR).toarray() * similar_weight
        for a in range(nn):
            for b in range(nn):
                if a != b:
                    w[nu + a, nu + b] = max(w[nu + a, nu + b], s[a, b], s[b, a])
    d = w.sum(axis=1)
    out = np.zeros_like(w)
    for i, j in zip(*np.nonzero(w)):
        out[i, j] = w[i, j] / np.sqrt(d[i] * d[j])
    return out


@pytest.fixture(scope="module")
def graph(small_tables):
    interactions, notes = small_tables
    return build_graph(interactions, notes)


def test_propagation_matrix_matches_dense_reference(small_tables):
    interactions, notes = small_tables
    sub = interactions.loc[interactions["note_id"].isin(notes["note_id"].iloc[:40])]
    g = build_graph(sub, notes.iloc[:40])
    n = g.num_nodes("note")
    sim = sp.random(n, n, density=0.05, random_state=0, format="csr", dtype=np.float32)
    g = g.with_relation(SIMILAR, sim)
    a, off = propagation_matrix(g, tag_weight=0.5, similar_weight=2.0)
    assert off["note"] == g.num_nodes("user") and off["end"] == a.shape[0]
    np.testing.assert_allclose(a.toarray(), _dense_reference(g, 0.5, 2.0), rtol=1e-5, atol=1e-7)
    assert abs(a - a.T).max() < 1e-6


def test_symmetric_conv_forward_and_gradient_match_dense():
    rng = np.random.default_rng(0)
    m = sp.random(30, 30, density=0.2, random_state=1, format="csr", dtype=np.float32)
    m = sp.csr_matrix(m + m.T)
    dense = torch.tensor(m.toarray())
    x = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y = SymmetricLGConv()(x, _torch_csr(m, torch.device("cpu")))
    y_ref = dense @ x_ref
    torch.testing.assert_close(y, y_ref)
    g = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32)
    (y * g).sum().backward()
    (y_ref * g).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_split_validation_keeps_two_per_user_and_is_disjoint():
    r = sp.random(50, 80, density=0.2, random_state=2, format="csr", dtype=np.float32)
    r.data[:] = 1
    train, valid = split_validation(r, 0.3, seed=1)
    assert (train.multiply(valid)).nnz == 0
    assert (train + valid - r).nnz == 0 or abs(train + valid - r).max() == 0
    counts = np.diff(r.indptr)
    kept = np.diff(train.indptr)
    assert (kept[counts >= 3] >= 2).all() and (kept[counts < 3] == counts[counts < 3]).all()
    assert valid.nnz > 0
    assert (np.diff(valid.indptr)[counts >= 3] >= 1).all()


def test_recall_at_k_matches_ranking_metrics():
    rng = np.random.default_rng(3)
    u, n = rng.normal(size=(20, 4)).astype(np.float32), rng.normal(size=(30, 4)).astype(np.float32)
    train = sp.random(20, 30, density=0.2, random_state=3, format="csr", dtype=np.float32)
    test = sp.random(20, 30, density=0.1, random_state=4, format="csr", dtype=np.float32)
    test = test - test.multiply(train > 0)
    test.eliminate_zeros()
    fast = recall_at_k(torch.tensor(u), torch.tensor(n), train, sp.csr_matrix(test), k=5)
    ref = evaluate_scorer(lambda b: u[b] @ n.T, train, sp.csr_matrix(test), ks=(5,), show_progress=False)
    assert fast == pytest.approx(ref["recall@5"])


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
    gnn = evaluate_scorer(
        lambda b: model.user_embeddings_[b] @ model.note_embeddings_.T, train, test, show_progress=False
    )
    pop = evaluate_scorer(MostPopular().fit(train).score, train, test, show_progress=False)
    assert gnn["recall@20"] > 1.2 * pop["recall@20"], (gnn, pop)
    again = GNNRecommender(**FAST).fit(g, side)
    np.testing.assert_array_equal(again.user_embeddings_, model.user_embeddings_)
    assert model.tag_embeddings_ is not None and model.tag_embeddings_.shape == (g.num_nodes("tag"), 16)


@pytest.mark.parametrize(
    "options",
    [
        {"loss": "bpr"},
        {"loss": "ccl", "similarity": "cosine"},
        {"cl_weight": 0.1},
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
    t = model._tensors(side, torch.device("cpu"))
    with torch.no_grad():
        ref = model.model_.side(t["text"], t["tags"], t["authors"], side.n_notes).numpy()
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
    users = torch.from_numpy(model.user_embeddings_)
    new = torch.from_numpy(model.embed_new_notes(side))
    again = recall_at_k(users, new, sp.csr_matrix(test.shape, dtype=np.float32), test, k=20)
    assert again == pytest.approx(max(curve), abs=1e-6)
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


def test_ccl_matches_a_loop_reference():
    rng = np.random.default_rng(0)
    u, i, neg = (rng.normal(size=(n, 4)) for n in (3, 3, 5))
    model = GNNRecommender(loss="ccl", similarity="cosine", ccl_margin=0.2, ccl_negative_weight=3.0)

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    expected = np.mean(
        [1 - cos(u[r], i[r]) + 3.0 * np.mean([max(0.0, cos(u[r], n) - 0.2) for n in neg]) for r in range(3)]
    )
    unit = torch.nn.functional.normalize(torch.tensor(neg), dim=1)
    got = model._ccl(torch.tensor(u), torch.tensor(i), unit)
    assert float(got) == pytest.approx(expected, rel=1e-9)


def test_sampled_softmax_matches_a_loop_reference():
    rng = np.random.default_rng(0)
    u, i, table = (rng.normal(size=(n, 4)) for n in (3, 3, 6))
    it = np.array([0, 2, 0])  # rows 0 and 2 share a positive: not each other's negative
    log_pop = np.log(np.array([5.0, 1.0, 2.0, 1.0, 1.0, 3.0]))
    model = GNNRecommender(temperature=0.5, logq=True)
    draws = np.random.default_rng(7).integers(0, 6, size=4)  # what the sampler will draw
    loss, extra = model._softmax(
        torch.tensor(u),
        torch.tensor(i),
        torch.tensor(it),
        torch.tensor(table),
        4,
        torch.tensor(log_pop),
        np.random.default_rng(7),
    )
    assert extra is not None and extra.tolist() == draws.tolist()
    mean_lp = log_pop[it].mean()
    expected = []
    for r in range(3):
        logits = [u[r] @ i[c] / 0.5 - (log_pop[it[c]] - mean_lp) for c in range(3) if c == r or it[c] != it[r]]
        logits += [u[r] @ table[d] / 0.5 for d in draws]
        positive = u[r] @ i[r] / 0.5 - (log_pop[it[r]] - mean_lp)
        expected.append(np.log(np.sum(np.exp(logits))) - positive)
    assert float(loss) == pytest.approx(np.mean(expected), rel=1e-9)


def test_refit_retrains_on_everything_for_the_best_epoch_count(graph, tmp_path):
    model = GNNRecommender(**{**FAST, "epochs": 6, "refit": True}).fit(graph)
    log = model.log_
    assert log.best_epoch >= 1 and log.refit_epochs == log.best_epoch
    assert log.train_seconds >= log.refit_seconds > 0
    # The refit is exactly a run without validation for that many epochs (same seed, same draws).
    plain = GNNRecommender(**{**FAST, "epochs": log.best_epoch, "valid_fraction": 0.0}).fit(graph)
    np.testing.assert_array_equal(model.user_embeddings_, plain.user_embeddings_)
    # With a checkpoint directory the refit keeps its own state, and a rerun resumes both phases.
    ck = tmp_path / "ck"
    saved = GNNRecommender(**{**FAST, "epochs": 6, "refit": True}, checkpoint_dir=ck).fit(graph)
    np.testing.assert_array_equal(saved.user_embeddings_, model.user_embeddings_)
    assert json.loads((ck / "refit" / "latest.json").read_text())["log"]["epochs_run"] == log.best_epoch
    resumed = GNNRecommender(**{**FAST, "epochs": 6, "refit": True}, checkpoint_dir=ck).fit(graph)
    assert resumed.log_.refit_epochs == log.best_epoch
    np.testing.assert_allclose(resumed.user_embeddings_, model.user_embeddings_, rtol=1e-5, atol=1e-6)
    # Without a carved-out validation set there is nothing to refit.
    nothing = GNNRecommender(**{**FAST, "epochs": 2, "refit": True, "valid_fraction": 0.0}).fit(graph)
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
    bad = sp.csr_matrix(np.array([[1.0, np.nan], [0, 1], [1, 0]], dtype=np.float32))
    with pytest.raises(InvalidParameterError, match="NaN"):
        propagation_matrix(HeteroGraph(ids, {ENGAGES: sp.csr_matrix(np.ones((3, 2), np.float32))}), bad)
    with pytest.raises(InvalidParameterError, match="side_info covers"):
        GNNRecommender(**FAST).fit(graph, SideInfo(3, authors=np.zeros(3, dtype=np.int64)))
    with pytest.raises(InvalidParameterError, match="cosine loss"):
        GNNRecommender(loss="ccl")
    with pytest.raises(InvalidParameterError, match="extra_negatives"):
        GNNRecommender(loss="ccl", similarity="cosine", extra_negatives=0)
    with pytest.raises(InvalidParameterError, match="cold_extra_negatives"):
        GNNRecommender(cold_extra_negatives=-1)
