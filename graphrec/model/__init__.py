"""Embedding models: the heterogeneous GNN (PyTorch Geometric) and PureSVD (a closed-form peer).

Names are imported lazily, so ``graphrec.index.encoder`` (numpy only, used by serving bundles)
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
    "EmbeddingRecommender": "graphrec.model.base",
    "Recommender": "graphrec.model.base",
    "ItemCFRecommender": "graphrec.model.baselines",
    "MostPopular": "graphrec.model.baselines",
    "SwingRecommender": "graphrec.model.baselines",
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
