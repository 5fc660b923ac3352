"""The ``graphrec`` command line: thin wrappers from arguments to the public API and the jobs (graphrec.jobs).

Subcommands
-----------
``demo``         the end-to-end demo on the bundled sample (what the README's first command runs)
``run``          the batch chain from a YAML config: ingest → graph → weights → train → bundle → evaluate
``build-graph``  validate interaction / side-info files and save the graph
``graph-info``   print the summary of a saved graph
``recall``       recall notes for users from a serving bundle
``swing``        Swing note–note neighbours from (user_id, note_id) pairs, local or on Spark
``synth``        write a synthetic UGC dataset (parquet interactions, JSONL notes, CSV users)
``coldstart``    first audiences (seed users) for new notes from a bundle with a note encoder
``serve``        the recall service over HTTP/JSON (:mod:`graphrec.serve`)
``refresh``      new events and notes into a bundle without retraining (:mod:`graphrec.recall.live`)

Errors graphrec raises on purpose print as one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from graphrec._table import format_table
from graphrec.exceptions import GraphRecError, InvalidParameterError

__all__ = ["main"]

T = TypeVar("T")


def _config(cls: type[T], args: argparse.Namespace) -> T:
    """The job config ``cls`` from the parsed arguments of the same names."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{n: getattr(args, n) for n in names if hasattr(args, n)})


def _add_options(parser: argparse.ArgumentParser, params: type) -> None:
    """One ``--flag`` per field of the params dataclass, typed, with its default and ``help``."""
    hints = typing.get_type_hints(params)
    for f in dataclasses.fields(params):
        kind = float if float in (hints[f.name], *typing.get_args(hints[f.name])) else int
        text = f.metadata.get("help", "")
        parser.add_argument(
            "--" + f.name.replace("_", "-"), type=kind, default=f.default, help=f"{text} (default: {f.default})"
        )


def _graph_tables(summary: dict[str, Any]) -> str:
    nodes = format_table(["node type", "count"], [[t, n] for t, n in summary["nodes"].items()])
    rels = format_table(
        ["relation", "edges", "density", "weight sum"],
        [[r, v["edges"], v["density"], v["weight_sum"]] for r, v in summary["relations"].items()],
    )
    return f"{nodes}\n\n{rels}"


def _steps_table(steps: dict[str, Any]) -> str:
    rows = []
    for name, r in steps.items():
        rows.append([name, "up to date (skipped)" if r.get("skipped") else "ran", r.get("seconds", "")])
    return format_table(["step", "status", "seconds"], rows)


