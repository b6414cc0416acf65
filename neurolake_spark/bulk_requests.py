"""Bulk writes described by a request: rows checked against the table, structured conditions.

What the HTTP API's ``/api/v1/data/bulk/*`` routes call (and what any other caller that gets
rows or conditions from outside should call). Each write is one :mod:`~neurolake_spark.bulk`
commit inside its own :class:`~neurolake_spark.runs.JobRun` (lineage event, catalog version),
under the table's run lock (:mod:`~neurolake_spark.locks`), so a compaction, restore or
erasure of the same table fails fast instead of interleaving, and never while a nightly or a
pipeline step runs (they hold their date's lock)::

    lh = Lakehouse.open("conf/local.yaml")
    rows = rows_table([{"order_id": 1, "status": "paid"}], table_schema(lh, "silver.orders"))
    result = write_rows(lh, "insert", "silver.orders", rows)
    where = condition_from_json([{"column": "status", "op": "=", "value": "test"}])
    result = change_rows(lh, "delete", "silver.orders", where, dry_run=True)   # counts only
    result.rows_matched, result.committed                                      # (12, False)

Rows are Arrow: a JSON list of objects is read column by column into the table's Arrow types,
and an Arrow IPC stream is cast to them; an unknown column, a value of the wrong type or a
missing non-nullable column is a one-line :class:`~neurolake_spark.errors.BadInputError`
naming the column. Conditions and assignments are trees of :mod:`~neurolake_spark.conditions`
bound to the table's columns; one that matches every row needs ``all_rows``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from neurolake_spark import bulk
from neurolake_spark.bulk_guard import check_rows, table_columns
from neurolake_spark.conditions import Node, bind, bind_assignments, to_column
from neurolake_spark.errors import BadInputError, PipelineError
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.locks import LockHeldError, date_lock_holders, run_lock
from neurolake_spark.run_model import schema_of
from neurolake_spark.runs import JobRun
from neurolake_spark.tables import TableRef

ROW_OPERATIONS = ("insert", "upsert")
CONDITION_OPERATIONS = ("update", "delete")
SESSION_LOCK = threading.Lock()
"""Bulk writes of one process run one at a time: a Delta commit's tag and a MERGE's settings
are session settings while the write runs (:mod:`~neurolake_spark.table_formats`)."""


class MissingTableError(PipelineError):
    """The table is declared but has no committed version yet: there is no schema to write to."""


@dataclass
class BulkResult:
    """What one bulk write did (or, with ``dry_run``, would do)."""

    operation: str
    table: str
    run_id: str | None
    committed: bool
    version: int | None
    rows_in: int = 0
    rows_matched: int | None = None
    rows_total: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def existing_table(lh: Lakehouse, name: str) -> TableRef:
    """The resolved table ``name``, which must have at least one committed version."""
    ref = lh.resolve(name)
    if not bulk.exists(lh.spark, ref):
        raise MissingTableError(f"table {name} does not exist yet; run the pipeline first")
    return ref


def table_schema(lh: Lakehouse, name: str) -> StructType:
    """The Spark schema of the existing table ``name`` (no data is read)."""
    ref = existing_table(lh, name)
    return lh.spark.read.format(ref.format).load(ref.uri).schema


def _timestamps(array: pa.Array, column: str, target: pa.DataType) -> pa.Array:
    """ISO 8601 texts as timestamps: with an offset as given, without one as UTC."""
    moments = []
    for text in array.to_pylist():
        try:
            moment = None if text is None else datetime.fromisoformat(text)
        except ValueError:
            raise BadInputError(f"column '{column}': {text[:40]!r} is not an ISO 8601 time") from None
        moments.append(moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC))
    return pa.array(moments, target)


def _cast(array: pa.Array, column: str, spark_type: str, target: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(target) and pa.types.is_string(array.type):
        return _timestamps(array, column, target)
    try:
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise BadInputError(
            f"column '{column}': cannot read {array.type} values as {spark_type} ({reason})"
        ) from None


def _checked_columns(given: list[str], schema: StructType, missing_ok: bool) -> None:
    known = set(schema.fieldNames())
    unknown = [c for c in given if c not in known]
    if unknown:
        raise BadInputError(
            f"column '{unknown[0][:100]}' is not in the table (columns: {', '.join(schema.fieldNames())})"
        )
    for f in schema.fields:
        if f.name not in given and not (missing_ok and f.nullable):
            raise BadInputError(f"column '{f.name}' is missing and may not be null")


def rows_table(rows: Any, schema: StructType) -> pa.Table:
    """A JSON list of row objects as an Arrow table of ``schema`` (columns absent from every row
    are null; a key no column has, or a value of the wrong type, is refused naming the column)."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise BadInputError("rows must be a non-empty list of objects (column: value)")
    given = list(dict.fromkeys(k for row in rows for k in row))
    _checked_columns(given, schema, missing_ok=True)
    arrow = to_arrow_schema(schema, timezone="UTC")
    columns = []
    for f, target in zip(schema.fields, arrow):
        values = [row.get(f.name) for row in rows]
        try:
            array = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise BadInputError(f"column '{f.name}': values of mixed types") from None
        columns.append(_cast(array, f.name, f.dataType.simpleString(), target.type))
    return _non_null_checked(pa.Table.from_arrays(columns, schema=arrow), schema)


