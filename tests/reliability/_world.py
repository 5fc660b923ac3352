"""The scratch world every reliability case starts from: synthetic data, a graph, two bundles.

Cases copy what they break into their own ``tmp_path`` (:func:`copy_into`), so the world itself is
never changed, and :func:`snapshot` proves no input or earlier output changed after a refusal.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphrec._atomic import sha256_file

IGNORED = {".graphrec-swap.lock", ".graphrec.lock"}


@dataclass(frozen=True)
class World:
    root: Path
    data: Path  # interactions.parquet, notes.jsonl, users.csv (graphrec synth)
    graph: Path  # build-graph output
    bundle: Path  # PureSVD bundle (no encoder)
    cold_bundle: Path  # GNN bundle with a note encoder (cold start)
    first_user: str
    warm_note: Any


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256 | "dir" | "-> target"}`` of everything under ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.name in IGNORED:
            continue
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = f"-> {p.readlink()}"
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = sha256_file(p)
    return out


def copy_into(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def rewrite_npz(root: Path, name: str, change) -> None:
    """Apply ``change(arrays) -> arrays`` to ``root/name`` and recompute its manifest checksum."""
    path = root / name
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays = change(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    rechecksum(root)


def rechecksum(root: Path) -> None:
    """Recompute every digest in ``root/manifest.json`` (what a crafted artifact would do); a
    manifest that is no longer JSON is left as it is."""
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except ValueError:
        return
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if isinstance(files, dict):
        for name in files:
            p = root / name
            if p.is_file() and root.resolve() in p.resolve().parents:
                files[name] = hashlib.sha256(p.read_bytes()).hexdigest()
    (root / "manifest.json").write_text(json.dumps(manifest))


def edit_manifest(root: Path, change) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
