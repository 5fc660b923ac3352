from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from graphrec._atomic import (
    MARKER,
    atomic_directory,
    atomic_file,
    check_not_overwriting_inputs,
    exclusive,
)
from graphrec.exceptions import InvalidParameterError

KIND = "graphrec.test"


def _visible(path):
    return sorted(p.name for p in path.iterdir() if not p.name.endswith(".lock"))


def test_atomic_file_keeps_old_on_error(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    with atomic_file(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_atomic_directory_swaps_whole(tmp_path):
    target = tmp_path / "bundle"
    with atomic_directory(target, kind=KIND) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_directory(target, kind=KIND) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("crash")
    assert _visible(target) == [MARKER, "a"]
    with atomic_directory(target, kind=KIND) as tmp:
        (tmp / "b").write_text("2")
    assert _visible(target) == [MARKER, "b"]
    assert _visible(tmp_path) == ["bundle"]
    assert json.loads((target / MARKER).read_text())["entries"] == ["b"]


def test_refuses_a_directory_graphrec_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with (
        pytest.raises(InvalidParameterError, match=r"non-empty directory graphrec did not write \(mine.txt\)"),
        atomic_directory(tmp_path, kind=KIND) as tmp,
    ):
        (tmp / "a").write_text("1")
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_refuses_another_kind_and_foreign_files(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target, kind=KIND) as tmp:
        (tmp / "a").write_text("1")
    with (
        pytest.raises(InvalidParameterError, match=r"holds a graphrec\.test artifact, not a graphrec\.bundle"),
        atomic_directory(target, kind="graphrec.bundle"),
    ):
        pass
    (target / "users-input.csv").write_text("u")
    with (
        pytest.raises(InvalidParameterError, match=r"holds files graphrec did not write \(users-input.csv\)"),
        atomic_directory(target, kind=KIND),
    ):
        pass
    assert (target / "users-input.csv").read_text() == "u"


def test_writes_through_a_symlink(tmp_path):
    real = tmp_path / "real"
    link = tmp_path / "link"
    with atomic_directory(real, kind=KIND) as tmp:
        (tmp / "a").write_text("1")
    link.symlink_to(real)
    for value in ("2", "3"):
        with atomic_directory(link, kind=KIND) as tmp:
            (tmp / "a").write_text(value)
        assert link.is_symlink() and (link / "a").read_text() == value
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".old", ".tmp-dir"))]
    f = tmp_path / "f.txt"
    f.write_text("x")
    (tmp_path / "flink").symlink_to(f)
    with atomic_file(tmp_path / "flink") as tmp:
        tmp.write_text("y")
    assert (tmp_path / "flink").is_symlink() and f.read_text() == "y"


def test_modes_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "d", kind=KIND) as tmp:
            (tmp / "a").write_text("1")
        with atomic_file(tmp_path / "f") as tmp:
            tmp.write_text("1")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_stale_temp_dirs_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".out.{pid}.abc123.tmp-dir"
    stale.mkdir()
    (stale / "half").write_text("x")
    live = tmp_path / f".out.{os.getppid()}.def456.tmp-dir"  # a live process's: kept
    live.mkdir()
    with atomic_directory(tmp_path / "out", kind=KIND) as tmp:
        (tmp / "a").write_text("1")
    assert not stale.exists() and live.exists()


def test_parent_is_a_file_and_target_is_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(InvalidParameterError, match="is a file, not a directory"),
        atomic_directory(tmp_path / "file" / "out", kind=KIND),
    ):
        pass
    with pytest.raises(InvalidParameterError, match="is a directory; expected a file path"), atomic_file(tmp_path):
        pass
    assert (tmp_path / "file").read_text() == "x"


def test_outputs_may_not_overwrite_inputs(tmp_path):
    inp = tmp_path / "d" / "interactions.parquet"
    with pytest.raises(InvalidParameterError, match="would overwrite the input"):
        check_not_overwriting_inputs([tmp_path / "d"], [inp])
    with pytest.raises(InvalidParameterError, match="would overwrite the input"):
        check_not_overwriting_inputs([inp], [None, inp])
    check_not_overwriting_inputs([tmp_path / "e"], [inp])


def test_exclusive_names_the_holder(tmp_path):
    code = (
        "import sys, time; from graphrec._atomic import exclusive\n"
        f"with exclusive({str(tmp_path)!r}, what='work directory'):\n"
        "    print('held', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(InvalidParameterError, match=rf"in use by pid {holder.pid} on .*use another work directory"),
            exclusive(tmp_path, what="work directory"),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive(tmp_path, what="work directory"):  # the OS released the killed holder's lock
        pass