def arrow_rows(table: pa.Table, schema: StructType) -> pa.Table:
    """An Arrow table (e.g. read from an IPC stream) cast to ``schema``; missing nullable
    columns become null, anything else that does not fit is refused naming the column."""
    if table.num_rows == 0:
        raise BadInputError("the Arrow stream holds no rows")
    _checked_columns(table.column_names, schema, missing_ok=True)
    arrow = to_arrow_schema(schema, timezone="UTC")
    columns = []
    for f, target in zip(schema.fields, arrow):
        if f.name in table.column_names:
            array = table.column(f.name).combine_chunks()
            columns.append(_cast(array, f.name, f.dataType.simpleString(), target.type))
        else:
            columns.append(pa.nulls(table.num_rows, target.type))
    return _non_null_checked(pa.Table.from_arrays(columns, schema=arrow), schema)


def _non_null_checked(table: pa.Table, schema: StructType) -> pa.Table:
    for f in schema.fields:
        if not f.nullable and table.column(f.name).null_count:
            raise BadInputError(f"column '{f.name}' may not be null")
    return table


def _upsert_keys(lh: Lakehouse, name: str, keys: list[str] | None, schema: StructType) -> list[str]:
    """``keys``, or the business key of the source whose bronze or silver table ``name`` is."""
    if not keys:
        sources = lh.settings.pipeline_definition().sources.values()
        keys = next((list(s.key) for s in sources if name in (s.bronze, s.silver)), None)
        if not keys:
            raise BadInputError(f"upsert into {name}: give 'keys' (the table has no declared business key)")
    unknown = [k for k in keys if k not in schema.fieldNames()]
    if unknown:
        raise BadInputError(f"upsert into {name}: key column '{unknown[0][:100]}' is not in the table")
    return keys


def _no_nightly_running(lh: Lakehouse) -> None:
    """Refuse (:class:`~neurolake_spark.locks.LockHeldError`) while a nightly or a step runs: they
    hold their date's lock, not the locks of the tables they write."""
    holders = date_lock_holders(lh.settings)
    if holders:
        raise LockHeldError(holders[0])


@contextmanager
def _guarded_run(lh: Lakehouse, operation: str, name: str, ref: TableRef) -> Iterator[JobRun]:
    """The JobRun of one bulk request, entered under the session's write lock and the table's
    lock, refused while a nightly or a step runs."""
    run = lh.run(f"api_bulk_{operation}")
    with SESSION_LOCK, run_lock(lh.settings, f"a bulk {operation} of {name}", run.run_id, tables=[ref.path]):
        _no_nightly_running(lh)
        yield run


