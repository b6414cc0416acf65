"""The table formats behind :mod:`neurolake_spark.bulk`: one small interface, one class per format.

:func:`table_format` gives the :class:`TableFormat` of a table (Delta or NCF, from its
definition); ``bulk`` checks its arguments once and calls it, so no operation branches on
the format. Every write is tagged with the run that made it in one way (:class:`CommitTag`):
Delta keeps the tag as the commit's ``userMetadata`` JSON, NCF in the commit's parameters.

Conditions and new values are pyspark ``Column`` objects, never SQL text from a user.

Example (what ``bulk.delete(spark, ref, condition, run_id="r-1")`` does)::

    >>> from pyspark.sql import functions as F
    >>> from neurolake_spark import Lakehouse
    >>> lh = Lakehouse.open("conf/local.yaml")
    >>> spark, ref = lh.spark, lh.resolve("silver.orders")
    >>> orders = spark.createDataFrame([(1, "paid"), (2, "test")], "order_id BIGINT, status STRING")
    >>> table_format(ref).insert(spark, ref, orders, CommitTag()).version
    0
    >>> table_format(ref).delete(spark, ref, F.col("status") == "test", CommitTag("r-1"))
    TableVersion(table='silver.orders', version=1, operation='DELETE', metrics={...})
    >>> CommitTag("r-1").user_metadata                   # how Delta keeps the tag
    '{"neurolake_run_id": "r-1"}'
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, DataFrameWriter, SparkSession

from ncf_datasource.spark import operations as ncf_ops
from ncf_datasource.table import NCFTable
from neurolake_spark.errors import PipelineError
from neurolake_spark.session import temporary_conf
from neurolake_spark.tables import TableRef

RUN_ID_KEY = "neurolake_run_id"
DELTA_SESSION_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
STABLE_MERGE_SOURCE = {
    "spark.databricks.delta.merge.materializeSource": "none",
    "spark.databricks.delta.merge.failSourceCachedAfterMaterialization": "false",
}
"""Session settings of a MERGE whose source reads the same rows twice (see ``bulk.upsert``)."""


@dataclass(frozen=True)
class TableVersion:
    """A committed table version and what the commit did."""

    table: str
    version: int
    operation: str
    metrics: dict[str, Any] = field(default_factory=dict)

    def metric(self, *names: str) -> int:
        """The first of ``names`` the commit reported, as an int (0 when none)."""
        for name in names:
            if name in self.metrics and self.metrics[name] not in (None, ""):
                return int(self.metrics[name])
        return 0

    @property
    def rows_written(self) -> int:
        """New or changed rows the commit wrote; unchanged rows it only copied into rewritten
        files (a ``replaceWhere`` or MERGE rewriting a shared file) do not count."""
        return self.metric("numOutputRows", "numTargetRowsInserted") - self.metric(
            "numCopiedRows", "numTargetRowsCopied"
        )

    @property
    def bytes_written(self) -> int:
        return self.metric("numOutputBytes", "numAddedBytes")

    @property
    def files_written(self) -> int:
        return self.metric("numFiles", "numAddedFiles", "numTargetFilesAdded")


def column_text(column: Column) -> str:
    """How a commit describes a condition given as a ``Column`` (Spark's rendering of it)."""
    return str(column).removeprefix("Column<'").removesuffix("'>")


@dataclass(frozen=True)
class CommitTag:
    """What a commit records about the run that made it (nothing without a run id)."""

    run_id: str | None = None

    @property
    def fields(self) -> dict[str, str]:
        """The tag as key-value pairs: ``{"neurolake_run_id": ...}``, or empty."""
        return {RUN_ID_KEY: self.run_id} if self.run_id else {}

    @property
    def user_metadata(self) -> str | None:
        """The tag as a Delta commit's ``userMetadata`` (JSON), or None."""
        return json.dumps(self.fields) if self.fields else None


class TableFormat(Protocol):
    """The operations ``bulk`` needs from a table format; each write is one atomic commit."""

    def exists(self, spark: SparkSession, ref: TableRef) -> bool:
        """Whether the table has at least one committed version."""

    def current_version(self, spark: SparkSession, ref: TableRef) -> TableVersion:
        """The latest committed version and its commit's metrics (Delta's names)."""

    def insert(self, spark: SparkSession, ref: TableRef, df: DataFrame, tag: CommitTag) -> TableVersion:
        """Append ``df`` (creating the table)."""

    def overwrite(self, spark: SparkSession, ref: TableRef, df: DataFrame, tag: CommitTag) -> TableVersion:
        """Replace the whole table (and its schema) with ``df``."""

    def overwrite_where(
        self, spark: SparkSession, ref: TableRef, df: DataFrame, condition: str, tag: CommitTag
    ) -> TableVersion:
        """Replace the rows matching ``condition`` with ``df`` (creating the table)."""

    def upsert(
        self,
        spark: SparkSession,
        ref: TableRef,
        source: DataFrame,
        keys: list[str],
        newer_than: str | None,
        tag: CommitTag,
        stable_source: bool,
    ) -> TableVersion:
        """MERGE ``source`` into the existing table by ``keys``."""

    def update(
        self,
        spark: SparkSession,
        ref: TableRef,
        condition: Column,
        assignments: dict[str, Column],
        tag: CommitTag,
    ) -> TableVersion:
        """Set columns to new values on the rows matching ``condition``."""

    def delete(self, spark: SparkSession, ref: TableRef, condition: Column, tag: CommitTag) -> TableVersion:
        """Delete the rows matching ``condition``."""

    def erase_keys(
        self, spark: SparkSession, ref: TableRef, key: str, keys: DataFrame, tag: CommitTag
    ) -> TableVersion:
        """Delete every row whose ``key`` is in the one-column frame ``keys``."""


class DeltaFormat:
    """Delta Lake tables, through Spark's writer and ``delta.tables.DeltaTable``."""

    @staticmethod
    def _commits(ref: TableRef) -> list[Path]:
        log = ref.path / "_delta_log"
        return sorted(log.glob("[0-9]" * 20 + ".json")) if log.is_dir() else []

    def exists(self, spark: SparkSession, ref: TableRef) -> bool:
        return bool(self._commits(ref)) or DeltaTable.isDeltaTable(spark, ref.uri)

    def current_version(self, spark: SparkSession, ref: TableRef) -> TableVersion:
        """Read from the newest commit file of the Delta log (a public, documented format),
        which costs a file read instead of a Spark job."""
        commits = self._commits(ref)
        if not commits:
            raise PipelineError(f"table {ref.name} does not exist yet at {ref.path}")
        info: dict[str, Any] = {}
        with open(commits[-1], encoding="utf-8") as commit:
            for line in commit:
                action = json.loads(line)
                if "commitInfo" in action:
                    info = action["commitInfo"]
                    break
        return TableVersion(
            ref.name,
            int(commits[-1].stem),
            info.get("operation", "UNKNOWN"),
            dict(info.get("operationMetrics") or {}),
        )

    def _writer(self, df: DataFrame, mode: str, tag: CommitTag) -> DataFrameWriter:
        writer = df.write.format("delta").mode(mode)
        return writer.option("userMetadata", tag.user_metadata) if tag.user_metadata else writer

    def _save(self, spark: SparkSession, ref: TableRef, writer: DataFrameWriter) -> TableVersion:
        """Run a writer and return the version it committed.

        Delta commits nothing for some empty writes; the result then reports the unchanged
        version with operation ``NONE`` and no metrics, never the previous commit's metrics.
        """
        before = self.current_version(spark, ref).version if self.exists(spark, ref) else None
        writer.save(ref.uri)
        after = self.current_version(spark, ref)
        if after.version == before:
            return TableVersion(ref.name, after.version, "NONE")
        return after

    @contextmanager
    def _tagged(self, spark: SparkSession, tag: CommitTag) -> Iterator[None]:
        """Tag the commits made inside (for operations that take no writer options)."""
        with temporary_conf(spark, {DELTA_SESSION_METADATA: tag.user_metadata}):
            yield

    def insert(self, spark: SparkSession, ref: TableRef, df: DataFrame, tag: CommitTag) -> TableVersion:
        writer = self._writer(df, "append", tag)
        if ref.definition.partition_by and not self.exists(spark, ref):
            writer = writer.partitionBy(*ref.definition.partition_by)
        return self._save(spark, ref, writer)

    def overwrite(self, spark: SparkSession, ref: TableRef, df: DataFrame, tag: CommitTag) -> TableVersion:
        writer = self._writer(df, "overwrite", tag).option("overwriteSchema", "true")
        if ref.definition.partition_by:
            writer = writer.partitionBy(*ref.definition.partition_by)
        return self._save(spark, ref, writer)

    def overwrite_where(
        self, spark: SparkSession, ref: TableRef, df: DataFrame, condition: str, tag: CommitTag
    ) -> TableVersion:
        writer = self._writer(df, "overwrite", tag).option("replaceWhere", condition)
        if ref.definition.partition_by and not self.exists(spark, ref):
            writer = writer.partitionBy(*ref.definition.partition_by)
        return self._save(spark, ref, writer)

    def upsert(
        self,
        spark: SparkSession,
        ref: TableRef,
        source: DataFrame,
        keys: list[str],
        newer_than: str | None,
        tag: CommitTag,
        stable_source: bool,
    ) -> TableVersion:
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        condition = f"s.`{newer_than}` > t.`{newer_than}`" if newer_than else None
        with self._tagged(spark, tag), temporary_conf(spark, STABLE_MERGE_SOURCE if stable_source else {}):
            (
                DeltaTable.forPath(spark, ref.uri)
                .alias("t")
                .merge(source.alias("s"), on)
                .whenMatchedUpdateAll(condition=condition)
                .whenNotMatchedInsertAll()
                .execute()
            )
        return self.current_version(spark, ref)

    def update(
        self,
        spark: SparkSession,
        ref: TableRef,
        condition: Column,
        assignments: dict[str, Column],
        tag: CommitTag,
    ) -> TableVersion:
        with self._tagged(spark, tag):
            DeltaTable.forPath(spark, ref.uri).update(condition, assignments)
        return self.current_version(spark, ref)

    def delete(self, spark: SparkSession, ref: TableRef, condition: Column, tag: CommitTag) -> TableVersion:
        with self._tagged(spark, tag):
            DeltaTable.forPath(spark, ref.uri).delete(condition)
        return self.current_version(spark, ref)

    def erase_keys(
        self, spark: SparkSession, ref: TableRef, key: str, keys: DataFrame, tag: CommitTag
    ) -> TableVersion:
        with self._tagged(spark, tag):
            (
                DeltaTable.forPath(spark, ref.uri)
                .alias("t")
                .merge(keys.alias("s"), f"t.`{key}` = s.`{key}`")
                .whenMatchedDelete()
                .execute()
            )
        return self.current_version(spark, ref)


_NCF_METRICS = {
    "numOutputRows": "num_output_rows",
    "numAddedFiles": "num_added_files",
    "numRemovedFiles": "num_removed_files",
    "numAddedBytes": "num_added_bytes",
    "numAffectedRows": "num_affected_rows",
}


class NCFFormat:
    """NCF tables: row-level operations through :mod:`ncf_datasource.spark.operations` (copy on
    write of the files that can hold matching rows), writes through the ``ncf`` source."""

    def exists(self, spark: SparkSession, ref: TableRef) -> bool:
        return NCFTable.is_table(ref.path)

    def current_version(self, spark: SparkSession, ref: TableRef) -> TableVersion:
        """The newest commit, its metrics under Delta's names (``numOutputRows``...)."""
        if not NCFTable.is_table(ref.path):
            raise PipelineError(f"table {ref.name} does not exist yet at {ref.path}")
        (last,) = NCFTable(ref.path).history(1)
        metrics = dict(last["metrics"])
        metrics.setdefault("num_output_rows", metrics.get("num_added_rows", 0))
        return TableVersion(
            ref.name,
            last["version"],
            last["operation"],
            {name: metrics[key] for name, key in _NCF_METRICS.items() if key in metrics},
        )

    def _result(self, spark: SparkSession, ref: TableRef, version: int | None) -> TableVersion:
        """The commit an operation made, or the unchanged version (operation ``NONE``)."""
        if version is None:
            return TableVersion(ref.name, self.current_version(spark, ref).version, "NONE")
        return self.current_version(spark, ref)

    def _write(
        self, spark: SparkSession, ref: TableRef, df: DataFrame, mode: str, tag: CommitTag
    ) -> TableVersion:
        writer = df.write.format("ncf").mode(mode)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        for key, value in tag.fields.items():
            writer = writer.option(f"commitInfo.{key}", value)
        writer.save(ref.uri)
        return self.current_version(spark, ref)

    def insert(self, spark: SparkSession, ref: TableRef, df: DataFrame, tag: CommitTag) -> TableVersion:
        return self._write(spark, ref, df, "append", tag)

    def overwrite(self, spark: SparkSession, ref: TableRef, df: DataFrame, tag: CommitTag) -> TableVersion:
        return self._write(spark, ref, df, "overwrite", tag)

    def overwrite_where(
        self, spark: SparkSession, ref: TableRef, df: DataFrame, condition: str, tag: CommitTag
    ) -> TableVersion:
        version = ncf_ops.replace_where(spark, ref.uri, df, condition, **tag.fields)
        return self._result(spark, ref, version)

    def upsert(
        self,
        spark: SparkSession,
        ref: TableRef,
        source: DataFrame,
        keys: list[str],
        newer_than: str | None,
        tag: CommitTag,
        stable_source: bool,
    ) -> TableVersion:
        version = ncf_ops.merge(spark, ref.uri, source, keys, "update", "insert", newer_than, **tag.fields)
        return self._result(spark, ref, version)

    def update(
        self,
        spark: SparkSession,
        ref: TableRef,
        condition: Column,
        assignments: dict[str, Column],
        tag: CommitTag,
    ) -> TableVersion:
        version = ncf_ops.update(spark, ref.uri, condition, assignments, column_text(condition), **tag.fields)
        return self._result(spark, ref, version)

    def delete(self, spark: SparkSession, ref: TableRef, condition: Column, tag: CommitTag) -> TableVersion:
        version = ncf_ops.delete(spark, ref.uri, condition, column_text(condition), **tag.fields)
        return self._result(spark, ref, version)

    def erase_keys(
        self, spark: SparkSession, ref: TableRef, key: str, keys: DataFrame, tag: CommitTag
    ) -> TableVersion:
        version = ncf_ops.merge(spark, ref.uri, keys, [key], "delete", None, **tag.fields)
        return self._result(spark, ref, version)


FORMATS: dict[str, TableFormat] = {"delta": DeltaFormat(), "ncf": NCFFormat()}
"""The table format of each ``format`` a table definition may name."""


def table_format(ref: TableRef) -> TableFormat:
    """The :class:`TableFormat` that stores ``ref``."""
    return FORMATS[ref.format]
