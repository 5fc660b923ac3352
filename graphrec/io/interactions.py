"""Interaction logs: schema, validation, reading and the duplicate rule.

Schema (one row per event)
--------------------------
==============  ===============================  ==========================================
column          type                             meaning
==============  ===============================  ==========================================
``user_id``     int or str, required             who acted
``note_id``     int or str, required             on which note
``event_type``  str, required                    one of the configured event types
``timestamp``   int seconds, datetime or ISO     when (stored as int64 unix seconds)
``value``       float >= 0, optional             e.g. dwell seconds; null/absent means 0
==============  ===============================  ==========================================

Other columns are ignored. Event types are matched case-insensitively with ``-`` and spaces read
as ``_`` (``"Follow-Author"`` is ``follow_author``). An event type outside the configured set is an
error unless ``unknown_events="drop"``, which drops those rows and reports how many.

Duplicate rule
--------------
Rows equal in ``(user_id, note_id, event_type, timestamp)`` are one event logged twice: they are
collapsed to the first such row (its ``value`` is kept) and counted. Repeated events of one type at
different times are *not* duplicates: they all count towards the edge weight
(see :func:`graphrec.graph.build_graph`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graphrec._validation import check_choice
from graphrec.exceptions import SchemaError
from graphrec.io._tables import TableSource, read_table
from graphrec.io.ids import normalise_ids

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "INTERACTION_COLUMNS",
    "collapse_duplicates",
    "normalise_event_name",
    "read_interactions",
    "read_user_note_pairs",
    "validate_interactions",
]

logger = logging.getLogger("graphrec")

#: Default weight of each event type in the user–engages–note edge. Impressions carry no
#: engagement (weight 0): they record exposure, which the debiasing step uses.
DEFAULT_EVENT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "impression": 0.0,
        "click": 1.0,
        "like": 2.0,
        "collect": 3.0,
        "comment": 3.0,
        "share": 4.0,
        "follow_author": 4.0,
    }
)

INTERACTION_COLUMNS = ("user_id", "note_id", "event_type", "timestamp", "value")
_REQUIRED = ("user_id", "note_id", "event_type", "timestamp")


def normalise_event_name(name: str) -> str:
    """Canonical event-type spelling: lower case, ``-`` and spaces as ``_``."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def engaged_mask(interactions: pd.DataFrame, event_weights: Mapping[str, float] | None = None) -> np.ndarray:
    """Rows whose event type has positive weight (engagements rather than mere impressions)."""
    weights = {normalise_event_name(k): v for k, v in (event_weights or DEFAULT_EVENT_WEIGHTS).items()}
    cats = interactions["event_type"].astype("category")
    positive = np.array([weights.get(normalise_event_name(str(c)), 0.0) > 0 for c in cats.cat.categories] + [False])
    return positive[cats.cat.codes.to_numpy()]


def _as_table(data: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pd.DataFrame):
        # An id column mixing ints and text (42 and "u7") is text: ids follow one rule (io.ids).
        mixed = {
            c: data[c].map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))
            for c in ("user_id", "note_id", "author_id")
            if c in data.columns and data[c].dtype == object and data[c].map(type).nunique() > 1
        }
        try:
            return pa.Table.from_pandas(data.assign(**mixed) if mixed else data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaError(f"cannot read the table: {exc}") from None
    raise SchemaError(f"expected a pandas DataFrame or pyarrow Table; got {type(data).__name__}")


def _require_columns(table: pa.Table, required: Sequence[str], source: TableSource) -> None:
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise SchemaError(
            f"{source.name}: missing required column(s) {', '.join(missing)}; "
            f"found {', '.join(table.column_names) or 'none'}"
        )


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def event_codes(
    column: pa.ChunkedArray, event_types: Sequence[str], source: TableSource, *, unknown: str = "error"
) -> np.ndarray:
    """Codes (int8) of ``column`` in ``event_types``; -1 for unknown types when ``unknown="drop"``."""
    if column.null_count:
        raise SchemaError(
            f"{source.where(_first(pc.is_null(column).to_numpy(zero_copy_only=False)))}: event_type is empty"
        )
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.dictionary(pa.int32(), column.type.value_type))
    else:
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise SchemaError(f"{source.name}: column event_type must hold text; got type {column.type}")
        column = column.dictionary_encode()
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    known = {name: i for i, name in enumerate(event_types)}
    out = []
    for chunk in chunks:
        names = [normalise_event_name(str(v)) for v in chunk.dictionary.to_pylist()]
        lookup = np.array([known.get(n, -1) for n in names] or [-1], dtype=np.int8)
        out.append(lookup[chunk.indices.to_numpy(zero_copy_only=False)])
    codes = np.concatenate(out) if out else np.empty(0, dtype=np.int8)
    if unknown == "error" and (codes < 0).any():
        row = _first(codes < 0)
        bad = column.take([row]).cast(column.type.value_type if pa.types.is_dictionary(column.type) else column.type)
        raise SchemaError(
            f"{source.where(row)}: event_type {bad[0].as_py()!r} is not a configured event type "
            f"({', '.join(event_types)}); add it to event_weights or pass unknown_events='drop'"
        )
    return codes


