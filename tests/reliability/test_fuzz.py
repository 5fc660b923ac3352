"""Property-based fuzzing of saved artifacts: any mutation of a bundle or a graph directory (bytes,
sparse structures, dtypes, manifest paths and types), with checksums recomputed as a crafted file
would, must end in a clean ArtifactError or a correct load, never a crash.

The loads run in a subprocess, so a segfault or an abort fails the test instead of killing pytest;
one subprocess loads a whole batch of mutated copies (and the pristine artifact first, which must
load) to keep the run short.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability._world import World, rechecksum

LOADER = r"""
import sys
from graphrec.exceptions import ArtifactError

def use_bundle(path):
    from graphrec.recall import RecallEngine
    engine = RecallEngine.load(path)
    users = list(engine.bundle.ids["user"].ids[:3]) + ["nobody"]
    notes = list(engine.bundle.ids["note"].ids[:3])
    engine.recall(users, k=10)
    engine.similar_notes(notes, k=5)
    engine.audience(notes, k=5)

def use_graph(path):
    from graphrec.graph import HeteroGraph
    g = HeteroGraph.load(path)
    g.summary()
    for et in g.edge_types:
        g.relation(et)
        g.relation((et[2], "rev_" + et[1], et[0]))

use = use_bundle if sys.argv[1] == "bundle" else use_graph
for path in sys.argv[2:]:
    try:
        use(path)
        print("ok", flush=True)
    except ArtifactError as exc:
        msg = str(exc)
        print("artifact" if "\n" not in msg else "multiline:" + msg[:200].replace("\n", " | "), flush=True)
    except Exception as exc:
        print(f"other:{type(exc).__name__}:{str(exc)[:200]}".replace("\n", " | "), flush=True)
