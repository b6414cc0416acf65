"""The Spark data source ``ncf``: NCF tables read and written through Spark's Python Data Source API.

Example::

    spark.dataSource.register(NCFDataSource)          # the project's session does it
    df.write.format("ncf").mode("append").save("/lake/events")
    spark.read.format("ncf").load("/lake/events").where("id > 10")
    spark.read.format("ncf").option("versionAsOf", 3).load("/lake/events")
    spark.read.format("ncf").option("columns", "id,ts").load("/lake/events")

Filter pushdown needs ``spark.sql.python.filterPushdown.enabled=true`` (set by
``neurolake_spark.session``). Spark gives Python sources no column pruning: the
``columns`` option (or a schema given with ``.schema()``) limits what is decoded.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql.datasource import DataSource
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StringType, StructType

from ..table import NCFTable, NCFTableError, SchemaMismatchError, Snapshot
from .options import NCFOptions
from .reader import NCFBatchReader, NCFPushdownReader
from .stream import NCFStreamReader, NCFStreamWriter
from .writer import NCFBatchWriter


class NCFDataSource(DataSource):
    """``format("ncf")``. Read options: ``versionAsOf``, ``timestampAsOf``, ``columns``,
    ``maxRowsPerPartition`` (default 2M rows per task), ``batchSize`` (default: about 32 MB,
    at most 256k rows),
    ``filterPushdown`` (default true: needs ``spark.sql.python.filterPushdown.enabled``);
    for row-level operations, ``fileColumn`` (add a column with each row's data file) and
    ``files`` (comma-separated data files to read).
    Write options: see :class:`ncf_datasource.spark.writer.NCFBatchWriter`. Streaming
    options: see :mod:`ncf_datasource.spark.stream`. All of them are parsed once, when the
    source is created (:class:`~ncf_datasource.spark.options.NCFOptions`): a bad value is
    an error naming the option."""

    filter_pushdown = True
    """Whether readers take pushed filters (option ``filterPushdown`` overrides it)."""

    @classmethod
    def name(cls) -> str:
        return "ncf"

    def __init__(self, options):
        super().__init__(options)
        self.opts = NCFOptions.parse(options)
        self.pinned_version: int | None = None

    @property
    def path(self) -> str:
        path = self.opts.path
        if not path:
            raise NCFTableError("the ncf source needs a path: .load(path) or .save(path)")
        return path

    def snapshot(self) -> Snapshot:
        """The snapshot this query reads: ``versionAsOf``/``timestampAsOf``, else the latest
        (pinned on first use so schema and data come from the same version)."""
        table = NCFTable.open(self.path)
        if self.opts.version_as_of is not None:
            return table.snapshot(self.opts.version_as_of)
        if self.opts.timestamp_as_of is not None:
            return table.snapshot(timestamp=self.opts.timestamp_as_of)
        snapshot = table.snapshot(self.pinned_version)
        self.pinned_version = snapshot.version
        return snapshot

    def _columns(self, snapshot: Snapshot) -> list[str]:
        names = snapshot.schema.names
        wanted = self.opts.columns
        if wanted is None:
            return names
        unknown = [c for c in wanted if c not in names]
        if unknown:
            raise SchemaMismatchError(
                f"{self.path}: option columns names unknown columns {unknown}; the table has {names}"
            )
        return wanted

    def schema(self) -> StructType:
        snapshot = self.snapshot()
        arrow = snapshot.schema
        selected = [arrow.field(c).remove_metadata() for c in self._columns(snapshot)]
        try:
            schema = from_arrow_schema(pa.schema(selected))
        except Exception as exc:
            raise SchemaMismatchError(f"{self.path}: a column type has no Spark equivalent: {exc}") from None
        if self.opts.file_column:
            schema = schema.add(self.opts.file_column, StringType())
        return schema

    def reader(self, schema: StructType):
        snapshot = self.snapshot()
        unknown = [
            f.name
            for f in schema.fields
            if f.name not in snapshot.schema.names and f.name != self.opts.file_column
        ]
        if unknown:
            raise SchemaMismatchError(
                f"{self.path}: the given schema names unknown columns {unknown}; "
                f"the table has {snapshot.schema.names}"
            )
        pushdown = self.filter_pushdown if self.opts.filter_pushdown is None else self.opts.filter_pushdown
        return (NCFPushdownReader if pushdown else NCFBatchReader)(snapshot, schema, self.opts)

    def writer(self, schema: StructType, overwrite: bool):
        return NCFBatchWriter(self.path, schema, overwrite, self.opts)

    def streamReader(self, schema: StructType):
        return NCFStreamReader(NCFTable.open(self.path), schema, self.opts)

    def streamWriter(self, schema: StructType, overwrite: bool):
        return NCFStreamWriter(self.path, schema, overwrite, self.opts)
