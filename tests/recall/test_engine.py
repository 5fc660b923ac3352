from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from graphrec.exceptions import ArtifactError, InvalidParameterError
from graphrec.graph import ENGAGES, build_graph
from graphrec.index import load_bundle, write_bundle
from graphrec.recall import ChannelConfig, RecallEngine, fold_in
from graphrec.recall.engine import _in_sorted


@pytest.fixture(scope="module")
def engine(bundle_dir):
    return RecallEngine.load(bundle_dir)


def test_recall_shapes_padding_and_seen_filter(engine):
    users = list(engine.known_users()[:5])
    res = engine.recall(users, k=15)
    assert res.ids.shape == res.scores.shape == res.channels.shape == (5, 15)
    assert not res.fallback.any()
    hist = engine.bundle.history
    for r, u in enumerate(users):
        row = engine.bundle.ids["user"].index([u])[0]
        seen = set(engine.bundle.ids["note"].ids[hist[row].indices].tolist())
        got = [x for x in res.ids[r].tolist() if x != engine.sentinel]
        assert not seen & set(got)
        assert len(set(got)) == len(got)  # deduplicated
        assert (np.diff(res.scores[r][np.isfinite(res.scores[r])]) <= 0).all()
    assert set(res.channels[res.channels != ""]) <= {"embedding", "swing", "tag", "popular"}
    with_seen = engine.recall(users[:1], k=15, exclude_seen=False)
    assert with_seen.ids.shape == (1, 15)


def test_batch_equals_single_and_threads(engine):
    users = [*engine.known_users()[:12].tolist(), "nobody"]
    batch = engine.recall(users, k=10)
    for i, u in enumerate(users):
        one = engine.recall([u], k=10)
        np.testing.assert_array_equal(one.ids[0], batch.ids[i])
        np.testing.assert_array_equal(one.channels[0], batch.channels[i])
        np.testing.assert_allclose(one.scores[0], batch.scores[i])
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda u: engine.recall([u], k=10), users))
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r.ids[0], batch.ids[i])
    assert threading.active_count() >= 1


def test_unknown_users_fall_back_to_popular(engine):
    res = engine.recall(["nobody", engine.known_users()[0]], k=5)
    assert res.fallback.tolist() == [True, False]
    assert set(res.channels[0]) == {"popular"}
    top = engine.bundle.ids["note"].ids[np.argsort(-engine.bundle.popularity, kind="stable")[:5]]
    assert set(res.ids[0].tolist()) == set(top.tolist())


def test_a_channel_without_weight_is_not_computed_and_fallback_rows_still_get_popular(engine, monkeypatch):
    users = [*engine.known_users()[:6].tolist(), "nobody"]
    only_embedding = RecallEngine(engine.bundle, ChannelConfig(weights={"embedding": 1.0}))
    expected = only_embedding.recall(users, k=10)

    def refuse(*_args, **_kwargs):
        raise AssertionError("a channel with weight 0 was computed")

    for channel in ("_swing", "_tag", "_popular", "_interest"):
        monkeypatch.setattr(only_embedding, channel, refuse)
    got = only_embedding.recall(users[:-1], k=10)  # known users only: no fallback row
    np.testing.assert_array_equal(got.ids, expected.ids[:-1])
    assert set(got.channels[got.channels != ""]) == {"embedding"}
    # The unknown user still gets the popularity fallback, though "popular" has weight 0.
    assert expected.fallback.tolist() == [False] * 6 + [True]
    assert set(expected.channels[-1]) == {"popular"}
    top = engine.bundle.ids["note"].ids[np.argsort(-engine.bundle.popularity, kind="stable")[:10]]
    assert set(expected.ids[-1].tolist()) == set(top.tolist())