def write_rows(
    lh: Lakehouse,
    operation: str,
    name: str,
    rows: pa.Table,
    keys: list[str] | None = None,
) -> BulkResult:
    """Insert ``rows`` (already checked against the table: :func:`rows_table`) or upsert them by
    ``keys`` (default: the source's business key), in one commit inside a JobRun."""
    if operation not in ROW_OPERATIONS:
        raise BadInputError(f"operation must be one of {', '.join(ROW_OPERATIONS)}")
    ref = existing_table(lh, name)
    schema = lh.spark.read.format(ref.format).load(ref.uri).schema
    merge_keys = _upsert_keys(lh, name, keys, schema) if operation == "upsert" else []
    with _guarded_run(lh, operation, name, ref) as run:
        with run:
            frame = lh.spark.createDataFrame(rows).select(*[f"`{c}`" for c in schema.fieldNames()])
            if operation == "insert":
                version = bulk.insert(lh.spark, ref, frame, run_id=run.run_id)
            else:
                version = bulk.upsert(lh.spark, ref, frame, keys=merge_keys, run_id=run.run_id)
            run.add_output(
                name,
                format=ref.format,
                path=ref.uri,
                version=version.version,
                rows=version.rows_written,
                bytes=version.bytes_written,
                files=version.files_written,
                schema=schema_of(schema),
            )
    return BulkResult(
        operation, name, run.run_id, True, version.version, rows_in=rows.num_rows, metrics=version.metrics
    )


def change_rows(
    lh: Lakehouse,
    operation: str,
    name: str,
    where: Node,
    assignments: dict[str, Node] | None = None,
    all_rows: bool = False,
    dry_run: bool = False,
) -> BulkResult:
    """Update (``assignments``) or delete the rows ``where`` (an unbound condition tree) matches,
    in one commit inside a JobRun; with ``dry_run`` only count them. A condition that matches
    every row is refused unless ``all_rows`` (:class:`~neurolake_spark.bulk_guard.EveryRowError`)."""
    if operation not in CONDITION_OPERATIONS:
        raise BadInputError(f"operation must be one of {', '.join(CONDITION_OPERATIONS)}")
    if operation == "update" and not assignments:
        raise BadInputError("an update needs 'set': the columns to change")
    ref = existing_table(lh, name)
    columns = table_columns(lh.spark, ref.format, ref.uri)
    bound = bind(where, columns, "where")
    sets = bind_assignments(assignments or {}, columns, "set") if operation == "update" else {}

    def impact():
        return check_rows(
            lh.spark,
            ref.format,
            ref.uri,
            name,
            bound,
            all_rows,
            refusal=f"{operation} {name}",
            hint=f'add "all_rows": true to {operation} every row',
        )

    if dry_run:
        counted = impact()
        current = bulk.current_version(lh.spark, ref).version
        return BulkResult(
            operation, name, None, False, current, rows_matched=counted.matched, rows_total=counted.rows
        )
    with _guarded_run(lh, operation, name, ref) as run:
        counted = impact()
        with run:
            if operation == "update":
                changes = {column: to_column(node) for column, node in sets.items()}
                version = bulk.update(lh.spark, ref, to_column(bound), changes, run_id=run.run_id)
            else:
                version = bulk.delete(lh.spark, ref, to_column(bound), run_id=run.run_id)
            run.add_output(
                name,
                format=ref.format,
                path=ref.uri,
                version=version.version,
                rows=counted.matched,
                bytes=version.bytes_written,
                files=version.files_written,
            )
    return BulkResult(
        operation,
        name,
        run.run_id,
        version.operation != "NONE",
        version.version,
        rows_matched=counted.matched,
        rows_total=counted.rows,
        metrics=version.metrics,
    )
