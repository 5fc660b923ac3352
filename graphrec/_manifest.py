"""Manifests of saved artifacts: format, version and a SHA-256 for every file, checked on load."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graphrec._atomic import sha256_file
from graphrec.exceptions import ArtifactError

__all__ = ["MANIFEST", "checksums", "read_manifest"]

MANIFEST = "manifest.json"


def checksums(root: Path, names: Iterable[str]) -> dict[str, str]:
    """``{name: sha256}`` of files under ``root``."""
    return {name: sha256_file(root / name) for name in sorted(names)}


def read_manifest(root: Path, *, fmt: str, version: int, what: str) -> dict[str, Any]:
    """Read ``root/manifest.json``, check its format and version, and verify every listed file.

    Raises
    ------
    ArtifactError
        Naming the manifest or the file that is missing, truncated or changed.
    """
    path = root / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; {root} is not a {what}")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        raise ArtifactError(f"{path}: not a {what} manifest")
    if manifest.get("format_version") != version:
        raise ArtifactError(
            f"{path}: format_version {manifest.get('format_version')!r} is not supported "
            f"(this graphrec reads {version}); rebuild the {what.split()[-1]}"
        )
    for name, digest in manifest.get("files", {}).items():
        f = root / name
        if not f.is_file():
            raise ArtifactError(f"{f}: missing (listed in {MANIFEST})")
        if sha256_file(f) != digest:
            raise ArtifactError(f"{f}: checksum mismatch; the file is truncated, corrupt or was changed after saving")
    return manifest
