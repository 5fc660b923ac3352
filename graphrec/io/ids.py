"""External ids and the stable mapping between them and contiguous indices.

Ids may be integers or strings. One rule turns every source into the same ids: an integer
column stays int64; a text column whose every value is a canonical decimal integer
(``"42"``, not ``"042"`` or ``"4.0"``) becomes int64 too, so ``42`` in a parquet file and
``"42"`` in a CSV name the same user; any other text column stays text. Null or empty ids
are errors, and so is an id longer than :data:`MAX_ID_LENGTH` characters. Ids are trimmed of
surrounding whitespace wherever text comes in (files, the recall API and CLI), and ``"-0"`` is
text, not 0. :class:`IdMap` itself compares ids exactly.

Memory follows the ids' total size: text ids are numpy *object* arrays of Python ``str``, never
fixed-width unicode (whose size is rows x longest id x 4 bytes, so one long id would blow up a
whole column). On disk a text id array is Arrow-style UTF-8 bytes plus int64 offsets
(:func:`ids_to_arrays` / :func:`ids_from_arrays`): no pickle, validated on load.

:class:`IdMap` maps a set of external ids to ``0..n-1`` in sorted order. The mapping is a
function of the set alone (not of row order), so rebuilding from the same data gives the same
indices, and it is saved with the graph.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graphrec.exceptions import InvalidParameterError, SchemaError
from graphrec.io._tables import TableSource

__all__ = ["MAX_ID_LENGTH", "IdMap", "as_text", "ids_from_arrays", "ids_to_arrays", "normalise_ids", "read_id_maps"]

_INT_RE = r"^(0|-?[1-9][0-9]{0,17})$"
#: Longest id accepted, in characters (after trimming whitespace).
MAX_ID_LENGTH = 1024


def as_text(values: Any) -> np.ndarray:
    """``values`` as a 1-d object array of Python ``str`` (memory follows the total text size).

    A list is converted item by item, never through ``np.asarray``, whose fixed-width unicode
    would cost items x longest item x 4 bytes on the way.
    """
    if isinstance(values, list):
        out = np.empty(len(values), dtype=object)
        out[:] = [v if type(v) is str else str(v) for v in values]
        return out
    arr = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
    if arr.dtype.kind == "O" and all(type(v) is str for v in arr.ravel()):
        return arr
    out = np.empty(arr.shape, dtype=object)
    out[...] = [str(v) for v in arr.ravel()] if arr.ndim == 1 else arr.astype(str).astype(object)
    return out


def _first_true(mask: pa.ChunkedArray | pa.Array) -> int:
    return int(np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))[0])


def normalise_ids(column: pa.ChunkedArray | pa.Array, *, name: str, source: TableSource) -> np.ndarray:
    """Validate an id column and return it as an int64 or a str numpy array.

    Raises
    ------
    SchemaError
        Naming the first row whose id is null or empty, or the column's type if it is neither
        integer nor text.
    """
    typ = column.type
    if column.null_count:
        row = _first_true(pc.is_null(column))
        raise SchemaError(f"{source.where(row)}: {name} is empty")
    if pa.types.is_integer(typ):
        return np.asarray(column.to_numpy(), dtype=np.int64)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        stripped = pc.utf8_trim_whitespace(column)
        empty = pc.equal(pc.utf8_length(stripped), 0)
        if pc.any(empty).as_py():
            raise SchemaError(f"{source.where(_first_true(empty))}: {name} is empty")
        long = pc.greater(pc.utf8_length(stripped), MAX_ID_LENGTH)
        if pc.any(long).as_py():
            row = _first_true(long)
            raise SchemaError(
                f"{source.where(row)}: {name} is {len(stripped[row].as_py()):,} characters long; "
                f"ids may have at most {MAX_ID_LENGTH}"
            )
        if pc.all(pc.match_substring_regex(stripped, _INT_RE)).as_py():
            return np.asarray(pc.cast(stripped, pa.int64()).to_numpy(), dtype=np.int64)
        return as_text(stripped.to_numpy(zero_copy_only=False))
    raise SchemaError(f"{source.name}: column {name} must hold integer or string ids; got type {typ}")


class IdMap:
    """A sorted set of external ids and their contiguous indices ``0..n-1``.

    Parameters
    ----------
    ids : array-like
        Unique external ids (int64 or str); they are sorted here.

    Examples
    --------
    >>> m = IdMap.from_values(["b", "a", "b"])
    >>> m.index(["a", "b"]).tolist(), m.ids.tolist()
    ([0, 1], ['a', 'b'])
    """

    def __init__(self, ids: Any) -> None:
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise InvalidParameterError(f"ids must be one-dimensional; got shape {arr.shape}")
        if arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
        elif arr.dtype.kind in "UO":
            arr = as_text(arr)
        elif arr.size == 0:
            arr = arr.astype(np.int64)
        else:
            raise InvalidParameterError(f"ids must be integers or strings; got dtype {arr.dtype}")
        arr = np.sort(arr, kind="stable")
        if arr.size > 1 and np.any(arr[1:] == arr[:-1]):
            raise InvalidParameterError("ids must be unique")
        self._ids = arr
        self._ids.setflags(write=False)
        self._lookup: pd.Index | None = None

    @classmethod
    def from_values(cls, *arrays: Iterable[Any]) -> IdMap:
        """The map over the distinct values of all ``arrays`` (ints and int-like text unify)."""
        parts = [np.asarray(a if not isinstance(a, pd.Series) else a.to_numpy()) for a in arrays]
        parts = [p for p in parts if p.size]
        if not parts:
            return cls(np.empty(0, dtype=np.int64))
        if any(p.dtype.kind not in "iu" for p in parts):
            parts = [as_text(p) for p in parts]
        return cls(pd.unique(np.concatenate(parts)))

    @property
    def ids(self) -> np.ndarray:
        """External ids in index order (read-only)."""
        return self._ids

    @property
    def is_int(self) -> bool:
        """True when the ids are integers."""
        return self._ids.dtype.kind == "i"

    def __len__(self) -> int:
        return int(self._ids.size)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, IdMap)
            and self._ids.dtype.kind == other._ids.dtype.kind
            and np.array_equal(self._ids, other._ids)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)}, kind={'int' if self.is_int else 'str'})"

    def _coerce(self, values: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return the query cast to the map's kind and a mask of values that could be cast."""
        arr = np.asarray(values.to_numpy() if isinstance(values, pd.Series) else values)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if self.is_int:
            if arr.dtype.kind in "iu":
                return arr.astype(np.int64), np.ones(arr.shape, dtype=bool)
            text = as_text(arr)
            ok = pd.Series(text, dtype=object).str.fullmatch(_INT_RE).to_numpy(dtype=bool)
            out = np.zeros(arr.shape, dtype=np.int64)
            out[ok] = text[ok].astype(np.int64)
            return out, ok
        return as_text(arr), np.ones(arr.shape, dtype=bool)

    def index(self, values: Any, *, missing: str = "error", what: str = "id") -> np.ndarray:
        """Indices of external ``values``; unknown ids raise, or give -1 with ``missing="ignore"``."""
        query, ok = self._coerce(values)
        if self._ids.size == 0:
            pos = np.zeros(query.shape, dtype=np.int64)
            found = np.zeros(query.shape, dtype=bool)
        elif not self.is_int:
            # Text: a hash lookup (a binary search over Python strings costs log n comparisons each).
            if self._lookup is None:
                self._lookup = pd.Index(self._ids, dtype=object)
            pos = np.asarray(self._lookup.get_indexer(pd.Index(query, dtype=object)), dtype=np.int64)
            found = ok & (pos >= 0)
        else:
            pos = np.searchsorted(self._ids, query)
            pos = np.minimum(pos, self._ids.size - 1)
            found = ok & (self._ids[pos] == query)
        if missing == "error" and not found.all():
            bad = np.asarray(values)[np.flatnonzero(~found)[:5]] if np.ndim(values) else [values]
            raise InvalidParameterError(
                f"unknown {what}: {', '.join(map(repr, np.asarray(bad).tolist()))}"
                f" ({int((~found).sum())} of {found.size} not in the map)"
            )
        if missing not in ("error", "ignore"):
            raise InvalidParameterError(f"`missing` must be 'error' or 'ignore'; got {missing!r}")
        return np.where(found, pos, -1).astype(np.int64)

    def external(self, index: Any) -> np.ndarray:
        """External ids at ``index`` (an int array in ``0..n-1``)."""
        idx = np.asarray(index, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise InvalidParameterError(f"index out of range 0..{len(self) - 1}")
        return self._ids[idx]


def ids_to_arrays(name: str, ids: IdMap) -> dict[str, np.ndarray]:
    """Arrays to store ``ids`` under ``name`` in an ``.npz``: int64 as is, text as UTF-8 + offsets."""
    if ids.is_int or len(ids) == 0:
        return {name: ids.ids.astype(np.int64)}
    arr = pa.array(list(ids.ids), type=pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr) + 1)
    data = (
        np.frombuffer(arr.buffers()[2], dtype=np.uint8, count=int(offsets[-1]))
        if offsets[-1]
        else np.empty(0, np.uint8)
    )
    return {f"{name}.utf8": data.copy(), f"{name}.offsets": offsets.copy()}


