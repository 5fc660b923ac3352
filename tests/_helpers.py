"""Small hand-built tables shared by tests (importable because pytest puts tests/ on the path)."""

from __future__ import annotations

import pandas as pd


def tiny_interactions() -> pd.DataFrame:
    """Three users, three notes, hand-checkable weights."""
    return pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b", "c", "c"],
            "note_id": [1, 1, 2, 2, 3, 3, 3],
            "event_type": ["click", "like", "click", "click", "impression", "click", "click"],
            "timestamp": [10, 11, 12, 13, 14, 15, 16],
            "value": [5.0, None, 1.0, 2.0, None, 3.0, 4.0],
        }
    )
