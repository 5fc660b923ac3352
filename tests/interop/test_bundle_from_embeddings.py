"""Embeddings trained elsewhere into a serving bundle (no DGL needed): fold-in, the bundle job and
DGL's clear error where DGL cannot load."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.exceptions import InvalidParameterError, MissingDependencyError
from graphrec.graph import ENGAGES, build_graph, recency_matrix
from graphrec.index import load_bundle
from graphrec.jobs.bundle import bundle_from_embeddings
from graphrec.recall import ChannelConfig, RecallEngine, fold_in


def _fold_in_reference(history: sp.csr_matrix, emb: np.ndarray, cfg: ChannelConfig) -> np.ndarray:
    """One user at a time, as the module docstring states the rule."""
    out = np.zeros((history.shape[0], emb.shape[1]))
    for u in range(history.shape[0]):
        row = history.getrow(u)
        pairs = sorted(zip(-row.data, row.indices, strict=True))[: cfg.recent_history]
        if not pairs:
            continue
        w = np.array([cfg.recency_decay**r for r in range(len(pairs))])
        out[u] = (w[:, None] * emb[[n for _, n in pairs]]).sum(axis=0) / w.sum()
    return out


@pytest.mark.parametrize("cfg", [ChannelConfig(), ChannelConfig(recent_history=3, recency_decay=0.5)])
def test_fold_in_matches_the_reference_and_the_request_time_query(small_tables, cfg):
    interactions, notes = small_tables
    g = build_graph(interactions, notes)
    hist = recency_matrix(interactions, g.id_map("user"), g.id_map("note"))
    hist.data = np.round(hist.data)  # ties in recency: broken by note index in both
    emb = np.random.default_rng(0).normal(size=(g.num_nodes("note"), 8)).astype(np.float32)
    got = fold_in(hist, emb, cfg)
    np.testing.assert_allclose(got, _fold_in_reference(hist, emb, cfg), rtol=1e-5, atol=1e-6)
    assert not np.abs(got[np.diff(hist.indptr) == 0]).any()


def test_fold_in_checks_shapes():
    with pytest.raises(InvalidParameterError, match="note_embeddings have shape"):
        fold_in(sp.csr_matrix((2, 3)), np.zeros((4, 2)))


def test_bundle_from_embeddings_serves_given_and_folded_in_users(small_tables, tmp_path):
    interactions, notes = small_tables
    g = build_graph(interactions, notes)
    rng = np.random.default_rng(1)
    ne = rng.normal(size=(g.num_nodes("note"), 8)).astype(np.float32)
    ue = rng.normal(size=(g.num_nodes("user"), 8)).astype(np.float32)

    given = load_bundle(bundle_from_embeddings(g, tmp_path / "a", note_embeddings=ne, user_embeddings=ue))
    np.testing.assert_array_equal(given.embeddings["user"], ue)
    np.testing.assert_array_equal(given.embeddings["note"], ne)
    assert given.note_tags is not None and "tag" in given.embeddings
    assert given.manifest["config"]["users"] == "given"
    # Without interactions the history is the graph's engagements, all equally recent.
    assert (given.history != (g.relation(ENGAGES) > 0).astype(np.float32)).nnz == 0

    out = bundle_from_embeddings(g, tmp_path / "b", note_embeddings=ne, interactions=interactions, swing_top_k=10)
    folded = load_bundle(out)
    hist = recency_matrix(interactions, g.id_map("user"), g.id_map("note"))
    np.testing.assert_allclose(folded.embeddings["user"], fold_in(hist, ne), rtol=1e-6)
    assert folded.similar is not None and folded.manifest["config"]["users"] == "fold_in"

    # Served: the embedding channel alone is exact inner product over the bundle's vectors.
    engine = RecallEngine(folded, ChannelConfig(weights={"embedding": 1.0}))
    user = g.id_map("user").ids[0]
    res = engine.recall([user], k=5)
    scores = ne @ folded.embeddings["user"][0]
    scores[hist.getrow(0).indices] = -np.inf
    np.testing.assert_array_equal(res.ids[0], g.id_map("note").ids[np.argsort(-scores, kind="stable")[:5]])


def test_bundle_from_embeddings_rejects_wrong_shapes(small_tables, tmp_path):
    interactions, notes = small_tables
    g = build_graph(interactions, notes)
    with pytest.raises(InvalidParameterError, match="note_embeddings have shape"):
        bundle_from_embeddings(g, tmp_path / "x", note_embeddings=np.zeros((3, 4)))
    with pytest.raises(InvalidParameterError, match="user embeddings have shape"):
        bundle_from_embeddings(
            g, tmp_path / "x", note_embeddings=np.zeros((g.num_nodes("note"), 4)), user_embeddings=np.zeros((2, 4))
        )
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(importlib.util.find_spec("dgl") is not None, reason="DGL is installed here")
def test_dgl_interop_names_the_extra_when_dgl_is_missing(small_tables):
    from graphrec.interop.dgl import to_dgl

    with pytest.raises(MissingDependencyError, match=r"graphrec\[dgl\].*make venv-dgl"):
        to_dgl(build_graph(*small_tables))


def test_importing_graphrec_and_its_dgl_module_does_not_import_dgl():
    code = "import sys, graphrec, graphrec.interop.dgl; print('dgl' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
