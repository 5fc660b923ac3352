"""Edge weights: note–note similarity (ItemCF; Swing lands here too) and user–note reweighting."""

from graphrec.weights.itemcf import itemcf, top_k_per_row

__all__ = ["itemcf", "top_k_per_row"]
