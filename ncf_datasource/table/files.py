"""Data files of a table: unique names, writing with statistics, reading with schema evolution."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..format.filters import Expr
from ..format.reader import NCFFile
from ..format.writer import NCFWriter
from .errors import SchemaMismatchError
from .log import DataFile, merge_stats

DATA_SUFFIX = ".ncf"


def data_file_name(prefix: str = "part") -> str:
    """A fresh data file name, e.g. ``part-00003-1-<uuid>.ncf`` for task 3, attempt 1."""
    return f"{prefix}-{uuid.uuid4().hex}{DATA_SUFFIX}"


def describe_file(table_path: Path, rel: str) -> DataFile:
    """The ``add`` action of a written data file: size, rows, row groups, whole-file statistics."""
    path = table_path / rel
    with NCFFile(path, verify_checksums=False) as f:
        stats = {
            name: merge_stats([rg.columns[name].stats for rg in f.row_groups], f.schema.field(name).type)
            for name in f.schema.names
        }
        return DataFile(
            path=rel,
            size=os.path.getsize(path),
            rows=f.num_rows,
            row_groups=tuple(rg.num_rows for rg in f.row_groups),
            stats=stats,
            indexed=tuple(f.index_meta),
            added_at=int(time.time() * 1000),
        )


def write_data_file(
    table_path: Path,
    batches: Iterable[pa.RecordBatch | pa.Table],
    schema: pa.Schema,
    *,
    prefix: str = "part",
    sort_key: str | None = None,
    data_change: bool = True,
    **writer_options: Any,
) -> DataFile | None:
    """Write ``batches`` (already conformed to ``schema``) as one new data file; None if empty.

    The file is written under a temporary name and renamed into place on close (the NCF
    writer's contract), so a crash never leaves a partial file under a data file name.
    """
    rel = data_file_name(prefix)
    writer = NCFWriter(table_path / rel, schema, sort_key=sort_key, **writer_options)
    rows = 0
    try:
        for batch in batches:
            if batch.num_rows:
                (writer.write_table if isinstance(batch, pa.Table) else writer.write_batch)(batch)
                rows += batch.num_rows
    except BaseException:
        writer.abort()
        raise
    if not rows:
        writer.abort()
        return None
    writer.close()
    data_file = describe_file(table_path, rel)
    return data_file if data_change else DataFile(**{**data_file.__dict__, "data_change": False})


# ---------------------------------------------------------------- schemas


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether values of ``source`` can be stored in a ``target`` column without losing meaning."""
    if source.equals(target):
        return True
    t = pa.types
    if t.is_null(source):
        return True
    if t.is_integer(source) and t.is_integer(target):
        return True  # range is checked by the safe cast
    if t.is_floating(source) and t.is_floating(target):
        return target.bit_width >= source.bit_width
    if t.is_integer(source) and t.is_floating(target):
        return True
    if t.is_timestamp(source) and t.is_timestamp(target):
        return (source.tz is None) == (target.tz is None)
    if (t.is_string(source) or t.is_large_string(source)) and (
        t.is_string(target) or t.is_large_string(target)
    ):
        return True
    if (t.is_binary(source) or t.is_large_binary(source)) and (
        t.is_binary(target) or t.is_large_binary(target)
    ):
        return True
    if t.is_decimal(source) and t.is_decimal(target):
        return (
            target.scale >= source.scale
            and target.precision - target.scale >= source.precision - source.scale
        )
    return False


def evolve_schema(
    table_schema: pa.Schema, data_schema: pa.Schema, merge_schema: bool, where: str
) -> pa.Schema:
    """The table schema after writing data of ``data_schema``: new columns appended (nullable)
    when ``merge_schema``; raises :class:`SchemaMismatchError` on an incompatible change."""
    fields = list(table_schema)
    for f in data_schema:
        if f.name in table_schema.names:
            current = table_schema.field(f.name).type
            if not _castable(f.type, current):
                raise SchemaMismatchError(
                    f"{where}: column {f.name!r} is {current} in the table but {f.type} in the data"
                )
        elif merge_schema:
            fields.append(f.with_nullable(True))
        else:
            raise SchemaMismatchError(
                f"{where}: the data has column {f.name!r} that the table does not have "
                "(write with mergeSchema to add it)"
            )
    return pa.schema(fields)


def conform(table: pa.Table, schema: pa.Schema, columns: Sequence[str] | None = None) -> pa.Table:
    """``table`` with exactly the ``columns`` of ``schema`` (default: all), in order and typed:
    missing columns become nulls (files written before a column was added)."""
    names = schema.names if columns is None else list(columns)
    arrays = []
    for name in names:
        target = schema.field(name).type
        if name in table.column_names:
            arr = table.column(name)
            arrays.append(arr if arr.type.equals(target) else pc.cast(arr, target, safe=True))
        else:
            arrays.append(pa.nulls(table.num_rows, target))
    return pa.Table.from_arrays(arrays, schema=pa.schema([schema.field(n).remove_metadata() for n in names]))


def read_data_file(
    path: str,
    schema: pa.Schema,
    columns: Sequence[str] | None = None,
    expr: Expr | None = None,
    row_groups: Sequence[int] | None = None,
) -> pa.Table:
    """Rows of one data file matching ``expr``, conformed to the table ``schema`` (``columns`` only).

    Statistics and the learned index of the file skip what cannot match; columns a file
    does not have (added later) read as nulls.
    """
    columns = list(schema.names if columns is None else columns)
    with NCFFile(path) as f:
        groups = range(f.num_row_groups) if row_groups is None else row_groups
        # At least one column is decoded: a table without columns would lose its row count.
        present = [c for c in columns if c in f.schema.names] or f.schema.names[:1]
        if expr is None:
            table = f.read_row_groups(groups, present)
        elif expr.columns() <= set(f.schema.names):
            table = f.read_row_groups(groups, present, expr)
        else:
            needed = present + sorted((expr.columns() - set(present)) & set(f.schema.names))
            table = f.read_row_groups(groups, needed)
            evolved = conform(table, schema, sorted((set(needed) | expr.columns()) & set(schema.names)))
            table = evolved.filter(expr.bind(evolved.schema).to_arrow())
    return conform(table, schema, columns)
