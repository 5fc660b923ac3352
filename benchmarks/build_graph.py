"""Benchmark: build the heterogeneous graph from N synthetic interactions (default 10M).

Measures, in one process and one run, each phase's wall time and its peak memory above the
memory held before it (exact, from the kernel's high-water mark; see ``_measure.py``):

1. ``validate``: :func:`graphrec.io.validate_interactions` on the in-memory log (types, ids,
   events, timestamps, the duplicate rule);
2. ``build``: :func:`graphrec.graph.build_graph` (id maps, weighted user–engages–note CSR,
   note–tag and authored relations);
3. ``peer``: the same user–note weights with a plain pandas ``groupby().sum()`` and a scipy CSR,
   the way a pile of scripts would do it, as a same-run reference.

Targets (issue 2): build >= 1M interactions/s on 2 cores; build peak memory <= 3x the raw id
arrays (``user_id`` + ``note_id`` as int64 = 16 bytes per interaction).

Usage::

    python benchmarks/build_graph.py [--interactions 10000000] [--out build_graph.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure, write_json

from graphrec._table import format_table
from graphrec.graph import ENGAGES, build_graph
from graphrec.io import DEFAULT_EVENT_WEIGHTS, validate_interactions, validate_notes
from graphrec.testing import make_ugc_dataset


def peer_build(interactions: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """User–note weights the plain-pandas way: map weights, groupby-sum, factorize, CSR."""
    w = interactions["event_type"].map(dict(DEFAULT_EVENT_WEIGHTS)).astype(np.float32)
    frame = pd.DataFrame({"u": interactions["user_id"], "n": interactions["note_id"], "w": w})
    summed = frame.groupby(["u", "n"], sort=True)["w"].sum()
    summed = summed[summed > 0]
    u_codes, _u = pd.factorize(summed.index.get_level_values(0), sort=True)
    n_codes, _n = pd.factorize(summed.index.get_level_values(1), sort=True)
    matrix = sp.csr_matrix((summed.to_numpy(), (u_codes, n_codes)), shape=(len(_u), len(_n)))
    return matrix, np.asarray(_u), np.asarray(_n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactions", type=int, default=10_000_000, help="approximate number of event rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="build_graph.json")
    args = parser.parse_args()

    n = args.interactions
    # The generator adds ~0.5 further events per engagement; draw a little more and cut to n rows.
    data = make_ugc_dataset(
        n_users=max(100, n // 20),
        n_notes=max(100, n // 40),
        n_engagements=max(1, int(n / 1.3)),
        string_ids=False,
        with_text=False,
        seed=args.seed,
    )
    raw = data.interactions.iloc[:n].copy()
    notes = validate_notes(data.notes)
    del data
    rows = len(raw)
    raw_id_mb = (raw["user_id"].to_numpy().nbytes + raw["note_id"].to_numpy().nbytes) / 2**20

    phases: dict[str, dict[str, float]] = {"validate": {}, "build": {}, "peer": {}}
    with measure(phases["validate"]):
        interactions = validate_interactions(raw)
    del raw
    with measure(phases["build"]):
        graph = build_graph(interactions, notes)
    with measure(phases["peer"]):
        peer, peer_users, peer_notes = peer_build(interactions)
    # The graph also holds authors and side-info-only notes: compare on the peer's rows/columns.
    rows_idx = graph.id_map("user").index(peer_users)
    cols_idx = graph.id_map("note").index(peer_notes)
    ours = graph.relation(ENGAGES)[rows_idx][:, cols_idx]
    same = ours.nnz == graph.num_edges(ENGAGES) and abs(ours - peer).max() < 1e-4

    for p in phases.values():
        p["interactions_per_s"] = rows / p["seconds"]
        p["peak_over_raw_ids"] = p["peak_extra_mb"] / raw_id_mb
    result = {
        "benchmark": "build_graph",
        "rows": rows,
        "raw_id_arrays_mb": raw_id_mb,
        "graph": graph.summary()["nodes"],
        "edges": {"__".join(et): graph.num_edges(et) for et in graph.edge_types},
        "phases": phases,
        "peer_over_build_time": phases["peer"]["seconds"] / phases["build"]["seconds"],
        "peer_matches_build": bool(same),
        "targets": {
            "build_interactions_per_s>=1e6": phases["build"]["interactions_per_s"] >= 1e6,
            "build_peak<=3x_raw_ids": phases["build"]["peak_over_raw_ids"] <= 3.0,
        },
    }
    print(f"{rows:,} interaction rows; raw id arrays {raw_id_mb:,.0f} MB; graph {result['graph']}")
    print(
        format_table(
            ["phase", "seconds", "interactions/s", "peak extra MB", "peak / raw ids"],
            [
                [k, v["seconds"], f"{v['interactions_per_s']:,.0f}", v["peak_extra_mb"], v["peak_over_raw_ids"]]
                for k, v in phases.items()
            ],
        )
    )
    print(f"peer/build time ratio {result['peer_over_build_time']:.2f}; peer matches build: {same}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
