"""Text of a note for the sentence encoder (:func:`graphrec.graph.note_texts`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graphrec.graph import note_texts


def test_note_texts_joins_title_text_and_tag_names():
    notes = pd.DataFrame(
        {
            "title": ["Hiking Huangshan", None, "", "Dumplings"],
            "text": ["sunrise at the top", "no title here", "", np.nan],
            "tags": [("travel", "mountains"), (), None, ("food",)],
        }
    )
    assert note_texts(notes) == [
        "Hiking Huangshan sunrise at the top tags: travel, mountains",
        "no title here",
        "",
        "Dumplings tags: food",
    ]
    assert note_texts(notes, tags=False) == ["Hiking Huangshan sunrise at the top", "no title here", "", "Dumplings"]


def test_note_texts_with_missing_columns():
    assert note_texts(pd.DataFrame({"note_id": [1, 2]})) == ["", ""]
    assert note_texts(pd.DataFrame({"tags": [("a", ""), "b"]})) == ["tags: a", "tags: b"]
