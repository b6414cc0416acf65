"""The table formats behind :mod:`neurolake_spark.bulk`: one small interface, one class per format.

:func:`table_format` gives the :class:`TableFormat` of a table (Delta or NCF, from its
definition); ``bulk`` checks its arguments once and calls it, so no operation branches on
the format. Every write is tagged in one way (:class:`CommitTag`): the run that made it and
an id of its own. Delta keeps the tag as the commit's ``userMetadata`` JSON, NCF in the
commit's parameters. The :class:`TableVersion` an operation returns is the commit carrying
its tag, found in the log after the write, never simply the newest commit: a writer that
commits to the same table meanwhile is not mistaken for the caller (and not recorded in the
caller's lineage).

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
    >>> CommitTag("r-1", commit="c-1").user_metadata      # how Delta keeps the tag
    '{"neurolake_run_id": "r-1", "neurolake_commit": "c-1"}'
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, DataFrameWriter, SparkSession

from ncf_datasource.spark import operations as ncf_ops
from ncf_datasource.table import NCFTable
from neurolake_spark.errors import PipelineError
from neurolake_spark.session import temporary_conf
from neurolake_spark.tables import TableRef

RUN_ID_KEY = "neurolake_run_id"
COMMIT_KEY = "neurolake_commit"
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
    """What a commit records about the operation that made it: the run (if any) and an id of
    the operation's own (``commit``, random unless given), by which the commit is found again."""

    run_id: str | None = None
    commit: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def fields(self) -> dict[str, str]:
        """The tag as key-value pairs: ``{"neurolake_run_id": ..., "neurolake_commit": ...}``."""
        return {**({RUN_ID_KEY: self.run_id} if self.run_id else {}), COMMIT_KEY: self.commit}

    @property
    def user_metadata(self) -> str:
        """The tag as a Delta commit's ``userMetadata`` (JSON)."""
        return json.dumps(self.fields)

    def marks(self, fields: Any) -> bool:
        """Whether a commit's recorded tag (``userMetadata`` parsed, or NCF parameters) is this one."""
        return isinstance(fields, dict) and fields.get(COMMIT_KEY) == self.commit


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


_SESSION_TAG = threading.Lock()
"""Held while a session-wide commit tag is set, so concurrent tagged operations in one process
never tag each other's commits."""


def _delta_commits(ref: TableRef) -> list[int]:
    log = ref.path / "_delta_log"
    return sorted(int(p.stem) for p in log.glob("[0-9]" * 20 + ".json")) if log.is_dir() else []


def _delta_commit_info(ref: TableRef, version: int) -> dict[str, Any]:
    """The ``commitInfo`` action of a Delta commit file (a public, documented format)."""
    with open(ref.path / "_delta_log" / f"{version:020d}.json", encoding="utf-8") as commit:
        for line in commit:
            action = json.loads(line) if line.strip() else {}
            if "commitInfo" in action:
                return action["commitInfo"]
    return {}


def _delta_version(ref: TableRef, version: int, info: dict[str, Any]) -> TableVersion:
    return TableVersion(
        ref.name, version, info.get("operation", "UNKNOWN"), dict(info.get("operationMetrics") or {})
    )


def _user_metadata(info: dict[str, Any]) -> Any:
    try:
        return json.loads(info.get("userMetadata") or "null")
    except ValueError:
        return None


def delta_commit_of(ref: TableRef, tag: CommitTag, after: int | None) -> TableVersion:
    """The newest commit after version ``after`` that carries ``tag``: the caller's own commit,
    whatever other writers committed meanwhile. None found (Delta committed nothing, as for
    some empty writes): the version ``after`` with operation ``NONE`` and no metrics."""
    for version in reversed([v for v in _delta_commits(ref) if after is None or v > after]):
        info = _delta_commit_info(ref, version)
        if tag.marks(_user_metadata(info)):
            return _delta_version(ref, version, info)
    if after is None:
        raise PipelineError(f"table {ref.name}: no commit of this operation in {ref.path}")
    return TableVersion(ref.name, after, "NONE")