def test_channels_and_quotas(engine):
    u = [engine.known_users()[3]]
    only_swing = engine.recall(u, k=10, channels=["swing"])
    assert set(only_swing.channels[0][only_swing.channels[0] != ""]) <= {"swing"}
    # A quota reserves slots for the channel's own best candidates, whatever the merged scores.
    quota_engine = RecallEngine(
        engine.bundle, ChannelConfig(weights={"embedding": 1.0, "tag": 0.01}, quotas={"tag": 0.5})
    )
    tag_only = quota_engine.recall(u, k=5, channels=["tag"])
    assert (tag_only.ids[0] != quota_engine.sentinel).all()
    res = quota_engine.recall(u, k=10)
    assert set(tag_only.ids[0].tolist()) <= set(res.ids[0].tolist())
    plain = RecallEngine(engine.bundle, ChannelConfig(weights={"embedding": 1.0, "tag": 0.01})).recall(u, k=10)
    assert not set(tag_only.ids[0].tolist()) <= set(plain.ids[0].tolist())
    with pytest.raises(InvalidParameterError, match="unknown channel"):
        engine.recall(u, k=10, channels=["magic"])
    with pytest.raises(InvalidParameterError, match="quotas"):
        ChannelConfig(quotas={"tag": 0.7, "swing": 0.6})


def test_similar_notes_and_audience(engine):
    notes = [*engine.bundle.ids["note"].ids[:3].tolist(), -12345]
    sim = engine.similar_notes(notes, k=5)
    assert sim.ids.shape == (4, 5)
    for r, n in enumerate(notes[:3]):
        assert n not in sim.ids[r].tolist()
    assert sim.fallback.tolist() == [False, False, False, True]
    assert (sim.ids[3] == -1).all()
    aud = engine.audience(notes[:2], k=7)
    assert aud.ids.shape == (2, 7) and set(aud.ids.ravel()) <= set(engine.known_users().tolist())


def test_bad_arguments(engine):
    with pytest.raises(InvalidParameterError, match=r"`k` must be an int >= 1; got 0"):
        engine.recall(["u1"], k=0)
    with pytest.raises(InvalidParameterError, match=r"`k` must be an int >= 1; got 2.5"):
        engine.recall(["u1"], k=2.5)
    with pytest.raises(InvalidParameterError, match="user_ids must be integers or strings"):
        engine.recall([1.5, 2.5], k=3)
    with pytest.raises(InvalidParameterError, match="must be a sequence of ids"):
        engine.recall(None, k=3)
    empty = engine.recall([], k=3)
    assert empty.ids.shape == (0, 3)


