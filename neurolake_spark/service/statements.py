"""Statements over Spark for the service (``/api/v1/queries``), after Databricks' Statement
Execution API: submit, wait a little, poll, fetch result chunks, cancel.

A statement is checked with Spark's parser (:mod:`.readonly`), then runs in a worker thread of
its tenant (at most ``statement_concurrency`` at once, ``statement_queue`` more waiting, the
service's or the tenant's own; beyond that :class:`Busy`), in an isolated session where each
table it names is a temporary view over :class:`~.table_access.TableAccess` (tenant checked, PII
masked), under the Spark tag ``neurolake-statement-<id>`` and in the tenant's FAIR pool. Its rows
stream to the driver one partition at a time (as Arrow batches Spark's JVM encodes) and are
spooled as Arrow IPC chunk files of ``statement_chunk_rows`` rows under
``<state_dir>/statements/<id>``, up to the row and byte limits; nothing holds the whole result in
memory. Cancel and timeouts interrupt the tag, so the Spark jobs stop.

Statements live in the process that ran them for ``statement_retention_seconds`` (then their
spool is removed); each finished one is a row of ``statement_history`` in the catalog.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import logging
import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import ArrayType, MapType, Row, StructType, TimestampType

from neurolake_spark.catalog import schema as s
from neurolake_spark.errors import BadInputError, NeuroLakeError
from neurolake_spark.service.engine import ServiceEngine
from neurolake_spark.service.readonly import CheckedStatement, StatementRefused
from neurolake_spark.service.table_access import TableAccess, TableRead
from neurolake_spark.service.tenants import TenantScope

log = logging.getLogger("neurolake.service.statements")

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"
FINAL = frozenset({SUCCEEDED, FAILED, CANCELED})
PARAMETER_TYPES = ("STRING", "INT", "BIGINT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "DECIMAL", "BOOLEAN")
PARAMETER_TYPES += ("DATE", "TIMESTAMP")
TAG_PREFIX = "neurolake-statement-"
PARAMETERS_VIEW = "nl_parameters"
"""With Spark Connect: the one-row view whose columns carry the parameters (see
:meth:`~.readonly.CheckedStatement.rewrite`)."""
ARROW_STREAM = "application/vnd.apache.arrow.stream"
LARGE_VAR_TYPES = "spark.sql.execution.arrow.useLargeVarTypes"
"""Spark's setting for 64-bit string/binary offsets in Arrow (the spool's schema follows it, as
Spark's JVM writer does)."""
"""The media type of Arrow IPC streams (result chunks, bulk bodies)."""


class Busy(NeuroLakeError):
    """The tenant's statement queue is full."""


@dataclass(frozen=True)
class Caller:
    """Who submits a statement: subject, key, tenant scope and whether it holds the pii grant."""

    subject: str
    key_id: str | None
    scope: TenantScope
    pii: bool


@dataclass
class Chunk:
    chunk_index: int
    row_offset: int
    row_count: int
    byte_count: int


@dataclass
class Statement:
    """One statement's state (thread-safe through ``lock``)."""

    id: str
    text: str
    caller: Caller
    row_limit: int
    byte_limit: int
    submitted: float = field(default_factory=time.time)
    state: str = PENDING
    error: dict[str, str] | None = None
    started: float | None = None
    ended: float | None = None
    columns: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    truncated: bool = False
    tables: list[dict[str, Any]] = field(default_factory=list)
    session: SparkSession | None = None
    views: list[str] = field(default_factory=list)
    cancel_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def tag(self) -> str:
        return TAG_PREFIX + self.id

    @property
    def total_rows(self) -> int:
        return sum(c.row_count for c in self.chunks)

    @property
    def total_bytes(self) -> int:
        return sum(c.byte_count for c in self.chunks)

    def describe(self) -> dict[str, Any]:
        """The statement as the API shows it (without result rows)."""
        answer: dict[str, Any] = {
            "statement_id": self.id,
            "status": {"state": self.state, "error": self.error},
        }
        if self.state == SUCCEEDED:
            answer["manifest"] = {
                "format": "JSON_ARRAY",
                "schema": {"column_count": len(self.columns), "columns": self.columns},
                "total_row_count": self.total_rows,
                "total_byte_count": self.total_bytes,
                "total_chunk_count": len(self.chunks),
                "chunks": [c.__dict__ for c in self.chunks],
                "truncated": self.truncated,
            }
        return answer


