"""Guards for bulk updates and deletes: what a condition would change, and no "every row" by accident.

Example (what ``neurolake ncf delete`` and the bulk fixes do before committing)::

    node = bind(parse_condition(text, "--where"), table_columns(spark, "ncf", path), "--where")
    impact = check_rows(spark, "ncf", path, "silver.events", node, all_rows=False,
                        refusal="ncf delete silver.events", hint="pass --all-rows to delete every row")
    print(impact.describe("delete"))      # the --dry-run output: rows per data file

A condition that is true whatever the data (``true``, ``1 = 1``) is refused before any Spark
job; one that a count shows to match every row of a non-empty table is refused after it.
The count and the commit are separate reads, so a row written in between can make the
commit change slightly more or fewer rows than the count said.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.errors import AnalysisException, ArithmeticException, DateTimeException, NumberFormatException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from neurolake_spark.conditions import ConditionError, Node, always_true, columns_of, to_column, to_text
from neurolake_spark.errors import BadInputError

FILE_COLUMN = "_nl_file"
CONDITION_ERRORS = (AnalysisException, ArithmeticException, DateTimeException, NumberFormatException)
"""What Spark raises for a condition that cannot be evaluated on the table's data."""
LISTED_FILES = 50


class EveryRowError(BadInputError):
    """A bulk update or delete would change every row and the caller did not say that is meant."""


@dataclass(frozen=True)
class RowImpact:
    """How many rows of which data files a condition matches."""

    table: str
    rows: int
    files: int
    matched: int
    files_matched: dict[str, int]

    @property
    def every_row(self) -> bool:
        """Whether the condition matches every row of a table that has rows."""
        return self.rows > 0 and self.matched == self.rows

    def describe(self, verb: str) -> str:
        """``silver.orders: would delete 12 of 1,000 rows in 1 of 4 files`` and a line per file."""
        lines = [
            f"{self.table}: would {verb} {self.matched:,} of {self.rows:,} rows "
            f"in {len(self.files_matched):,} of {self.files:,} files"
        ]
        listed = sorted(self.files_matched.items())
        for name, rows in listed[:LISTED_FILES]:
            lines.append(f"  {name}  {rows:,} rows")
        if len(listed) > LISTED_FILES:
            lines.append(f"  ... and {len(listed) - LISTED_FILES:,} more files")
        return "\n".join(lines)


def _files_frame(spark: SparkSession, table_format: str, uri: str, columns: list[str]) -> DataFrame:
    """The table's ``columns`` and, in :data:`FILE_COLUMN`, the data file each row is in."""
    if table_format == "ncf":
        from ncf_datasource.spark.operations import FILE_COLUMN as NCF_FILE
        from ncf_datasource.spark.operations import scan
        from ncf_datasource.table import NCFTable

        frame = scan(spark, NCFTable.open(uri).snapshot(), columns=columns, with_file=True)
        return frame.withColumnRenamed(NCF_FILE, FILE_COLUMN)
    frame = spark.read.format(table_format).load(uri)
    return frame.select(*[F.col(f"`{c}`") for c in columns], F.col("_metadata.file_path").alias(FILE_COLUMN))


def _relative(file: str, uri: str) -> str:
    """A data file's name relative to the table folder (Delta reports ``file:`` URIs)."""
    path = unquote(urlparse(file).path) if file.startswith("file:") else file
    root = str(Path(uri).resolve())
    return os.path.relpath(path, root) if path.startswith(root + os.sep) else file


def table_columns(spark: SparkSession, table_format: str, uri: str) -> list[str]:
    """The column names of a Delta or NCF table (its schema only; no data is read)."""
    return spark.read.format(table_format).load(uri).columns


@contextmanager
def _quiet_query_context_logs() -> Iterator[None]:
    """PySpark logs each analysis or runtime error with its query context (a JSON line with the
    Java stack) before raising it; a condition Spark cannot evaluate is reported once, in one line."""
    from pyspark.logger import PySparkLogger

    loggers = [PySparkLogger.getLogger(n) for n in ("DataFrameQueryContextLogger", "SQLQueryContextLogger")]
    before = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, disabled in zip(loggers, before):
            logger.disabled = disabled


def measure(spark: SparkSession, table_format: str, uri: str, table: str, node: Node) -> RowImpact:
    """Count, in one Spark job, the rows of each data file and those ``node`` (bound) is true for.

    Only per-file counts reach the driver, never rows."""
    condition = to_column(node)
    frame = _files_frame(spark, table_format, uri, sorted(columns_of(node)))
    try:
        with _quiet_query_context_logs():
            per_file = (
                frame.groupBy(FILE_COLUMN)
                .agg(F.count(F.lit(1)).alias("rows"), F.count(F.when(condition, True)).alias("matched"))
                .collect()
            )
    except CONDITION_ERRORS as exc:  # e.g. types Spark cannot compare, a cast that fails: a wrong condition
        problem = str(exc).splitlines()[0].split(" SQLSTATE")[0]
        raise ConditionError(
            f"{table}: Spark cannot evaluate the condition {to_text(node)!r}: {problem}"
        ) from None
    return RowImpact(
        table=table,
        rows=sum(r["rows"] for r in per_file),
        files=len(per_file),
        matched=sum(r["matched"] for r in per_file),
        files_matched={_relative(r[FILE_COLUMN], uri): r["matched"] for r in per_file if r["matched"]},
    )


def check_rows(
    spark: SparkSession,
    table_format: str,
    uri: str,
    table: str,
    node: Node,
    all_rows: bool,
    refusal: str,
    hint: str,
) -> RowImpact:
    """Measure what ``node`` matches and refuse (:class:`EveryRowError`, starting with
    ``refusal`` and ending with ``hint``) a condition that matches every row, unless ``all_rows``.

    A condition true whatever the data is refused before any Spark job runs."""
    if not all_rows and always_true(node):
        raise EveryRowError(f"{refusal}: the condition {to_text(node)!r} is true for every row; {hint}")
    impact = measure(spark, table_format, uri, table, node)
    if not all_rows and impact.every_row:
        raise EveryRowError(
            f"{refusal}: the condition {to_text(node)!r} matches every row ({impact.matched:,} of "
            f"{impact.rows:,}); {hint}"
        )
    return impact
