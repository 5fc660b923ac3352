"""The batch chain: runs end to end, skips up-to-date steps, reruns on change, survives a crash."""

from __future__ import annotations

import json

import pytest

import graphrec.jobs.chain as chain
from graphrec._validation import load_config
from graphrec.exceptions import ArtifactError, InvalidParameterError
from graphrec.recall import RecallEngine


@pytest.fixture(scope="module")
def files(small_ugc, tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    small_ugc.interactions.to_parquet(d / "interactions.parquet")
    small_ugc.notes.to_json(d / "notes.jsonl", orient="records", lines=True)
    return d


def _config(files, work, **extra):
    base = {
        "interactions": str(files / "interactions.parquet"),
        "notes": str(files / "notes.jsonl"),
        "work": str(work),
        "use_text": False,
        "refute_simulations": 1,
        "swing_top_k": 20,
        "gnn": {"dim": 16, "epochs": 3, "batch_size": 512},
    }
    return chain.ChainConfig(**{**base, **extra})


def test_chain_runs_skips_and_reruns(files, tmp_path):
    cfg = _config(files, tmp_path / "w")
    first = chain.run(cfg, show_progress=False)
    assert list(first) == list(chain.STEPS) and not any(r["skipped"] for r in first.values())
    for step in chain.STEPS:
        record = json.loads((tmp_path / "w" / step / "_step.json").read_text())
        assert record["step"] == step and "params_hash" in record
    assert RecallEngine.load(tmp_path / "w" / "bundle").recall(["u0"], k=3).ids.shape == (1, 3)
    assert "gnn (embeddings)" in first["evaluate"]["metrics"]
    # The log's impressions reach the debiaser as exposures (no sampled stand-ins).
    assert first["weights"]["debias"]["non_engaged_from"] == "exposures without engagement"
    again = chain.run(cfg, show_progress=False)
    assert all(r["skipped"] for r in again.values())
    # A new training parameter reruns train and everything after it, not the steps before.
    changed = chain.run(
        _config(files, tmp_path / "w", gnn={"dim": 16, "epochs": 2, "batch_size": 512}), show_progress=False
    )
    assert [s for s, r in changed.items() if not r["skipped"]] == ["train", "bundle", "evaluate"]


def test_chain_trains_data_parallel_when_asked(files, tmp_path):
    """``train_workers`` in the pipeline config runs the train step on torchrun workers."""
    cfg = _config(files, tmp_path / "w", train_workers=2, steps=("ingest", "graph", "weights", "train"))
    report = chain.run(cfg, show_progress=False)["train"]
    assert report["workers"] == 2 and report["epochs_run"] == 3
    meta = json.loads((tmp_path / "w" / "train" / "training.json").read_text())
    assert meta["report"]["engine"] == "torchrun"
    with pytest.raises(InvalidParameterError, match="train_workers"):
        _config(files, tmp_path / "w", train_workers=0)


def test_crash_leaves_earlier_steps_and_resumes(files, tmp_path, monkeypatch):
    cfg = _config(files, tmp_path / "w")

    def boom(*args, **kwargs):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr("graphrec.jobs.bundle.write_bundle", boom)
    with pytest.raises(RuntimeError, match="killed"):
        chain.run(cfg, show_progress=False)
    assert (tmp_path / "w" / "train" / "_step.json").is_file()
    assert not (tmp_path / "w" / "bundle").exists()
    assert not [p for p in (tmp_path / "w").iterdir() if p.name.startswith(".bundle")]
    monkeypatch.undo()
    resumed = chain.run(cfg, show_progress=False)
    assert [s for s, r in resumed.items() if not r["skipped"]] == ["bundle", "evaluate"]


def test_bad_config(files, tmp_path):
    (tmp_path / "c.yaml").write_text(f"interactions: {files / 'interactions.parquet'}\nwork: {tmp_path}\nbogus: 1\n")
    with pytest.raises(InvalidParameterError, match="bogus"):
        load_config(chain.ChainConfig, tmp_path / "c.yaml")
    with pytest.raises(InvalidParameterError, match="dim"):
        chain.run(_config(files, tmp_path / "w", gnn={"dim": 0}))
    with pytest.raises(InvalidParameterError, match="unknown step"):
        chain.run(_config(files, tmp_path / "w", steps=("ingest", "fly")))
    with pytest.raises(ArtifactError, match="needs the output"):
        chain.run(_config(files, tmp_path / "fresh", steps=("train",)))
    with pytest.raises(InvalidParameterError, match="not found"):
        chain.run(_config(files, tmp_path / "w2", interactions=str(tmp_path / "missing.parquet")))


def test_graphrec_run_cli(files, tmp_path, capsys):
    from graphrec.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"interactions: {files / 'interactions.parquet'}\nwork: {tmp_path / 'w'}\nuse_text: false\n"
        "refute_simulations: 1\ngnn:\n  dim: 8\n  epochs: 1\n  batch_size: 512\n"
    )
    assert main(["run", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "evaluate" in out and "recall@20" in out


def test_runs_on_two_work_dirs_share_one_text_cache(files, tmp_path, monkeypatch):
    """``text_cache``: the second run's notes are all in the cache, so the text model never loads."""
    import numpy as np

    import graphrec.graph.side_info as side_info

    loads = []

    class FakeModel:  # the text model's encode, deterministic per text
        def encode(self, texts, **_):
            return np.stack([np.random.default_rng(len(t)).normal(size=384) for t in texts]).astype(np.float32)

    def load():
        loads.append(1)
        return FakeModel()

    monkeypatch.setattr(side_info, "_load_model", load)
    cache = tmp_path / "shared" / "text.npz"
    steps = ("ingest", "graph", "weights", "train")
    for work in ("day1", "day2"):
        cfg = _config(files, tmp_path / work, use_text=True, text_cache=str(cache), steps=steps, debias=False)
        assert chain.run(cfg, show_progress=False)["train"]["epochs_run"] == 3
    assert loads == [1] and cache.is_file() and not (tmp_path / "day1" / "_cache" / "text.npz").exists()
    with pytest.raises(InvalidParameterError, match="overwrite"):
        chain.run(_config(files, tmp_path / "w", text_cache=str(tmp_path / "w" / "train" / "t.npz")))
