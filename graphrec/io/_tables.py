"""Read parquet / CSV / JSONL into a pyarrow Table, and name rows in error messages.

All three formats go through pyarrow so that validation has one code path and can tell a
null (missing) from a NaN (a bad number). Rows are named the way a person finds them:
``"notes.jsonl line 12"`` for text formats (CSV counts its header line), ``"x.parquet row 12"``
for parquet (1-based).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from graphrec.exceptions import SchemaError

__all__ = ["FORMATS", "TableSource", "read_table", "table_format", "write_table"]

FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True)
class TableSource:
    """Where a table came from, used to name rows in error messages."""

    name: str
    fmt: str = "memory"

    def where(self, row: int) -> str:
        """Name the 0-based data row ``row`` as a person would look it up."""
        if self.fmt == "csv":
            return f"{self.name} line {row + 2}"
        if self.fmt == "jsonl":
            return f"{self.name} line {row + 1}"
        return f"{self.name} row {row + 1}"


def table_format(path: str | os.PathLike[str]) -> str:
    """The table format (``parquet``, ``csv`` or ``jsonl``) a path's suffix names, or a :class:`SchemaError`."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SchemaError(
            f"{path}: unsupported file type {path.suffix!r}; expected one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


def read_table(path: str | os.PathLike[str], *, string_columns: tuple[str, ...] = ()) -> tuple[pa.Table, TableSource]:
    """Read a table file; CSV columns in ``string_columns`` are kept as text (ids, tag lists).

    Raises
    ------
    SchemaError
        If the file is missing, empty, unreadable or has no data rows.
    """
    p = Path(path)
    fmt = table_format(p)
    source = TableSource(p.name, fmt)
    if not p.is_file():
        raise SchemaError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise SchemaError(f"{p}: the file is empty; expected a {fmt} table with a header/schema and rows")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(p)
        elif fmt == "csv":
            import pyarrow.csv as pcsv

            # column_types ignores names the file lacks; missing columns are reported later.
            types = {c: pa.string() for c in string_columns}
            table = pcsv.read_csv(
                p,
                convert_options=pcsv.ConvertOptions(
                    column_types=types, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False
                ),
            )
        else:
            import pyarrow.json as pjson

            table = pjson.read_json(p)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise SchemaError(f"{p}: cannot read as {fmt}: {exc}") from exc
    if table.num_rows == 0:
        raise SchemaError(f"{p}: the table has no data rows")
    return table, source


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` atomically as parquet or CSV, chosen by the extension of ``path``."""
    from graphrec._atomic import atomic_file

    p = Path(path)
    fmt = table_format(p)
    with atomic_file(p) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        elif fmt == "csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    return p
