"""Edge weights: note–note similarity (ItemCF; Swing lands here too) and user–note reweighting."""

from graphrec.weights.debias import COMMON_CAUSES, PopularityDebiaser
from graphrec.weights.itemcf import itemcf
from graphrec.weights.swing import SwingConfig, filter_users, swing, swing_rows, with_swing

__all__ = [
    "COMMON_CAUSES",
    "PopularityDebiaser",
    "SwingConfig",
    "filter_users",
    "itemcf",
    "swing",
    "swing_rows",
    "with_swing",
]
