"""Edge weights: note–note similarity (ItemCF; Swing lands here too) and user–note reweighting."""

from graphrec.weights.itemcf import itemcf, top_k_per_row
from graphrec.weights.swing import filter_users, swing, with_swing

__all__ = ["filter_users", "itemcf", "swing", "top_k_per_row", "with_swing"]
