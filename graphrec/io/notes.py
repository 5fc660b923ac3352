"""Note side-info and optional user side-info: schema, validation and reading.

Note schema (one row per note)
------------------------------
==============  =============================  ================================================
column          type                           meaning
==============  =============================  ================================================
``note_id``     int or str, required, unique   the note
``author_id``   int or str, optional           its author (a user id on a UGC platform)
``tags``        list of str, optional          parquet/JSONL: a list; CSV: ``|``-separated text
``title``       str, optional                  short title
``text``        str, optional                  body text
``category``    str, optional                  coarse category
``created_at``  int seconds / datetime / ISO   publication time
==============  =============================  ================================================

Missing optional columns and null cells read as "unknown": empty tags, ``""`` for text,
``<NA>`` for author and time. A tags cell that is not a list (in parquet/JSONL), or a list
holding an empty tag, is an error.

User side-info needs only ``user_id`` (unique); other columns are passed through unchecked.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graphrec.exceptions import SchemaError
from graphrec.io._tables import TableSource, read_table
from graphrec.io.ids import normalise_ids
from graphrec.io.interactions import _as_table, _require_columns, _timestamps

__all__ = ["NOTE_COLUMNS", "read_notes", "read_users", "validate_notes", "validate_users"]

NOTE_COLUMNS = ("note_id", "author_id", "tags", "title", "text", "category", "created_at")
CSV_TAG_SEPARATOR = "|"


def _check_unique(ids: np.ndarray, *, name: str, source: TableSource) -> None:
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(ids == ids[row])[0])
        raise SchemaError(
            f"{source.where(row)}: {name} {ids[row].item()!r} repeats {source.where(first)}; each {name} must appear once"
        )


def _optional_ids(column: pa.ChunkedArray, *, name: str, source: TableSource) -> pd.Series:
    valid = pc.is_valid(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # An empty or blank optional id ("author_id": "") is a missing one, like null.
        blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0)
        valid = pc.and_(valid, pc.invert(pc.fill_null(blank, True)))
    present = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
    if present.all():
        ids = normalise_ids(column, name=name, source=source)
    else:
        sub = pc.filter(column, pa.array(present))
        sub_ids = normalise_ids(sub, name=name, source=TableSource(source.name, "memory"))
        if sub_ids.dtype.kind == "i":
            return _scatter(sub_ids, present, "Int64")
        return _scatter(sub_ids, present, "string")
    return pd.Series(ids, dtype="Int64" if ids.dtype.kind == "i" else "string")


def _scatter(values: np.ndarray, present: np.ndarray, dtype: str) -> pd.Series:
    out = pd.Series(pd.NA, index=range(len(present)), dtype=dtype)
    out[present] = values
    return out


def _tags(table: pa.Table, source: TableSource) -> pd.Series:
    n = table.num_rows
    if "tags" not in table.column_names:
        return pd.Series([()] * n, dtype=object)
    column = table.column("tags")
    typ = column.type
    if pa.types.is_null(typ):
        return pd.Series([()] * n, dtype=object)
    if source.fmt == "csv" and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        column = pc.split_pattern(pc.fill_null(column, ""), CSV_TAG_SEPARATOR)
        lists = [() if v == [""] else tuple(t.strip() for t in v) for v in column.to_pylist()]
    elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
        value_type = typ.value_type
        if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type) or pa.types.is_null(value_type)):
            raise SchemaError(f"{source.name}: column tags must be a list of strings; got type {typ}")
        lists = [() if v is None else tuple("" if t is None else t.strip() for t in v) for v in column.to_pylist()]
    else:
        hint = f" (in CSV write tags as {CSV_TAG_SEPARATOR!r}-separated text)" if source.fmt != "csv" else ""
        raise SchemaError(f"{source.name}: column tags must be a list of strings; got type {typ}{hint}")
    for row, tags in enumerate(lists):
        if any(t == "" for t in tags):
            raise SchemaError(f"{source.where(row)}: tags holds an empty tag: {list(tags)!r}")
    return pd.Series(lists, dtype=object)


def _text(table: pa.Table, name: str, source: TableSource) -> pd.Series:
    if name not in table.column_names:
        return pd.Series([""] * table.num_rows, dtype=object)
    column = table.column(name)
    if pa.types.is_null(column.type):
        return pd.Series([""] * table.num_rows, dtype=object)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise SchemaError(f"{source.name}: column {name} must hold text; got type {column.type}")
    return pd.Series(pc.fill_null(column, "").to_numpy(zero_copy_only=False), dtype=object)


def validate_notes(data: pa.Table | pd.DataFrame, *, source: TableSource | str = "notes") -> pd.DataFrame:
    """Check a note side-info table and return it in canonical form.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`NOTE_COLUMNS`: ``note_id`` (int64 or str), ``author_id`` (nullable),
        ``tags`` (tuples of str), ``title``/``text``/``category`` (str), ``created_at``
        (nullable Int64 unix seconds).

    Raises
    ------
    SchemaError
        Naming the file, row and column of the first problem.
    """
    src = source if isinstance(source, TableSource) else TableSource(str(source))
    table = _as_table(data)
    _require_columns(table, ("note_id",), src)
    if table.num_rows == 0:
        raise SchemaError(f"{src.name}: the table has no rows")
    note_ids = normalise_ids(table.column("note_id"), name="note_id", source=src)
    _check_unique(note_ids, name="note_id", source=src)
    n = table.num_rows
    if "author_id" in table.column_names and not pa.types.is_null(table.column("author_id").type):
        authors = _optional_ids(table.column("author_id"), name="author_id", source=src)
    else:
        authors = pd.Series(pd.NA, index=range(n), dtype="Int64")
    if "created_at" in table.column_names and not pa.types.is_null(table.column("created_at").type):
        col = table.column("created_at")
        present = pc.is_valid(col).to_numpy(zero_copy_only=False)
        created = pd.Series(pd.NA, index=range(n), dtype="Int64")
        if present.any():
            created[present] = _timestamps(pc.filter(col, pa.array(present)), TableSource(src.name, "memory"))
    else:
        created = pd.Series(pd.NA, index=range(n), dtype="Int64")
    return pd.DataFrame(
        {
            "note_id": note_ids,
            "author_id": authors,
            "tags": _tags(table, src),
            "title": _text(table, "title", src),
            "text": _text(table, "text", src),
            "category": _text(table, "category", src),
            "created_at": created,
        }
    )


def validate_users(data: pa.Table | pd.DataFrame, *, source: TableSource | str = "users") -> pd.DataFrame:
    """Check a user side-info table: ``user_id`` present, non-empty and unique."""
    src = source if isinstance(source, TableSource) else TableSource(str(source))
    table = _as_table(data)
    _require_columns(table, ("user_id",), src)
    if table.num_rows == 0:
        raise SchemaError(f"{src.name}: the table has no rows")
    ids = normalise_ids(table.column("user_id"), name="user_id", source=src)
    _check_unique(ids, name="user_id", source=src)
    frame = table.drop_columns(["user_id"]).to_pandas()
    frame.insert(0, "user_id", ids)
    return frame


def read_notes(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate note side-info from parquet, CSV or JSONL (see :func:`validate_notes`)."""
    table, source = read_table(path, string_columns=("note_id", "author_id", "tags", "title", "text", "category"))
    return validate_notes(table, source=source)


def read_users(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate user side-info from parquet, CSV or JSONL (see :func:`validate_users`)."""
    table, source = read_table(path, string_columns=("user_id",))
    return validate_users(table, source=source)
