"""Shared fixtures: small synthetic datasets (never ../shared)."""

from __future__ import annotations

import pandas as pd
import pytest

from graphrec.io import validate_interactions, validate_notes
from graphrec.testing import SyntheticUGC, make_ugc_dataset


@pytest.fixture(scope="session")
def small_ugc() -> SyntheticUGC:
    return make_ugc_dataset(n_users=300, n_notes=500, n_engagements=6_000, impressions_per_engagement=0.5, seed=3)


@pytest.fixture(scope="session")
def small_tables(small_ugc: SyntheticUGC) -> tuple[pd.DataFrame, pd.DataFrame]:
    return validate_interactions(small_ugc.interactions), validate_notes(small_ugc.notes)
