"""Shared fixtures: small synthetic datasets (never ../shared), and one run of the demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    """``graphrec demo`` on the bundled sample, run once per session: the CLI command and its result.

    Its output directory is the command's last argument. The demo test checks it; notebooks 03
    and 04 run in it (their ``DEMO`` parameter), so the whole chain runs once, not three times.
    """
    out = tmp_path_factory.mktemp("demo") / "demo"
    cmd = [sys.executable, "-m", "graphrec.cli", "demo", "--out", str(out)]
    repo = Path(__file__).resolve().parents[1]
    return cmd, subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=True, timeout=600)
