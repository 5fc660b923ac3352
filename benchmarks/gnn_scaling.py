"""Benchmark: GNN training cost against the number of engagements (is an epoch linear in E?).

For each size ``E`` (default 1M, 4M, 16M engagements) a fresh process generates a synthetic UGC
log with :func:`graphrec.testing.make_ugc_dataset` (``E / 25`` users, ``E / 50`` notes, so the
degree distribution stays the same as ``E`` grows; no side-info text), builds the graph and trains
graphrec's GNN (:class:`graphrec.model.gnn.trainer.Trainer`, default :class:`GNNConfig`, no
validation) for ``--epochs`` epochs. It reports seconds per epoch (the mean over all epochs but
the first, which also loads the compiled kernels) and the peak resident memory of
training (kernel high-water mark above the memory held before the trainer was built), the mean
number of distinct nodes a step gathers (its targets and their one-hop rows; a step's cost follows
it, and it grows with the graph until neighbourhoods stop overlapping), and the
growth exponent ``log(t2 / t1) / log(E2 / E1)`` between consecutive sizes (1 = linear).

The peer is the full-graph trainer graphrec used before (``_full_graph_gnn.py``: the whole graph
propagated forward and backward for every mini-batch). Its epochs are too long to run whole at 4M,
so it trains ``--full-steps`` steps and its epoch time is the mean step time times the number of
steps in an epoch (every step does the same work, so this is what a whole epoch would take).

Usage::

    python benchmarks/gnn_scaling.py --out benchmarks/results/gnn_scaling.json [--sizes 1000000 4000000 16000000]
        [--full-sizes 1000000 4000000] [--epochs 2] [--threads 2] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import add_config_option, config_overrides, measure, scaling_graph, set_threads, write_json

from graphrec._table import format_table


def _data(n_engagements: int) -> Any:
    from graphrec.graph import ENGAGES

    graph = scaling_graph(n_engagements)
    return graph, graph.relation(ENGAGES)


def _one(
    mode: str, n_engagements: int, epochs: int, full_steps: int, threads: int, overrides: dict[str, Any]
) -> dict[str, Any]:
    """Run in a child process: one size, one trainer; returns what it measured."""
    import torch

    set_threads(threads)
    graph, engages = _data(n_engagements)
    out: dict[str, Any] = {
        "mode": mode,
        "engagements": n_engagements,
        "pairs": int(engages.nnz),
        "users": int(engages.shape[0]),
        "notes": int(engages.shape[1]),
    }
    phase: dict[str, Any] = {}
    if mode == "full":
        from _full_graph_gnn import step_seconds

        with measure(phase):
            out.update(step_seconds(engages, steps=full_steps))
        out["epoch_seconds"] = out["seconds_per_epoch"]
    else:
        from graphrec.model.gnn import GNNConfig
        from graphrec.model.gnn.trainer import Trainer

        with measure(phase):
            config = GNNConfig(**{"valid_fraction": 0.0, "device": "cpu", **overrides})
            trainer = Trainer(config, graph, engages, None, torch.device("cpu"))
            times = []
            for epoch in range(epochs):
                t = time.perf_counter()
                trainer.epoch(epoch)
                times.append(time.perf_counter() - t)
        out["epoch_seconds_each"] = times
        out["steps_per_epoch"] = trainer.steps_done / epochs
        out["nodes_per_step"] = trainer.nodes_gathered / trainer.steps_done
        out["graph_nodes"] = int(trainer.offsets["end"])
        warm = times[1:] or times  # the first epoch also loads the compiled kernels
        out["epoch_seconds"] = float(sum(warm) / len(warm))
    out["peak_extra_mb"] = phase["peak_extra_mb"]
    out["phase_seconds"] = phase["seconds"]
    return out


def _spawn(mode: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        str(size),
        str(args.epochs),
        str(args.full_steps),
        str(args.threads),
        json.dumps(config_overrides(args.set, ("device",))),
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _exponents(rows: list[dict[str, Any]]) -> list[float]:
    return [
        math.log(b["epoch_seconds"] / a["epoch_seconds"]) / math.log(b["pairs"] / a["pairs"])
        for a, b in itertools.pairwise(rows)
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        mode, size, epochs, full_steps, threads = argv[1], *map(int, argv[2:6])
        print(json.dumps(_one(mode, size, epochs, full_steps, threads, json.loads(argv[6]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000, 16_000_000])
    ap.add_argument("--full-sizes", type=int, nargs="*", default=[1_000_000, 4_000_000])
    ap.add_argument("--epochs", type=int, default=2, help="epochs timed per size (graphrec's trainer)")
    ap.add_argument("--full-steps", type=int, default=8, help="steps timed per size (full-graph peer)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    add_config_option(ap)
    args = ap.parse_args(argv)
    _one("ours", 20_000, 1, 1, args.threads, {})  # compile the numba kernels into their cache first
    ours = [_spawn("ours", s, args) for s in args.sizes]
    full = [_spawn("full", s, args) for s in args.full_sizes]
    result: dict[str, Any] = {
        "graphrec": ours,
        "full_graph": full,
        "exponent_graphrec": _exponents(ours),
        "exponent_full_graph": _exponents(full),
        "args": {k: v for k, v in vars(args).items() if k != "out"},
    }
    rows = []
    for r in ours + full:
        same = [f for f in ours if f["engagements"] == r["engagements"]]
        ratio = r["epoch_seconds"] / same[0]["epoch_seconds"] if r["mode"] == "full" and same else None
        rows.append(
            [
                "graphrec" if r["mode"] == "ours" else "full-graph (before)",
                f"{r['engagements']:,}",
                f"{r['pairs']:,}",
                f"{r['epoch_seconds']:.1f}",
                f"{r['peak_extra_mb']:.0f}",
                f"{1e6 * r['peak_extra_mb'] / r['pairs']:.0f}",
                "" if ratio is None else f"{ratio:.1f}x",
                f"{r['nodes_per_step']:,.0f} ({r['nodes_per_step'] / r['graph_nodes']:.0%})"
                if "nodes_per_step" in r
                else "",
            ]
        )
    print(
        format_table(
            [
                "trainer",
                "engagements",
                "distinct pairs",
                "s / epoch",
                "peak MB",
                "MB per 1M pairs",
                "vs graphrec",
                "nodes / step (of graph)",
            ],
            rows,
        )
    )
    for name, exps in (("graphrec", result["exponent_graphrec"]), ("full-graph", result["exponent_full_graph"])):
        print(f"growth exponent of epoch time, {name}: " + ", ".join(f"{e:.2f}" for e in exps))
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