"""

SPARSE_OPS = ("big", "negative", "swap", "nan", "inf", "float", "text", "empty", "drop", "2d")
DTYPES = ("int8", "float16", "complex64", "U3", "bool", "uint64", "float64")
VALUES = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    st.text(max_size=8),
    st.sampled_from(["../x", "/etc/passwd", "../../outside/evil", "relations/../../x", "ids.npz", ""]),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(-2, 2), max_size=2),
    st.floats(allow_nan=True),
)
BUNDLE_KEYS = (
    ("files",),
    ("files", "../../../../etc/passwd"),
    ("counts",),
    ("counts", "user"),
    ("counts", "note"),
    ("dims", "note"),
    ("dims", "tag"),
    ("indexes",),
    ("indexes", "note", "kind"),
    ("indexes", "note", "params"),
    ("indexes", "note", "params", "nprobe"),
    ("indexes", "../outside/evil"),
    ("optional",),
    ("optional", "similar"),
    ("format_version",),
)
GRAPH_KEYS = (
    ("files",),
    ("nodes",),
    ("nodes", 0, "count"),
    ("nodes", 0, "type"),
    ("nodes", 1),
    ("relations",),
    ("relations", 0, "file"),
    ("relations", 0, "edge_type"),
    ("relations", 0, "nnz"),
    ("meta",),
    ("format_version",),
)

mutation = st.one_of(
    st.tuples(
        st.just("bytes"),
        st.integers(0, 50),
        st.floats(0, 1),
        st.binary(min_size=1, max_size=8),
        st.booleans(),
        st.booleans(),
    ),
    st.tuples(
        st.just("sparse"),
        st.integers(0, 50),
        st.sampled_from(("indptr", "indices", "data", "shape")),
        st.sampled_from(SPARSE_OPS),
        st.floats(0, 1),
    ),
    st.tuples(st.just("dtype"), st.integers(0, 50), st.integers(0, 10), st.sampled_from(DTYPES)),
    st.tuples(st.just("manifest"), st.integers(0, 50), VALUES),
)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def _npz(root: Path) -> list[Path]:
    return [p for p in _files(root) if p.suffix == ".npz"]


def _save(path: Path, arrays: dict) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _sparse(a: np.ndarray, op: str, frac: float) -> np.ndarray | None:
    if op == "drop":
        return None
    a = a.copy()
    i = min(int(frac * a.size), a.size - 1) if a.size else 0
    if op == "big" and a.size:
        a[i] = 2**31 - 1 if a.dtype.kind in "iu" else 1e30
    elif op == "negative" and a.size:
        a[i] = -1
    elif op == "swap" and a.size > 1:
        j = (i + 1) % a.size
        a[i], a[j] = a[j] + 1, a[i]
    elif op in ("nan", "inf"):
        a = a.astype(np.float32)
        if a.size:
            a[i] = np.nan if op == "nan" else np.inf
    elif op == "float":
        a = a.astype(np.float64) + 0.5
    elif op == "text":
        a = a.astype(str)
    elif op == "empty":
        a = a[:0]
    elif op == "2d":
        a = np.stack([a, a])
    return a


def _set(obj, keys, value) -> None:
    for k in keys[:-1]:
        obj = (
            obj[k]
            if (isinstance(obj, dict) and k in obj) or (isinstance(obj, list) and isinstance(k, int) and k < len(obj))
            else None
        )
        if obj is None:
            return
    last = keys[-1]
    if isinstance(obj, dict) or (isinstance(obj, list) and isinstance(last, int) and last < len(obj)):
        obj[last] = value


def mutate(root: Path, m: tuple, keys: tuple) -> None:
    """Apply one mutation to the copy at ``root`` (a no-op when it does not apply)."""
    kind = m[0]
    if kind == "bytes":
        _, which, where, new, truncate, recheck = m
        files = _files(root)
        f = files[which % len(files)]
        data = bytearray(f.read_bytes())
        at = min(int(where * len(data)), max(len(data) - 1, 0))
        data = data[:at] if truncate else data[:at] + new + data[at + len(new) :]
        f.write_bytes(bytes(data))
        if recheck:
            rechecksum(root)
        return
    if kind == "manifest":
        _, which, value = m
        path = keys[which % len(keys)]
        try:
            manifest = json.loads((root / "manifest.json").read_text())
        except ValueError:
            return
        _set(manifest, path, value)
        (root / "manifest.json").write_text(json.dumps(manifest))
        rechecksum(root)
        return
    npz = _npz(root)
    f = npz[m[1] % len(npz)]
    try:
        with np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError):
        return
    if kind == "sparse":
        _, _, key, op, frac = m
        if key not in arrays:
            return
        new = _sparse(arrays[key], op, frac)
        if new is None:
            del arrays[key]
        else:
            arrays[key] = new
    else:
        _, _, which, dtype = m
        key = sorted(arrays)[which % len(arrays)]
        try:
            with np.errstate(all="ignore"):
                arrays[key] = arrays[key].astype(dtype)
        except (ValueError, TypeError):
            return
    _save(f, arrays)
    rechecksum(root)


def _run_batch(kind: str, pristine: Path, mutations: list, keys: tuple, tmp: Path) -> None:
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    paths = [pristine]
    for i, m in enumerate(mutations):
        copy = tmp / f"m{i}"
        shutil.copytree(pristine, copy)
        mutate(copy, m, keys)
        paths.append(copy)
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, kind, *map(str, paths)], capture_output=True, text=True, timeout=300
    )
    outcomes = proc.stdout.split()
    assert proc.returncode == 0, (
        f"loader died with {proc.returncode} after {len(outcomes)} loads: {proc.stderr[-2000:]}"
    )
    assert outcomes[0] == "ok", outcomes[0]  # the pristine artifact loads
    bad = [(m, o) for m, o in zip(mutations, proc.stdout.splitlines()[1:], strict=True) if o not in ("ok", "artifact")]
    assert not bad, bad
    tally = Path(os.environ.get("GRAPHREC_FUZZ_TALLY", "")) if os.environ.get("GRAPHREC_FUZZ_TALLY") else None
    if tally is not None:  # counts for reports: GRAPHREC_FUZZ_TALLY=file.jsonl
        with open(tally, "a") as fh:
            fh.write(json.dumps({"kind": kind, "outcomes": outcomes[1:]}) + "\n")


SETTINGS = settings(
    # 10 batches of 15 mutations per artifact kind in the default run; GRAPHREC_FUZZ_EXAMPLES=500 for a long one.
    max_examples=int(os.environ.get("GRAPHREC_FUZZ_EXAMPLES", "10")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(st.lists(mutation, min_size=15, max_size=15))
def test_fuzzed_bundles_load_or_fail_cleanly(world: World, tmp_path: Path, mutations: list) -> None:
    _run_batch("bundle", world.bundle, mutations, BUNDLE_KEYS, tmp_path / "fuzz")


@SETTINGS
@given(st.lists(mutation, min_size=15, max_size=15))
def test_fuzzed_graphs_load_or_fail_cleanly(world: World, tmp_path: Path, mutations: list) -> None:
    _run_batch("graph", world.graph, mutations, GRAPH_KEYS, tmp_path / "fuzz")
