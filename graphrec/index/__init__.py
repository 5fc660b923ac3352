"""faiss indexes and the serving bundle (embeddings, indexes, id maps, neighbours, manifest)."""

from graphrec.index.ann import AnnIndex, IndexParams
from graphrec.index.bundle import BUNDLE_FORMAT_VERSION, Bundle, load_bundle, write_bundle

__all__ = ["BUNDLE_FORMAT_VERSION", "AnnIndex", "Bundle", "IndexParams", "load_bundle", "write_bundle"]
