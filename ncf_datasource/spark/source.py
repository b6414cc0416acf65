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

from pyspark.sql.datasource import DataSource
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StringType, StructType

from ..table import NCFTable, NCFTableError, SchemaMismatchError, Snapshot


class NCFDataSource(DataSource):
    """``format("ncf")``. Read options: ``versionAsOf``, ``timestampAsOf``, ``columns``,
    ``maxRowsPerPartition`` (default 2M rows per task), ``batchSize`` (default: about 32 MB, at most 256k rows),
    ``filterPushdown`` (default true: needs ``spark.sql.python.filterPushdown.enabled``);
    for row-level operations, ``fileColumn`` (add a column with each row's data file) and
    ``files`` (comma-separated data files to read).
    Write options: see :class:`ncf_datasource.spark.writer.NCFBatchWriter`. Streaming
    options: see :mod:`ncf_datasource.spark.stream`."""

    filter_pushdown = True
    """Whether readers take pushed filters (option ``filterPushdown`` overrides it)."""

    @classmethod
    def name(cls) -> str:
        return "ncf"

    def __init__(self, options):
        super().__init__(options)
        self.opts = {str(k).lower(): str(v) for k, v in options.items()}
        self.pinned_version: int | None = None

    @property
    def path(self) -> str:
        path = self.opts.get("path")
        if not path:
            raise NCFTableError("the ncf source needs a path: .load(path) or .save(path)")
        return path

    def snapshot(self) -> Snapshot:
        """The snapshot this query reads: ``versionAsOf``/``timestampAsOf``, else the latest
        (pinned on first use so schema and data come from the same version)."""
        table = NCFTable.open(self.path)
        if "versionasof" in self.opts and "timestampasof" in self.opts:
            raise NCFTableError(f"{self.path}: give versionAsOf or timestampAsOf, not both")
        if "versionasof" in self.opts:
            try:
                version = int(self.opts["versionasof"])
            except ValueError:
                raise NCFTableError(
                    f"{self.path}: versionAsOf must be an integer, got {self.opts['versionasof']!r}"
                ) from None
            return table.snapshot(version)
        if "timestampasof" in self.opts:
            return table.snapshot(timestamp=self.opts["timestampasof"])
        snapshot = table.snapshot(self.pinned_version)
        self.pinned_version = snapshot.version
        return snapshot

    def _columns(self, snapshot: Snapshot) -> list[str]:
        names = snapshot.schema.names
        if "columns" not in self.opts:
            return names
        wanted = [c.strip() for c in self.opts["columns"].split(",") if c.strip()]
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
        import pyarrow as pa

        try:
            schema = from_arrow_schema(pa.schema(selected))
        except Exception as exc:
            raise SchemaMismatchError(f"{self.path}: a column type has no Spark equivalent: {exc}") from None
        if "filecolumn" in self.opts:
            schema = schema.add(self.opts["filecolumn"], StringType())
        return schema

    def reader(self, schema: StructType):
        from .reader import NCFBatchReader, NCFPushdownReader

        snapshot = self.snapshot()
        unknown = [
            f.name
            for f in schema.fields
            if f.name not in snapshot.schema.names and f.name != self.opts.get("filecolumn")
        ]
        if unknown:
            raise SchemaMismatchError(
                f"{self.path}: the given schema names unknown columns {unknown}; the table has {snapshot.schema.names}"
            )
        pushdown = self.opts.get("filterpushdown", str(self.filter_pushdown)).lower() == "true"
        return (NCFPushdownReader if pushdown else NCFBatchReader)(snapshot, schema, self.opts)

    def writer(self, schema: StructType, overwrite: bool):
        from .writer import NCFBatchWriter

        return NCFBatchWriter(self.path, schema, overwrite, self.opts)

    def streamReader(self, schema: StructType):
        from .stream import NCFStreamReader

        return NCFStreamReader(NCFTable.open(self.path), schema, self.opts)

    def streamWriter(self, schema: StructType, overwrite: bool):
        from .stream import NCFStreamWriter

        return NCFStreamWriter(self.path, schema, overwrite, self.opts)
