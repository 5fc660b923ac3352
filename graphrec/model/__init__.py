"""Embedding models: PureSVD today; the GNN (PyTorch Geometric) lands here."""

from graphrec.model.svd import PureSVD, tag_embeddings

__all__ = ["PureSVD", "tag_embeddings"]