def ids_from_arrays(arrays: Any, name: str) -> IdMap:
    """The :class:`IdMap` stored by :func:`ids_to_arrays` (also reads fixed-width text of older files).

    Raises
    ------
    InvalidParameterError
        If the arrays are missing, of the wrong dtype, malformed (offsets not monotone or out of
        bounds, invalid UTF-8), or the ids are unsorted, repeated or too long.
    """
    files = set(arrays.files if hasattr(arrays, "files") else arrays)
    if f"{name}.offsets" in files and f"{name}.utf8" in files:
        offsets, data = np.asarray(arrays[f"{name}.offsets"]), np.asarray(arrays[f"{name}.utf8"])
        if offsets.dtype != np.int64 or data.dtype != np.uint8 or offsets.ndim != 1 or data.ndim != 1:
            raise InvalidParameterError(f"{name} ids: expected int64 offsets and uint8 text")
        if offsets.size == 0 or offsets[0] != 0 or offsets[-1] != data.size or np.any(np.diff(offsets) < 0):
            raise InvalidParameterError(f"{name} ids: offsets are not a monotone 0..{data.size} sequence")
        if np.any(np.diff(offsets) > 4 * MAX_ID_LENGTH):
            raise InvalidParameterError(f"{name} ids: an id is longer than {MAX_ID_LENGTH} characters")
        arr = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
        try:
            arr.validate(full=True)
        except pa.ArrowInvalid as exc:
            raise InvalidParameterError(f"{name} ids: invalid text ({exc})") from None
        values = as_text(arr.to_numpy(zero_copy_only=False))
    elif name in files:
        values = np.asarray(arrays[name])
        if values.dtype.kind not in "iU" or values.ndim != 1:
            raise InvalidParameterError(f"{name} ids: expected int64 or text; got {values.dtype} {values.shape}")
    else:
        raise InvalidParameterError(f"{name} ids: not stored")
    ids = IdMap(values)
    if not np.array_equal(ids.ids, values.astype(np.int64) if values.dtype.kind == "i" else values):
        raise InvalidParameterError(f"{name} ids: not stored in sorted order")
    return ids


def read_id_maps(path: Any, counts: Any) -> dict[str, IdMap]:
    """The id maps ``{node type: IdMap}`` stored in the ``.npz`` at ``path`` (an artifact's
    ``ids.npz``), each checked against ``counts`` (``{node type: number of ids}``, from a manifest).

    Raises
    ------
    ArtifactError
        Naming the file, when it is unreadable, an id array is malformed or a count disagrees.
    """
    from graphrec._manifest import load_npz
    from graphrec.exceptions import ArtifactError

    arrays = load_npz(path)
    maps = {}
    for t, n in counts.items():
        try:
            maps[t] = ids_from_arrays(arrays, t)
        except InvalidParameterError as exc:
            raise ArtifactError(f"{path}: {exc}") from None
        if len(maps[t]) != n:
            raise ArtifactError(f"{path}: {t} has {len(maps[t])} ids; manifest says {n}")
    return maps
