"""Training checkpoints: ``.npz`` arrays plus JSON metadata, written atomically, never pickled.

A directory holds ``latest.npz`` / ``latest.json`` (the state after the last finished epoch:
embedding table, optimiser moments, encoder weights, training log, number of data-parallel
shards) and ``best.npz`` (the weights of the best evaluation so far). Training resumes from ``latest`` only when the configuration is the
same (``epochs`` may differ, to extend a run); anything else is an :class:`ArtifactError` naming
the file, and the files are left as they were.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphrec._atomic import atomic_file
from graphrec.exceptions import ArtifactError
from graphrec.model.gnn.config import GNNConfig

__all__ = ["load_arrays", "read_meta", "save_arrays", "write_meta"]

FORMAT = "graphrec.gnn"
VERSION = 2


def save_arrays(path: Path, state: dict[str, torch.Tensor]) -> None:
    """Write tensors as an ``.npz`` (atomic)."""
    arrays = {k: v.detach().cpu().numpy() for k, v in state.items()}
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def load_arrays(path: Path, expected: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Read an ``.npz`` written by :func:`save_arrays`; keys and shapes must match ``expected``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            state = {k: torch.from_numpy(np.array(z[k])).to(device) for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ArtifactError(f"{path}: unreadable checkpoint ({exc})") from exc
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        raise ArtifactError(f"{path}: checkpoint does not match this model's graph/config; delete it to start over")
    return state


def write_meta(directory: Path, config: GNNConfig, log: dict[str, Any], *, shards: int = 1) -> None:
    meta = {"format": FORMAT, "version": VERSION, "config": asdict(config), "shards": shards, "log": log}
    with atomic_file(directory / "latest.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))


def read_meta(directory: Path, config: GNNConfig, *, shards: int = 1) -> dict[str, Any] | None:
    """The saved training log, or None when there is no checkpoint; refuses another configuration
    or another number of shards (data-parallel workers), since either would change what is drawn."""
    path = directory / "latest.json"
    if not path.exists() or not (directory / "latest.npz").exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable checkpoint metadata ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ArtifactError(
            f"{path}: not a graphrec GNN checkpoint of format version {VERSION}; delete it to start over"
        )
    same = {k: v for k, v in asdict(config).items() if k != "epochs"}
    saved = meta.get("config")
    if not isinstance(saved, dict) or {k: v for k, v in saved.items() if k != "epochs"} != same:
        raise ArtifactError(f"{path}: checkpoint was written with another configuration; delete it to start over")
    if meta.get("shards", 1) != shards:
        raise ArtifactError(
            f"{path}: checkpoint was written by a run with {meta.get('shards')} data-parallel worker(s), this one has "
            f"{shards}; resume with the same number or delete it to start over"
        )
    log = meta.get("log")
    if not isinstance(log, dict):
        raise ArtifactError(f"{path}: checkpoint metadata has no training log")
    return log
