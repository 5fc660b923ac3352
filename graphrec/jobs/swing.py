"""Job: Swing note–note similarity from a (user_id, note_id) table to a neighbour table.

Input: parquet/CSV/JSONL with columns ``user_id`` and ``note_id`` (others ignored). Output:
``note_id, neighbour_id, score`` rows (parquet or CSV by extension), each note's neighbours best
first; written atomically. ``engine="spark"`` runs the same computation on PySpark
(:mod:`graphrec.spark`); the embedded engine is the default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from graphrec._atomic import check_not_overwriting_inputs
from graphrec._validation import check_choice
from graphrec.graph import pair_matrix
from graphrec.io import read_user_note_pairs, table_format, write_table
from graphrec.weights import SwingConfig, swing

__all__ = ["SwingJobConfig", "neighbour_table", "run"]


@dataclass(frozen=True, kw_only=True)
class SwingJobConfig(SwingConfig):
    """Options of the Swing job: the :class:`graphrec.weights.SwingConfig` (validated on
    construction) plus the input, the output and the engine."""

    interactions: str
    out: str
    engine: str = "local"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("engine", self.engine, ("local", "spark"))


def neighbour_table(similarity: Any, note_ids: np.ndarray) -> pd.DataFrame:
    """``note_id, neighbour_id, score`` rows of a CSR similarity, each note's best first."""
    s = similarity.tocoo()
    order = np.lexsort((s.col, -s.data, s.row))
    return pd.DataFrame(
        {
            "note_id": note_ids[s.row[order]],
            "neighbour_id": note_ids[s.col[order]],
            "score": s.data[order].astype(np.float32),
        }
    )


def run(config: SwingJobConfig) -> dict[str, Any]:
    """Run the job; returns a report (rows in, pairs out, seconds)."""
    table_format(config.out)  # fail on a bad output type before any work
    check_not_overwriting_inputs([config.out], [config.interactions])
    t0 = time.perf_counter()
    if config.engine == "spark":
        from graphrec.spark import swing_spark

        table = swing_spark(config.interactions, config)
        rows_in = None
    else:
        pairs = read_user_note_pairs(config.interactions)
        matrix, _users, notes = pair_matrix(pairs["user_id"], pairs["note_id"])
        table = neighbour_table(swing(matrix, config), notes.ids)
        rows_in = len(pairs)
    write_table(table, config.out)
    return {
        "rows_in": rows_in,
        "pairs_out": len(table),
        "seconds": round(time.perf_counter() - t0, 3),
        "out": config.out,
    }
