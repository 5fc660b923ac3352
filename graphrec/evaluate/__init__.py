"""Splits, full-ranking metrics and the evaluation harness (with popularity and ItemCF baselines)."""

from graphrec.evaluate.baselines import ItemCFRecommender, MostPopular, SwingRecommender
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
    "ItemCFRecommender",
    "MostPopular",
    "Scorer",
    "Split",
    "SwingRecommender",
    "cold_note_split",
    "evaluate_scorer",
    "gini",
    "given_split",
    "leave_last_k_split",
    "long_tail_mask",
    "random_split",
    "ranking_metrics",
    "relevance_matrix",
    "temporal_split",
    "topk_from_scores",
]
