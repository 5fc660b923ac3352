"""Audience metrics for cold-start exposure: precision, recall and hit rate of exposed user sets.

The replay protocol that produces the exposed sets lives next to what it simulates, in
:mod:`graphrec.coldstart.simulation`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphrec._validation import check_int

__all__ = ["audience_metrics"]


def audience_metrics(exposed: Sequence[np.ndarray], truth: Sequence[np.ndarray], *, budget: int) -> dict[str, float]:
    """Mean precision (over ``budget`` slots), recall and hit rate of exposed sets against truth sets."""
    check_int("budget", budget, minimum=1)
    if len(exposed) != len(truth):
        raise ValueError(f"{len(exposed)} exposed sets but {len(truth)} truth sets")
    keep = [i for i, t in enumerate(truth) if len(t)]
    if not keep:
        raise ValueError("no note has a non-empty ground truth")
    hits = np.array([np.isin(exposed[i], truth[i]).sum() for i in keep], dtype=np.float64)
    sizes = np.array([len(truth[i]) for i in keep], dtype=np.float64)
    return {
        f"precision@{budget}": float(np.mean(hits / budget)),
        f"recall@{budget}": float(np.mean(hits / sizes)),
        f"hit_rate@{budget}": float(np.mean(hits > 0)),
        "n_notes": float(len(keep)),
    }
