"""The serving format: faiss indexes, the numpy note encoder and the bundle (embeddings, indexes,
id maps, neighbours, manifest). It sits under the models, which export into it; it needs no torch.
"""

from graphrec.index.ann import AnnIndex, IndexConfig
from graphrec.index.bundle import BUNDLE_FORMAT_VERSION, Bundle, load_bundle, write_bundle
from graphrec.index.encoder import NoteEncoder

__all__ = ["BUNDLE_FORMAT_VERSION", "AnnIndex", "Bundle", "IndexConfig", "NoteEncoder", "load_bundle", "write_bundle"]
