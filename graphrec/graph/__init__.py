"""The heterogeneous user–note–tag graph, its builder, its PyG conversions and note side-info."""

from graphrec.graph.build import AUTHORED, ENGAGES, HAS_TAG, SIMILAR, build_graph, pair_matrix, recency_matrix
from graphrec.graph.convert import bipartite_edge_index, csr_to_edge_index, to_hetero_data
from graphrec.graph.hetero import GRAPH_FORMAT_VERSION, EdgeType, HeteroGraph
from graphrec.graph.side_info import (
    SideInfo,
    encode_texts,
    note_text_vectors,
    note_texts,
    side_info_for_encoder,
    side_info_for_notes,
    side_info_from_graph,
)

__all__ = [
    "AUTHORED",
    "ENGAGES",
    "GRAPH_FORMAT_VERSION",
    "HAS_TAG",
    "SIMILAR",
    "EdgeType",
    "HeteroGraph",
    "SideInfo",
    "bipartite_edge_index",
    "build_graph",
    "csr_to_edge_index",
    "encode_texts",
    "note_text_vectors",
    "note_texts",
    "pair_matrix",
    "recency_matrix",
    "side_info_for_encoder",
    "side_info_for_notes",
    "side_info_from_graph",
    "to_hetero_data",
]
