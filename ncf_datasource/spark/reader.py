"""Batch reads of NCF tables: coarse input partitions, filter pushdown, exact Arrow batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSourceReader, InputPartition
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from ..format.filters import Expr
from ..format.reader import NCFFile
from ..table import DataFile, Snapshot, read_data_file
from .filters import bind_all, to_ncf
from .options import NCFOptions

# Each Spark task and each Arrow batch crossing from the Python worker to the JVM has a
# fixed cost, so both are coarse (measured in benchmarks/RESULTS.md: 4 tasks and 64k-row
# batches read 1.3x slower than 2 tasks and 256k-row batches; the default rows per task
# is options.DEFAULT_ROWS_PER_PARTITION).
MAX_BATCH_ROWS = 1 << 18
TARGET_BATCH_BYTES = 32 << 20
MIN_PARTITIONS = 2
MIN_ROWS_PER_PARTITION = 1 << 17


@dataclass(frozen=True)
class FilePart:
    """Row groups of one data file (absolute path) read by a task."""

    path: str
    row_groups: tuple[int, ...] | None
    rows: int
    rel: str = ""


class NCFPartition(InputPartition):
    """The file parts one Spark task reads."""

    def __init__(self, parts: list[FilePart]):
        super().__init__(len(parts))
        self.parts = parts


def plan_parts(snapshot: Snapshot, files: Sequence[DataFile], expr: Any, max_rows: int) -> list[FilePart]:
    """Split files into parts of at most about ``max_rows`` rows, dropping row groups whose
    statistics exclude a match of ``expr`` (only files with several row groups are opened)."""
    parts = []
    for f in files:
        path = snapshot.absolute(f)
        groups = list(range(len(f.row_groups)))
        sizes = list(f.row_groups)
        if expr is not None and len(groups) > 1:
            with NCFFile(path, verify_checksums=False) as opened:
                if expr.columns() <= set(opened.schema.names):
                    groups = [rg.index for rg in opened.row_groups if expr.might_match(rg.stats)]
            sizes = [f.row_groups[i] for i in groups]
        if not groups:
            continue
        if len(groups) == len(f.row_groups) and f.rows <= max_rows:
            parts.append(FilePart(path, None, f.rows, f.path))
            continue
        current: list[int] = []
        rows = 0
        for g, n in zip(groups, sizes):
            if current and rows + n > max_rows:
                parts.append(FilePart(path, tuple(current), rows, f.path))
                current, rows = [], 0
            current.append(g)
            rows += n
        parts.append(FilePart(path, tuple(current), rows, f.path))
    return parts


def pack(parts: list[FilePart], max_rows: int) -> list[NCFPartition]:
    """Group parts into partitions of about ``max_rows`` rows (small files share a task)."""
    partitions: list[NCFPartition] = []
    current: list[FilePart] = []
    rows = 0
    for part in parts:
        if current and rows + part.rows > max_rows:
            partitions.append(NCFPartition(current))
            current, rows = [], 0
        current.append(part)
        rows += part.rows
    if current:
        partitions.append(NCFPartition(current))
    return partitions


def batch_rows_for(table: pa.Table) -> int:
    """Rows per Arrow batch: about ``TARGET_BATCH_BYTES`` of ``table``'s data, at most ``MAX_BATCH_ROWS``."""
    row_bytes = max(1, table.nbytes // max(1, table.num_rows))
    return max(1024, min(MAX_BATCH_ROWS, TARGET_BATCH_BYTES // row_bytes))


def to_batches(table: pa.Table, target: pa.Schema, batch_rows: int | None) -> Iterator[pa.RecordBatch]:
    """Record batches of ``table`` (``batch_rows`` rows each, else :func:`batch_rows_for`)
    cast to exactly the ``target`` Arrow schema Spark expects."""
    arrays = []
    for field in target:
        column = table.column(field.name)
        arrays.append(column if column.type.equals(field.type) else column.cast(field.type))
    table = pa.Table.from_arrays(arrays, schema=target)
    yield from table.to_batches(max_chunksize=batch_rows or batch_rows_for(table))


class NCFBatchReader(DataSourceReader):
    """Reads one snapshot of an NCF table. Created on the driver, pickled to the executors."""

    def __init__(self, snapshot: Snapshot, schema: StructType, options: NCFOptions):
        self.snapshot = snapshot
        self.table_schema = snapshot.schema
        self.file_column = options.file_column
        self.only_files = options.files
        self.columns = [f.name for f in schema.fields if f.name != self.file_column]
        self.target = to_arrow_schema(schema, timezone="UTC")
        self.max_rows = options.max_rows_per_partition
        self.batch_rows = options.batch_size
        self.pushed: list = []
        self.expr: Expr | None = None

    def partitions(self) -> list[NCFPartition]:
        files = self.snapshot.prune(self.expr)
        if self.only_files is not None:
            files = [f for f in files if f.path in self.only_files]
        # Enough tasks to keep a few cores busy, none smaller than MIN_ROWS_PER_PARTITION.
        total = sum(f.rows for f in files)
        max_rows = min(self.max_rows, max(MIN_ROWS_PER_PARTITION, -(-total // MIN_PARTITIONS)))
        return pack(plan_parts(self.snapshot, files, self.expr, max_rows), max_rows) or [NCFPartition([])]

    def __getstate__(self) -> dict[str, Any]:
        # Tasks need the schema, the filter and their partition, not the list of every file.
        return {k: v for k, v in self.__dict__.items() if k != "snapshot"}

    def read(self, partition: NCFPartition) -> Iterator[pa.RecordBatch]:  # type: ignore[override]
        for part in partition.parts:
            table = read_data_file(part.path, self.table_schema, self.columns, self.expr, part.row_groups)
            if self.file_column:
                table = table.append_column(
                    self.file_column, pa.array([part.rel] * table.num_rows, pa.string())
                )
            yield from to_batches(table, self.target, self.batch_rows)


class NCFPushdownReader(NCFBatchReader):
    """:class:`NCFBatchReader` that also takes Spark's pushed filters. Spark refuses a reader
    with ``pushFilters`` unless ``spark.sql.python.filterPushdown.enabled`` is true."""

    def pushFilters(self, filters):
        """Keep the filters NCF evaluates exactly (file, row-group and learned-index skipping,
        then exact row filtering); give back the others for Spark to evaluate."""
        for f in filters:
            expr = to_ncf(f, self.table_schema)
            if expr is None:
                yield f
            else:
                self.pushed.append(expr)
        self.expr = bind_all(self.pushed, self.table_schema)
