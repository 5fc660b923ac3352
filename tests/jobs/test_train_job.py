"""The training job: one process, data-parallel under torchrun and Spark's TorchDistributor, a
killed worker, and resuming. Equality is against LocalShards, the same shards in one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from graphrec.exceptions import ArtifactError, InvalidParameterError
from graphrec.graph import HeteroGraph, build_graph, side_info_from_graph
from graphrec.jobs.train import TrainJobConfig, run
from graphrec.model.gnn import GNNRecommender, LocalShards

GNN = {"dim": 8, "epochs": 3, "batch_size": 512, "extra_negatives": 64, "valid_fraction": 0.1}


@pytest.fixture(scope="module")
def graph_dir(small_tables, tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "graph"
    build_graph(*small_tables).save(path)
    return path


@pytest.fixture(scope="module")
def reference(graph_dir):
    """Two shards computed one after another in this process."""
    graph = HeteroGraph.load(graph_dir)
    return GNNRecommender(**GNN, show_progress=False).fit(graph, side_info_from_graph(graph), collective=LocalShards(2))


def _outputs(out: Path) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(out / "embeddings.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads((out / "training.json").read_text())


def _config(graph_dir: Path, out: Path, **kw) -> TrainJobConfig:
    return TrainJobConfig(graph=str(graph_dir), out=str(out), gnn=dict(GNN), threads=1, **kw)


def _assert_same_as(reference, out: Path) -> None:
    arrays, meta = _outputs(out)
    np.testing.assert_allclose(arrays["user"], reference.user_embeddings_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(arrays["note"], reference.note_embeddings_, rtol=1e-5, atol=1e-6)
    got = [h["loss"] for h in meta["log"]["history"]]
    np.testing.assert_allclose(got, [h["loss"] for h in reference.log_.history], rtol=1e-6)


def test_two_torchrun_workers_equal_two_local_shards_and_match_one_process(graph_dir, reference, tmp_path):
    report = run(_config(graph_dir, tmp_path / "out", workers=2, engine="torchrun"))
    assert report["workers"] == 2 and report["engine"] == "torchrun" and report["epochs_run"] == 3
    _assert_same_as(reference, tmp_path / "out")
    assert (tmp_path / "out" / "encoder.npz").is_file()
    # the partitioned export's working files are gone once the archive is written
    assert not (tmp_path / "out.checkpoints" / "export").exists()
    one = run(_config(graph_dir, tmp_path / "one"))
    assert one["workers"] == 1
    # Quality within noise of one process (its steps are one worker's batch, so it takes twice as many).
    assert abs(report["best_valid_recall"] - one["best_valid_recall"]) < 0.05


@pytest.mark.spark
def test_spark_torch_distributor_runs_the_same_workers(graph_dir, reference, tmp_path):
    report = run(_config(graph_dir, tmp_path / "out", workers=2, engine="spark"))
    assert report["workers"] == 2 and report["engine"] == "spark"
    _assert_same_as(reference, tmp_path / "out")


def _worker_pids(root_pid: int) -> dict[int, int]:
    """Rank -> pid of the torchrun workers under ``root_pid``."""
    import psutil

    ranks = {}
    for proc in psutil.Process(root_pid).children(recursive=True):
        try:
            if "graphrec.jobs.train" in proc.cmdline() and "RANK" in proc.environ():
                ranks[int(proc.environ()["RANK"])] = proc.pid
        except psutil.Error:
            continue
    return ranks


def test_a_killed_worker_fails_the_job_clearly_and_a_rerun_resumes(graph_dir, tmp_path):
    gnn = {**GNN, "epochs": 400, "patience": 400}
    cfg = replace(_config(graph_dir, tmp_path / "out", workers=2), gnn=gnn)
    (tmp_path / "train.yaml").write_text(json.dumps(asdict(cfg)))  # JSON is YAML
    cmd = [sys.executable, "-m", "graphrec.cli", "train", str(tmp_path / "train.yaml")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    latest = cfg.checkpoint_dir / "latest.json"
    deadline = time.monotonic() + 120
    while not latest.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert latest.exists(), "no epoch was checkpointed"
    pids = _worker_pids(proc.pid)
    assert sorted(pids) == [0, 1]
    os.kill(pids[1], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "training stopped: a torchrun worker failed" in err and "to resume" in err
    assert not (tmp_path / "out").exists()
    done = json.loads(latest.read_text())["log"]
    k = done["epochs_run"]
    assert 1 <= k < 400

    # The same job again, asked for two more epochs than were finished: it resumes there.
    report = run(replace(cfg, gnn={**gnn, "epochs": k + 2}))
    assert report["epochs_run"] == k + 2
    _, meta = _outputs(tmp_path / "out")
    history = meta["log"]["history"]
    assert len(history) == k + 2 and history[:k] == done["history"]

    # Another worker count cannot resume the shards' draws: a clear error, checkpoints kept.
    with pytest.raises(ArtifactError, match="data-parallel worker"):
        run(replace(cfg, workers=1, gnn={**gnn, "epochs": k + 3}))
    assert latest.exists()


def test_bad_train_configs(graph_dir, tmp_path):
    with pytest.raises(InvalidParameterError, match="workers"):
        _config(graph_dir, tmp_path / "o", workers=0)
    with pytest.raises(InvalidParameterError, match="engine"):
        _config(graph_dir, tmp_path / "o", workers=2, engine="mpi")
    with pytest.raises(InvalidParameterError, match="dim"):
        TrainJobConfig(graph=str(graph_dir), out=str(tmp_path / "o"), gnn={"dim": 0})
    with pytest.raises(InvalidParameterError, match="launcher"):
        from graphrec.jobs.train import worker

        env = {k: os.environ.pop(k) for k in ("RANK", "WORLD_SIZE") if k in os.environ}
        try:
            worker(asdict(_config(graph_dir, tmp_path / "o", workers=2)))
        finally:
            os.environ.update(env)
