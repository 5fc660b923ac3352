"""Embedding models: the heterogeneous GNN (PyTorch Geometric) and PureSVD (a closed-form peer)."""

from graphrec.model.encoder import NoteEncoder
from graphrec.model.gnn import GNNConfig, GNNRecommender, propagation_matrix
from graphrec.model.side_info import SideInfo, encode_texts, side_info_for_notes, side_info_from_graph
from graphrec.model.svd import PureSVD, tag_embeddings

__all__ = [
    "GNNConfig",
    "GNNRecommender",
    "NoteEncoder",
    "PureSVD",
    "SideInfo",
    "encode_texts",
    "propagation_matrix",
    "side_info_for_notes",
    "side_info_from_graph",
    "tag_embeddings",
]
