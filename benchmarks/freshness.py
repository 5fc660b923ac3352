"""Benchmark: how fast new events and new notes reach recall (live updates, no retraining).

On a serving bundle with a note encoder (default: the demo's, ``artifacts/demo/bundle``; run
``make demo`` first), applies ``--events`` new engagements (80% by known users, 20% by new ones,
on random known notes) with :meth:`RecallEngine.update` and ``--notes`` new notes (side-info
copied from existing notes under new ids) with :meth:`RecallEngine.add_notes`, and times each,
three repeats (the best and the median reported). Then checks that every new note is answerable
(``similar_notes``) and every new user is no longer a fallback row. The peer in the same run is
reloading the bundle from disk (what any change costs without live updates, before retraining).
Also timed: the text encoding alone (all-MiniLM-L6-v2 over the new notes' titles and texts, what
the demo's encoder needs), ``add_notes`` with those text vectors given precomputed (``text_vectors=``,
how a live service takes notes whose text was embedded where they were posted) and ``add_notes``
of the same notes without title and text (tags and author, the tag names still run the text model).

Target (issue 22): 10,000 events and 1,000 notes applied in <= 1 s on 2 cores.

Usage::

    python benchmarks/freshness.py [--bundle artifacts/demo/bundle] --out benchmarks/results/freshness.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import write_json

from graphrec.recall import RecallEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=Path("artifacts/demo/bundle"))
    parser.add_argument("--notes-source", type=Path, default=Path("data/sample/notes.jsonl"))
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--notes", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from graphrec.io import read_notes

    t = time.perf_counter()
    engine = RecallEngine.load(args.bundle)
    load_seconds = time.perf_counter() - t
    rng = np.random.default_rng(0)
    users = engine.known_users()
    note_ids = engine.bundle.ids["note"].ids
    n_new_users = args.events // 5
    who = np.where(
        rng.random(args.events) < 0.8,
        users[rng.integers(0, len(users), args.events)].astype(str),
        np.array([f"new-user-{i}" for i in rng.integers(0, max(1, n_new_users // 5), args.events)]),
    )
    events = pd.DataFrame(
        {
            "user_id": who,
            "note_id": note_ids[rng.integers(0, len(note_ids), args.events)].astype(str),
            "event_type": "click",
            "timestamp": 2_000_000_000 + np.arange(args.events),
        }
    )
    source = read_notes(args.notes_source)
    base = 900_000_000 if engine.bundle.ids["note"].is_int else 0
    picked = source.iloc[rng.integers(0, len(source), args.notes)].reset_index(drop=True)
    new_notes = picked.assign(
        note_id=[base + i for i in range(args.notes)] if base else [f"new-note-{i}" for i in range(args.notes)]
    )
    from graphrec.graph.side_info import note_text_vectors

    no_text = new_notes.assign(title="", text="")
    timings: dict[str, list[float]] = {
        "update": [],
        "add_notes": [],
        "total": [],
        "text_encoding_alone": [],
        "add_notes_precomputed_text": [],
        "total_precomputed_text": [],
        "add_notes_without_text": [],
    }
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        updated = engine.update(events)
        t1 = time.perf_counter()
        live = updated.add_notes(new_notes)
        t2 = time.perf_counter()
        timings["update"].append(t1 - t0)
        timings["add_notes"].append(t2 - t1)
        timings["total"].append(t2 - t0)
        t3 = time.perf_counter()
        vectors = note_text_vectors(new_notes)
        t4 = time.perf_counter()
        updated.add_notes(no_text)
        t5 = time.perf_counter()
        again = engine.update(events)
        t6 = time.perf_counter()
        precomputed = again.add_notes(new_notes, text_vectors=vectors)
        t7 = time.perf_counter()
        timings["text_encoding_alone"].append(t4 - t3)
        timings["add_notes_without_text"].append(t5 - t4)
        timings["add_notes_precomputed_text"].append(t7 - t6)
        timings["total_precomputed_text"].append(t7 - t5)
        np.testing.assert_allclose(precomputed.bundle.embeddings["note"], live.bundle.embeddings["note"], atol=1e-5)
    sim = live.similar_notes(list(new_notes["note_id"]), k=5)
    fresh_users = sorted({u for u in who if u.startswith("new-user-")})
    rec = live.recall(fresh_users, k=20)
    checks = {
        "new_notes_answerable": int((~sim.fallback).sum()),
        "new_users_served": int((~rec.fallback).sum()),
        "new_users": len(fresh_users),
        **updated.last_update,
        **{f"notes_{k}": v for k, v in live.last_update.items()},
    }
    rows = {k: {"best": min(v), "median": float(np.median(v))} for k, v in timings.items()}
    for name, r in rows.items():
        print(f"{name:28s} best {r['best']:.3f} s, median {r['median']:.3f} s")
    print(f"reload from disk (peer): {load_seconds:.3f} s; checks: {checks}")
    bundle = engine.bundle
    size = {"users": len(bundle.ids["user"]), "notes": len(bundle.ids["note"]), "history_nnz": int(bundle.history.nnz)}
    print(f"bundle: {size}; {args.events:,} events + {args.notes:,} notes")
    if args.out:
        write_json(
            args.out,
            {
                "timings": rows,
                "reload_seconds": load_seconds,
                "checks": checks,
                "bundle": size,
                "events": args.events,
                "notes": args.notes,
                "command": " ".join(sys.argv),
            },
        )


if __name__ == "__main__":
    main()