def _cmd_demo(args: argparse.Namespace) -> int:
    from graphrec.jobs.demo import DemoConfig, run

    report = run(_config(DemoConfig, args))
    steps = report["steps"]
    ing = steps["ingest"]
    print(
        f"graphrec demo: {ing['rows']:,} interaction rows ({ing['duplicates_collapsed']} duplicates collapsed), "
        f"{ing.get('notes', 0):,} notes, {ing.get('users', 0):,} users; temporal split "
        f"{ing['train_rows']:,} train / {ing['test_rows']:,} test rows\n"
    )
    print("graph (train part)")
    print(_graph_tables(steps["graph"]) + "\n")
    k = args.k
    cols = [f"recall@{k}", f"ndcg@{k}", f"long_tail_recall@{k}", f"coverage@{k}", f"gini@{k}", f"ilad@{k}"]
    cols += [f"novelty@{k}", f"creator_gini@{k}"]
    rows = [[name, *(m.get(c, float("nan")) for c in cols)] for name, m in report["metrics"].items()]
    n_users = int(next(iter(report["metrics"].values()))["n_users"])
    print(f"full-ranking evaluation on {n_users:,} test users (training items excluded)")
    print(format_table(["model", *cols], rows))
    tr = steps["train"]
    print(
        f"GNN: {tr['epochs_run']} epochs, best epoch {tr['best_epoch']} "
        f"(validation recall@20 {tr['best_valid_recall']:.4f}), {tr['train_seconds']:.1f}s of training"
    )
    out = Path(args.out)
    print(f"\nexample recalls from the bundle (graphrec recall --bundle {out / 'bundle'} --users ...)")
    ex_rows = []
    for ex in report["examples"]:
        for rank, (note, ch, sc) in enumerate(zip(ex["notes"], ex["channels"], ex["scores"], strict=True)):
            ex_rows.append([ex["user"] if rank == 0 else "", rank + 1, note, sc, ch])
    print(format_table(["user", "rank", "note", "score", "channel"], ex_rows))
    nu = report["new_user"]
    print(f"\na user the bundle has never seen, given 3 clicks at request time ({', '.join(nu['history'])}):")
    print(
        format_table(
            ["rank", "note", "score", "channel"],
            [
                [i + 1, n, sc, ch]
                for i, (n, sc, ch) in enumerate(zip(nu["notes"], nu["scores"], nu["channels"], strict=True))
            ],
        )
    )
    cs = report["cold_start"]
    note = cs["note"]
    print(f"\ncold start: first audience of a new note by {note['author_id']} tagged {note['tags']}: {note['title']!r}")
    print(
        format_table(
            ["user", "score", "fallback"],
            [[a["user_id"], a["score"], "yes" if a["fallback"] else "no"] for a in cs["audience"]],
        )
    )
    deb = steps["weights"].get("debias")
    if deb:
        refs = ", ".join(f"{name} {v['new_effect']:+.4f}" for name, v in deb["refutations"].items())
        print(f"\nDoWhy: ATE of a note being popular on engagement {deb['estimate_ate']:+.4f}; refutations: {refs}")
    print("\n" + _steps_table(steps))
    print(f"\nwrote {out / 'bundle'} (serving bundle), {out / 'metrics.json'} and each step's output under {out}/")
    print(
        f"serve it: graphrec serve --bundle {out / 'bundle'} [--channels {out / 'evaluate' / 'levers.json'}] "
        "(with --channels: the 'recall engine + levers' row; without: 'all channels')"
    )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from graphrec._validation import load_config
    from graphrec.jobs.chain import ChainConfig, run

    config = load_config(ChainConfig, args.config)
    steps = run(config)
    print(_steps_table(steps))
    if "evaluate" in steps:
        k = config.k
        cols = [f"recall@{k}", f"ndcg@{k}", f"long_tail_recall@{k}", f"coverage@{k}", f"gini@{k}"]
        rows = [[name, *(m[c] for c in cols)] for name, m in steps["evaluate"]["metrics"].items()]
        print(format_table(["model", *cols], rows))
    print(f"work directory: {config.work}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from graphrec._validation import load_config
    from graphrec.jobs.train import TrainJobConfig, run

    config = load_config(TrainJobConfig, args.config)
    overrides = {k: v for k, v in (("workers", args.workers), ("engine", args.engine)) if v is not None}
    if overrides:
        config = dataclasses.replace(config, **overrides)
    report = run(config)
    print(
        f"trained on {report['workers']} worker(s) ({report['engine']}, {report['threads_per_worker']} thread(s) each): "
        f"{report['epochs_run']} epochs (best {report['best_epoch']}, valid recall@20 {report['best_valid_recall']:.4f}) "
        f"in {report['seconds']:.1f}s -> {config.out}"
    )
    return 0


def _cmd_build_graph(args: argparse.Namespace) -> int:
    from graphrec.jobs.build_graph import BuildGraphConfig, run

    _graph, report = run(_config(BuildGraphConfig, args))
    print(
        f"{report['rows']:,} rows read in {report['read_seconds']}s "
        f"({report['duplicates_collapsed']} duplicates collapsed, {report['unknown_events_dropped']} unknown events dropped); "
        f"graph built in {report['build_seconds']}s\n"
    )
    print(_graph_tables(report))
    print(f"\nwrote {args.out}")
    return 0


def _recall_table(res: Any, queries: list[str], what: str) -> str:
    rows = []
    for r, q in enumerate(queries):
        for rank in range(res.ids.shape[1]):
            if res.scores[r, rank] == float("-inf"):
                break
            rows.append(
                [q if rank == 0 else "", rank + 1, res.ids[r, rank], float(res.scores[r, rank]), res.channels[r, rank]]
            )
        if res.fallback[r]:
            rows.append([q, "-", "(unknown: popularity fallback)" if what == "user" else "(unknown note)", "", ""])
    return format_table([what, "rank", "note" if what == "user" else "result", "score", "channel"], rows)


def _channels(path: str | None) -> Any:
    """``--channels``: the :class:`~graphrec.recall.ChannelConfig` in a YAML/TOML/JSON file, or None."""
    from graphrec._validation import load_config
    from graphrec.recall import ChannelConfig

    return None if path is None else load_config(ChannelConfig, path)


def _add_channels_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--channels",
        help="channel weights and levers: ChannelConfig fields in a .yaml/.toml/.json file, e.g. the chain's "
        "WORK/evaluate/levers.json (default: the plain engine)",
    )


