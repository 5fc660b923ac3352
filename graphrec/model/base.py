"""The one contract every recommender in graphrec follows.

Like implicit's ``RecommenderBase``, with scikit-learn's conventions where they fit:

* hyper-parameters are keyword arguments of ``__init__``, stored as given;
* ``fit(...)`` validates them, learns, and returns ``self``; learned state ends in ``_``; any
  other method called before ``fit`` raises :class:`~graphrec.exceptions.NotFittedError`;
* ``score(users)`` gives scores over every note, shape ``(len(users), n_notes)``, for user
  indices in the training matrix's index space;
* ``recommend(users, k=, exclude=)`` gives the top ``k`` note indices and their scores per user,
  best first (ties to the smaller index; ``exclude`` a users x notes matrix, e.g. the training
  pairs, whose entries are never returned; short rows padded with -1 / -inf);
* ``similar_notes(notes, k=)`` gives the top ``k`` other notes per note by the model's note–note
  similarity (models without one raise ``NotImplementedError``).

What ``fit`` takes is the one thing that differs: a user x note matrix for the matrix models
(:class:`~graphrec.model.PureSVD`, :mod:`graphrec.model.baselines`), a
:class:`~graphrec.graph.HeteroGraph` (and :class:`~graphrec.graph.SideInfo`) for the GNN.
:func:`graphrec.evaluate.evaluate_scorer` takes any of them as they are.
"""

from __future__ import annotations

import abc

import numpy as np
import scipy.sparse as sp

from graphrec._validation import check_int
from graphrec.evaluate.ranking import topk_from_scores
from graphrec.exceptions import InvalidParameterError, NotFittedError

__all__ = ["EmbeddingRecommender", "Recommender"]


class Recommender(abc.ABC):
    """Base class of graphrec's recommenders (see the module docstring for the contract)."""

    #: The learned attribute whose presence means "fitted".
    _fitted_attribute: str = ""

    @abc.abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of shape ``(len(users), n_notes)``."""

    def recommend(
        self, users: np.ndarray, *, k: int = 20, exclude: sp.spmatrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` note indices and scores per user, best first (see the module docstring)."""
        users = np.asarray(users, dtype=np.int64)
        rows = None
        if exclude is not None:
            rows = sp.csr_matrix(exclude)[users]
        return topk_from_scores(self.score(users), k, exclude=rows)

    def similar_notes(self, notes: np.ndarray, *, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` other notes per note by the model's note–note similarity, best first."""
        notes = np.asarray(notes, dtype=np.int64)
        check_int("k", k, minimum=1)
        scores = self._note_scores(notes)
        itself = sp.csr_matrix(
            (np.ones(notes.size, dtype=np.float32), (np.arange(notes.size), notes)), shape=scores.shape
        )
        return topk_from_scores(scores, k, exclude=itself)

    def _note_scores(self, notes: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no note–note similarity")

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attribute):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")

    def _check_indices(self, name: str, index: np.ndarray, size: int) -> np.ndarray:
        index = np.asarray(index)
        if index.ndim != 1 or index.dtype.kind not in "iu":
            raise InvalidParameterError(f"{name} must be a 1-d array of integer indices")
        if index.size and (index.min() < 0 or index.max() >= size):
            raise InvalidParameterError(f"{name} must lie in [0, {size}); got {index.min()}..{index.max()}")
        return index.astype(np.int64, copy=False)


class EmbeddingRecommender(Recommender):
    """A recommender whose scores are inner products of ``user_embeddings_`` and ``note_embeddings_``."""

    _fitted_attribute = "note_embeddings_"
    user_embeddings_: np.ndarray
    note_embeddings_: np.ndarray

    def score(self, users: np.ndarray) -> np.ndarray:
        """``user_embeddings_[users] @ note_embeddings_.T``."""
        self._check_fitted()
        users = self._check_indices("users", users, self.user_embeddings_.shape[0])
        return np.asarray(self.user_embeddings_[users] @ self.note_embeddings_.T)

    def _note_scores(self, notes: np.ndarray) -> np.ndarray:
        self._check_fitted()
        notes = self._check_indices("notes", notes, self.note_embeddings_.shape[0])
        return np.asarray(self.note_embeddings_[notes] @ self.note_embeddings_.T)
