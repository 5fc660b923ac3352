"""The batch chain: ingest → graph → weights → train → bundle → evaluate (``graphrec run CONFIG``).

Each step is a function from the config and the work directory to a report, run through
:func:`_run_step`, which makes every step

* **atomic**: outputs are written to a temporary directory that replaces ``WORK/<step>`` whole
  only when the step succeeded, so a killed run never leaves a half-written step behind;
* **recorded**: ``WORK/<step>/_step.json`` holds the SHA-256 of every input file, the step's
  parameters (and their hash), the report and the time taken;
* **idempotent**: a step whose recorded inputs and parameters equal the current ones is skipped
  ("up to date"); a changed input or parameter reruns it and everything downstream (a
  downstream step's inputs include the upstream ``_step.json``);
* **current or refused**: a step left out of ``steps`` but upstream of one that runs must be up to
  date (its recorded inputs and parameters equal today's), else the chain refuses instead of
  feeding a stale model to a fresh split;
* **exclusive**: one ``run`` per work directory at a time (``WORK/.graphrec.lock``; a second run
  fails at once naming the holder), and no input may lie inside a step's output directory;
* **resumable**: after a kill, finished steps are skipped and the interrupted one restarts;
  GNN training additionally resumes from its last epoch (checkpoints in
  ``WORK/_checkpoints/train-<params hash>``).

Steps and outputs::

    ingest/    train.parquet, test.parquet (temporal split), notes.parquet, users.parquet
    graph/     the training graph (a HeteroGraph directory)
    weights/   graph + Swing ("note", "similar", "note"); debias_report.json (DoWhy)
    train/     embeddings.npz (user, note, tag), encoder.npz, training.json (graphrec.jobs.train's
               outputs; ``train_workers`` > 1 trains data-parallel with ``train_engine``)
    bundle/    the serving bundle (RecallEngine.load / ColdStart.from_bundle open it)
               (each directory also holds its _step.json)
    evaluate/  metrics.json: GNN, recall engine (plain and with the `levers`), popularity, ItemCF, Swing
               on the test split, with diversity, novelty and creator-exposure metrics;
               levers.json: the evaluated `levers`, to serve them
               (``graphrec serve --bundle WORK/bundle --channels WORK/evaluate/levers.json``)

A YAML config holds :class:`ChainConfig`'s fields; ``gnn`` is a mapping of
:class:`graphrec.model.GNNConfig` overrides.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec._atomic import atomic_directory, atomic_file, check_not_overwriting_inputs, exclusive, sha256_file
from graphrec._manifest import config_hash
from graphrec._validation import check_choice, check_float, check_int, from_mapping
from graphrec.exceptions import ArtifactError, InvalidParameterError

__all__ = ["STEPS", "ChainConfig", "run"]

logger = logging.getLogger("graphrec.jobs")

STEPS = ("ingest", "graph", "weights", "train", "bundle", "evaluate")
_STAMP = "_step.json"


@dataclass(frozen=True)
class ChainConfig:
    """Options of the chain (a YAML file of these keys; paths relative to the working directory)."""

    interactions: str
    work: str
    notes: str | None = None
    users: str | None = None
    test_fraction: float = 0.2
    k: int = 20
    swing_top_k: int = 100
    debias: bool = True
    refute_simulations: int = 3
    #: "raw" (summed event weights) or "debiased" (the DoWhy/IPS weights) on user–note edges.
    gnn_edge_weights: str = "raw"
    use_text: bool = True
    #: The text-embedding cache (``.npz``: all-MiniLM-L6-v2 vectors keyed by the SHA-256 of each
    #: text; default ``WORK/_cache/text.npz``). Point runs on several work directories (one per
    #: day, say) at one file, and notes embedded before are not embedded again: the text model is
    #: most of what a run on the sample costs. Not a parameter of any step (the vectors are the same).
    text_cache: str | None = None
    gnn: dict[str, Any] = field(default_factory=dict)
    #: Data-parallel training (:mod:`graphrec.jobs.train`): worker processes and their launcher.
    train_workers: int = 1
    train_engine: str = "torchrun"
    itemcf_alpha: float = 0.2
    #: The decentralised-distribution levers (``ChannelConfig`` fields) of the evaluated operating
    #: point, shown next to the plain models (benchmarks/README.md, decentralised.py).
    levers: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_LEVERS))
    steps: tuple[str, ...] = STEPS

    def __post_init__(self) -> None:
        check_float("test_fraction", self.test_fraction, minimum=0.0, maximum=0.9, exclusive_minimum=True)
        check_int("k", self.k, minimum=1)
        check_int("swing_top_k", self.swing_top_k, minimum=1)
        check_choice("gnn_edge_weights", self.gnn_edge_weights, ("raw", "debiased"))
        check_int("train_workers", self.train_workers, minimum=1)
        check_choice("train_engine", self.train_engine, ("torchrun", "spark"))
        if self.gnn_edge_weights == "debiased" and not self.debias:
            raise InvalidParameterError("gnn_edge_weights='debiased' needs debias: true")
        if not isinstance(self.steps, tuple | list) or not all(isinstance(s, str) for s in self.steps):
            raise InvalidParameterError(f"`steps` must be a list of step names from {list(STEPS)}; got {self.steps!r}")
        if not isinstance(self.debias, bool) or not isinstance(self.use_text, bool):
            raise InvalidParameterError("`debias` and `use_text` must be true or false")
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise InvalidParameterError(f"unknown step(s) {unknown}; the chain has {list(STEPS)}")
        from graphrec.model.gnn import GNNConfig

        from_mapping(GNNConfig, self.gnn, source="gnn")  # fail before any work on a bad GNN option
        from graphrec.recall import ChannelConfig

        from_mapping(ChannelConfig, self.levers, source="levers")


#: The operating point the evaluation shows: a popularity penalty on predicted exposure with DPP,
#: the setting of ``benchmarks/decentralised.py``'s grid that reaches furthest into the tail while
#: staying within 2% recall@20 loss on every real dataset (Last.fm-2k, CiteULike-a, Gowalla); the
#: niche scaling reaches further than the uniform one there (benchmarks/README.md).
DEFAULT_LEVERS: dict[str, Any] = {
    "popularity_penalty": 0.3,
    "popularity_basis": "exposure",
    "popularity_penalty_scaling": "niche",
    "diversity": "dpp",
    "diversity_weight": 0.05,
}


def _hash(obj: Any) -> str:
    return config_hash(obj)[:16]


def _inputs(paths: list[Path]) -> dict[str, str]:
    out = {}
    for p in paths:
        if not p.is_file():
            raise InvalidParameterError(f"{p}: input file not found")
        out[str(p)] = sha256_file(p)
    return out


def _spec(cfg: ChainConfig, work: Path, step: str) -> tuple[list[Path], dict[str, Any]]:
    """The input files and the parameters of ``step``: what its stamp records and compares."""
    from graphrec.model.gnn import GNNConfig

    stamps = {s: work / s / _STAMP for s in STEPS}
    params: dict[str, Any]
    if step == "ingest":
        return [Path(p) for p in (cfg.interactions, cfg.notes, cfg.users) if p], {"test_fraction": cfg.test_fraction}
    if step == "graph":
        return [stamps["ingest"]], {}
    if step == "weights":
        params = {"swing_top_k": cfg.swing_top_k, "debias": cfg.debias, "refute_simulations": cfg.refute_simulations}
        return [stamps["graph"]], params
    if step == "train":
        params = {
            "gnn": asdict(GNNConfig(**cfg.gnn)),
            "edge_weights": cfg.gnn_edge_weights,
            "use_text": cfg.use_text,
            "workers": cfg.train_workers,  # the shard count changes what training draws
        }
        return [stamps["weights"]], params
    if step == "bundle":
        return [stamps["train"], stamps["weights"]], {}
    params = {"k": cfg.k, "itemcf_alpha": cfg.itemcf_alpha, "swing_top_k": cfg.swing_top_k}
    return [stamps["ingest"], stamps["train"], stamps["bundle"]], params


def _current(name: str, work: Path, record: dict[str, Any]) -> dict[str, Any] | None:
    """The stamp of ``WORK/name`` if it records the same inputs and parameters as ``record``."""
    stamp = work / name / _STAMP
    if not stamp.is_file():
        return None
    try:
        old = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or "report" not in old:
        return None
    same = old.get("inputs") == record["inputs"] and old.get("params_hash") == record["params_hash"]
    return old if same else None


def _record(cfg: ChainConfig, work: Path, name: str) -> dict[str, Any]:
    inputs, params = _spec(cfg, work, name)
    return {"inputs": _inputs(inputs), "params": params, "params_hash": _hash(params)}


def _run_step(cfg: ChainConfig, work: Path, name: str, body: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Run ``body(tmp_dir)`` unless ``WORK/name/_step.json`` records the same inputs and params."""
    out = work / name
    record = _record(cfg, work, name)
    old = _current(name, work, record)
    if old is not None:
        logger.info("%s: up to date, skipped", name)
        return {**old["report"], "skipped": True}
    logger.info("%s: running", name)
    t = time.perf_counter()
    with atomic_directory(out, kind=f"graphrec.step:{name}") as tmp:
        report = body(tmp)
        record.update(report=report, seconds=round(time.perf_counter() - t, 3), step=name)
        (tmp / _STAMP).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    logger.info("%s: done in %.1fs", name, record["seconds"])
    return {**report, "skipped": False, "seconds": record["seconds"]}