def tagged_delta_operation(
    spark: SparkSession, ref: TableRef, action: Callable[[], Any], tag: CommitTag, conf: dict | None = None
) -> TableVersion:
    """Run ``action`` (a ``DeltaTable`` operation, which takes no writer options) with its commits
    tagged through the session (and ``conf`` set meanwhile); return the commit it made."""
    before = (_delta_commits(ref) or [None])[-1]
    with _SESSION_TAG, temporary_conf(spark, {DELTA_SESSION_METADATA: tag.user_metadata, **(conf or {})}):
        action()
    return delta_commit_of(ref, tag, before)


class DeltaFormat:
    """Delta Lake tables, through Spark's writer and ``delta.tables.DeltaTable``."""

    def exists(self, spark: SparkSession, ref: TableRef) -> bool:
        return bool(_delta_commits(ref)) or DeltaTable.isDeltaTable(spark, ref.uri)

    def current_version(self, spark: SparkSession, ref: TableRef) -> TableVersion:
        """Read from the newest commit file of the Delta log (a public, documented format),
        which costs a file read instead of a Spark job."""
        commits = _delta_commits(ref)
        if not commits:
            raise PipelineError(f"table {ref.name} does not exist yet at {ref.path}")
        return _delta_version(ref, commits[-1], _delta_commit_info(ref, commits[-1]))

    def write(
        self,
        ref: TableRef,
        df: DataFrame,
        mode: str,
        tag: CommitTag,
        replace_schema: bool = False,
        **options: str,
    ) -> TableVersion:
        """Write ``df`` with Spark's writer in ``mode`` (and writer ``options``, e.g. ``txnAppId``),
        tagged with ``tag``; return the commit it made (see :func:`delta_commit_of`).

        The table's partitioning is given when the write creates the table or replaces its schema."""
        before = (_delta_commits(ref) or [None])[-1]
        writer: DataFrameWriter = (
            df.write.format("delta").mode(mode).option("userMetadata", tag.user_metadata)
        )
        if replace_schema:
            writer = writer.option("overwriteSchema", "true")
        for key, value in options.items():
            writer = writer.option(key, value)
        if ref.definition.partition_by and (replace_schema or before is None):
            writer = writer.partitionBy(*ref.definition.partition_by)
        writer.save(ref.uri)
        return delta_commit_of(ref, tag, before)

    def insert(self, spark: SparkSession, ref: TableRef, df: DataFrame, tag: CommitTag) -> TableVersion:
        return self.write(ref, df, "append", tag)

    def overwrite(self, spark: SparkSession, ref: TableRef, df: DataFrame, tag: CommitTag) -> TableVersion:
        return self.write(ref, df, "overwrite", tag, replace_schema=True)

    def overwrite_where(
        self, spark: SparkSession, ref: TableRef, df: DataFrame, condition: str, tag: CommitTag
    ) -> TableVersion:
        return self.write(ref, df, "overwrite", tag, replaceWhere=condition)

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

        def merge() -> None:
            (
                DeltaTable.forPath(spark, ref.uri)
                .alias("t")
                .merge(source.alias("s"), on)
                .whenMatchedUpdateAll(condition=condition)
                .whenNotMatchedInsertAll()
                .execute()
            )

        return tagged_delta_operation(spark, ref, merge, tag, STABLE_MERGE_SOURCE if stable_source else {})

    def update(
        self,
        spark: SparkSession,
        ref: TableRef,
        condition: Column,
        assignments: dict[str, Column],
        tag: CommitTag,
    ) -> TableVersion:
        return tagged_delta_operation(
            spark, ref, lambda: DeltaTable.forPath(spark, ref.uri).update(condition, assignments), tag
        )

    def delete(self, spark: SparkSession, ref: TableRef, condition: Column, tag: CommitTag) -> TableVersion:
        return tagged_delta_operation(
            spark, ref, lambda: DeltaTable.forPath(spark, ref.uri).delete(condition), tag
        )

    def erase_keys(
        self, spark: SparkSession, ref: TableRef, key: str, keys: DataFrame, tag: CommitTag
    ) -> TableVersion:
        def merge() -> None:
            (
                DeltaTable.forPath(spark, ref.uri)
                .alias("t")
                .merge(keys.alias("s"), f"t.`{key}` = s.`{key}`")
                .whenMatchedDelete()
                .execute()
            )

        return tagged_delta_operation(spark, ref, merge, tag)


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

    @staticmethod
    def _version(ref: TableRef, version: int, commit: dict[str, Any]) -> TableVersion:
        """A commit as a :class:`TableVersion`, its metrics under Delta's names (``numOutputRows``...)."""
        metrics = dict(commit.get("metrics") or {})
        metrics.setdefault("num_output_rows", metrics.get("num_added_rows", 0))
        return TableVersion(
            ref.name,
            version,
            commit["operation"],
            {name: metrics[key] for name, key in _NCF_METRICS.items() if key in metrics},
        )

    def current_version(self, spark: SparkSession, ref: TableRef) -> TableVersion:
        """The newest commit, its metrics under Delta's names (``numOutputRows``...)."""
        if not NCFTable.is_table(ref.path):
            raise PipelineError(f"table {ref.name} does not exist yet at {ref.path}")
        table = NCFTable(ref.path)
        version = table.version
        return self._version(ref, version, table.log.read(version))

    def _result(self, ref: TableRef, version: int | None) -> TableVersion:
        """The commit an operation made (the version it returned, not the newest one), or the
        unchanged version (operation ``NONE``) when it committed nothing."""
        table = NCFTable(ref.path)
        if version is None:
            return TableVersion(ref.name, table.version, "NONE")
        return self._version(ref, version, table.log.read(version))

    def _write(
        self, spark: SparkSession, ref: TableRef, df: DataFrame, mode: str, tag: CommitTag
    ) -> TableVersion:
        before = NCFTable(ref.path).version if NCFTable.is_table(ref.path) else -1
        writer = df.write.format("ncf").mode(mode)
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        for key, value in tag.fields.items():
            writer = writer.option(f"commitInfo.{key}", value)
        writer.save(ref.uri)
        return self._result(ref, NCFTable(ref.path).find_commit(tag.fields, after=before))

    def insert(self, spark: SparkSession, ref: TableRef, df: DataFrame, tag: CommitTag) -> TableVersion:
        return self._write(spark, ref, df, "append", tag)

    def overwrite(self, spark: SparkSession, ref: TableRef, df: DataFrame, tag: CommitTag) -> TableVersion:
        return self._write(spark, ref, df, "overwrite", tag)

    def overwrite_where(
        self, spark: SparkSession, ref: TableRef, df: DataFrame, condition: str, tag: CommitTag
    ) -> TableVersion:
        return self._result(ref, ncf_ops.replace_where(spark, ref.uri, df, condition, **tag.fields))

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
        return self._result(ref, version)

    def update(
        self,
        spark: SparkSession,
        ref: TableRef,
        condition: Column,
        assignments: dict[str, Column],
        tag: CommitTag,
    ) -> TableVersion:
        version = ncf_ops.update(spark, ref.uri, condition, assignments, column_text(condition), **tag.fields)
        return self._result(ref, version)

    def delete(self, spark: SparkSession, ref: TableRef, condition: Column, tag: CommitTag) -> TableVersion:
        version = ncf_ops.delete(spark, ref.uri, condition, column_text(condition), **tag.fields)
        return self._result(ref, version)

    def erase_keys(
        self, spark: SparkSession, ref: TableRef, key: str, keys: DataFrame, tag: CommitTag
    ) -> TableVersion:
        return self._result(ref, ncf_ops.merge(spark, ref.uri, keys, [key], "delete", None, **tag.fields))


FORMATS: dict[str, TableFormat] = {"delta": DeltaFormat(), "ncf": NCFFormat()}
"""The table format of each ``format`` a table definition may name."""


def table_format(ref: TableRef) -> TableFormat:
    """The :class:`TableFormat` that stores ``ref``."""
    return FORMATS[ref.format]