#: Accepted timestamps, unix seconds: 1970-01-01 up to 2100-01-01 (milliseconds are out of range).
TIMESTAMP_RANGE = (0, 4_102_444_800)


def _check_range(seconds: np.ndarray, source: TableSource) -> np.ndarray:
    lo, hi = TIMESTAMP_RANGE
    bad = (seconds < lo) | (seconds > hi)
    if bad.any():
        row = _first(bad)
        hint = " (milliseconds? give seconds)" if seconds[row] > hi else ""
        raise SchemaError(
            f"{source.where(row)}: timestamp {int(seconds[row])} is outside {lo}..{hi} unix seconds "
            f"(1970 to 2100){hint}"
        )
    return seconds


def _timestamps(column: pa.ChunkedArray, source: TableSource) -> np.ndarray:
    if column.null_count:
        raise SchemaError(
            f"{source.where(_first(pc.is_null(column).to_numpy(zero_copy_only=False)))}: timestamp is empty"
        )
    typ = column.type
    if pa.types.is_integer(typ):
        return _check_range(np.asarray(column.to_numpy(), dtype=np.int64), source)
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        try:
            seconds = pc.cast(pc.cast(column, pa.timestamp("s")), pa.int64())
        except pa.ArrowInvalid as exc:
            raise SchemaError(f"{source.name}: column timestamp holds values out of range ({exc})") from None
        return _check_range(np.asarray(seconds.to_numpy(), dtype=np.int64), source)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        stripped = pc.utf8_trim_whitespace(column)
        numeric = np.asarray(
            pc.match_substring_regex(stripped, r"^-?[0-9]{1,18}$").to_numpy(zero_copy_only=False), dtype=bool
        )
        text = pd.Series(stripped.to_numpy(zero_copy_only=False), dtype=object)
        seconds = np.zeros(len(text), dtype=np.int64)
        seconds[numeric] = text[numeric].astype(np.int64).to_numpy()
        if not numeric.all():
            rest = np.flatnonzero(~numeric)
            parsed = pd.to_datetime(text.iloc[rest], errors="coerce", utc=True, format="ISO8601")
            if parsed.isna().any():
                row = int(rest[_first(parsed.isna().to_numpy())])
                raise SchemaError(
                    f"{source.where(row)}: timestamp {text.iloc[row]!r} is neither unix seconds nor an ISO 8601 date-time"
                )
            seconds[rest] = ((parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy()
        return _check_range(seconds, source)
    raise SchemaError(
        f"{source.name}: column timestamp must be integer unix seconds, a datetime or ISO text; got type {typ}"
    )


def check_nonnegative_numbers(column: pa.ChunkedArray, *, name: str, source: TableSource) -> np.ndarray:
    """float32 values of a numeric column: null reads as 0; NaN, inf and negatives are errors."""
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_null(column.type)):
        raise SchemaError(f"{source.name}: column {name} must be numeric; got type {column.type}")
    if pa.types.is_null(column.type):  # every cell empty: all 0 (fill_null cannot type a null column)
        return np.zeros(len(column), dtype=np.float32)
    values = np.asarray(pc.fill_null(column, 0).to_numpy(zero_copy_only=False), dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row = _first(bad)
        raise SchemaError(f"{source.where(row)}: {name} must be a finite number >= 0; got {values[row].item()!r}")
    return values.astype(np.float32)


def validate_interactions(
    data: pa.Table | pd.DataFrame,
    *,
    source: TableSource | str = "interactions",
    event_types: Sequence[str] = tuple(DEFAULT_EVENT_WEIGHTS),
    unknown_events: str = "error",
    collapse: bool = True,
) -> pd.DataFrame:
    """Check an interaction table against the schema and return it in canonical form.

    Parameters
    ----------
    data : pandas.DataFrame or pyarrow.Table
        Rows with at least ``user_id``, ``note_id``, ``event_type``, ``timestamp``.
    source : TableSource or str
        Name used in error messages (a file name).
    event_types : sequence of str
        Accepted event types (canonical spelling); they become the categories of ``event_type``.
    unknown_events : {"error", "drop"}
        What to do with rows whose event type is not in ``event_types``.
    collapse : bool
        Apply the duplicate rule (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``note_id`` (int64 or str), ``event_type`` (categorical over
        ``event_types``), ``timestamp`` (int64 unix seconds), ``value`` (float32). ``df.attrs``
        records ``n_unknown_events_dropped`` and ``n_duplicates_collapsed``.

    Raises
    ------
    SchemaError
        Naming the file, row and column of the first problem.
    """
    src = source if isinstance(source, TableSource) else TableSource(str(source))
    check_choice("unknown_events", unknown_events, ("error", "drop"))
    types = tuple(normalise_event_name(t) for t in event_types)
    if not types:
        raise SchemaError("event_types is empty; configure at least one event type")
    table = _as_table(data)
    _require_columns(table, _REQUIRED, src)
    if table.num_rows == 0:
        raise SchemaError(f"{src.name}: the table has no rows")
    users = normalise_ids(table.column("user_id"), name="user_id", source=src)
    notes = normalise_ids(table.column("note_id"), name="note_id", source=src)
    codes = event_codes(table.column("event_type"), types, src, unknown=unknown_events)
    ts = _timestamps(table.column("timestamp"), src)
    if "value" in table.column_names:
        value = check_nonnegative_numbers(table.column("value"), name="value", source=src)
    else:
        value = np.zeros(table.num_rows, dtype=np.float32)
    frame = pd.DataFrame(
        {
            "user_id": users,
            "note_id": notes,
            "event_type": pd.Categorical.from_codes(np.maximum(codes, 0), categories=list(types)),
            "timestamp": ts,
            "value": value,
        }
    )
    dropped = int((codes < 0).sum())
    if dropped:
        logger.warning("%s: dropped %d rows with event types outside %s", src.name, dropped, types)
        frame = frame.loc[codes >= 0].reset_index(drop=True)
        if frame.empty:
            raise SchemaError(f"{src.name}: no rows left after dropping unknown event types")
    n_dup = 0
    if collapse:
        frame, n_dup = collapse_duplicates(frame)
        if n_dup:
            logger.info("%s: collapsed %d duplicate events", src.name, n_dup)
    frame.attrs["n_unknown_events_dropped"] = dropped
    frame.attrs["n_duplicates_collapsed"] = n_dup
    return frame


_DUPLICATE_KEY = ["user_id", "note_id", "event_type", "timestamp"]


def collapse_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop rows equal to an earlier row in (user_id, note_id, event_type, timestamp).

    Exact and memory-light: rows are hashed (64-bit, all four fields), hashes are sorted to find
    the few values that occur more than once, and only rows carrying such a hash are compared
    field by field, so a hash collision never drops a row. Returns the frame (the same object
    when nothing is dropped) and the number of rows dropped.
    """
    if len(frame) < 2:
        return frame, 0
    h = pd.util.hash_pandas_object(frame[_DUPLICATE_KEY], index=False).to_numpy()
    ordered = np.sort(h)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if repeated.size == 0:
        return frame, 0
    candidates = np.flatnonzero(np.isin(h, repeated))
    # Every row of an exact-duplicate group shares its hash, so all of them are candidates and
    # keep="first" within the candidates is the first row of the group in the whole frame.
    dup = frame.iloc[candidates][_DUPLICATE_KEY].duplicated(keep="first").to_numpy()
    n = int(dup.sum())
    if n == 0:
        return frame, 0
    keep = np.ones(len(frame), dtype=bool)
    keep[candidates[dup]] = False
    out = frame.loc[keep].reset_index(drop=True)
    out.attrs.update(frame.attrs)
    return out, n


def read_user_note_pairs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read just ``user_id`` and ``note_id`` from a table file (other columns are ignored).

    For jobs that need only who engaged what (Swing, ItemCF). Ids follow the usual rule
    (:mod:`graphrec.io.ids`); null or empty ids are errors naming the row.
    """
    table, source = read_table(path, string_columns=("user_id", "note_id"))
    _require_columns(table, ("user_id", "note_id"), source)
    return pd.DataFrame(
        {
            "user_id": normalise_ids(table.column("user_id"), name="user_id", source=source),
            "note_id": normalise_ids(table.column("note_id"), name="note_id", source=source),
        }
    )


def read_interactions(
    path: str | os.PathLike[str],
    *,
    event_weights: Mapping[str, float] | None = None,
    unknown_events: str = "error",
    collapse: bool = True,
) -> pd.DataFrame:
    """Read and validate an interaction log from parquet, CSV or JSONL.

    The accepted event types are the keys of ``event_weights`` (default
    :data:`DEFAULT_EVENT_WEIGHTS`). See :func:`validate_interactions` for the output.

    Examples
    --------
    >>> df = read_interactions("data/sample/interactions.parquet")  # doctest: +SKIP
    """
    table, source = read_table(path, string_columns=("user_id", "note_id", "event_type"))
    weights = DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights
    return validate_interactions(
        table, source=source, event_types=tuple(weights), unknown_events=unknown_events, collapse=collapse
    )
