"""Reference recommenders every model is compared with: most-popular, ItemCF and Swing.

They follow the contract of :mod:`graphrec.model.base`; ``fit`` takes a user x note matrix.
"""

from __future__ import annotations

import abc

import numpy as np
import scipy.sparse as sp

from graphrec._validation import check_float, check_int
from graphrec.exceptions import InvalidParameterError
from graphrec.model.base import Recommender
from graphrec.weights.itemcf import itemcf
from graphrec.weights.swing import SwingConfig, swing

__all__ = ["ItemCFRecommender", "MostPopular", "SwingRecommender"]

DEFAULT_SWING = SwingConfig()


def _check_matrix(train: object) -> sp.csr_matrix:
    if not sp.issparse(train):
        raise InvalidParameterError(f"train must be a scipy sparse user x note matrix; got {type(train).__name__}")
    m = sp.csr_matrix(train, dtype=np.float32)
    if m.nnz == 0:
        raise InvalidParameterError("train has no interactions")
    return m


class MostPopular(Recommender):
    """Score every note by its number of training users, the same for everyone."""

    _fitted_attribute = "popularity_"

    def fit(self, train: sp.spmatrix) -> MostPopular:
        """Count each note's training users."""
        m = _check_matrix(train)
        self.popularity_ = np.diff(m.tocsc().indptr).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of shape ``(len(users), n_notes)``."""
        self._check_fitted()
        return np.broadcast_to(self.popularity_, (len(users), self.popularity_.size))


class _NeighbourRecommender(Recommender):
    """Score = the user's training notes (0/1, or their weights) times a note–note similarity."""

    _fitted_attribute = "similarity_"
    binary: bool = True

    @abc.abstractmethod
    def _similarity(self, train: sp.csr_matrix, show_progress: bool | None) -> sp.csr_matrix:
        """The note–note similarity learned from ``train``."""

    def fit(self, train: sp.spmatrix, *, show_progress: bool | None = None) -> _NeighbourRecommender:
        """Compute the note–note similarity of ``train`` (a user x note matrix)."""
        self.train_ = _check_matrix(train)
        self.similarity_ = self._similarity(self.train_, show_progress)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of shape ``(len(users), n_notes)``."""
        self._check_fitted()
        history = self.train_[self._check_indices("users", users, self.train_.shape[0])]
        if self.binary:
            history.data = np.ones_like(history.data)
        return np.asarray((history @ self.similarity_).toarray())

    def _note_scores(self, notes: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.asarray(self.similarity_[self._check_indices("notes", notes, self.similarity_.shape[0])].toarray())


class ItemCFRecommender(_NeighbourRecommender):
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

    def _similarity(self, train: sp.csr_matrix, show_progress: bool | None) -> sp.csr_matrix:
        check_int("top_k", self.top_k, minimum=0)
        check_float("alpha", self.alpha, minimum=0.0, maximum=1.0)
        return itemcf(train, top_k=self.top_k, alpha=self.alpha, binary=self.binary, show_progress=show_progress)


class SwingRecommender(_NeighbourRecommender):
    """Score notes by the summed Swing similarity (:func:`graphrec.weights.swing`) to the user's notes.

    Parameters
    ----------
    config : SwingConfig
        Swing's parameters (the one object every Swing entry point takes).
    """

    def __init__(self, config: SwingConfig = DEFAULT_SWING) -> None:
        self.config = config

    def _similarity(self, train: sp.csr_matrix, show_progress: bool | None) -> sp.csr_matrix:
        if not isinstance(self.config, SwingConfig):
            raise InvalidParameterError(f"config must be a SwingConfig; got {type(self.config).__name__}")
        return swing(train, self.config, show_progress=show_progress)
