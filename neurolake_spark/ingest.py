"""Batch landing of raw files into bronze Delta tables.

For each source of the pipeline definition, the day's folder
``<raw>/<source>/date=D/`` is parsed with the declared schema. Well-formed rows are
written to the bronze table with ingestion columns; rows that do not parse go to
``quarantine.ingest`` with the raw record and the reason. Both writes replace that
day's batch, so re-running a date leaves the same tables, and the counts reconcile:
rows read = rows accepted + rows quarantined, checked against what Delta committed.
The sources land concurrently; the quarantine is one commit for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial, reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame, DataFrameReader
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamReader
from pyspark.sql.types import StringType, StructField, StructType

from neurolake_spark import bulk
from neurolake_spark.concurrency import run_concurrently
from neurolake_spark.errors import ConfigError, PipelineError
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.pipeline_config import SourceDefinition
from neurolake_spark.run_model import ColumnSource, schema_of
from neurolake_spark.runs import JobRun
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
    reader = (
        reader.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
    )
    if source.format == "csv":
        frame = reader.option("header", "true").option("enforceSchema", "false").csv(path)
    else:
        frame = reader.json(path)
    return frame.withColumn("_source_file", F.col("_metadata.file_path"))


TYPED_FORMATS = ("ncf", "parquet")
"""Source formats whose files carry typed columns: read as they are, no malformed rows."""


def read_typed(
    reader: DataFrameReader | DataStreamReader, name: str, source: SourceDefinition, folder: str
) -> DataFrame:
    """A typed source's files (``TYPED_FORMATS``) as :func:`read_raw` returns rows: none malformed,
    ``_source_file`` from the file's metadata. NCF files carry their schema; Parquet files are read
    as the declared one (a column they lack reads as null)."""
    reader = reader.format(source.format)
    if source.format == "parquet":
        reader = reader.schema(source_schema(name, source))
    return (
        reader.load(folder)
        .withColumn(CORRUPT_COLUMN, F.lit(None).cast("string"))
        .withColumn("_source_file", F.col("_metadata.file_path"))
    )


def read_raw(lh: Lakehouse, name: str, source: SourceDefinition, batch_date: str) -> DataFrame:
    """Parse one day's raw files permissively: malformed rows keep their text in ``_corrupt_record``."""
    folder = source_folder(lh, name, batch_date)
    if not folder.is_dir() or not any(folder.iterdir()):
        raise PipelineError(f"source '{name}' has no raw files for {batch_date} (expected them in {folder})")
    if source.format in TYPED_FORMATS:
        return read_typed(lh.spark.read, name, source, str(folder))
    return parse_permissively(lh.spark.read, name, source, str(folder))


@dataclass
class _Landed:
    """One source's batch in bronze; its malformed rows are still to be quarantined."""

    name: str
    counts: IngestCounts
    bronze: bulk.TableVersion
    bronze_schema: StructType
    malformed: DataFrame


def _land(lh: Lakehouse, name: str, parsed: DataFrame, batch_date: str, run_id: str) -> _Landed:
    """Count one source's parsed batch (filling its cache) and replace its day in bronze."""
    source = lh.settings.pipeline_definition().sources[name]
    totals = parsed.agg(F.count(F.lit(1)).alias("read"), F.count(CORRUPT_COLUMN).alias("bad")).first()
    read, quarantined = int(totals["read"]), int(totals["bad"])
    good, bad = split_malformed(parsed, source_schema(name, source).fieldNames())
    bronze_rows = with_ingest_metadata(good, name, batch_date, run_id)
    version = bulk.overwrite_where(
        lh.spark, lh.resolve(source.bronze), bronze_rows, f"_batch_date = DATE'{batch_date}'", run_id
    )
    if version.rows_written != read - quarantined:
        raise PipelineError(
            f"ingest {name} {batch_date}: {read - quarantined} well-formed rows read but "
            f"{version.rows_written} committed to {source.bronze}"
        )
    malformed = with_ingest_metadata(bad, name, batch_date, run_id).withColumn("source", F.lit(name))
    return _Landed(
        name,
        IngestCounts(name, read, read - quarantined, quarantined),
        version,
        bronze_rows.schema,
        malformed,
    )


def _record_source(lh: Lakehouse, landed: _Landed, batch_date: str, run: JobRun) -> None:
    source = lh.settings.pipeline_definition().sources[landed.name]
    declared = source_schema(landed.name, source)
    raw_name = f"raw.{landed.name}"
    run.add_input(
        raw_name,
        format=source.format,
        path=str(source_folder(lh, landed.name, batch_date)),
        rows=landed.counts.read,
        schema=schema_of(declared),
    )
    run.add_output(
        source.bronze,
        format="delta",
        path=lh.resolve(source.bronze).uri,
        version=landed.bronze.version,
        rows=landed.counts.accepted,
        bytes=landed.bronze.bytes_written,
        files=landed.bronze.files_written,
        schema=schema_of(landed.bronze_schema),
        column_lineage={c: [ColumnSource(raw_name, c)] for c in declared.fieldNames()},
    )


def ingest_all(
    lh: Lakehouse, batch_date: str, run: JobRun, sources: list[str] | None = None
) -> list[IngestCounts]:
    """Land every source (or the named ones) of the pipeline for ``batch_date``.

    Every source's raw folder is checked before anything is written. The sources land in
    bronze concurrently (one Delta commit per table); their malformed rows then go to
    ``quarantine.ingest`` in one commit replacing those sources' rows of the day.
    """
    definition = lh.settings.pipeline_definition()
    names = sources or list(definition.sources)
    unknown = [n for n in names if n not in definition.sources]
    if unknown:
        raise PipelineError(
            f"unknown source(s) {', '.join(unknown)} (known: {', '.join(definition.sources)})"
        )
    raw = {name: read_raw(lh, name, definition.sources[name], batch_date) for name in names}
    parsed = {name: frame.persist(StorageLevel.MEMORY_AND_DISK) for name, frame in raw.items()}
    try:
        landed = run_concurrently(
            lh.spark,
            [partial(_land, lh, name, frame, batch_date, run.run_id) for name, frame in parsed.items()],
            "ingest",
        )
        quarantine_ref = lh.resolve(QUARANTINE_TABLE)
        malformed = reduce(DataFrame.unionByName, [source.malformed for source in landed])
        listed = ", ".join(f"'{name}'" for name in names)
        quarantined = sum(source.counts.quarantined for source in landed)
        quarantine = bulk.overwrite_where(
            lh.spark,
            quarantine_ref,
            bulk.in_few_files(malformed, quarantined),
            f"_batch_date = DATE'{batch_date}' AND source IN ({listed})",
            run.run_id,
        )
    finally:
        for frame in parsed.values():
            frame.unpersist()

    if quarantine.rows_written != quarantined:
        raise PipelineError(
            f"ingest {batch_date}: {quarantined} malformed rows read but {quarantine.rows_written} "
            f"committed to {QUARANTINE_TABLE}"
        )
    for source in landed:
        _record_source(lh, source, batch_date, run)
    run.add_output(
        QUARANTINE_TABLE,
        format="delta",
        path=quarantine_ref.uri,
        version=quarantine.version,
        rows=quarantined,
        bytes=quarantine.bytes_written,
        files=quarantine.files_written,
        schema=schema_of(malformed.schema),
    )
    run.rows_quarantined += quarantined
    return [source.counts for source in landed]
