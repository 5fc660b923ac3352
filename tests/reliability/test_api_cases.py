"""Reliability cases at the Python API: what the CLI cases cover, seen from code."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from reliability._world import World

from graphrec.coldstart import ColdStart
from graphrec.exceptions import InvalidParameterError
from graphrec.recall import RecallEngine


def test_short_budget_is_reported_not_silent(world: World, caplog: pytest.LogCaptureFixture) -> None:
    cold = ColdStart.from_bundle(world.cold_bundle, candidates=50)
    notes = pd.DataFrame({"note_id": ["fresh"], "title": ["a note"], "tags": [["nothing-known"]]})
    with caplog.at_level(logging.WARNING, logger="graphrec"):
        table = cold.plan(notes, 10_000)
    assert len(table) < 10_000
    assert table.attrs["warnings"] and "fewer than budget=10000 users" in table.attrs["warnings"][0]
    assert any("fewer than budget" in r.getMessage() for r in caplog.records)


def test_warm_note_given_as_new_is_refused(world: World) -> None:
    cold = ColdStart.from_bundle(world.cold_bundle)
    notes = pd.DataFrame({"note_id": [world.warm_note, "fresh"], "title": ["old", "new"]})
    with pytest.raises(InvalidParameterError, match=r"1 note id\(s\) are already trained notes"):
        cold.plan(notes, 5)


def test_recall_queries_follow_the_file_id_rule(world: World) -> None:
    engine = RecallEngine.load(world.bundle)
    plain = engine.recall([world.first_user], k=5)
    padded = engine.recall([f"  {world.first_user}\t"], k=5)
    assert not padded.fallback[0]
    np.testing.assert_array_equal(plain.ids, padded.ids)
    with pytest.raises(InvalidParameterError, match="must be integers or strings; got float"):
        engine.recall([1.5], k=5)
    with pytest.raises(InvalidParameterError, match="at most 10,000"):
        engine.similar_notes([engine.bundle.ids["note"].ids[0]], k=10_001)