def bind_parameters(parameters: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``[{name, value, type}]`` as Python values for Spark's named markers (``:name``)."""
    bound: dict[str, Any] = {}
    for p in parameters:
        name, value, kind = p["name"], p.get("value"), (p.get("type") or "STRING").upper()
        if kind.startswith("DECIMAL"):
            kind = "DECIMAL"
        if kind not in PARAMETER_TYPES:
            raise BadInputError(f"parameter {name}: type {kind} is not one of {', '.join(PARAMETER_TYPES)}")
        if name in bound:
            raise BadInputError(f"parameter {name} is given twice")
        try:
            bound[name] = None if value is None else _typed(kind, str(value))
        except (ValueError, decimal.InvalidOperation):
            raise BadInputError(f"parameter {name}: {str(value)[:50]!r} is not a {kind}") from None
    return bound


def _typed(kind: str, value: str) -> Any:
    if kind in ("INT", "BIGINT", "SMALLINT", "TINYINT"):
        return int(value)
    if kind in ("DOUBLE", "FLOAT"):
        return float(value)
    if kind == "DECIMAL":
        return decimal.Decimal(value)
    if kind == "BOOLEAN":
        if value.lower() not in ("true", "false"):
            raise ValueError(value)
        return value.lower() == "true"
    if kind == "DATE":
        return dt.date.fromisoformat(value)
    if kind == "TIMESTAMP":
        return dt.datetime.fromisoformat(value)
    return value


def _python(value: Any, data_type) -> Any:
    """A collected Spark value as pyarrow takes it (Rows to dicts, maps to pairs, aware times)."""
    if value is None:
        return None
    if isinstance(data_type, StructType):
        return {f.name: _python(value[i], f.dataType) for i, f in enumerate(data_type.fields)}
    if isinstance(data_type, ArrayType):
        return [_python(v, data_type.elementType) for v in value]
    if isinstance(data_type, MapType):
        return [(_python(k, data_type.keyType), _python(v, data_type.valueType)) for k, v in value.items()]
    if isinstance(data_type, TimestampType) and value.tzinfo is None:
        return value.astimezone(dt.UTC)
    return value


def _simple(data_type) -> bool:
    return not isinstance(data_type, (StructType, ArrayType, MapType, TimestampType))


def rows_to_batch(rows: list[Row], spark_schema: StructType, arrow_schema: pa.Schema) -> pa.RecordBatch:
    """One Arrow batch of collected rows (column by column, so duplicate names are fine)."""
    arrays = []
    for i, f in enumerate(spark_schema.fields):
        values = [r[i] for r in rows]
        if not _simple(f.dataType):
            values = [_python(v, f.dataType) for v in values]
        arrays.append(pa.array(values, type=arrow_schema.field(i).type))
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


def result_batches(
    frame: DataFrame, arrow_schema: pa.Schema, rows_per_batch: int, remote: bool
) -> Generator[pa.RecordBatch, None, None]:
    """The rows of ``frame`` as Arrow batches of ``arrow_schema``, partition after partition in
    order, one partition on the driver at a time (close the generator to stop early).

    A local session encodes the batches in the JVM (Spark's own Arrow writer: no Python rows,
    no Python worker; columns renamed by position first, so duplicate names are fine); Spark
    Connect streams rows, gathered here ``rows_per_batch`` at a time."""
    if remote:
        rows: list[Row] = []
        for row in frame.toLocalIterator():
            rows.append(row)
            if len(rows) == rows_per_batch:
                yield rows_to_batch(rows, frame.schema, arrow_schema)
                rows = []
        if rows:
            yield rows_to_batch(rows, frame.schema, arrow_schema)
        return
    from pyspark.serializers import NoOpSerializer
    from pyspark.util import _local_iterator_from_socket

    positional = frame.toDF(*(f"c{i}" for i in range(len(frame.columns))))
    served = frame.sparkSession._jvm.PythonRDD.toLocalIteratorAndServe(
        positional._jdf.toArrowBatchRdd(), False
    )
    for message in _local_iterator_from_socket(served, NoOpSerializer()):
        yield pa.ipc.read_record_batch(pa.py_buffer(message), arrow_schema)


def _take_rows(
    batches: list[pa.RecordBatch], count: int
) -> tuple[list[pa.RecordBatch], list[pa.RecordBatch]]:
    """The first ``count`` rows of ``batches`` (as batches), and the rest."""
    taken: list[pa.RecordBatch] = []
    for i, batch in enumerate(batches):
        if batch.num_rows >= count:
            taken.append(batch.slice(0, count))
            rest = [batch.slice(count)] if batch.num_rows > count else []
            return taken, rest + batches[i + 1 :]
        taken.append(batch)
        count -= batch.num_rows
    return taken, []


def json_value(value: Any) -> Any:
    """A JSON-friendly value of an Arrow scalar's Python form (decimals, times and non-finite
    floats as strings, bytes as base64)."""
    if isinstance(value, (decimal.Decimal, dt.date, dt.datetime, dt.time)):
        return value.isoformat() if not isinstance(value, decimal.Decimal) else str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return value


def _json_ready(data_type: pa.DataType) -> bool:
    """True when every Python value of ``data_type`` is already JSON (no conversion needed)."""
    return any(
        check(data_type)
        for check in (pa.types.is_integer, pa.types.is_string, pa.types.is_large_string, pa.types.is_boolean)
    )


def batch_rows(batch: pa.RecordBatch) -> list[list[Any]]:
    """The rows of ``batch`` as JSON-ready lists."""
    columns = [
        column.to_pylist() if _json_ready(column.type) else [json_value(v) for v in column.to_pylist()]
        for column in batch.columns
    ]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


class StatementRunner:
    """Submits, runs, cancels and serves statements (see the module docstring)."""

    def __init__(
        self,
        engine: ServiceEngine,
        access: TableAccess,
        spool_dir: Path,
        record: Callable[[Statement], None] | None = None,
        concurrency: int = 4,
        queue: int = 16,
        chunk_rows: int = 10_000,
        retention_seconds: float = 3600.0,
        tenant_limits: dict[str, tuple[int | None, int | None]] | None = None,
    ):
        self.engine, self.access, self.spool_dir = engine, access, Path(spool_dir)
        self.record = record
        self.concurrency, self.queue, self.chunk_rows = concurrency, queue, chunk_rows
        self.tenant_limits = tenant_limits or {}
        self.retention_seconds = retention_seconds
        self._statements: dict[str, Statement] = {}
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._active: dict[str, int] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ submit and run

    def check(self, text: str) -> CheckedStatement:
        """Spark's parser's verdict on ``text`` (raises StatementRefused)."""
        return self.engine.parser().check(text)

    def submit(
        self,
        checked: CheckedStatement,
        parameters: dict[str, Any],
        caller: Caller,
        row_limit: int,
        byte_limit: int,
    ) -> Statement:
        """Queue a checked statement in its tenant's pool; raises Busy when the queue is full."""
        self._expire()
        statement = Statement(uuid.uuid4().hex, checked.text, caller, row_limit, byte_limit)
        tenant = caller.scope.name
        concurrency, queue = self.limits(tenant)
        with self._lock:
            if self._active.get(tenant, 0) >= concurrency + queue:
                raise Busy(
                    f"tenant {tenant} has {concurrency} statements running and "
                    f"{queue} waiting: try again later"
                )
            self._active[tenant] = self._active.get(tenant, 0) + 1
            pool = self._pools.get(tenant)
            if pool is None:
                pool = self._pools[tenant] = ThreadPoolExecutor(
                    concurrency, thread_name_prefix=f"statement-{tenant}"
                )
            self._statements[statement.id] = statement
        pool.submit(self._run, statement, checked, parameters)
        return statement

    def limits(self, tenant: str) -> tuple[int, int]:
        """(statements at once, statements waiting) for ``tenant``."""
        concurrency, queue = self.tenant_limits.get(tenant, (None, None))
        return concurrency or self.concurrency, self.queue if queue is None else queue

    def _run(self, statement: Statement, checked: CheckedStatement, parameters: dict[str, Any]) -> None:
        tenant = statement.caller.scope.name
        try:
            with statement.lock:
                if statement.cancel_requested:
                    return
                statement.state, statement.started = RUNNING, time.time()
                statement.session = self.engine.isolated()
            spark = statement.session
            with self.engine.tagged(statement.tag, spark), self.engine.pool(f"tenant-{tenant}"):
                frame = self._frame(spark, statement, checked, parameters)
                if statement.cancel_requested:
                    raise InterruptedError("canceled before it ran")
                self._spool(statement, frame)
            self._finish(statement, SUCCEEDED)
        except Exception as exc:  # any failure ends the statement, never the worker
            if statement.cancel_requested:
                self._finish(statement, CANCELED)
            else:
                self._finish(statement, FAILED, self._error(exc, statement))
        finally:
            with self._lock:
                self._active[tenant] -= 1

    def _frame(
        self, spark: SparkSession, statement: Statement, checked: CheckedStatement, parameters: dict[str, Any]
    ) -> DataFrame:
        scope, pii = statement.caller.scope, statement.caller.pii
        if checked.kind == "show_tables":
            names = self.access.names(scope, checked.show_namespace)
            rows = [(n.split(".", 1)[0], n.split(".", 1)[1]) for n in names]
            return spark.createDataFrame(rows, "namespace STRING, tableName STRING")
        views: dict[str, str] = {}
        for i, name in enumerate(checked.tables):
            read = self.access.read(spark, name, scope, pii)
            statement.tables.append(_table_entry(read))
            views[name] = f"nl_table_{i}"
            read.frame.createOrReplaceTempView(views[name])
            statement.views.append(views[name])
        parameters_view = None
        if self.engine.remote and checked.markers:
            parameters_view = PARAMETERS_VIEW
            values = spark.range(1).select(*(F.lit(v).alias(k) for k, v in parameters.items()))
            values.createOrReplaceTempView(parameters_view)
            statement.views.append(parameters_view)
        text = checked.rewrite(views, parameters_view)
        allowed = {*views.values(), parameters_view}
        unexpected = set(self.engine.parser().relation_names(text)) - allowed
        if unexpected:
            raise StatementRefused(
                f"the statement names tables it may not read: {', '.join(sorted(unexpected))}"
            )
        return spark.sql(text, args=None if parameters_view else parameters or None)

    def _spool(self, statement: Statement, frame: DataFrame) -> None:
        spark_schema = frame.schema
        large = frame.sparkSession.conf.get(LARGE_VAR_TYPES, "false").lower() == "true"
        arrow_schema = to_arrow_schema(spark_schema, timezone="UTC", prefers_large_types=large)
        statement.columns = [
            {"name": f.name, "type_text": f.dataType.simpleString().upper(), "position": i}
            for i, f in enumerate(spark_schema.fields)
        ]
        folder = self.spool_dir / statement.id
        folder.mkdir(parents=True, exist_ok=True)
        pending: list[pa.RecordBatch] = []
        pending_rows = seen = written_bytes = 0
        batches = result_batches(frame, arrow_schema, self.chunk_rows, remote=bool(self.engine.remote))
        try:
            for batch in batches:
                if statement.cancel_requested:
                    raise InterruptedError("canceled")
                if seen + batch.num_rows > statement.row_limit:
                    batch, statement.truncated = batch.slice(0, statement.row_limit - seen), True
                seen += batch.num_rows
                pending.append(batch)
                pending_rows += batch.num_rows
                while pending_rows >= self.chunk_rows:
                    chunk, pending = _take_rows(pending, self.chunk_rows)
                    pending_rows -= self.chunk_rows
                    written_bytes += self._write_chunk(statement, folder, chunk, arrow_schema)
                    if written_bytes >= statement.byte_limit:
                        statement.truncated = True
                        break
                if statement.truncated:
                    break
        finally:
            batches.close()
        if (pending_rows and written_bytes < statement.byte_limit) or not statement.chunks:
            self._write_chunk(statement, folder, pending, arrow_schema)
        if statement.truncated:
            self.engine.interrupt(statement.tag, statement.session)

    def _write_chunk(
        self, statement: Statement, folder: Path, batches: list[pa.RecordBatch], arrow_schema: pa.Schema
    ) -> int:
        index = len(statement.chunks)
        path = folder / f"chunk-{index:06d}.arrows"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, arrow_schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        size = path.stat().st_size
        with statement.lock:
            rows = sum(b.num_rows for b in batches)
            statement.chunks.append(Chunk(index, statement.total_rows, rows, size))
        return size

    def _error(self, exc: Exception, statement: Statement) -> dict[str, str]:
        if isinstance(exc, NeuroLakeError):
            return {"error_code": type(exc).__name__, "message": " ".join(str(exc).split())[:1000]}
        error_class = getattr(exc, "getCondition", lambda: None)() or type(exc).__name__
        message = spark_message(exc)
        for i, table in enumerate(statement.tables):
            message = message.replace(f"nl_table_{i}", table["name"])
        log.info("statement %s failed: %s", statement.id, message)
        return {"error_code": str(error_class), "message": message[:1000]}

    def _finish(self, statement: Statement, state: str, error: dict[str, str] | None = None) -> None:
        with statement.lock:
            statement.state, statement.error, statement.ended = state, error, time.time()
            session, statement.session = statement.session, None
        if session is not None:
            for view in statement.views:
                session.catalog.dropTempView(view)
            self.engine.release(session)
        if state != SUCCEEDED:
            shutil.rmtree(self.spool_dir / statement.id, ignore_errors=True)
        if self.record is not None:
            try:
                self.record(statement)
            except Exception:  # the history is a record, not a reason to fail the statement
                log.exception("statement %s: history not recorded", statement.id)
        statement.done.set()

    def explain(
        self, checked: CheckedStatement, parameters: dict[str, Any], caller: Caller
    ) -> dict[str, Any]:
        """Spark's formatted plan of a checked statement (warehouse paths shown as ``warehouse:``),
        the tables and versions it reads and, on a local session, what each Delta scan of the
        plan reads after partition pruning and data skipping (runs no query; PII detection may
        sample a table; with Spark Connect ``scans`` is None: the plan stays on the server)."""
        statement = Statement(uuid.uuid4().hex, checked.text, caller, 0, 0)
        spark = self.engine.isolated()
        try:
            with self.engine.tagged(statement.tag, spark):
                frame = self._frame(spark, statement, checked, parameters)
                if hasattr(frame, "_explain_string"):
                    plan = frame._explain_string("formatted")
                else:
                    plan = spark._jvm.PythonSQLUtils.explainString(frame._jdf.queryExecution(), "formatted")
                scans = None if self.engine.remote else self._scans(frame, statement, caller)
            for i, table in enumerate(statement.tables):
                plan = plan.replace(f"nl_table_{i}", table["name"])
            warehouse = self.access.settings.warehouse.resolve()
            plan = plan.replace(f"file:{warehouse}", "warehouse:").replace(str(warehouse), "warehouse:")
            return {"plan": plan, "tables": statement.tables, "scans": scans}
        finally:
            self.engine.release(spark)

    def _scans(self, frame: DataFrame, statement: Statement, caller: Caller) -> list[dict[str, Any]]:
        """The Delta scans of ``frame``'s physical plan: files (and bytes) of the table version,
        after partition filters, and read after data skipping, from Delta's prepared scan."""
        paths = {
            os.path.realpath(self.access.ref(caller.scope, table["name"]).path): table["name"]
            for table in statement.tables
        }
        plan = frame._jdf.queryExecution().executedPlan()
        if plan.getClass().getSimpleName() == "AdaptiveSparkPlanExec":
            plan = plan.initialPlan()
        leaves = plan.collectLeaves()
        scans = []
        for i in range(leaves.size()):
            leaf = leaves.apply(i)
            if leaf.getClass().getSimpleName() != "FileSourceScanExec":
                continue
            index = leaf.relation().location()
            if not hasattr(index, "preparedScan"):
                continue
            prepared = index.preparedScan()
            total, partition, scanned = prepared.total(), prepared.partition(), prepared.scanned()
            files = [_option(size.files()) for size in (total, partition, scanned)]
            scans.append(
                {
                    "table": paths.get(os.path.realpath(str(index.path().toUri().getPath()))),
                    "files_total": files[0],
                    "files_after_partition_filters": files[1],
                    "files_read": files[2],
                    "files_pruned": files[0] - files[2] if None not in (files[0], files[2]) else None,
                    "bytes_total": _option(total.bytesCompressed()),
                    "bytes_read": _option(scanned.bytesCompressed()),
                }
            )
        return scans

    # ------------------------------------------------------------------ read and cancel

    def get(self, statement_id: str, caller: Caller) -> Statement | None:
        """The caller's own statement (another caller's answers like an unknown one)."""
        statement = self._statements.get(statement_id)
        if statement is None or statement.caller.subject != caller.subject:
            return None
        if statement.caller.scope.name != caller.scope.name:
            return None
        return statement

    def cancel(self, statement: Statement) -> None:
        """Cancel: a waiting statement never starts, a running one's Spark jobs are interrupted."""
        with statement.lock:
            if statement.state in FINAL:
                return
            statement.cancel_requested = True
            waiting = statement.state == PENDING
            session = statement.session
        if waiting:
            self._finish(statement, CANCELED)
        elif session is not None:
            threading.Thread(
                target=self._interrupt_until_done, args=(statement, session), daemon=True
            ).start()

    def _interrupt_until_done(self, statement: Statement, session: SparkSession) -> None:
        """Interrupt the statement's tag until it ends: a job it starts just after one interrupt
        (it was still planning) is caught by the next."""
        deadline = time.monotonic() + 120
        while not statement.done.is_set() and time.monotonic() < deadline:
            self.engine.interrupt(statement.tag, session)
            statement.done.wait(0.25)

    def chunk(self, statement: Statement, index: int) -> tuple[Chunk, Path] | None:
        if statement.state != SUCCEEDED or not 0 <= index < len(statement.chunks):
            return None
        return statement.chunks[index], self.spool_dir / statement.id / f"chunk-{index:06d}.arrows"

    def chunk_json(self, statement: Statement, index: int) -> dict[str, Any] | None:
        """Chunk ``index`` as ``{chunk_index, row_offset, row_count, data_array, next_chunk_index}``."""
        found = self.chunk(statement, index)
        if found is None:
            return None
        chunk, path = found
        with pa.OSFile(str(path), "rb") as source:
            table = pa.ipc.open_stream(source).read_all()
        rows = [r for batch in table.to_batches() for r in batch_rows(batch)]
        answer = {"chunk_index": index, "row_offset": chunk.row_offset, "row_count": chunk.row_count}
        answer["data_array"] = rows
        if index + 1 < len(statement.chunks):
            answer["next_chunk_index"] = index + 1
        return answer

    def _expire(self) -> None:
        limit = time.time() - self.retention_seconds
        with self._lock:
            old = [s for s in self._statements.values() if s.ended is not None and s.ended < limit]
            for statement in old:
                del self._statements[statement.id]
        for statement in old:
            shutil.rmtree(self.spool_dir / statement.id, ignore_errors=True)

    def close(self) -> None:
        """Cancel what still runs, stop the pools and remove this process's spool files."""
        for statement in list(self._statements.values()):
            self.cancel(statement)
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        for statement_id in list(self._statements):
            shutil.rmtree(self.spool_dir / statement_id, ignore_errors=True)


def spark_message(exc: Exception) -> str:
    """The first line of a Spark error (no JVM stack trace), at most 1000 characters."""
    message = getattr(exc, "getMessage", lambda: None)() or str(exc)
    return message.split("\n", 1)[0].split("JVM stacktrace")[0][:1000]


def _option(value) -> int | None:
    """A Scala ``Option[Long]`` from py4j as an int or None."""
    return None if value.isEmpty() else int(value.get())


def _table_entry(read: TableRead) -> dict[str, Any]:
    return {
        "name": read.name,
        "format": read.format,
        "version": read.version,
        "masked_columns": read.masked_columns,
    }


def record_history(store, statement: Statement) -> None:
    """Write a finished statement to ``statement_history``."""

    def when(seconds: float | None) -> dt.datetime | None:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None) if seconds else None

    duration = (
        int((statement.ended - (statement.started or statement.submitted)) * 1000)
        if statement.ended
        else None
    )
    with store.write() as conn:
        conn.execute(
            s.statement_history.insert().values(
                statement_id=statement.id,
                subject=statement.caller.subject,
                key_id=statement.caller.key_id,
                tenant=statement.caller.scope.name,
                statement=statement.text[:20_000],
                state=statement.state,
                error=json.dumps(statement.error) if statement.error else None,
                submitted_at=when(statement.submitted),
                started_at=when(statement.started),
                ended_at=when(statement.ended),
                duration_ms=duration,
                rows=statement.total_rows,
                bytes=statement.total_bytes,
                tables=json.dumps(statement.tables) if statement.tables else None,
            )
        )
