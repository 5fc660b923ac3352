"""Benchmark: data-parallel GNN training, 2 workers x 1 thread against 1 worker x 1 thread.

The synthetic log of ``benchmarks/gnn_scaling.py`` (default 4M engagements: ``E / 25`` users,
``E / 50`` notes, tags, no text) is built once and saved; then the training job
(:mod:`graphrec.jobs.train`) trains the default :class:`GNNConfig` for ``--epochs`` epochs (no
early stopping: ``patience`` is set above the epoch count) with

* 1 worker x 1 thread (the peer, one process, the plain trainer), and
* ``--workers`` workers x 1 thread under torchrun (gloo): each worker takes ``batch_size``
  engagements per step (DDP's per-process batch, so an epoch has ``1 / workers`` of the steps),
  table gradients all-gathered, refreshes split by rows (:mod:`graphrec.model.gnn.collective`);
* with ``--peer-batch`` (on by default), also 1 worker x 1 thread at the data-parallel job's
  *global* batch (``workers x batch_size``): the same optimisation problem as the data-parallel
  job, so its recall is the one "equal recall" compares with, and its seconds the second
  speed-up figure. The default peer takes the per-worker batch and so ``workers`` times the steps.

Both run the same epochs on the same data, so the figure is the ratio of wall-clock seconds at
the same amount of training (``--repeats R`` alternates the jobs R times and takes each one's
fastest: this machine's speed drifts by up to 20% between runs), with the validation recall@20
of both to show the quality is the same (target: speed-up >= 1.7x with recall@20 within 1%).
Seconds per epoch are taken from the training log (epoch 2 onwards; the first also loads
compiled kernels).

The machine's own ceiling is measured in the same run (``--ceiling``, on by default):
``--workers`` *independent* 1-worker x 1-thread jobs trained at the same time, each in its own
process, with no communication at all. If the cores slowed nothing down, each would take as long
as the job alone; the attainable speed-up is ``workers x (s / epoch alone) / (mean s / epoch
together)``. A data-parallel worker does ``1 / workers`` of the solo job's compute under the same
contention, so no data-parallel scheme beats this figure on the machine; the distance between it
and the measured speed-up is what the collectives and sharding cost.

Usage::

    python benchmarks/distributed_training.py --out benchmarks/results/distributed_training.json \\
        [--engagements 4000000] [--epochs 3] [--workers 2] [--engine torchrun] [--repeats 1] [--no-ceiling] \\
        [--no-peer-batch]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import scaling_graph, write_json

from graphrec._table import format_table
from graphrec.model.gnn import GNNConfig


def _graph(n_engagements: int, path: Path) -> dict[str, int]:
    graph = scaling_graph(n_engagements)
    graph.save(path)
    return {
        "users": graph.num_nodes("user"),
        "notes": graph.num_nodes("note"),
        "pairs": graph.num_edges(("user", "engages", "note")),
    }


def _train(graph: Path, out: Path, workers: int, engine: str, epochs: int, batch_size: int = 0) -> dict[str, Any]:
    """One run of the training job; ``batch_size`` 0 keeps the ``GNNConfig`` default."""
    from graphrec.jobs.train import TrainJobConfig, run

    gnn: dict[str, Any] = {"epochs": epochs, "patience": epochs + 1}
    if batch_size:
        gnn["batch_size"] = batch_size
    cfg = TrainJobConfig(
        graph=str(graph),
        out=str(out),
        gnn=gnn,
        workers=workers,
        engine=engine,
        threads=1,
    )
    t0 = time.perf_counter()
    report = run(cfg)
    wall = time.perf_counter() - t0
    log = json.loads((out / "training.json").read_text())["log"]
    seconds = np.diff([0.0] + [h["seconds"] for h in log["history"]])
    return {
        **report,
        "wall_seconds": wall,
        "seconds_per_epoch": float(np.mean(seconds[1:])) if seconds.size > 1 else float(seconds[0]),
        "valid_recall@20": [h.get("valid_recall@20") for h in log["history"]],
    }


def _row(label: str, per_epoch: float, wall: float, recall: float) -> list[str]:
    """One line of the printed table."""
    return [label, f"{per_epoch:.1f}", f"{wall:.1f}", f"{recall:.4f}"]


def _together(graph: Path, tmp: Path, workers: int, engine: str, epochs: int) -> list[dict[str, Any]]:
    """``workers`` independent 1-worker x 1-thread jobs at the same time (separate processes)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        jobs = [pool.submit(_train, graph, tmp / f"together-{i}", 1, engine, epochs) for i in range(workers)]
        return [j.result() for j in jobs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engagements", type=int, default=4_000_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--engine", default="torchrun", choices=("torchrun", "spark"))
    ap.add_argument("--ceiling", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--repeats", type=int, default=1, help="alternate the jobs this many times; fastest of each")
    ap.add_argument(
        "--peer-batch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train 1 worker at the data-parallel job's global batch (workers x batch_size)",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="graphrec-ddp-") as tmp_name:
        tmp = Path(tmp_name)
        t = time.perf_counter()
        sizes = _graph(args.engagements, tmp / "graph")
        print(f"graph: {sizes} in {time.perf_counter() - t:.1f}s", flush=True)
        global_batch = args.workers * GNNConfig().batch_size
        ones, manys, peers = [], [], []
        for r in range(args.repeats):  # alternated, so a slow spell of the machine hits every job
            ones.append(_train(tmp / "graph", tmp / f"one-{r}", 1, args.engine, args.epochs))
            print(f"1 worker: {ones[-1]['seconds_per_epoch']:.1f}s/epoch", flush=True)
            manys.append(_train(tmp / "graph", tmp / f"many-{r}", args.workers, args.engine, args.epochs))
            print(f"{args.workers} workers: {manys[-1]['seconds_per_epoch']:.1f}s/epoch", flush=True)
            if args.peer_batch:
                peers.append(_train(tmp / "graph", tmp / f"peer-{r}", 1, args.engine, args.epochs, global_batch))
                print(f"1 worker, batch {global_batch}: {peers[-1]['seconds_per_epoch']:.1f}s/epoch", flush=True)
        one = min(ones, key=lambda x: x["seconds_per_epoch"])
        many = min(manys, key=lambda x: x["seconds_per_epoch"])
        peer = min(peers, key=lambda x: x["seconds_per_epoch"]) if peers else None
        together = _together(tmp / "graph", tmp, args.workers, args.engine, args.epochs) if args.ceiling else []
    speedup = one["seconds_per_epoch"] / many["seconds_per_epoch"]
    r1, r2 = one["valid_recall@20"][-1], many["valid_recall@20"][-1]
    if args.repeats > 1:
        print("s / epoch of each repeat: 1 worker " + ", ".join(f"{x['seconds_per_epoch']:.1f}" for x in ones))
        print(f"{args.workers} workers " + ", ".join(f"{x['seconds_per_epoch']:.1f}" for x in manys))
        if peers:
            print(f"1 worker, batch {global_batch} " + ", ".join(f"{x['seconds_per_epoch']:.1f}" for x in peers))
    rows = [
        _row("1 x 1 thread", one["seconds_per_epoch"], one["wall_seconds"], r1),
        _row(f"{args.workers} x 1 thread ({args.engine})", many["seconds_per_epoch"], many["wall_seconds"], r2),
    ]
    if peer is not None:
        label = f"1 x 1 thread, batch {global_batch}"
        rows.append(_row(label, peer["seconds_per_epoch"], peer["wall_seconds"], peer["valid_recall@20"][-1]))
    ceiling = None
    if together:
        per_epoch = float(np.mean([t["seconds_per_epoch"] for t in together]))
        ceiling = args.workers * one["seconds_per_epoch"] / per_epoch
        wall = max(t["wall_seconds"] for t in together)
        recall = together[0]["valid_recall@20"][-1]
        rows.append(_row(f"{args.workers} independent 1 x 1 jobs at once", per_epoch, wall, recall))
    print(format_table(["workers", "s / epoch", "job wall s", f"valid recall@20 (epoch {args.epochs})"], rows))
    print(f"speed-up {speedup:.2f}x (target >= 1.7x); recall ratio {r2 / r1:.4f} (target within 1%)")
    peer_figures = None
    if peer is not None:
        peer_figures = {
            "batch_size": global_batch,
            "speedup": peer["seconds_per_epoch"] / many["seconds_per_epoch"],
            "recall_ratio": [m / p for m, p in zip(many["valid_recall@20"], peer["valid_recall@20"], strict=True)],
        }
        print(
            f"against 1 worker at the same global batch ({global_batch}): speed-up {peer_figures['speedup']:.2f}x, "
            "recall ratio by epoch " + ", ".join(f"{x:.4f}" for x in peer_figures["recall_ratio"])
        )
    if ceiling is not None:
        print(f"the machine's ceiling for {args.workers} workers: {ceiling:.2f}x (independent jobs at once)")
    if args.out:
        write_json(
            args.out,
            {
                "args": vars(args),
                "graph": sizes,
                "one": one,
                "many": many,
                "one_repeats": ones,
                "many_repeats": manys,
                "peer": peer,
                "peer_repeats": peers,
                "against_peer_batch": peer_figures,
                "together": together,
                "speedup": speedup,
                "ceiling": ceiling,
                "recall_ratio": r2 / r1,
            },
        )


if __name__ == "__main__":
    main()