def _cmd_recall(args: argparse.Namespace) -> int:
    from graphrec.recall import RecallEngine

    engine = RecallEngine.load(args.bundle, _channels(args.channels))
    queries = [u.strip() for u in args.users.split(",") if u.strip()]
    if not queries:
        print("graphrec recall: error: --users is empty", file=sys.stderr)
        return 2
    history = None
    if args.history:
        notes = [n.strip() for n in args.history.split(",") if n.strip()]
        history = [notes] * len(queries)
    res = engine.recall(queries, args.k, history=history, exclude_seen=not args.include_seen)
    print(_recall_table(res, queries, "user"))
    if res.unknown_history is not None and res.unknown_history.any():
        print(f"({int(res.unknown_history[0])} --history note id(s) are not in the bundle; ignored)")
    return 0


def _add_text_vectors_option(p: argparse.ArgumentParser) -> None:
    """``--text-vectors`` of the commands that take new notes (read by :func:`_text_vectors`)."""
    p.add_argument(
        "--text-vectors",
        help="the new notes' precomputed text vectors, one row per note in file order (.npy, from "
        "graphrec.graph.note_text_vectors); without it a bundle whose encoder uses text runs the text model",
    )


def _text_vectors(path: str | None) -> Any:
    """``--text-vectors``: a 2-d float ``.npy`` (never unpickled), or None."""
    import numpy as np

    from graphrec.exceptions import ArtifactError

    if path is None:
        return None
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a readable .npy array of text vectors ({exc})") from None
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise ArtifactError(f"{path}: text vectors must be a 2-d numeric array; got {vectors.dtype} {vectors.shape}")
    return vectors


def _cmd_coldstart(args: argparse.Namespace) -> int:
    from graphrec._atomic import check_not_overwriting_inputs
    from graphrec._validation import check_int
    from graphrec.coldstart import ColdStart
    from graphrec.io import read_notes, table_format, write_table

    check_int("--budget", args.budget, minimum=1)  # before seconds of loading
    if Path(args.out).is_dir():
        raise InvalidParameterError(f"{args.out}: is a directory; expected a file path (.csv or .parquet)")
    table_format(args.out)
    check_not_overwriting_inputs([args.out], [p for p in (args.notes, args.bundle, args.text_vectors) if p])
    vectors = _text_vectors(args.text_vectors)
    cold = ColdStart.from_bundle(args.bundle)
    notes = read_notes(args.notes)
    table = cold.plan(notes, args.budget, text_vectors=vectors)
    write_table(table, args.out)
    n_fallback = int(table.drop_duplicates("note_id")["fallback"].sum()) if len(table) else 0
    print(f"{args.out}: {len(table)} rows for {len(notes)} note(s), {n_fallback} on the no-side-info fallback")
    return 0