def test_bundle_verification(bundle_dir, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(bundle_dir, copy)
    load_bundle(copy)
    emb = copy / "embeddings.npz"
    emb.write_bytes(emb.read_bytes()[:100])
    with pytest.raises(ArtifactError, match=r"embeddings.npz: checksum mismatch"):
        load_bundle(copy)
    shutil.rmtree(copy)
    shutil.copytree(bundle_dir, copy)
    (copy / "note.faiss").unlink()
    with pytest.raises(ArtifactError, match=r"note.faiss: missing"):
        RecallEngine.load(copy)
    shutil.rmtree(copy)
    shutil.copytree(bundle_dir, copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["counts"]["user"] += 1
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match=r"user has .* ids; manifest says"):
        load_bundle(copy)
    with pytest.raises(ArtifactError, match="not a graphrec bundle"):
        load_bundle(tmp_path / "nothing")


def test_write_bundle_validates(small_tables, tmp_path):
    interactions, notes = small_tables
    g = build_graph(interactions, notes)
    ids = {"user": g.id_map("user"), "note": g.id_map("note")}
    good = {"user": np.zeros((len(ids["user"]), 4)), "note": np.ones((len(ids["note"]), 4))}
    hist = g.relation(ENGAGES)
    with pytest.raises(InvalidParameterError, match="note embeddings have shape"):
        write_bundle(tmp_path / "x", ids=ids, embeddings={**good, "note": np.ones((3, 4))}, history=hist)
    with pytest.raises(InvalidParameterError, match="NaN or inf"):
        write_bundle(
            tmp_path / "x", ids=ids, embeddings={**good, "user": np.full((len(ids["user"]), 4), np.nan)}, history=hist
        )
    with pytest.raises(InvalidParameterError, match="same dimension"):
        write_bundle(tmp_path / "x", ids=ids, embeddings={**good, "note": np.ones((len(ids["note"]), 5))}, history=hist)
    assert not (tmp_path / "x").exists()


def _fold_in_reference(engine, u_row, given_rows):
    """Slow, obvious fold-in: the loop the module docstring describes."""
    emb = engine.bundle.embeddings
    decay = engine.config.recency_decay
    num, den = np.zeros(emb["note"].shape[1]), 0.0
    for rank, n in enumerate(reversed(given_rows)):
        num += decay**rank * emb["note"][n].astype(np.float64)
        den += decay**rank
    h = num / den
    if u_row is None:
        return h
    u = emb["user"][u_row].astype(np.float64)
    return u / np.linalg.norm(u) + engine.config.history_weight * h / np.linalg.norm(h)


def _reference_top(engine, q, exclude, k):
    scores = engine.bundle.embeddings["note"].astype(np.float64) @ q
    scores[list(exclude)] = -np.inf
    order = np.lexsort((np.arange(scores.size), -scores))[:k]
    return engine.bundle.ids["note"].ids[order].tolist()


def test_request_time_history_for_unknown_and_known_users(engine):
    notes = engine.bundle.ids["note"]
    given = [notes.ids[i] for i in (3, 17, 42)]
    res = engine.recall(["a-new-user"], k=10, history=[[*given, "no-such-note"]], channels=("embedding",))
    assert not res.fallback[0] and res.unknown_history.tolist() == [1]
    q = _fold_in_reference(engine, None, [3, 17, 42])
    assert res.ids[0].tolist() == _reference_top(engine, q, {3, 17, 42}, 10)
    # A known user: trained vector plus the fold-in of the clicks since the build.
    user = engine.known_users()[4]
    row = engine.bundle.ids["user"].index([user])[0]
    seen = set(engine.bundle.history[row].indices.tolist()) | {3, 17, 42}
    res = engine.recall([user], k=10, history=[given], channels=("embedding",))
    assert res.ids[0].tolist() == _reference_top(engine, _fold_in_reference(engine, row, [3, 17, 42]), seen, 10)
    # All channels: given notes are never recalled; no history = the bundle-only result.
    full = engine.recall([user, "a-new-user"], k=20, history=[given, given])
    assert not set(given) & set(full.ids[0].tolist()) and not set(given) & set(full.ids[1].tolist())
    for channel in ("swing", "tag"):  # the history feeds the graph channels of an unknown user too
        only = engine.recall(["a-new-user"], k=10, history=[given], channels=(channel,))
        assert set(only.channels[0].tolist()) == {channel} and not set(given) & set(only.ids[0].tolist())
    plain = engine.recall([user], k=20)
    for h in (None, [None], [[]]):
        np.testing.assert_array_equal(engine.recall([user], k=20, history=h).ids, plain.ids)
    # Batch equals single.
    single = engine.recall(["a-new-user"], k=20, history=[given])
    np.testing.assert_array_equal(single.ids[0], full.ids[1])


def test_request_time_history_bad_input(engine):
    with pytest.raises(InvalidParameterError, match="one sequence of note ids per user"):
        engine.recall(["u1", "u2"], k=5, history=[["n1"]])
    with pytest.raises(InvalidParameterError, match=r"history\[0\] must be integers or strings"):
        engine.recall(["u1"], k=5, history=[[1.5]])
    unknown_only = engine.recall(["nobody"], k=5, history=[["nothing-known"]])
    assert unknown_only.fallback[0] and unknown_only.unknown_history.tolist() == [1]


def _merge_reference(config, proposals, k):
    """The merge written the obvious way (dicts, one candidate at a time)."""
    total, best = {}, {}
    for c, (idx, _vals) in proposals.items():
        w = float(config.weights.get(c, 0.0))
        if idx.size == 0 or w == 0.0:
            continue
        for rank, i in enumerate(idx.tolist()):
            v = w * (1.0 - rank / idx.size)
            total[i] = total.get(i, 0.0) + v
            if v > best.get(i, (-1.0, ""))[0]:
                best[i] = (v, c)
    ranked = sorted(total, key=lambda i: (-total[i], i))
    chosen = []
    for c, share in config.quotas.items():
        quota = int(np.ceil(share * k))
        for i in proposals.get(c, (np.empty(0, dtype=np.int64), None))[0].tolist():
            if quota and i not in chosen:
                chosen.append(i)
                quota -= 1
    chosen += [i for i in ranked if i not in chosen]
    out = sorted(chosen[:k], key=lambda i: (-total[i], i))
    return out, [total[i] for i in out], [best[i][1] for i in out]


@pytest.mark.parametrize("quotas", [{}, {"swing": 0.3}, {"tag": 0.2, "popular": 0.1}])
def test_merge_matches_a_dict_reference(bundle_dir, quotas):
    engine = RecallEngine.load(bundle_dir, ChannelConfig(quotas=quotas))
    rng = np.random.default_rng(len(quotas))
    for _ in range(30):
        proposals = {
            c: (rng.choice(60, size=int(rng.integers(0, 40)), replace=False).astype(np.int64), None)
            for c in ("embedding", "swing", "tag", "popular")
        }
        k = int(rng.integers(1, 50))
        # all channels, and each channel alone (the merge's one-channel path)
        for props in (proposals, *({c: p} for c, p in proposals.items())):
            got = engine._merge(props, k)
            ids, scores, chans = _merge_reference(engine.config, props, k)
            assert got[0].tolist() == ids and got[2].tolist() == chans
            np.testing.assert_allclose(got[1], scores, rtol=0, atol=1e-12)


def test_exploration_channel_is_seeded_protected_and_outside_the_usual_neighbourhood(engine):
    users = list(engine.known_users()[:4])
    weights = {"embedding": 1.0, "swing": 0.7, "tag": 0.3, "popular": 0.1, "explore": 0.2}
    cfg = ChannelConfig(weights=weights, quotas={"explore": 0.2}, explore_sigma=1.0, explore_seed=7)
    explorer = RecallEngine(engine.bundle, cfg)
    res = explorer.recall(users, k=10)
    explored = explorer.recall(users, k=10, channels=["explore"])  # the channel's own ranking
    usual = RecallEngine(engine.bundle, ChannelConfig(weights={"embedding": 1.0})).recall(users, k=30)
    for r in range(len(users)):
        assert set(explored.channels[r].tolist()) == {"explore"}
        assert set(explored.ids[r, :2].tolist()) <= set(res.ids[r].tolist())  # the quota: ceil(0.2 * 10)
        assert not set(explored.ids[r].tolist()) & set(usual.ids[r].tolist())  # outside the usual top 3k
    again = explorer.recall(users, k=10)
    np.testing.assert_array_equal(again.ids, res.ids)  # seeded by (explore_seed, user id)
    other = RecallEngine(engine.bundle, ChannelConfig(**{**cfg.__dict__, "explore_seed": 8})).recall(users, k=10)
    assert (other.ids != res.ids).any()
    # Off by default: no weight, no channel.
    assert "explore" not in set(engine.recall(users, k=10).channels.ravel().tolist())


@pytest.mark.parametrize("method", ["dpp", "ssd"])
def test_diversity_rerank_raises_intra_list_distance(engine, method):
    from graphrec.evaluate import intra_list_distances

    users = list(engine.known_users()[:20])
    notes = engine.bundle.ids["note"]
    emb = engine.bundle.embeddings["note"]

    def ilad(res):
        top = np.array([[notes.index([i])[0] for i in row] for row in res.ids.tolist()])
        return intra_list_distances(top, emb)[0]

    plain = engine.recall(users, k=10)
    same = RecallEngine(engine.bundle, ChannelConfig(diversity=method, diversity_weight=0.0)).recall(users, k=10)
    np.testing.assert_array_equal(same.ids, plain.ids)  # weight 0: unchanged
    diverse = RecallEngine(engine.bundle, ChannelConfig(diversity=method, diversity_weight=2.0)).recall(users, k=10)
    assert ilad(diverse) > ilad(plain)
    for r in range(len(users)):  # a re-ranking of the merged pool: still unseen, deduplicated, by score
        assert len(set(diverse.ids[r].tolist())) == 10
        assert (np.diff(diverse.scores[r]) <= 0).all()
    with pytest.raises(InvalidParameterError, match="diversity"):
        ChannelConfig(diversity="mmr")


def test_popularity_penalty_moves_the_embedding_channel_to_less_popular_notes(engine):
    users = list(engine.known_users()[:30])
    pop = engine.bundle.popularity.astype(np.float64)
    notes = engine.bundle.ids["note"]

    def mean_log_pop(penalty):
        cfg = ChannelConfig(weights={"embedding": 1.0}, popularity_penalty=penalty)
        res = RecallEngine(engine.bundle, cfg).recall(users, k=10)
        return float(np.log1p(pop[notes.index(res.ids.ravel())]).mean()), res

    base, plain = mean_log_pop(0.0)
    np.testing.assert_array_equal(
        plain.ids, RecallEngine(engine.bundle, ChannelConfig(weights={"embedding": 1.0})).recall(users, k=10).ids
    )
    assert mean_log_pop(0.3)[0] < base and mean_log_pop(1.0)[0] < mean_log_pop(0.3)[0]
    with pytest.raises(InvalidParameterError, match="popularity_penalty"):
        ChannelConfig(popularity_penalty=-0.1)


def test_niche_scaling_gives_each_user_the_penalty_of_their_history(engine):
    """Reference: p_u = p * niche_u / mean niche, computed here in plain numpy from the bundle's
    history; each user's row equals what a uniform penalty of p_u gives that user."""
    b = engine.bundle
    hist = b.history.tocsr()
    log_pop = np.log1p(b.popularity.astype(np.float64))
    scaled = log_pop / log_pop.max()
    niche = {u: 1.0 - scaled[hist[u].indices].mean() for u in range(hist.shape[0]) if hist[u].nnz}
    mean_niche = float(np.mean(list(niche.values())))
    p, k = 0.5, 10
    users = list(engine.known_users()[:12])
    cfg = ChannelConfig(weights={"embedding": 1.0}, popularity_penalty=p, popularity_penalty_scaling="niche")
    res = RecallEngine(b, cfg).recall(users, k=k)
    penalties = []
    for r, user in enumerate(users):
        p_u = p * niche[int(b.ids["user"].index([user])[0])] / mean_niche
        penalties.append(p_u)
        one = RecallEngine(b, ChannelConfig(weights={"embedding": 1.0}, popularity_penalty=p_u)).recall([user], k=k)
        assert res.ids[r].tolist() == one.ids[0].tolist()
    assert max(penalties) > 1.05 * p and min(penalties) < 0.95 * p  # the users differ on this bundle
    uniform = RecallEngine(b, ChannelConfig(weights={"embedding": 1.0}, popularity_penalty=p)).recall(users, k=k)
    assert (uniform.ids != res.ids).any()
    # A user the bundle does not know is scaled by the notes given at request time.
    given = [b.ids["note"].ids[int(np.argmax(b.popularity))]]
    head = p * (1.0 - scaled[int(np.argmax(b.popularity))]) / mean_niche
    expect = RecallEngine(b, ChannelConfig(weights={"embedding": 1.0}, popularity_penalty=head))
    assert (
        RecallEngine(b, cfg).recall(["nobody"], k=k, history=[given]).ids.tolist()
        == expect.recall(["nobody"], k=k, history=[given]).ids.tolist()
    )
    # Uniform is the default; p = 0 stays off whatever the scaling.
    plain = RecallEngine(b, ChannelConfig(weights={"embedding": 1.0})).recall(users, k=k)
    off = ChannelConfig(weights={"embedding": 1.0}, popularity_penalty_scaling="niche")
    np.testing.assert_array_equal(RecallEngine(b, off).recall(users, k=k).ids, plain.ids)
    with pytest.raises(InvalidParameterError, match="popularity_penalty_scaling"):
        ChannelConfig(popularity_penalty_scaling="per-user")


def _exposure_reference(engine, depth, users=None):
    """Slow, obvious exposure count: each user's top ``depth`` notes by inner product
    (``_reference_top``), seen notes excluded, counted per note."""
    b = engine.bundle
    hist = b.history.tocsr()
    emb_u = b.embeddings["user"].astype(np.float64)
    counts = np.zeros(len(b.ids["note"]))
    for row in range(emb_u.shape[0]) if users is None else users:
        counts[b.ids["note"].index(_reference_top(engine, emb_u[row], hist[row].indices, depth))] += 1
    return counts


def _fetched_pool(b, row, cfg, k):
    """The embedding channel's re-ranked fetch for user row ``row``, exactly: the best
    ``2 * candidates_factor * k`` notes by inner product plus room for the longest seen list,
    less the user's seen notes; returned with every note's inner product."""
    hist = b.history.tocsr()
    scores = b.embeddings["note"].astype(np.float64) @ b.embeddings["user"][row].astype(np.float64)
    room = min(int(np.diff(hist.indptr).max()), cfg.seen_cap)
    pool = np.lexsort((np.arange(scores.size), -scores))[: 2 * cfg.candidates_factor * k + room]
    return pool[~np.isin(pool, hist[row].indices)], scores


def test_exposure_basis_penalises_the_notes_the_unpenalised_channel_shows_most(engine):
    """Reference: the exposure count of every user's unpenalised top ``exposure_depth``, then the
    channel's pool (as in the norm-penalty test) ranked by min-max(u.n) - p * log1p(count) /
    log1p(max count), all in plain numpy."""
    b = engine.bundle
    depth, p, k = 8, 0.5, 5
    cfg = ChannelConfig(
        weights={"embedding": 1.0}, popularity_penalty=p, popularity_basis="exposure", exposure_depth=depth
    )
    eng = RecallEngine(b, cfg)
    counts = _exposure_reference(engine, depth)
    np.testing.assert_array_equal(eng.predicted_exposure(), counts)
    assert counts.sum() == depth * len(b.ids["user"])
    basis = np.log1p(counts) / np.log1p(counts.max())
    users = list(engine.known_users()[:20])
    res = eng.recall(users, k=k)
    for r, u in enumerate(users):
        pool, scores = _fetched_pool(b, b.ids["user"].index([u])[0], cfg, k)
        s = scores[pool]
        adjusted = (s - s.min()) / (s.max() - s.min()) - p * basis[pool]
        ranked = pool[np.lexsort((pool, -adjusted))][:k]
        assert res.ids[r].tolist() == b.ids["note"].ids[ranked].tolist()
    engagements = RecallEngine(b, ChannelConfig(weights={"embedding": 1.0}, popularity_penalty=p)).recall(users, k=k)
    assert (engagements.ids != res.ids).any()  # the two bases differ on this bundle


def test_exposure_sample_is_seeded_and_carried_over_by_note_id(engine, monkeypatch):
    b = engine.bundle
    cfg = ChannelConfig(
        weights={"embedding": 1.0},
        popularity_penalty=0.5,
        popularity_basis="exposure",
        exposure_depth=6,
        exposure_sample=7,
    )
    counts = RecallEngine(b, cfg).predicted_exposure()
    chosen = np.sort(np.random.default_rng(0).choice(len(b.ids["user"]), 7, replace=False))
    np.testing.assert_array_equal(counts, _exposure_reference(engine, 6, chosen))
    # Live updates keep the count (by note id) instead of counting again; removed notes drop out.
    eng = RecallEngine(b, cfg)
    eng.predicted_exposure()
    gone = b.ids["note"].ids[int(np.argmax(counts))]
    monkeypatch.setattr(RecallEngine, "_count_exposure", lambda self: pytest.fail("exposure counted again"))
    after = eng.remove_notes([gone])
    keep = b.ids["note"].ids != gone
    np.testing.assert_array_equal(after.predicted_exposure(), counts[keep])
    after.recall(list(engine.known_users()[:3]), k=5)
    for bad in (
        {"popularity_basis": "clicks"},
        {"exposure_depth": 0},
        {"exposure_depth": 20_000},
        {"exposure_sample": 0},
    ):
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            ChannelConfig(**bad)


def test_warm_builds_what_the_levers_need_once_and_nothing_for_the_plain_engine(engine, monkeypatch):
    b = engine.bundle
    users = list(engine.known_users()[:4])
    levers = ChannelConfig(
        weights={"embedding": 1.0, "interest": 0.5},
        popularity_penalty=0.3,
        popularity_basis="exposure",
        exposure_depth=6,
        n_interests=4,
    )
    cold = RecallEngine(b, levers).recall(users, k=5)
    warm = RecallEngine(b, levers).warm()
    # Warmed: a request neither clusters nor counts, and gets what a cold engine computes on first use.
    monkeypatch.setattr(RecallEngine, "_count_exposure", lambda self: pytest.fail("exposure counted on a request"))
    monkeypatch.setattr(
        "graphrec.recall.engine.NoteInterests", lambda *a, **k: pytest.fail("interests clustered on a request")
    )
    res = warm.recall(users, k=5)
    np.testing.assert_array_equal(res.ids, cold.ids)
    np.testing.assert_array_equal(res.scores, cold.scores)
    # Live events keep the notes: the derived engine reuses both (removing a note re-clusters).
    events = {
        "user_id": users[:1],
        "note_id": [b.ids["note"].ids[0]],
        "event_type": "click",
        "timestamp": 2_000_000_000,
    }
    warm.update(pd.DataFrame(events)).warm().recall(users, k=5)
    # The plain engine has nothing to warm (both patches would fail the test).
    plain = RecallEngine(b).warm()
    assert plain.recall(users, k=5).ids.shape == (4, 5)


def test_norm_penalty_reranks_the_fetched_pool_by_u_dot_n_over_norm_power(engine):
    """Reference: the exact inner-product pool the channel fetches (2 * candidates_factor * k
    notes plus room for the longest seen list, less the user's seen notes), ranked by
    u.n / |n| ** b in plain numpy."""
    users = list(engine.known_users()[:20])
    b = engine.bundle
    norms = np.linalg.norm(b.embeddings["note"].astype(np.float64), axis=1)
    k = 5
    for beta in (0.5, 1.0):
        cfg = ChannelConfig(weights={"embedding": 1.0}, norm_penalty=beta)
        res = RecallEngine(b, cfg).recall(users, k=k)
        for r, u in enumerate(users):
            pool, scores = _fetched_pool(b, b.ids["user"].index([u])[0], cfg, k)
            ranked = pool[np.lexsort((pool, -(scores[pool] / norms[pool] ** beta)))][:k]
            assert res.ids[r].tolist() == b.ids["note"].ids[ranked].tolist()
    plain = RecallEngine(b, ChannelConfig(weights={"embedding": 1.0})).recall(users, k=k)
    cosine = RecallEngine(b, ChannelConfig(weights={"embedding": 1.0}, norm_penalty=1.0)).recall(users, k=k)
    assert (plain.ids != cosine.ids).any()  # the lever moves the channel on this bundle
    for bad in (-0.1, 1.5):
        with pytest.raises(InvalidParameterError, match="norm_penalty"):
            ChannelConfig(norm_penalty=bad)


def test_fold_in_equals_an_unknown_users_query(engine):
    """A user's folded-in vector is the query an unknown user with the same notes gets."""
    cfg = engine.config
    hist = engine.history_csr
    u = int(np.argmax(np.diff(hist.indptr)))
    row = hist.getrow(u)
    oldest_first = row.indices[np.lexsort((-row.indices, row.data))]  # reverse of most-recent-first
    want = engine._query_vector(-1, oldest_first)
    got = fold_in(hist, engine.bundle.embeddings["note"], cfg)[u]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_seen_membership_by_binary_search_matches_numpy_isin():
    rng = np.random.default_rng(0)
    for n_seen in (0, 1, 5, 300):
        seen = np.unique(rng.integers(0, 400, size=n_seen))
        values = np.r_[rng.integers(-1, 420, size=200), seen[:3], [0, 399, 419]]
        np.testing.assert_array_equal(_in_sorted(values, seen), np.isin(values, seen))
