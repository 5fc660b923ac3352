"""Reference recommenders every model is compared with: most-popular and ItemCF.

Both follow the scikit-learn contract: keyword-only hyper-parameters in ``__init__``, ``fit``
returns ``self``, learned state in trailing-underscore attributes, and ``score`` before ``fit``
raises :class:`graphrec.exceptions.NotFittedError`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec._validation import check_float, check_int
from graphrec.exceptions import InvalidParameterError, NotFittedError
from graphrec.weights.itemcf import itemcf

__all__ = ["ItemCFRecommender", "MostPopular"]


def _check_matrix(train: object) -> sp.csr_matrix:
    if not sp.issparse(train):
        raise InvalidParameterError(f"train must be a scipy sparse user x note matrix; got {type(train).__name__}")
    m = sp.csr_matrix(train, dtype=np.float32)
    if m.nnz == 0:
        raise InvalidParameterError("train has no interactions")
    return m


class MostPopular:
    """Score every note by its number of training users, the same for everyone."""

    def fit(self, train: sp.spmatrix) -> MostPopular:
        """Count each note's training users."""
        m = _check_matrix(train)
        self.popularity_ = np.diff(m.tocsc().indptr).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of shape ``(len(users), n_notes)``."""
        if not hasattr(self, "popularity_"):
            raise NotFittedError("MostPopular is not fitted; call fit(train) first")
        return np.broadcast_to(self.popularity_, (len(users), self.popularity_.size))


class ItemCFRecommender:
    """Score notes by the summed ItemCF similarity to the user's training notes.

    Parameters
    ----------
    top_k : int
        Neighbours kept per note.
    alpha : float
        Popularity penalty of :func:`graphrec.weights.itemcf` (0.5 = cosine).
    binary : bool
        Treat engagements as 0/1 (default) or use the matrix entries (edge weights) both in the
        similarity and as the weight of each history note when scoring.
    """

    def __init__(self, *, top_k: int = 200, alpha: float = 0.5, binary: bool = True) -> None:
        self.top_k = top_k
        self.alpha = alpha
        self.binary = binary

    def fit(self, train: sp.spmatrix, *, show_progress: bool | None = None) -> ItemCFRecommender:
        """Compute the note–note similarity of ``train``."""
        check_int("top_k", self.top_k, minimum=0)
        check_float("alpha", self.alpha, minimum=0.0, maximum=1.0)
        self.train_ = _check_matrix(train)
        self.similarity_ = itemcf(
            self.train_, top_k=self.top_k, alpha=self.alpha, binary=self.binary, show_progress=show_progress
        )
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of shape ``(len(users), n_notes)``."""
        if not hasattr(self, "similarity_"):
            raise NotFittedError("ItemCFRecommender is not fitted; call fit(train) first")
        history = self.train_[np.asarray(users)]
        if self.binary:
            history.data = np.ones_like(history.data)
        return np.asarray((history @ self.similarity_).toarray())
