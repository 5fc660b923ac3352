"""Reliability cases that need real processes: concurrent writers, kills, the installed entry point,
permissions and a stale chain."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from reliability._world import World, copy_into, snapshot

import graphrec.jobs.chain as chain
from graphrec.cli import main
from graphrec.graph import HeteroGraph


def _graphrec(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "graphrec.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_six_concurrent_writers_of_one_output(world: World, tmp_path: Path) -> None:
    out = tmp_path / "g"
    args = ["build-graph", "--interactions", str(world.data / "interactions.parquet"), "--out", str(out)]
    procs = [_graphrec(*args) for _ in range(6)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert [rc for rc, _ in results] == [0] * 6, [err for _, err in results]
    HeteroGraph.load(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".graphrec-swap.lock", "g"]


def test_entry_point_prints_one_line_and_exit_2(world: World, tmp_path: Path) -> None:
    copy_into(world.data, tmp_path / "data")
    before = snapshot(tmp_path)
    p = _graphrec(
        "build-graph",
        "--interactions",
        str(tmp_path / "data" / "interactions.parquet"),
        "--out",
        str(tmp_path / "data"),
    )
    assert p.wait(timeout=120) == 2
    err = p.stderr.read()
    assert err.count("\n") == 1 and "the output would overwrite the input" in err
    assert snapshot(tmp_path) == before


def test_killed_writer_leaves_the_old_output_and_its_temp_is_cleaned(world: World, tmp_path: Path) -> None:
    out = copy_into(world.graph, tmp_path / "g")
    before = snapshot(out)
    code = (
        "import os, signal; from graphrec._atomic import atomic_directory\n"
        f"with atomic_directory({str(out)!r}, kind='graphrec.graph') as tmp:\n"
        "    (tmp / 'half').write_text('x'); os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    stale = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp-dir")]
    assert len(stale) == 1 and snapshot(out) == before
    assert main(["build-graph", "--interactions", str(world.data / "interactions.parquet"), "--out", str(out)]) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp-dir", ".old"))]


def test_outputs_follow_the_umask(world: World, tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        assert (
            main(
                [
                    "build-graph",
                    "--interactions",
                    str(world.data / "interactions.parquet"),
                    "--out",
                    str(tmp_path / "g"),
                ]
            )
            == 0
        )
        assert (
            main(
                ["swing", "--interactions", str(world.data / "interactions.parquet"), "--out", str(tmp_path / "s.csv")]
            )
            == 0
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "g").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "g" / "manifest.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "s.csv").stat().st_mode) == 0o640


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_read_only_output_directory(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc = main(["build-graph", "--interactions", str(world.data / "interactions.parquet"), "--out", str(ro / "g")])
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "is not writable" in err


def test_stale_upstream_is_refused(world: World, tmp_path: Path) -> None:
    base = {
        "interactions": str(world.data / "interactions.parquet"),
        "work": str(tmp_path / "w"),
        "use_text": False,
        "debias": False,
        "swing_top_k": 10,
        "gnn": {"dim": 8, "epochs": 1, "batch_size": 512},
    }
    chain.run(chain.ChainConfig(**base), show_progress=False)
    before = snapshot(tmp_path / "w")
    # Evaluate alone after an upstream change: refused, nothing rewritten.
    with pytest.raises(chain.ArtifactError, match=r"ingest: out of date .* add 'ingest' to `steps`"):
        chain.run(chain.ChainConfig(**base, test_fraction=0.3, steps=("evaluate",)), show_progress=False)
    with pytest.raises(chain.ArtifactError, match=r"train: out of date"):
        chain.run(chain.ChainConfig(**{**base, "gnn": {"dim": 8, "epochs": 2, "batch_size": 512}}, steps=("bundle",)))
    assert snapshot(tmp_path / "w") == before
    # With the same options, evaluating alone is fine (everything upstream is current).
    again = chain.run(chain.ChainConfig(**base, steps=("evaluate",)), show_progress=False)
    assert again["evaluate"]["skipped"]


def test_concurrent_chain_runs_on_one_work_dir(world: World, tmp_path: Path) -> None:
    from graphrec._atomic import exclusive

    work = tmp_path / "w"
    work.mkdir()
    cfg = chain.ChainConfig(interactions=str(world.data / "interactions.parquet"), work=str(work), steps=("ingest",))
    with exclusive(work, what="work directory"):  # what a running `graphrec run` holds
        code = f"from graphrec.cli import main; import sys; sys.exit(main(['run', {str(tmp_path / 'c.yaml')!r}]))"
        (tmp_path / "c.yaml").write_text(f"interactions: {cfg.interactions}\nwork: {work}\nsteps: [ingest]\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"in use by pid {os.getpid()}" in proc.stderr and "use another work directory" in proc.stderr
    assert not (work / "ingest").exists()