# ---- steps ------------------------------------------------------------------------------------


def _ingest(cfg: ChainConfig, work: Path) -> dict[str, Any]:
    from graphrec.evaluate import temporal_split
    from graphrec.io import read_interactions, read_notes, read_users, write_table

    def body(tmp: Path) -> dict[str, Any]:
        interactions = read_interactions(cfg.interactions)
        split = temporal_split(interactions, test_fraction=cfg.test_fraction)
        write_table(split.train, tmp / "train.parquet")
        write_table(split.test, tmp / "test.parquet")
        report: dict[str, Any] = {
            "rows": len(interactions),
            "duplicates_collapsed": int(interactions.attrs.get("n_duplicates_collapsed", 0)),
            "train_rows": len(split.train),
            "test_rows": len(split.test),
            "split": {"kind": split.kind, **split.params},
        }
        if cfg.notes:
            notes = read_notes(cfg.notes)
            notes = notes.assign(tags=notes["tags"].map(list))
            write_table(notes, tmp / "notes.parquet")
            report["notes"] = len(notes)
        if cfg.users:
            users = read_users(cfg.users)
            write_table(users, tmp / "users.parquet")
            report["users"] = len(users)
        return report

    return _run_step(cfg, work, "ingest", body)


def _tables(work: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    from graphrec.io import read_interactions, read_notes, read_users

    d = work / "ingest"
    notes = read_notes(d / "notes.parquet") if (d / "notes.parquet").exists() else None
    users = read_users(d / "users.parquet") if (d / "users.parquet").exists() else None
    return read_interactions(d / "train.parquet"), read_interactions(d / "test.parquet"), notes, users


def _graph(cfg: ChainConfig, work: Path) -> dict[str, Any]:
    from graphrec.graph import build_graph

    def body(tmp: Path) -> dict[str, Any]:
        train, _, notes, users = _tables(work)
        graph = build_graph(train, notes, users=users)
        graph.save(tmp)
        return graph.summary()

    return _run_step(cfg, work, "graph", body)


def _exposures(train: pd.DataFrame, graph: Any) -> sp.csr_matrix | None:
    """Impressions (events of weight 0) of the training log as a users x notes matrix in the
    graph's index space, for the debiaser; None when the log has none (it then samples exposures)."""
    from graphrec.io.interactions import engaged_mask

    shown = train.loc[~engaged_mask(train, graph.meta.get("event_weights"))]
    users = graph.id_map("user").index(shown["user_id"].to_numpy(), missing="ignore")
    notes = graph.id_map("note").index(shown["note_id"].to_numpy(), missing="ignore")
    ok = (users >= 0) & (notes >= 0)
    if not ok.any():
        return None
    shape = (graph.num_nodes("user"), graph.num_nodes("note"))
    return sp.csr_matrix((np.ones(int(ok.sum()), dtype=np.float32), (users[ok], notes[ok])), shape=shape)


def _weights(cfg: ChainConfig, work: Path) -> dict[str, Any]:
    from graphrec.graph import ENGAGES, HeteroGraph
    from graphrec.weights import PopularityDebiaser, with_swing

    def body(tmp: Path) -> dict[str, Any]:
        graph = with_swing(HeteroGraph.load(work / "graph"), top_k=cfg.swing_top_k)
        graph.save(tmp / "graph")
        report: dict[str, Any] = {"swing_pairs": graph.num_edges(("note", "similar", "note"))}
        if cfg.debias:
            train, _, notes, _ = _tables(work)
            debiaser = PopularityDebiaser(refute_simulations=cfg.refute_simulations, seed=0).fit(
                graph, notes=notes, exposures=_exposures(train, graph)
            )
            debiaser.write_report(tmp / "debias_report.json")
            graph.with_relation(ENGAGES, debiaser.edge_weights_).save(tmp / "graph_debiased")
            report["debias"] = {k: debiaser.report_[k] for k in ("estimate_ate", "refutations")}
            report["debias"]["non_engaged_from"] = debiaser.report_["units"]["non_engaged_from"]
        return report

    return _run_step(cfg, work, "weights", body)


def _train(cfg: ChainConfig, work: Path, *, show_progress: bool | None) -> dict[str, Any]:
    from graphrec.graph import HeteroGraph
    from graphrec.graph.side_info import encode_texts, note_texts
    from graphrec.jobs.train import TrainJobConfig
    from graphrec.jobs.train import run as run_training

    _, params = _spec(cfg, work, "train")
    checkpoints = work / "_checkpoints" / f"train-{_hash([params, sha256_file(work / 'weights' / _STAMP)])}"

    def body(tmp: Path) -> dict[str, Any]:
        name = "graph_debiased" if cfg.gnn_edge_weights == "debiased" else "graph"
        graph_dir = work / "weights" / name
        _, _, notes, _ = _tables(work)
        text_path = None
        if cfg.use_text and notes is not None:
            by_id = notes.set_index("note_id").reindex(HeteroGraph.load(graph_dir).id_map("note").ids)
            texts = note_texts(by_id)
            if any(texts):
                cache = Path(cfg.text_cache) if cfg.text_cache else work / "_cache" / "text.npz"
                text = encode_texts(texts, cache=cache, show_progress=show_progress)
                text_path = work / "_cache" / f"text-{name}.npy"
                with atomic_file(text_path) as f, open(f, "wb") as fh:
                    np.save(fh, text)
        job = TrainJobConfig(
            graph=str(graph_dir),
            out=str(tmp / "model"),
            gnn=dict(cfg.gnn),
            text=str(text_path) if text_path else None,
            workers=cfg.train_workers,
            engine=cfg.train_engine,
            checkpoints=str(checkpoints),
        )
        report = run_training(job)
        for f in (tmp / "model").iterdir():  # embeddings.npz, encoder.npz, training.json
            f.rename(tmp / f.name)
        (tmp / "model").rmdir()
        return {k: report[k] for k in ("epochs_run", "best_epoch", "best_valid_recall", "train_seconds", "workers")}

    return _run_step(cfg, work, "train", body)


def _bundle(cfg: ChainConfig, work: Path) -> dict[str, Any]:
    from graphrec.graph import HeteroGraph
    from graphrec.index.encoder import NoteEncoder
    from graphrec.jobs.bundle import bundle_from_embeddings

    def body(tmp: Path) -> dict[str, Any]:
        graph = HeteroGraph.load(work / "weights" / "graph")  # with the Swing relation of the weights step
        train, _, _, _ = _tables(work)
        with np.load(work / "train" / "embeddings.npz", allow_pickle=False) as z:
            embeddings = {k: z[k] for k in z.files}
        encoder_path = work / "train" / "encoder.npz"
        bundle_from_embeddings(
            graph,
            tmp,
            note_embeddings=embeddings["note"],
            user_embeddings=embeddings["user"],
            tag_embeddings=embeddings.get("tag"),
            interactions=train,
            encoder=NoteEncoder.load(encoder_path) if encoder_path.exists() else None,
            config={"embeddings": "gnn", "chain": asdict(cfg)},
        )
        return {"users": graph.num_nodes("user"), "notes": graph.num_nodes("note")}

    return _run_step(cfg, work, "bundle", body)


def _evaluate(cfg: ChainConfig, work: Path, *, show_progress: bool | None) -> dict[str, Any]:
    from graphrec.evaluate import evaluate_scorer, relevance_matrix
    from graphrec.graph import HeteroGraph, side_info_from_graph
    from graphrec.model import ItemCFRecommender, MostPopular, SwingRecommender
    from graphrec.recall import ChannelConfig, RecallEngine
    from graphrec.weights import SwingConfig

    def body(tmp: Path) -> dict[str, Any]:
        graph = HeteroGraph.load(work / "graph")
        train_df, test_df, _, _ = _tables(work)
        users, notes = graph.id_map("user"), graph.id_map("note")
        train, _ = relevance_matrix(train_df, users, notes)
        test, dropped = relevance_matrix(test_df, users, notes)
        with np.load(work / "train" / "embeddings.npz", allow_pickle=False) as z:
            ue, ne = z["user"], z["note"]
        ks = (cfg.k,)
        # Diversity (ILAD/ILMD over the GNN's note embeddings), novelty and creator exposure too.
        beyond = {"note_embeddings": ne, "note_authors": side_info_from_graph(graph).authors}
        results: dict[str, dict[str, float]] = {}
        baselines: dict[str, Any] = {
            "popularity": MostPopular(),
            f"itemcf (alpha={cfg.itemcf_alpha})": ItemCFRecommender(top_k=cfg.swing_top_k, alpha=cfg.itemcf_alpha),
            "swing": SwingRecommender(SwingConfig(top_k=cfg.swing_top_k)),
        }
        for name, model in baselines.items():
            results[name] = evaluate_scorer(model.fit(train), train, test, ks=ks, show_progress=show_progress, **beyond)
        results["gnn (embeddings)"] = evaluate_scorer(
            lambda b: ue[b] @ ne.T, train, test, ks=ks, show_progress=show_progress, **beyond
        )
        engine = RecallEngine.load(work / "bundle")
        results["recall engine (all channels)"] = evaluate_scorer(
            engine.scorer(users.ids, cfg.k), train, test, ks=ks, show_progress=show_progress, **beyond
        )
        levers = RecallEngine(engine.bundle, from_mapping(ChannelConfig, cfg.levers, source="levers"))
        results["recall engine + levers"] = evaluate_scorer(
            levers.scorer(users.ids, cfg.k), train, test, ks=ks, show_progress=show_progress, **beyond
        )
        report = {"metrics": results, "test_pairs_dropped": dropped, "k": cfg.k}
        (tmp / "metrics.json").write_text(json.dumps(report, indent=2, sort_keys=True))
        (tmp / "levers.json").write_text(json.dumps(cfg.levers, indent=2, sort_keys=True))
        return report

    return _run_step(cfg, work, "evaluate", body)


def run(config: ChainConfig, *, show_progress: bool | None = None) -> dict[str, Any]:
    """Run the chain's ``config.steps`` in order; returns each step's report (see the docstring)."""
    cfg = config
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    bodies: dict[str, Callable[[], dict[str, Any]]] = {
        "ingest": lambda: _ingest(cfg, work),
        "graph": lambda: _graph(cfg, work),
        "weights": lambda: _weights(cfg, work),
        "train": lambda: _train(cfg, work, show_progress=show_progress),
        "bundle": lambda: _bundle(cfg, work),
        "evaluate": lambda: _evaluate(cfg, work, show_progress=show_progress),
    }
    check_not_overwriting_inputs([work / s for s in STEPS], [cfg.interactions, cfg.notes, cfg.users, cfg.text_cache])
    last = max(STEPS.index(s) for s in cfg.steps) if cfg.steps else -1
    reports: dict[str, Any] = {}
    with exclusive(work, what="work directory"):
        for step in STEPS[: last + 1]:
            if step in cfg.steps:
                reports[step] = bodies[step]()
                continue
            if not (work / step / _STAMP).is_file():
                wanted = [s for s in cfg.steps if STEPS.index(s) > STEPS.index(step)]
                raise ArtifactError(f"{work}: step {wanted[0]!r} needs the output of {step!r}; run that step first")
            if _current(step, work, _record(cfg, work, step)) is None:
                raise ArtifactError(
                    f"{work / step}: out of date (its inputs or options changed since it ran); "
                    f"add {step!r} to `steps` (or run the whole chain) before the steps that use it"
                )
    return reports
