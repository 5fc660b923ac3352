"""Embedding models: the heterogeneous GNN (PyTorch Geometric) and PureSVD (a closed-form peer).

Names are imported lazily, so ``graphrec.model.encoder`` (numpy only, used by serving bundles)
does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ColdValidation": "graphrec.model.gnn",
    "GNNConfig": "graphrec.model.gnn",
    "GNNRecommender": "graphrec.model.gnn",
    "propagation_matrix": "graphrec.model.gnn",
    "NoteEncoder": "graphrec.model.encoder",
    "SideInfo": "graphrec.model.side_info",
    "encode_texts": "graphrec.model.side_info",
    "note_texts": "graphrec.model.side_info",
    "side_info_for_notes": "graphrec.model.side_info",
    "side_info_from_graph": "graphrec.model.side_info",
    "PureSVD": "graphrec.model.svd",
    "tag_embeddings": "graphrec.model.svd",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'graphrec.model' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
