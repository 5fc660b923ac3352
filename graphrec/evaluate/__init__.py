"""Measurement: splits, metrics and the full-ranking harness. It knows no model.

This layer sits under the models (they import it for early stopping, the debiaser for its
long-tail definition); models reach it through :data:`Scorer` (anything with ``score(users)``,
or a function), so nothing here imports a model. The reference recommenders live in
:mod:`graphrec.model.baselines`; the cold-start replay in :mod:`graphrec.coldstart.simulation`.
"""

from graphrec.evaluate.audience import audience_metrics
from graphrec.evaluate.diversity import creator_gini, intra_list_distances, long_tail_share, novelty
from graphrec.evaluate.metrics import gini, long_tail_mask, ranking_metrics
from graphrec.evaluate.ranking import Scorer, evaluate_scorer, relevance_matrix, topk_from_scores
from graphrec.evaluate.splits import (
    Split,
    cold_note_split,
    given_split,
    leave_last_k_split,
    random_split,
    temporal_split,
)

__all__ = [
    "Scorer",
    "Split",
    "audience_metrics",
    "cold_note_split",
    "creator_gini",
    "evaluate_scorer",
    "gini",
    "given_split",
    "intra_list_distances",
    "leave_last_k_split",
    "long_tail_mask",
    "long_tail_share",
    "novelty",
    "random_split",
    "ranking_metrics",
    "relevance_matrix",
    "temporal_split",
    "topk_from_scores",
]
