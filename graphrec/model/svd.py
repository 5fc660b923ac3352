"""PureSVD embeddings (Cremonesi et al. 2010): a closed-form, CPU-cheap embedding model.

``X ~ U S V^T`` (truncated SVD of the binary user x note matrix); note embeddings are ``V`` and a
user's embedding is ``x_u V``, so ``user . note = x_u V V^T``, PureSVD's score. Users with a known
history but not in training embed the same way (:meth:`PureSVD.embed_users`). It gives the
serving layer real embeddings to index; the GNN (graphrec.model) produces better ones through the
same interface (:class:`graphrec.model.base.EmbeddingRecommender`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec._validation import check_int
from graphrec.exceptions import InvalidParameterError
from graphrec.model.base import EmbeddingRecommender

__all__ = ["PureSVD", "tag_embeddings"]


class PureSVD(EmbeddingRecommender):
    """Truncated-SVD embeddings of a user x note matrix.

    Parameters
    ----------
    dim : int
        Embedding dimension (< min(n_users, n_notes)).
    seed : int
        Seed of the SVD's starting vector.

    Attributes
    ----------
    user_embeddings_ : ndarray, shape (n_users, dim)
    note_embeddings_ : ndarray, shape (n_notes, dim)
    """

    def __init__(self, *, dim: int = 64, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed

    def fit(self, train: sp.spmatrix) -> PureSVD:
        """Factorise the binarised ``train`` matrix."""
        from scipy.sparse.linalg import svds

        dim = check_int("dim", self.dim, minimum=1)
        if not sp.issparse(train):
            raise InvalidParameterError(f"train must be a scipy sparse matrix; got {type(train).__name__}")
        x = sp.csr_matrix(train, dtype=np.float64)
        if x.nnz == 0:
            raise InvalidParameterError("train has no interactions")
        if dim >= min(x.shape):
            raise InvalidParameterError(f"`dim` must be < min(n_users, n_notes) = {min(x.shape)}; got {dim}")
        x.data = (x.data > 0).astype(np.float64)
        rng = np.random.default_rng(self.seed)
        _u, _s, vt = svds(x, k=dim, v0=rng.random(min(x.shape)))
        self.note_embeddings_ = np.ascontiguousarray(vt.T[:, ::-1], dtype=np.float32)
        self.user_embeddings_ = self.embed_users(x)
        return self

    def embed_users(self, history: sp.spmatrix) -> np.ndarray:
        """Embeddings ``x_u V`` of users given their (binary) note histories, shape ``(n, dim)``."""
        self._check_fitted()
        h = sp.csr_matrix(history, dtype=np.float64)
        h.data = (h.data > 0).astype(np.float64)
        return np.ascontiguousarray(h @ self.note_embeddings_.astype(np.float64), dtype=np.float32)


def tag_embeddings(note_tag: sp.spmatrix, note_embeddings: np.ndarray) -> np.ndarray:
    """Mean embedding of each tag's notes (zeros for a tag on no note), shape ``(n_tags, dim)``."""
    a = sp.csr_matrix(note_tag, dtype=np.float64)
    counts = np.asarray(a.sum(axis=0)).ravel()
    sums = a.T @ note_embeddings.astype(np.float64)
    return np.ascontiguousarray(sums / np.maximum(counts, 1)[:, None], dtype=np.float32)
