"""Shared benchmark helpers: timing and exact peak memory (Linux), machine info, JSON output,
and ``--set KEY=VALUE`` overrides of :class:`graphrec.model.GNNConfig`.

Peak memory uses the kernel's high-water mark: writing ``5`` to ``/proc/self/clear_refs`` resets
``VmHWM`` to the current RSS, so the peak *of one phase* is ``VmHWM`` after it minus ``VmRSS``
before it. No sampling thread, so nothing is missed while a C extension holds the GIL.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


@contextlib.contextmanager
def measure(result: dict[str, Any]) -> Iterator[None]:
    """Fill ``result`` with ``seconds`` and ``peak_extra_mb`` (peak RSS above the start) of the block."""
    gc.collect()
    # Hand freed heap pages back to the kernel first, so a phase that reuses them still shows
    # up as new resident memory instead of hiding in glibc's free lists.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    start_rss = _status_kib("VmRSS")
    t0 = time.perf_counter()
    yield
    result["seconds"] = time.perf_counter() - t0
    result["peak_extra_mb"] = (_status_kib("VmHWM") - start_rss) / 1024
    result["start_rss_mb"] = start_rss / 1024


def set_threads(n: int) -> None:
    """Use ``n`` threads in torch and in graphrec's numba kernels (numba's pool caps it)."""
    import numba
    import torch

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_json(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` as pretty JSON atomically, with the machine and the command that ran."""
    from graphrec._atomic import atomic_file

    record = {"machine": machine(), "command": " ".join(["python", *sys.argv]), **payload}
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    print(f"wrote {path}")


def add_config_option(ap: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): override a :class:`graphrec.model.GNNConfig` field."""
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a GNNConfig field (repeatable), e.g. --set similarity=cosine --set temperature=0.1",
    )


def config_overrides(pairs: list[str], own_flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """``KEY=VALUE`` strings as GNNConfig fields, each value cast to the field's default's type.

    ``own_flags``: fields the script sets from its own ``--FIELD`` option; ``--set`` refuses them.
    """
    from graphrec.model import GNNConfig

    defaults = GNNConfig()
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not hasattr(defaults, key):
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE with KEY a GNNConfig field")
        if key in own_flags:
            raise SystemExit(f"--set {pair!r}: this script sets {key} with --{key}; use that option")
        kind = type(getattr(defaults, key))
        out[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return out


def scaling_graph(n_engagements: int) -> Any:
    """The scaling benchmarks' synthetic graph: ``E / 25`` users, ``E / 50`` notes (the degree
    distribution stays the same as ``E`` grows), tags, no text, integer ids, seed 0."""
    from graphrec.graph import build_graph
    from graphrec.testing import make_ugc_dataset

    d = make_ugc_dataset(
        n_users=n_engagements // 25,
        n_notes=n_engagements // 50,
        n_engagements=n_engagements,
        with_text=False,
        string_ids=False,
        seed=0,
    )
    return build_graph(d.interactions, d.notes)
