"""The heterogeneous user–note–tag graph, its builder and its PyG conversions."""

from graphrec.graph.build import AUTHORED, ENGAGES, HAS_TAG, SIMILAR, build_graph, pair_matrix, recency_matrix
from graphrec.graph.convert import bipartite_edge_index, csr_to_edge_index, to_hetero_data
from graphrec.graph.hetero import GRAPH_FORMAT_VERSION, EdgeType, HeteroGraph

__all__ = [
    "AUTHORED",
    "ENGAGES",
    "GRAPH_FORMAT_VERSION",
    "HAS_TAG",
    "SIMILAR",
    "EdgeType",
    "HeteroGraph",
    "bipartite_edge_index",
    "build_graph",
    "csr_to_edge_index",
    "pair_matrix",
    "recency_matrix",
    "to_hetero_data",
]
