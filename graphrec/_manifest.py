"""Reading saved artifacts as untrusted input: manifests, confined paths, validated arrays.

A graph directory or a serving bundle may come from anywhere (a colleague, a bucket, a crafted
file), so loading one must end in a verified object or a one-line
:class:`~graphrec.exceptions.ArtifactError`, never a native crash. The checks, in order:

1. ``manifest.json`` is JSON of the expected format and version, and its ``files`` is a mapping of
   relative paths to SHA-256 digests;
2. every path is *confined*: relative, without ``..``, resolving (symlinks followed) inside the
   artifact directory; a loader opens only paths listed in ``files`` (:func:`artifact_file`), so
   every byte read is checksummed;
3. every array is checked before scipy, faiss or a numba kernel sees it
   (:func:`csr_from_arrays`, :func:`float_matrix`): dtypes, shapes, CSR structure (``indptr``
   starts at 0, is monotone and ends at ``nnz``; every column index in range) and finiteness.

A checksum only proves the files are the ones the manifest lists; anyone can recompute it, which is
why step 3 never trusts the bytes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec._atomic import MARKER, sha256_file
from graphrec.exceptions import ArtifactError

__all__ = [
    "MANIFEST",
    "READ_ERRORS",
    "artifact_file",
    "checksums",
    "config_hash",
    "csr_from_arrays",
    "float_matrix",
    "load_csr",
    "load_npz",
    "read_manifest",
    "save_csr",
    "write_manifest",
]

MANIFEST = "manifest.json"
#: What numpy, zipfile and a malformed manifest raise on bad bytes; loaders turn these into ArtifactError.
READ_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    EOFError,
    OverflowError,
    MemoryError,
    NotImplementedError,  # zipfile: an unknown compression method
    RuntimeError,  # zipfile: an encrypted member
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def config_hash(config: Any) -> str:
    """SHA-256 of the canonical JSON of ``config`` (sorted keys; other types by ``str``)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def write_manifest(root: Path, *, fmt: str, version: int, **fields: Any) -> dict[str, Any]:
    """Write ``root/manifest.json``: format, version, graphrec version, creation time, ``fields``,
    and ``files``, the SHA-256 of every file under ``root`` (what :func:`read_manifest` verifies)."""
    from graphrec import __version__

    names = sorted(str(f.relative_to(root).as_posix()) for f in root.rglob("*") if f.is_file())
    manifest = {
        "format": fmt,
        "format_version": version,
        "graphrec_version": __version__,
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **fields,
        "files": checksums(root, [n for n in names if n not in (MANIFEST, MARKER)]),
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    return manifest


def save_csr(path: Path, matrix: sp.spmatrix) -> None:
    """Write a CSR matrix in scipy's own ``.npz`` layout (:func:`scipy.sparse.save_npz`, no pickle).

    Read it back with :func:`load_csr`, which checks every array (scipy's ``load_npz`` does not).
    """
    sp.save_npz(path, sp.csr_matrix(matrix), compressed=False)


def load_csr(
    path: Path, *, shape: tuple[int, int] | None = None, nonnegative: bool = False, where: str | None = None
) -> sp.csr_matrix:
    """A CSR matrix written by :func:`save_csr`, every array checked (:func:`csr_from_arrays`)."""
    return csr_from_arrays(load_npz(path), where or str(path), shape=shape, nonnegative=nonnegative)


def checksums(root: Path, names: Iterable[str]) -> dict[str, str]:
    """``{name: sha256}`` of files under ``root``."""
    return {name: sha256_file(root / name) for name in sorted(names)}


def _confined(root: Path, name: Any, manifest_path: Path) -> Path:
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ArtifactError(f"{manifest_path}: file entry {name!r} is not a relative path")
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise ArtifactError(f"{manifest_path}: file entry {name!r} points outside the artifact directory")
    path = root / rel
    real_root = Path(os.path.realpath(root))
    if real_root not in Path(os.path.realpath(path)).parents:
        raise ArtifactError(f"{manifest_path}: file entry {name!r} resolves outside the artifact directory")
    return path


def read_manifest(root: Path, *, fmt: str, version: int, what: str) -> dict[str, Any]:
    """Read ``root/manifest.json``, check its format, version and paths, and verify every listed file.

    Raises
    ------
    ArtifactError
        Naming the manifest or the file that is missing, outside ``root``, truncated or changed.
    """
    path = root / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; {root} is not a {what}")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        raise ArtifactError(f"{path}: not a {what} manifest")
    if manifest.get("format_version") != version:
        raise ArtifactError(
            f"{path}: format_version {manifest.get('format_version')!r} is not supported "
            f"(this graphrec reads {version}); rebuild the {what.split()[-1]}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(d, str) and _SHA256.match(d) for d in files.values()):
        raise ArtifactError(f"{path}: `files` must map relative paths to SHA-256 digests")
    for name, digest in files.items():
        f = _confined(root, name, path)
        if not f.is_file():
            raise ArtifactError(f"{f}: missing (listed in {MANIFEST})")
        if sha256_file(f) != digest:
            raise ArtifactError(f"{f}: checksum mismatch; the file is truncated, corrupt or was changed after saving")
    return manifest


def artifact_file(root: Path, manifest: dict[str, Any], name: Any) -> Path:
    """The path of ``name`` inside ``root``, which the manifest must list (so it was checksummed)."""
    path = _confined(root, name, root / MANIFEST)
    if name not in manifest["files"]:
        raise ArtifactError(f"{root / MANIFEST}: {name!r} is used but not listed (with a checksum) in `files`")
    return path


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (never unpickling), or an ArtifactError naming the file.

    Each member's header is read first and its claimed size checked against the bytes the member
    holds, so a crafted header cannot make numpy allocate terabytes.
    """
    fmt = np.lib.format
    try:
        arrays = {}
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy") or info.compress_type not in (
                    zipfile.ZIP_STORED,
                    zipfile.ZIP_DEFLATED,
                ):
                    raise ValueError(f"member {info.filename!r} is not a plain .npy array")
                with zf.open(info) as fh:
                    version = fmt.read_magic(fh)
                    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                    shape, _fortran, dtype = read_header(fh)
                    if dtype.hasobject:
                        raise ValueError(f"member {info.filename!r} holds Python objects")
                    if math.prod(shape) * dtype.itemsize > info.file_size:
                        raise ValueError(f"member {info.filename!r} claims more data than it holds")
                with zf.open(info) as fh:
                    arrays[info.filename[: -len(".npy")]] = fmt.read_array(fh, allow_pickle=False)
        return arrays
    except READ_ERRORS as exc:
        raise ArtifactError(f"{path}: unreadable ({type(exc).__name__}: {str(exc)[:200]})") from None


def _int_vector(arrays: dict[str, np.ndarray], key: str, where: str) -> np.ndarray:
    if key not in arrays:
        raise ArtifactError(f"{where}: missing array {key!r}")
    a = arrays[key]
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ArtifactError(f"{where}: {key} must be a 1-d integer array; got {a.dtype} {a.shape}")
    return a.astype(np.int64, copy=False)


def csr_from_arrays(
    arrays: dict[str, np.ndarray], where: str, *, shape: tuple[int, int] | None = None, nonnegative: bool = False
) -> sp.csr_matrix:
    """A CSR matrix from ``indptr, indices, data, shape`` arrays, each checked (see the module docstring)."""
    dims = _int_vector(arrays, "shape", where)
    if dims.size != 2 or (dims < 0).any() or (dims >= 2**31).any():
        raise ArtifactError(f"{where}: shape must be two sizes in 0..2^31; got {dims.tolist()}")
    n_rows, n_cols = int(dims[0]), int(dims[1])
    if shape is not None and (n_rows, n_cols) != tuple(shape):
        raise ArtifactError(f"{where}: shape {(n_rows, n_cols)}; expected {tuple(shape)} from the id counts")
    indptr, indices = _int_vector(arrays, "indptr", where), _int_vector(arrays, "indices", where)
    if "data" not in arrays:
        raise ArtifactError(f"{where}: missing array 'data'")
    data = arrays["data"]
    if data.ndim != 1 or data.dtype.kind not in "fiu":
        raise ArtifactError(f"{where}: data must be a 1-d numeric array; got {data.dtype} {data.shape}")
    if indptr.size != n_rows + 1 or indptr[0] != 0 or indptr[-1] != indices.size or indices.size != data.size:
        raise ArtifactError(f"{where}: indptr, indices and data disagree (not a CSR of {n_rows} rows)")
    if (np.diff(indptr) < 0).any():
        raise ArtifactError(f"{where}: indptr is not monotone")
    if indices.size and (indices.min() < 0 or indices.max() >= n_cols):
        raise ArtifactError(f"{where}: a column index is outside 0..{n_cols - 1}")
    values = data.astype(np.float32)
    if not np.isfinite(values).all():
        raise ArtifactError(f"{where}: data holds NaN or inf")
    if nonnegative and (values < 0).any():
        raise ArtifactError(f"{where}: data holds negative weights")
    idx = np.int32 if indices.size < 2**31 else np.int64
    m = sp.csr_matrix((values, indices.astype(idx), indptr.astype(idx)), shape=(n_rows, n_cols))
    if not m.has_canonical_format:
        m.sum_duplicates()
    return m


def float_matrix(a: Any, where: str, *, shape: tuple[int | None, ...]) -> np.ndarray:
    """A C-contiguous float32 matrix of ``shape`` (``None`` = any size) with finite values."""
    arr = np.asarray(a)
    if arr.ndim != len(shape) or arr.dtype.kind not in "fiu":
        raise ArtifactError(
            f"{where}: expected a numeric array of {len(shape)} dimension(s); got {arr.dtype} {arr.shape}"
        )
    if any(want is not None and got != want for got, want in zip(arr.shape, shape, strict=True)):
        raise ArtifactError(f"{where}: shape {arr.shape}; expected {tuple('any' if s is None else s for s in shape)}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ArtifactError(f"{where}: holds NaN or inf")
    return out