def _cmd_refresh(args: argparse.Namespace) -> int:
    from graphrec._atomic import check_output_directory
    from graphrec.index.bundle import BUNDLE_KIND
    from graphrec.io import read_interactions, read_notes
    from graphrec.recall import RecallEngine

    if not args.interactions and not args.notes:
        raise InvalidParameterError("give --interactions and/or --notes: nothing to refresh")
    if args.text_vectors and not args.notes:
        raise InvalidParameterError("--text-vectors belongs to --notes: give the new notes too")
    vectors = _text_vectors(args.text_vectors)
    out = Path(args.out or args.bundle)
    check_output_directory(out, BUNDLE_KIND)
    engine = RecallEngine.load(args.bundle)
    report = []
    if args.notes:
        engine = engine.add_notes(read_notes(args.notes), text_vectors=vectors)
        report.append(f"{engine.last_update['notes']:,} new notes ({engine.last_update['fallback']} without side-info)")
    if args.interactions:
        engine = engine.update(read_interactions(args.interactions))
        u = engine.last_update
        report.append(
            f"{u['events']:,} events from {u['users']:,} users ({u['unknown_notes']:,} on unknown notes ignored)"
        )
    engine.save(out)
    print(f"refreshed {out}: {'; '.join(report)}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    from graphrec._threads import limit_native_threads
    from graphrec._validation import check_int

    check_int("--workers", args.workers, minimum=1)
    check_int("--port", args.port, minimum=0)
    check_int("--threads", args.threads, minimum=1)
    # Before numba, faiss and torch load: they size the pools of threads started later (the
    # server's request threads) from the environment they saw when they loaded.
    limit_native_threads(args.threads)
    from graphrec.index import load_bundle

    _channels(args.channels)  # refuse a bad channel file or bundle with one line, before the server starts
    load_bundle(args.bundle)
    try:
        import uvicorn
    except ImportError:
        from graphrec.exceptions import MissingDependencyError

        raise MissingDependencyError("the service needs FastAPI and uvicorn: pip install 'graphrec[serve]'") from None
    os.environ["GRAPHREC_BUNDLE"] = str(Path(args.bundle).resolve())
    if args.watch:
        os.environ["GRAPHREC_WATCH"] = str(args.watch)
    os.environ["GRAPHREC_THREADS"] = str(args.threads)
    if args.channels:
        os.environ["GRAPHREC_CHANNELS"] = str(Path(args.channels).resolve())
    uvicorn.run(
        "graphrec.serve.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info" if args.verbose else "warning",
    )
    return 0


def _cmd_graph_info(args: argparse.Namespace) -> int:
    from graphrec.graph import HeteroGraph

    graph = HeteroGraph.load(args.graph)
    if args.json:
        print(json.dumps({**graph.summary(), "meta": graph.meta}, indent=2, default=str))
    else:
        print(_graph_tables(graph.summary()))
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from graphrec._atomic import atomic_directory, check_output_directory
    from graphrec.testing import make_ugc_dataset

    out = Path(args.out)
    check_output_directory(out, "graphrec.synthetic")
    data = make_ugc_dataset(
        n_users=args.users,
        n_notes=args.notes,
        n_engagements=args.engagements,
        impressions_per_engagement=args.impressions,
        seed=args.seed,
    )
    with atomic_directory(out, kind="graphrec.synthetic") as tmp:
        data.interactions.to_parquet(tmp / "interactions.parquet", index=False, compression="zstd")
        notes = data.notes.assign(tags=data.notes["tags"].map(list))
        notes.to_json(tmp / "notes.jsonl", orient="records", lines=True, force_ascii=False)
        data.users.to_csv(tmp / "users.csv", index=False)
    print(
        f"wrote {len(data.interactions):,} interactions, {len(data.notes):,} notes, {len(data.users):,} users to {out}"
    )
    return 0


def _cmd_swing(args: argparse.Namespace) -> int:
    from graphrec.jobs.swing import SwingJobConfig, run

    report = run(_config(SwingJobConfig, args))
    rows = f"{report['rows_in']:,} rows in, " if report["rows_in"] is not None else ""
    print(f"swing ({args.engine}): {rows}{report['pairs_out']:,} neighbour rows in {report['seconds']}s -> {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    from graphrec import __version__
    from graphrec.weights.swing import SwingConfig

    parser = argparse.ArgumentParser(prog="graphrec", description="Graph-based recall for UGC feeds.")
    parser.add_argument("--version", action="version", version=f"graphrec {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v logs progress (INFO); -vv also debug and libraries' logs"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the end-to-end demo on the bundled sample")
    p.add_argument("--out", default="artifacts/demo", help="output directory (default: artifacts/demo)")
    p.add_argument("--data", default=None, help="sample directory (default: data/sample)")
    p.add_argument("-k", "--k", type=int, default=20, help="cut-off of the metrics (default: 20)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("run", help="run the batch chain (ingest, graph, weights, train, bundle, evaluate)")
    p.add_argument("config", help="YAML/TOML/JSON config (see graphrec/jobs/chain.py and pipelines/configs/)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("train", help="train the GNN on a saved graph, in one process or data-parallel on N workers")
    p.add_argument(
        "config", help="YAML/TOML/JSON config (graph, out, gnn, workers, engine; see graphrec/jobs/train.py)"
    )
    p.add_argument("--workers", type=int, default=None, help="data-parallel worker processes (overrides the config)")
    p.add_argument("--engine", choices=("torchrun", "spark"), default=None, help="launcher for workers > 1")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("build-graph", help="validate logs and side-info and save the graph")
    p.add_argument("--interactions", required=True, help="interaction log (.parquet, .csv, .jsonl)")
    p.add_argument("--notes", help="note side-info (.parquet, .csv, .jsonl)")
    p.add_argument("--users", help="user side-info (.parquet, .csv, .jsonl)")
    p.add_argument("--out", required=True, help="output graph directory (replaced atomically)")
    p.add_argument("--weighting", choices=("sum", "log1p", "binary"), default="sum")
    p.add_argument("--unknown-events", choices=("error", "drop"), default="error")
    p.set_defaults(func=_cmd_build_graph)

    p = sub.add_parser("swing", help="Swing note-note similarity from user_id, note_id pairs")
    p.add_argument("--interactions", required=True, help="table with user_id, note_id (.parquet, .csv, .jsonl)")
    p.add_argument("--out", required=True, help="neighbour table note_id, neighbour_id, score (.parquet or .csv)")
    _add_options(p, SwingConfig)
    p.add_argument("--engine", choices=("local", "spark"), default="local")
    p.set_defaults(func=_cmd_swing)

    p = sub.add_parser("recall", help="recall notes for users from a serving bundle")
    p.add_argument("--bundle", required=True, help="bundle directory")
    p.add_argument("--users", required=True, help="comma-separated user ids")
    p.add_argument("-k", "--k", type=int, default=10)
    p.add_argument("--include-seen", action="store_true", help="keep notes the user has engaged with")
    p.add_argument(
        "--history", default=None, help="comma-separated note ids each user engaged with since the build, oldest first"
    )
    _add_channels_option(p)
    p.set_defaults(func=_cmd_recall)

    p = sub.add_parser("coldstart", help="seed audiences for new notes (bundle with a GNN note encoder)")
    p.add_argument("--bundle", required=True, help="bundle directory (made by a GNN with side-info)")
    p.add_argument("--notes", required=True, help="new notes: note_id, author_id, tags, title, text, category")
    p.add_argument("--budget", type=int, required=True, help="users per note")
    p.add_argument("--out", required=True, help="note_id, user_id, score, round, fallback (.csv or .parquet)")
    _add_text_vectors_option(p)
    p.set_defaults(func=_cmd_coldstart)

    p = sub.add_parser("refresh", help="apply new events and notes to a bundle without retraining (live updates)")
    p.add_argument("--bundle", required=True, help="bundle directory (updated in place unless --out)")
    p.add_argument("--interactions", help="new events (.parquet, .csv, .jsonl)")
    p.add_argument("--notes", help="new notes' side-info (needs a bundle with a note encoder)")
    _add_text_vectors_option(p)
    p.add_argument("--out", help="write the refreshed bundle here instead")
    p.set_defaults(func=_cmd_refresh)

    p = sub.add_parser("serve", help="serve recall over HTTP/JSON from a bundle (FastAPI + uvicorn)")
    p.add_argument("--bundle", required=True, help="bundle directory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="server processes (each loads the bundle)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="native (BLAS/OpenMP) threads per server process; scale with --workers (default 1)",
    )
    p.add_argument("--watch", type=float, default=None, help="reload when the bundle changes, polling every N s")
    _add_channels_option(p)
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("graph-info", help="summarise a saved graph")
    p.add_argument("graph", help="graph directory")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_graph_info)

    p = sub.add_parser("synth", help="write a synthetic UGC dataset with planted structure")
    p.add_argument("--out", required=True)
    p.add_argument("--users", type=int, default=2_000)
    p.add_argument("--notes", type=int, default=5_000)
    p.add_argument("--engagements", type=int, default=60_000)
    p.add_argument("--impressions", type=float, default=0.0, help="impression rows per engagement")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_synth)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``graphrec`` command."""
    args = build_parser().parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except GraphRecError as exc:
        print(f"graphrec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the system refused a read or write (permissions, disk full, ...)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"graphrec {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
