"""Job: train the GNN on a saved graph, in one process or data-parallel on ``workers`` processes.

Input: a graph directory (:meth:`graphrec.graph.HeteroGraph.save`), optionally note text vectors
(``text``: an ``.npy`` of shape ``(n_notes, d)`` in the graph's note order). Output, written
atomically by one process: ``out/embeddings.npz`` (``user``, ``note``, ``tag``; computed in
node-row partitions, each worker its own, in bounded memory: :mod:`graphrec.model.gnn.export`,
and streamed into the archive),
``out/encoder.npz`` (the side-info encoder, when the graph has side-info) and
``out/training.json`` (the training log and how it ran).

Launchers (``engine``), one entry point for all: ``graphrec train CONFIG [--workers N]
[--engine torchrun|spark]`` or :func:`run`.

* ``workers == 1``: in this process.
* ``"torchrun"``: PyTorch's own launcher, ``python -m torch.distributed.run --standalone
  --nproc-per-node N -m graphrec.jobs.train SPEC.json``. Each worker joins a gloo process group
  (NCCL with ``device: cuda``), computes one shard of every step
  (:mod:`graphrec.model.gnn.collective`), and rank 0 writes checkpoints and the output. On a
  cluster, run the same module under torchrun's multi-node options.
* ``"spark"``: PySpark's ``TorchDistributor`` (``pyspark.ml.torch.distributor``) runs the same
  worker function in ``N`` processes of the active Spark session (``local[N]`` when there is
  none); on a cluster, set ``spark_local_mode: false`` to run them in executors.

A failed worker (killed, out of memory) fails the whole job: torchrun and TorchDistributor stop
the other workers, and :func:`run` raises :class:`TrainingFailedError` naming the checkpoint
directory. Rank 0 checkpoints after every epoch, so the same command resumes from the last
finished epoch (with the same number of workers: the shard count is part of what a run draws).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec._atomic import atomic_directory
from graphrec._validation import check_choice, check_int, from_mapping
from graphrec.exceptions import GraphRecError, InvalidParameterError, MissingDependencyError

__all__ = ["TrainJobConfig", "TrainingFailedError", "run", "worker"]

ENGINES = ("torchrun", "spark")


class TrainingFailedError(GraphRecError, RuntimeError):
    """A data-parallel training worker failed; the job stopped (rerun to resume)."""


@dataclass(frozen=True)
class TrainJobConfig:
    """Options of the training job (a YAML/TOML/JSON file of these keys)."""

    graph: str
    out: str
    gnn: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    workers: int = 1
    engine: str = "torchrun"
    #: torch threads per worker (default: the machine's cores divided among the workers).
    threads: int | None = None
    #: Checkpoint directory (default: ``out`` + ``.checkpoints``); a rerun resumes from it.
    checkpoints: str | None = None
    #: TorchDistributor's local mode (processes on the driver); false runs them in executors.
    spark_local_mode: bool = True

    def __post_init__(self) -> None:
        check_int("workers", self.workers, minimum=1)
        check_choice("engine", self.engine, ENGINES)
        if self.threads is not None:
            check_int("threads", self.threads, minimum=1)
        from graphrec.model.gnn import GNNConfig

        from_mapping(GNNConfig, self.gnn, source="gnn")  # fail before launching on a bad GNN option

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.checkpoints) if self.checkpoints else Path(self.out + ".checkpoints")

    def worker_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)


def worker(spec: dict[str, Any]) -> dict[str, Any] | None:
    """Train in this process; inside a process group of 2+ ranks, as one data-parallel rank.

    Returns the training report on the process that wrote the output (rank 0), else None.
    """
    import torch.distributed as dist

    from graphrec._threads import limit_native_threads
    from graphrec.graph import HeteroGraph, side_info_from_graph
    from graphrec.model.gnn import GNNConfig, GNNRecommender

    cfg = from_mapping(TrainJobConfig, spec, source="train job")
    # torch, BLAS, and the sampler's and RowAdam's numba kernels (this thread runs them)
    limit_native_threads(cfg.worker_threads())
    gnn = from_mapping(GNNConfig, cfg.gnn, source="gnn")
    joined = False
    if cfg.workers > 1 and not dist.is_initialized():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise InvalidParameterError(
                "workers > 1 needs a launcher that starts the ranks (engine torchrun or spark); use graphrec.jobs.train.run"
            )
        dist.init_process_group("nccl" if gnn.device == "cuda" else "gloo")
        joined = True
    try:
        world = dist.get_world_size() if dist.is_initialized() else 1
        if world != cfg.workers:
            raise InvalidParameterError(f"the launcher started {world} worker(s); the config asks for {cfg.workers}")
        rank = dist.get_rank() if dist.is_initialized() else 0
        graph = HeteroGraph.load(cfg.graph)
        text = _text(cfg, graph.num_nodes("note"))
        cfg.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        export = cfg.checkpoint_dir / "export"
        model = GNNRecommender(
            gnn, checkpoint_dir=cfg.checkpoint_dir, export_dir=export, show_progress=False if rank else None
        )
        model.fit(graph, side_info_from_graph(graph, text=text))
        if rank != 0:
            return None
        log = asdict(model.log_)
        report = {
            "workers": world,
            "engine": cfg.engine if cfg.workers > 1 else "local",
            "threads_per_worker": cfg.worker_threads(),
            "seconds": time.perf_counter() - t0,
            **{k: log[k] for k in ("epochs_run", "best_epoch", "best_valid_recall", "train_seconds")},
        }
        with atomic_directory(cfg.out, kind="graphrec.train") as tmp:
            arrays = {"user": model.user_embeddings_, "note": model.note_embeddings_}
            if model.tag_embeddings_ is not None:
                arrays["tag"] = model.tag_embeddings_
            np.savez(tmp / "embeddings.npz", **arrays)  # type: ignore[arg-type]
            if model.encodes_new_notes_:
                model.note_encoder().save(tmp / "encoder.npz")
            (tmp / "training.json").write_text(json.dumps({"report": report, "log": log}, indent=2))
        del model  # its embeddings are memory maps of the export's files
        shutil.rmtree(export, ignore_errors=True)
        return report
    finally:
        if joined:
            dist.destroy_process_group()


def _text(cfg: TrainJobConfig, n_notes: int) -> np.ndarray | None:
    if cfg.text is None:
        return None
    try:
        text = np.load(cfg.text, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(f"{cfg.text}: unreadable text vectors ({exc})") from None
    if text.ndim != 2 or text.shape[0] != n_notes:
        raise InvalidParameterError(f"{cfg.text}: text vectors have shape {text.shape}; expected ({n_notes}, d)")
    return text


def run(config: TrainJobConfig) -> dict[str, Any]:
    """Run the job with its launcher; returns rank 0's report (see the module docstring).

    With several workers the report is read back from ``out/training.json``, which only rank 0
    writes: TorchDistributor keeps the return value of whichever rank finishes last, and torchrun
    returns none.
    """
    spec = asdict(config)
    if config.workers == 1:
        report = worker(spec)
        assert report is not None
        return report
    written = Path(config.out) / "training.json"
    before = written.stat().st_mtime_ns if written.exists() else None
    if config.engine == "spark":
        _run_spark(config, spec)
    else:
        _run_torchrun(config, spec)
    if not written.exists() or written.stat().st_mtime_ns == before:
        raise _failed(config, f"the {config.engine} workers finished without writing {written}")
    return dict(json.loads(written.read_text())["report"])


def _failed(config: TrainJobConfig, how: str) -> TrainingFailedError:
    return TrainingFailedError(
        f"training stopped: {how}. Finished epochs are checkpointed in {config.checkpoint_dir}; "
        f"run the same job again (with {config.workers} workers) to resume"
    )


def _run_torchrun(config: TrainJobConfig, spec: dict[str, Any]) -> None:
    spec_path = config.checkpoint_dir / "train-job.json"
    config.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={config.workers}",
        "-m",
        "graphrec.jobs.train",
        str(spec_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(config.worker_threads())}
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise _failed(config, f"a torchrun worker failed (exit code {proc.returncode})")


def _run_spark(config: TrainJobConfig, spec: dict[str, Any]) -> None:
    try:
        from pyspark.ml.torch.distributor import TorchDistributor
        from pyspark.sql import SparkSession
    except ImportError:
        raise MissingDependencyError("engine 'spark' needs PySpark: pip install 'graphrec[spark]'") from None
    active = SparkSession.getActiveSession()
    session = active or SparkSession.builder.master(f"local[{config.workers}]").appName("graphrec-train").getOrCreate()
    try:
        distributor = TorchDistributor(
            num_processes=config.workers, local_mode=config.spark_local_mode, use_gpu=config.gnn.get("device") == "cuda"
        )
        distributor.run(worker, spec)
    except Exception as exc:  # Spark wraps a worker's failure in its own exception types
        raise _failed(config, f"a TorchDistributor worker failed ({type(exc).__name__}: {str(exc)[:300]})") from None
    finally:
        if active is None:
            session.stop()


def main(argv: list[str] | None = None) -> int:
    """Worker entry point for torchrun: ``python -m graphrec.jobs.train SPEC.json``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m graphrec.jobs.train SPEC.json (started by torchrun)", file=sys.stderr)
        return 2
    worker(json.loads(Path(args[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
