"""Job: the end-to-end demo on the bundled sample (``graphrec demo --out DIR``).

It runs the whole batch chain (:mod:`graphrec.jobs.chain`) on ``data/sample`` with ``DIR`` as the
work directory: temporal split, graph, Swing + DoWhy-debiased weights, GNN training with text,
tag and author side-info, the serving bundle (``DIR/bundle``) and a full-ranking evaluation of the
GNN and the recall engine against popularity, ItemCF and Swing. Then it shows example recalls
(with the channel that brought each note) and the first audience of a brand-new note from
:class:`graphrec.coldstart.ColdStart`, and writes every printed figure to ``DIR/metrics.json``.
A second run with the same data and options skips every step (they are up to date).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphrec._atomic import atomic_file
from graphrec._validation import check_int
from graphrec.exceptions import InvalidParameterError
from graphrec.jobs.chain import ChainConfig
from graphrec.jobs.chain import run as run_chain

__all__ = ["DEMO_GNN", "DemoConfig", "chain_config", "default_data_dir", "run"]

SAMPLE_FILES = {"interactions": "interactions.parquet", "notes": "notes.jsonl", "users": "users.csv"}

#: GNN settings for the sample (small graph: smaller batches, more steps per epoch).
DEMO_GNN: dict[str, Any] = {"batch_size": 1024, "epochs": 30, "patience": 3}


def default_data_dir() -> Path:
    """``data/sample`` under the working directory, else under the repository holding this package."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base / "data" / "sample"
        if (candidate / SAMPLE_FILES["interactions"]).is_file():
            return candidate
    raise InvalidParameterError("cannot find data/sample; run from the repository root or pass --data DIR")


@dataclass(frozen=True)
class DemoConfig:
    """Options of the demo job."""

    out: str = "artifacts/demo"
    data: str | None = None
    k: int = 20
    example_users: int = 3
    audience_budget: int = 10
    gnn: dict[str, Any] = field(default_factory=lambda: dict(DEMO_GNN))

    def __post_init__(self) -> None:
        for name in ("k", "example_users", "audience_budget"):
            check_int(name, getattr(self, name), minimum=1)


def new_note_example(notes: pd.DataFrame) -> pd.DataFrame:
    """A made-up new note styled on the sample's most common category (its top tags, a title)."""
    top_category = notes["category"].value_counts().index[0]
    tags = notes.loc[notes["category"] == top_category, "tags"].explode().value_counts().index[:2].tolist()
    author = notes["author_id"].dropna().iloc[0]
    return pd.DataFrame(
        {
            "note_id": ["new-note-1"],
            "author_id": [author],
            "tags": [tags],
            "title": [f"my first {top_category} note: {' and '.join(t.split('_')[-1] for t in tags)}"],
            "text": [f"sharing what I learned about {', '.join(tags)} this week"],
            "category": [top_category],
        }
    )


def chain_config(config: DemoConfig) -> ChainConfig:
    """The batch chain the demo runs, with ``config.out`` as its work directory.

    Notebooks 03 and 04 build their chain from this too, so after ``make demo`` their steps are up
    to date in ``artifacts/demo`` and skipped (and the test suite runs the chain once for both).
    The text vectors are cached in ``OUT/_cache/text.npz``, the chain's default.
    """
    data = Path(config.data) if config.data else default_data_dir()
    return ChainConfig(
        interactions=str(data / SAMPLE_FILES["interactions"]),
        notes=str(data / SAMPLE_FILES["notes"]),
        users=str(data / SAMPLE_FILES["users"]),
        work=str(config.out),
        k=config.k,
        gnn=dict(config.gnn),
    )


def run(config: DemoConfig, *, show_progress: bool | None = None) -> dict[str, Any]:
    """Run the demo; returns everything written to ``metrics.json``."""
    from graphrec.coldstart import ColdStart
    from graphrec.io import read_notes
    from graphrec.recall import RecallEngine

    data = Path(config.data) if config.data else default_data_dir()
    out = Path(config.out)
    t0 = time.perf_counter()
    steps = run_chain(chain_config(config), show_progress=show_progress)
    engine = RecallEngine.load(out / "bundle")
    examples = engine.known_users()[: config.example_users]
    res = engine.recall(list(examples), k=5)
    # A user the bundle has never seen, with three clicks given at request time.
    clicks = [
        str(n) for n in engine.bundle.ids["note"].ids[np.argsort(-engine.bundle.popularity, kind="stable")[50:53]]
    ]
    fresh = engine.recall(["a-brand-new-user"], k=5, history=[clicks])
    new_note = new_note_example(read_notes(data / SAMPLE_FILES["notes"]))
    audience = ColdStart.from_bundle(out / "bundle").plan(new_note, config.audience_budget)
    report = {
        "metrics": steps["evaluate"]["metrics"],
        "k": config.k,
        "steps": {name: {k: v for k, v in r.items() if k != "metrics"} for name, r in steps.items()},
        "examples": [
            {
                "user": str(u),
                "notes": [str(x) for x in res.ids[i]],
                "channels": list(map(str, res.channels[i])),
                "scores": res.scores[i].tolist(),
            }
            for i, u in enumerate(examples)
        ],
        "new_user": {
            "history": clicks,
            "notes": [str(x) for x in fresh.ids[0]],
            "channels": list(map(str, fresh.channels[0])),
            "scores": fresh.scores[0].tolist(),
        },
        "cold_start": {
            "note": {k: (list(v) if k == "tags" else str(v)) for k, v in new_note.iloc[0].items()},
            "audience": audience.assign(user_id=audience["user_id"].astype(str)).to_dict(orient="records"),
        },
        "config": asdict(config) | {"data": str(data)},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    with atomic_file(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
    return report
