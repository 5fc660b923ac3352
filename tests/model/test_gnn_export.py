"""The partitioned export (graphrec.model.gnn.export) against the one-piece propagation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.exceptions import InvalidParameterError
from graphrec.graph import SIMILAR, build_graph
from graphrec.model.gnn import GNNRecommender, LocalShards, propagation_matrix
from graphrec.model.gnn.collective import Collective
from graphrec.model.gnn.export import export_propagation
from graphrec.model.gnn.optim import RowAdam
from graphrec.model.gnn.propagation import propagate, torch_csr


@pytest.fixture(scope="module")
def graph(small_tables):
    interactions, notes = small_tables
    g = build_graph(interactions, notes)
    n = g.num_nodes("note")
    return g.with_relation(SIMILAR, sp.random(n, n, density=0.05, random_state=1, format="csr", dtype=np.float32))


def _csr(a: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return a.indptr.astype(np.int64), a.indices.astype(np.int64), a.data


@pytest.mark.parametrize("shards", [1, 3])
@pytest.mark.parametrize("normalise", [False, True])
def test_export_equals_one_piece_propagation(graph, tmp_path, shards, normalise):
    a, off = propagation_matrix(graph, tag_weight=0.5, similar_weight=1.0)
    x = np.random.default_rng(0).normal(size=(a.shape[0], 8)).astype(np.float32)
    want = propagate(torch.from_numpy(x), torch_csr(a, torch.device("cpu")), 3)
    if normalise:
        want = torch.nn.functional.normalize(want, dim=1)
    comm = LocalShards(shards) if shards > 1 else Collective()
    # a 4 kB buffer: blocks of a few rows, so every block boundary and part boundary is crossed
    paths = export_propagation(
        x, _csr(a), 3, tmp_path / "out", offsets=off, collective=comm, normalise=normalise, buffer_mb=4 / 1024
    )
    got = np.vstack([np.load(paths[k]) for k in ("user", "note", "tag")])
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)
    assert np.load(paths["note"]).shape == (off["tag"] - off["note"], 8)
    # only the three outputs are left behind
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert left == [".graphrec-export", "note.npy", "tag.npy", "user.npy"]
    # a rerun replaces its own earlier export, never a directory of the user's
    export_propagation(x, _csr(a), 3, tmp_path / "out", offsets=off, collective=comm, normalise=normalise)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("user data")
    with pytest.raises(InvalidParameterError, match="not empty"):
        export_propagation(x, _csr(a), 3, tmp_path / "mine", offsets=off)
    assert (tmp_path / "mine" / "keep.txt").read_text() == "user data"


def test_export_reference_is_layer_by_layer_sum(tmp_path):
    """A 4-node path graph by hand: F = (x + A x + A^2 x) / 3."""
    w = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], np.float32))
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    dense = w.toarray()
    want = (x + dense @ x + dense @ dense @ x) / 3
    off = {"user": 0, "note": 2, "tag": 4, "end": 4}
    paths = export_propagation(x, _csr(w), 2, tmp_path, offsets=off, collective=LocalShards(2), buffer_mb=1e-5)
    np.testing.assert_allclose(np.vstack([np.load(paths["user"]), np.load(paths["note"])]), want, rtol=1e-6)
    assert np.load(paths["tag"]).shape == (0, 2)


def test_export_bad_arguments(tmp_path):
    w = sp.csr_matrix(np.eye(3, dtype=np.float32))
    off = {"user": 0, "note": 1, "tag": 3, "end": 3}
    with pytest.raises(InvalidParameterError, match="buffer_mb"):
        export_propagation(np.ones((3, 2), np.float32), _csr(w), 1, tmp_path, offsets=off, buffer_mb=0)
    with pytest.raises(InvalidParameterError, match="rows"):
        export_propagation(np.ones((4, 2), np.float32), _csr(w), 1, tmp_path, offsets=off)


def test_fit_with_export_dir_matches_in_memory_embeddings(graph, tmp_path):
    opts = {"dim": 8, "epochs": 2, "batch_size": 256, "similarity": "cosine", "show_progress": False}
    memory = GNNRecommender(**opts).fit(graph)
    files = GNNRecommender(export_dir=tmp_path / "emb", **opts).fit(graph)
    assert isinstance(files.note_embeddings_, np.memmap) and not files.note_embeddings_.flags.writeable
    for name in ("user", "note", "tag"):
        np.testing.assert_allclose(
            getattr(files, f"{name}_embeddings_"), getattr(memory, f"{name}_embeddings_"), rtol=1e-5, atol=1e-6
        )


def test_hub_rows_are_split_into_pieces(tmp_path):
    """A star: the hub's row has more nonzeros than a block may hold, so its product is summed
    from pieces; the result still equals the one-piece propagation."""
    n = 400
    w = sp.lil_matrix((n, n), dtype=np.float32)
    w[0, 1:] = 1.0
    w[1:, 0] = 1.0
    w[5, 6] = w[6, 5] = 2.0
    a = sp.csr_matrix(w)
    x = np.random.default_rng(1).normal(size=(n, 4)).astype(np.float32)
    want = propagate(torch.from_numpy(x), torch_csr(a, torch.device("cpu")), 2).numpy()
    off = {"user": 0, "note": 100, "tag": n, "end": n}
    # 6 kB: blocks of at most 54 nonzeros, so the hub's 399 come in 8 pieces
    paths = export_propagation(x, _csr(a), 2, tmp_path, offsets=off, collective=LocalShards(2), buffer_mb=6 / 1024)
    got = np.vstack([np.load(paths["user"]), np.load(paths["note"])])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _two_rank_worker(rank: int, port: int, tmp: str) -> None:
    """One rank of a 2-process gloo group: an export into a user's directory, then a table
    update in which rank 1 drew no rows, then one in which both did (one row drawn by both).
    Writes what it saw (or its traceback) to ``tmp/rank{rank}.txt``.

    A rank leaves through ``os._exit`` after a final barrier instead of
    ``destroy_process_group``: torch 2.2.1's gloo teardown (the DGL lane's torch) hangs in
    ``destroy_process_group`` in about one run in five here, reproduced with nothing but one
    ``all_reduce`` before it, and never with torch 2.13. The teardown is torch's, not what this
    test checks."""
    import os
    import traceback

    import torch.distributed as dist

    from graphrec.model.gnn.collective import ProcessGroup

    seen: list[str] = []
    code = 1
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
        w = sp.csr_matrix(np.eye(4, dtype=np.float32))
        off = {"user": 0, "note": 2, "tag": 4, "end": 4}
        comm = ProcessGroup()
        try:
            export_propagation(
                np.ones((4, 2), np.float32), _csr(w), 1, Path(tmp) / "mine", offsets=off, collective=comm
            )
        except InvalidParameterError as exc:
            seen.append(f"refused: {exc}")
        # rank 0 draws rows 3 and 6, rank 1 rows 5 and 3
        optim = RowAdam(torch.arange(32, dtype=torch.float32).reshape(8, 4), lr=0.1)
        rows = [torch.tensor([3, 6])] if rank == 0 else []
        grads = [torch.ones(2, 4, dtype=torch.bfloat16)] if rank == 0 else []
        loss = comm.update_table(optim, rows, grads, 1.0, torch.bfloat16)
        seen.append(f"loss {loss} table {optim.table.tolist()}")
        rows = [torch.tensor([3, 6])] if rank == 0 else [torch.tensor([5, 3])]
        grads = [torch.full((2, 4), 1.0 + rank, dtype=torch.bfloat16)]
        comm.update_table(optim, rows, grads, 0.5, torch.bfloat16)
        seen.append(f"table {optim.table.tolist()} m {optim.m.tolist()} v {optim.v.tolist()}")
        code = 0
    except Exception:
        seen.append(traceback.format_exc())
    (Path(tmp) / f"rank{rank}.txt").write_text("\n".join(seen))
    if code == 0:
        dist.barrier()  # neither rank closes its end while the other still exchanges
    os._exit(code)


def test_process_group_refuses_on_every_rank_and_carries_empty_ranks(tmp_path):
    """Under a real 2-rank group a refused export directory fails on both ranks (none waits at a
    barrier), and a rank without rows still takes part in the bfloat16 row exchange."""
    import multiprocessing
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("user data")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_two_rank_worker, args=(r, port, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    codes = [p.exitcode for p in procs]
    for p in procs:  # a hung rank must not keep pytest from exiting
        if p.exitcode is None:
            p.kill()
            p.join()
    said = {r: (tmp_path / f"rank{r}.txt").read_text() for r in range(2) if (tmp_path / f"rank{r}.txt").exists()}
    assert codes == [0, 0], f"exit codes {codes} (None: hung); the ranks wrote {said}"
    # LocalShards' reference: every rank's rows summed in rank order, one Adam step on all of them
    ref = RowAdam(torch.arange(32, dtype=torch.float32).reshape(8, 4), lr=0.1)
    ref.step_summed(torch.tensor([3, 6]), torch.ones(2, 4))
    first = f"loss 2.0 table {ref.table.tolist()}"
    ref.step_summed(torch.tensor([3, 6, 5, 3]), torch.tensor([1.0] * 8 + [2.0] * 8).reshape(4, 4))
    second = f"table {ref.table.tolist()} m {ref.m.tolist()} v {ref.v.tolist()}"
    for r in range(2):
        lines = said[r].splitlines()
        assert lines[0].startswith("refused:") and "not empty" in lines[0]
        assert lines[1] == first  # rank 1 drew no rows and still took part
        assert lines[2] == second  # equal tables and Adam moments on both ranks
    assert (tmp_path / "mine" / "keep.txt").read_text() == "user data"
