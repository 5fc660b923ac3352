"""Atomic, owned writes: an output appears complete or not at all, and nothing graphrec did not
create is ever removed.

Files
    :func:`atomic_file` writes a temporary sibling and renames it over the target (``os.replace``
    is atomic on POSIX within one filesystem). A symlinked target is written through: the link's
    real file is replaced and the link keeps working.

Directories
    :func:`atomic_directory` builds the new directory in a temporary sibling, then, under a short
    lock, moves the old one aside, renames the new one into place and deletes the old one. A crash
    leaves the old artifact or the new one, never half of one.

Ownership (the rule: never remove what graphrec did not create)
    Every directory written here carries ``.graphrec-artifact.json``: its *kind* (``graphrec.graph``,
    ``graphrec.bundle``, ``graphrec.step:train`` ...) and the entries graphrec wrote. An existing
    target is replaced only if it is empty, or carries a marker of the same kind and holds nothing
    beyond the listed entries; anything else (a directory of the user's, an artifact of another
    kind, a file the user dropped into an output) is refused with an
    :class:`~graphrec.exceptions.InvalidParameterError` before any work starts. Directories written
    before markers existed are recognised by their manifest or step stamp.
    :func:`check_not_overwriting_inputs` refuses an output that is, or contains, one of the inputs.

Concurrency
    The swap runs under a :mod:`filelock` lock (``.graphrec-swap.lock`` in the target's parent), so
    concurrent writers of one target serialise and the last one wins; temporary siblings carry the writer's
    pid, and those of writers that are no longer alive (killed steps) are removed by the next
    write of the same target. :func:`exclusive` is the fail-fast lock for a whole job (the chain's
    work directory); its error says which process holds it.

Permissions
    Temporary files and directories are created private (``mkstemp``/``mkdtemp``); before they are
    renamed into place they get the modes the user's umask gives any new file (0666/0777 & ~umask).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from graphrec.exceptions import InvalidParameterError

__all__ = [
    "MARKER",
    "atomic_directory",
    "atomic_file",
    "check_not_overwriting_inputs",
    "check_output_directory",
    "exclusive",
    "sha256_file",
]

MARKER = ".graphrec-artifact.json"
#: One swap lock per output parent directory (swaps take milliseconds; one file, not one per output).
SWAP_LOCK = ".graphrec-swap.lock"
#: Seconds a writer waits for another writer's swap of the same target (swaps take milliseconds).
SWAP_LOCK_TIMEOUT = 120.0


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _real(path: str | os.PathLike[str]) -> Path:
    """``path`` with symlinks resolved, so writes go through a link instead of replacing it."""
    p = Path(path)
    return Path(os.path.realpath(p)) if p.is_symlink() else p


def _check_parent(target: Path) -> None:
    parent = target.parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise InvalidParameterError(f"{target}: cannot write here; {p} is a file, not a directory")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        raise InvalidParameterError(f"{target}: cannot create the directory {parent} (permission denied)") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidParameterError(f"{target}: the directory {parent} is not writable")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(target: Path) -> None:
    """Remove temporary siblings of ``target`` left by writers on this host that are gone."""
    for p in target.parent.glob(f".{target.name}.*"):
        parts = p.name[len(target.name) + 2 :].split(".")
        if p.suffix not in (".tmp-dir", ".tmp-file", ".old") or len(parts) < 3 or not parts[0].isdigit():
            continue
        if int(parts[0]) == os.getpid() or _pid_alive(int(parts[0])):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    Raises
    ------
    InvalidParameterError
        If ``path`` is a directory, or its parent cannot be a writable directory.
    """
    target = _real(path)
    if target.is_dir():
        raise InvalidParameterError(f"{target}: is a directory; expected a file path")
    _check_parent(target)
    _clean_stale(target)
    fd, tmp_name = tempfile.mkstemp(prefix=_tmp_prefix(target), suffix=".tmp-file", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _legacy_kind(path: Path) -> str | None:
    """The kind of a directory graphrec wrote before markers existed (manifest or step stamp)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if (path / "manifest.json").is_file():
            fmt = json.loads((path / "manifest.json").read_text()).get("format")
            return str(fmt) if fmt in ("graphrec.graph", "graphrec.bundle") else None
        if (path / "_step.json").is_file():
            step = json.loads((path / "_step.json").read_text()).get("step")
            return f"graphrec.step:{step}" if isinstance(step, str) else None
    return None


def _read_marker(path: Path) -> dict[str, object] | None:
    try:
        marker = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def check_output_directory(path: str | os.PathLike[str], kind: str) -> None:
    """Raise unless ``path`` is absent, empty, or an artifact of ``kind`` holding only its own files.

    Jobs call it before any work, so a refused ``--out`` costs nothing; :func:`atomic_directory`
    checks again at entry and under the swap lock.
    """
    target = _real(path)
    if not target.exists():
        return
    if not target.is_dir():
        raise InvalidParameterError(f"{target}: exists and is not a directory; refusing to replace it")
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return
    marker = _read_marker(target)
    found = marker.get("kind") if marker else _legacy_kind(target)
    if found is None:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise InvalidParameterError(
            f"{target}: is a non-empty directory graphrec did not write ({shown}); "
            f"refusing to replace it - choose a new or empty output directory"
        )
    if found != kind:
        raise InvalidParameterError(
            f"{target}: holds a {found} artifact, not a {kind}; refusing to replace it - choose another output"
        )
    if marker is not None:
        owned = set(map(str, marker.get("entries", []))) | {MARKER}  # type: ignore[call-overload]
        foreign = [e for e in entries if e not in owned]
        if foreign:
            raise InvalidParameterError(
                f"{target}: holds files graphrec did not write ({', '.join(foreign[:3])}); "
                f"move them out before this output is replaced"
            )


@contextlib.contextmanager
def _swap_lock(target: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(target.parent / SWAP_LOCK))
    try:
        with lock.acquire(timeout=SWAP_LOCK_TIMEOUT):
            yield
    except Timeout:
        raise InvalidParameterError(
            f"{target}: another process has been replacing this output for {SWAP_LOCK_TIMEOUT:.0f}s; "
            f"if none is running, delete {lock.lock_file}"
        ) from None


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, kind: str) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it replaces ``path`` as a whole.

    Parameters
    ----------
    path : path
        The output directory. A symlink is written through (its real directory is replaced).
    kind : str
        What the directory holds (``"graphrec.graph"``, ...); an existing ``path`` is replaced only
        if it is empty or an artifact of the same kind holding nothing but its own files.

    Raises
    ------
    InvalidParameterError
        Before the block runs, if ``path`` may not be replaced (see the module docstring) or its
        parent is not a writable directory; at the swap, if the target changed meanwhile.
    """
    target = _real(path)
    _check_parent(target)
    check_output_directory(target, kind)
    _clean_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), suffix=".tmp-dir", dir=target.parent))
    old: Path | None = None
    try:
        yield tmp
        entries = sorted(p.name for p in tmp.iterdir())
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                with open(Path(root) / name, "rb") as fh:
                    os.fsync(fh.fileno())
        marker = {
            "kind": kind,
            "entries": entries,
            "written_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
        os.chmod(tmp, 0o777 & ~_umask())
        with _swap_lock(target):
            check_output_directory(target, kind)
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), suffix=".old", dir=target.parent))
                os.replace(target, old / "prev")
            os.replace(tmp, target)
            _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def exclusive(directory: str | os.PathLike[str], *, what: str) -> Iterator[None]:
    """Hold ``directory``'s job lock for the block, or fail at once naming the process that holds it.

    The lock is ``directory/.graphrec.lock`` (an OS lock: released when the holder exits, even
    killed); ``directory/.graphrec.lock.json`` says who holds it.
    """
    from filelock import FileLock, Timeout

    d = Path(directory)
    lock = FileLock(str(d / ".graphrec.lock"))
    info = d / ".graphrec.lock.json"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = json.loads(info.read_text())
            who = f"pid {holder['pid']} on {holder['host']} ({holder['command']}), since {holder['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            who = "another process"
        raise InvalidParameterError(f"{d}: in use by {who}; wait for it to finish or use another {what}") from None
    try:
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(sys.argv[:3]),
            "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        with contextlib.suppress(OSError):
            info.write_text(json.dumps(holder))
        yield
    finally:
        with contextlib.suppress(OSError):
            info.unlink()
        lock.release()


def check_not_overwriting_inputs(
    outputs: Iterable[str | os.PathLike[str]], inputs: Iterable[str | os.PathLike[str] | None]
) -> None:
    """Raise if an output path is one of the inputs or a directory that contains one.

    Raises
    ------
    InvalidParameterError
        Naming the output and the input it would overwrite.
    """
    ins = [(p, Path(os.path.realpath(p))) for p in inputs if p is not None]
    for out in outputs:
        o = Path(os.path.realpath(out))
        for given, i in ins:
            if o == i or o in i.parents:
                raise InvalidParameterError(
                    f"{out}: the output would overwrite the input {given}; choose another output path"
                )


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
