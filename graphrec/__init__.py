"""graphrec: graph-based recall for user-generated-content feeds.

Importing graphrec is cheap: the public names below are loaded on first use, so torch, faiss and
friends are imported only by the parts that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "HeteroGraph": "graphrec.graph",
    "build_graph": "graphrec.graph",
    "IdMap": "graphrec.io",
    "read_interactions": "graphrec.io",
    "read_notes": "graphrec.io",
    "read_users": "graphrec.io",
    "validate_interactions": "graphrec.io",
    "validate_notes": "graphrec.io",
    "make_ugc_dataset": "graphrec.testing",
    "GraphRecError": "graphrec.exceptions",
    "RecallEngine": "graphrec.recall",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graphrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
