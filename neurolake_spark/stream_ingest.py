"""Streaming landing into bronze Delta: new raw files (or new NCF commits) as they arrive.

A checkpointed Structured Streaming query reads a source of the pipeline definition:
CSV/JSON files appearing under ``<raw>/<source>/`` (any ``date=YYYY-MM-DD`` folder), or,
for a source of format ``ncf``, new commits of the NCF table at ``<raw>/<source>``. Each
micro-batch goes through the batch path's transforms (:func:`split_malformed`,
:func:`with_ingest_metadata`): well-formed rows are appended to the bronze table, malformed
ones to ``quarantine.ingest``. Both appends carry Delta's ``txnAppId``/``txnVersion`` (the
micro-batch id), so a batch replayed after a crash is not written twice: exactly once
across restarts. Example::

    with lh.run("stream_ingest") as run:
        counts = stream_source(lh, "orders", run, available_now=True)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from neurolake_spark.errors import PipelineError
from neurolake_spark.ingest import (
    QUARANTINE_TABLE,
    TYPED_FORMATS,
    IngestCounts,
    parse_permissively,
    read_typed,
    source_schema,
)
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.run_model import ColumnSource, schema_of
from neurolake_spark.runs import JobRun
from neurolake_spark.table_formats import CommitTag, DeltaFormat, TableVersion
from neurolake_spark.tables import TableRef
from neurolake_spark.transforms import CORRUPT_COLUMN, split_malformed, with_ingest_metadata

DATE_IN_PATH = r"date=(\d{4}-\d{2}-\d{2})"


@dataclass
class _Totals:
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    batches: int = 0
    bronze_version: int | None = None
    quarantine_version: int | None = None


def checkpoint_dir(lh: Lakehouse, source: str) -> Path:
    """Where the query of ``source`` keeps its progress (offsets and commits)."""
    return lh.settings.warehouse / "_checkpoints" / "stream_ingest" / source


def read_stream(lh: Lakehouse, name: str) -> DataFrame:
    """The streaming frame of a source, with ``_corrupt_record`` and ``_source_file``."""
    source = lh.settings.pipeline_definition().sources[name]
    folder = lh.settings.raw_dir / name
    if source.format == "ncf":  # an NCF source streams its folder as a table: no file paths
        frame = lh.spark.readStream.format("ncf").load(str(folder))
        return frame.withColumn(CORRUPT_COLUMN, F.lit(None).cast("string")).withColumn(
            "_source_file", F.lit(str(folder))
        )
    if not folder.is_dir():
        raise PipelineError(f"source '{name}' has no raw folder yet (expected {folder})")
    reader = lh.spark.readStream.option("recursiveFileLookup", "true")
    if source.format in TYPED_FORMATS:
        return read_typed(reader, name, source, str(folder))
    return parse_permissively(reader, name, source, str(folder))


def _with_metadata(rows: DataFrame, name: str, run_id: str, today: str) -> DataFrame:
    """Bronze's ingestion columns; the batch date is the file's ``date=`` folder (else today)."""
    day = F.coalesce(F.nullif(F.regexp_extract("_source_file", DATE_IN_PATH, 1), F.lit("")), F.lit(today))
    return (
        with_ingest_metadata(rows, name, today, run_id)
        .withColumn("_batch_date", day.cast("date"))
        .withColumn("_batch_id", F.concat(F.lit(f"{name}:"), day))
    )


def _append_once(rows: DataFrame, ref: TableRef, app_id: str, batch_id: int, run_id: str) -> TableVersion:
    """Append a micro-batch once (Delta skips a ``txnVersion`` it committed before); the commit
    it made, found by its tag (operation ``NONE`` for a skipped replay)."""
    tag = CommitTag(run_id)
    return DeltaFormat().write(ref, rows, "append", tag, txnAppId=app_id, txnVersion=str(batch_id))


def stream_source(
    lh: Lakehouse,
    name: str,
    run: JobRun,
    available_now: bool = False,
    trigger_seconds: float = 10.0,
    timeout: float | None = None,
) -> IngestCounts:
    """Run the ingestion query of source ``name`` (until caught up with ``available_now``,
    else until ``timeout`` seconds or forever) and return the rows it landed in this run."""
    definition = lh.settings.pipeline_definition()
    if name not in definition.sources:
        raise PipelineError(f"unknown source '{name}' (known: {', '.join(definition.sources)})")
    source = definition.sources[name]
    bronze_ref, quarantine_ref = lh.resolve(source.bronze), lh.resolve(QUARANTINE_TABLE)
    data_columns = source_schema(name, source).fieldNames()
    app_id = f"neurolake.stream_ingest.{name}"
    today = datetime.now(UTC).date().isoformat()
    totals = _Totals()
    schemas: dict[str, object] = {}

    def land(batch: DataFrame, batch_id: int) -> None:
        parsed = batch.persist()
        try:
            read = parsed.count()
            if not read:
                return
            good, bad = split_malformed(parsed, data_columns)
            bronze_rows = _with_metadata(good, name, run.run_id, today)
            quarantine_rows = _with_metadata(bad, name, run.run_id, today).withColumn("source", F.lit(name))
            bronze = _append_once(bronze_rows, bronze_ref, app_id, batch_id, run.run_id)
            quarantine = _append_once(quarantine_rows, quarantine_ref, app_id, batch_id, run.run_id)
            quarantined = bad.count()
        finally:
            parsed.unpersist()
        totals.read += read
        totals.quarantined += quarantined
        totals.accepted += read - quarantined
        totals.batches += 1
        if bronze.operation != "NONE":
            totals.bronze_version = bronze.version
        if quarantine.operation != "NONE":
            totals.quarantine_version = quarantine.version
        schemas["bronze"], schemas["quarantine"] = bronze_rows.schema, quarantine_rows.schema

    writer = (
        read_stream(lh, name)
        .writeStream.foreachBatch(land)
        .option("checkpointLocation", str(checkpoint_dir(lh, name)))
        .queryName(f"stream_ingest_{name}")
    )
    writer = (
        writer.trigger(availableNow=True)
        if available_now
        else writer.trigger(processingTime=f"{trigger_seconds} seconds")
    )
    query = writer.start()
    try:
        query.awaitTermination(timeout)
    finally:
        if query.isActive:
            query.stop()
    if query.exception() is not None:
        raise PipelineError(f"stream ingest of '{name}' failed: {str(query.exception()).splitlines()[0]}")

    run.add_input(
        f"raw.{name}",
        format=source.format,
        path=str(lh.settings.raw_dir / name),
        rows=totals.read,
        schema=schema_of(source_schema(name, source)),
    )
    if totals.bronze_version is not None:
        run.add_output(
            source.bronze,
            format="delta",
            path=bronze_ref.uri,
            version=totals.bronze_version,
            rows=totals.accepted,
            schema=schema_of(schemas["bronze"]),
            column_lineage={c: [ColumnSource(f"raw.{name}", c)] for c in data_columns},
        )
    if totals.quarantine_version is not None:
        run.add_output(
            QUARANTINE_TABLE,
            format="delta",
            path=quarantine_ref.uri,
            version=totals.quarantine_version,
            rows=totals.quarantined,
            schema=schema_of(schemas["quarantine"]),
        )
    run.rows_quarantined += totals.quarantined
    run.facts["micro_batches"] = totals.batches
    return IngestCounts(name, totals.read, totals.accepted, totals.quarantined)
