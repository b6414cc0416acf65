"""Batch landing of raw files into bronze Delta tables.

For each source of the pipeline definition, the day's folder
``<raw>/<source>/date=D/`` is parsed with the declared schema. Well-formed rows are
written to the bronze table with ingestion columns; rows that do not parse go to
``quarantine.ingest`` with the raw record and the reason. Both writes replace that
day's batch, so re-running a date leaves the same tables, and the counts reconcile:
rows read = rows accepted + rows quarantined, checked against what Delta committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from neurolake_spark import bulk
from neurolake_spark.errors import ConfigError, PipelineError
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.pipeline_config import SourceDefinition
from neurolake_spark.runs import ColumnSource, JobRun, schema_of
from neurolake_spark.transforms import CORRUPT_COLUMN, split_malformed, with_ingest_metadata

QUARANTINE_TABLE = "quarantine.ingest"


@dataclass(frozen=True)
class IngestCounts:
    """Rows of one source and batch: read = accepted + quarantined."""

    source: str
    read: int
    accepted: int
    quarantined: int


def source_schema(name: str, source: SourceDefinition) -> StructType:
    """The declared schema of a source (a Spark DDL string in the pipeline file)."""
    try:
        return StructType.fromDDL(source.schema_ddl)
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"source '{name}': schema is not valid Spark DDL: {first_line}") from None


def source_folder(lh: Lakehouse, name: str, batch_date: str):
    return lh.settings.raw_dir / name / f"date={batch_date}"


def parse_permissively(reader, name: str, source: SourceDefinition, path: str) -> DataFrame:
    """Parse ``source``'s CSV or JSON files at ``path`` with ``reader`` (``spark.read`` or
    ``spark.readStream``): malformed rows keep their text in ``_corrupt_record``, and every
    row names its file in ``_source_file``."""
    schema = StructType(source_schema(name, source).fields + [StructField(CORRUPT_COLUMN, StringType())])
    reader = reader.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
    if source.format == "csv":
        frame = reader.option("header", "true").option("enforceSchema", "false").csv(path)
    else:
        frame = reader.json(path)
    return frame.withColumn("_source_file", F.col("_metadata.file_path"))


def read_raw(lh: Lakehouse, name: str, source: SourceDefinition, batch_date: str) -> DataFrame:
    """Parse one day's raw files permissively: malformed rows keep their text in ``_corrupt_record``."""
    folder = source_folder(lh, name, batch_date)
    if not folder.is_dir() or not any(folder.iterdir()):
        raise PipelineError(f"source '{name}' has no raw files for {batch_date} (expected them in {folder})")
    if source.format == "ncf":
        frame = lh.spark.read.format("ncf").load(str(folder)).withColumn(CORRUPT_COLUMN, F.lit(None).cast("string"))
        return frame.withColumn("_source_file", F.col("_metadata.file_path"))
    return parse_permissively(lh.spark.read, name, source, str(folder))


def ingest_source(lh: Lakehouse, name: str, batch_date: str, run: JobRun) -> IngestCounts:
    """Land one source's batch in bronze (and its malformed rows in quarantine)."""
    definition = lh.settings.pipeline_definition()
    source = definition.sources[name]
    bronze_ref = lh.resolve(source.bronze)
    quarantine_ref = lh.resolve(QUARANTINE_TABLE)
    data_columns = source_schema(name, source).fieldNames()

    parsed = read_raw(lh, name, source, batch_date).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        totals = parsed.agg(F.count(F.lit(1)).alias("read"), F.count(CORRUPT_COLUMN).alias("bad")).first()
        read, quarantined = int(totals["read"]), int(totals["bad"])
        good, bad = split_malformed(parsed, data_columns)
        bronze_rows = with_ingest_metadata(good, name, batch_date, run.run_id)
        bronze_version = bulk.overwrite_where(
            lh.spark, bronze_ref, bronze_rows, f"_batch_date = DATE'{batch_date}'", run.run_id
        )
        quarantine_rows = with_ingest_metadata(bad, name, batch_date, run.run_id).withColumn("source", F.lit(name))
        quarantine_version = bulk.overwrite_where(
            lh.spark, quarantine_ref, quarantine_rows,
            f"_batch_date = DATE'{batch_date}' AND source = '{name}'", run.run_id,
        )
    finally:
        parsed.unpersist()

    accepted = read - quarantined
    committed = bronze_version.rows_written + quarantine_version.rows_written
    if committed != read:
        raise PipelineError(
            f"ingest {name} {batch_date}: {read} rows read but {committed} committed to bronze and quarantine"
        )
    raw_name = f"raw.{name}"
    run.add_input(
        raw_name, format=source.format, path=str(source_folder(lh, name, batch_date)), rows=read,
        schema=schema_of(source_schema(name, source)),
    )
    run.add_output(
        source.bronze, format="delta", path=bronze_ref.uri, version=bronze_version.version, rows=accepted,
        bytes=bronze_version.bytes_written, files=bronze_version.files_written,
        schema=schema_of(bronze_rows.schema),
        column_lineage={c: [ColumnSource(raw_name, c)] for c in data_columns},
    )
    run.add_output(
        QUARANTINE_TABLE, format="delta", path=quarantine_ref.uri, version=quarantine_version.version,
        rows=quarantined, bytes=quarantine_version.bytes_written, files=quarantine_version.files_written,
        schema=schema_of(quarantine_rows.schema),
    )
    run.rows_quarantined += quarantined
    return IngestCounts(name, read, accepted, quarantined)


def ingest_all(lh: Lakehouse, batch_date: str, run: JobRun, sources: list[str] | None = None) -> list[IngestCounts]:
    """Land every source (or the named ones) of the pipeline for ``batch_date``."""
    definition = lh.settings.pipeline_definition()
    names = sources or list(definition.sources)
    unknown = [n for n in names if n not in definition.sources]
    if unknown:
        raise PipelineError(f"unknown source(s) {', '.join(unknown)} (known: {', '.join(definition.sources)})")
    return [ingest_source(lh, name, batch_date, run) for name in names]
