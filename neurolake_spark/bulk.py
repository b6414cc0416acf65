"""Row-level bulk operations behind one API: insert, upsert (MERGE), update, delete, erase.

Every call takes a resolved :class:`~neurolake_spark.tables.TableRef` and returns the
:class:`TableVersion` it committed, so a job does not care which format a table is::

    ref = lh.tables.resolve("silver.orders")
    bulk.upsert(spark, ref, updates_df, keys=["order_id"], newer_than="updated_at")
    bulk.delete(spark, ref, "status = 'test'")
    bulk.erase_keys(spark, lh.tables.resolve("silver.customers"), "customer_id", [42, 43])

Each operation is one atomic commit. Conditions are Spark SQL expressions. Tables whose
format is ``ncf`` go to :mod:`ncf_datasource.spark.operations` (copy-on-write of the files
that can hold matching rows, pruned by statistics and the learned index).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ncf_datasource.spark import operations as ncf_ops
from ncf_datasource.table import NCFTable
from neurolake_spark.errors import PipelineError
from neurolake_spark.session import temporary_conf
from neurolake_spark.tables import TableRef


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


def _delta_commits(ref: TableRef) -> list[Path]:
    log = ref.path / "_delta_log"
    return sorted(log.glob("[0-9]" * 20 + ".json")) if log.is_dir() else []


def exists(spark: SparkSession, ref: TableRef) -> bool:
    """Whether the table has at least one committed version."""
    if ref.format == "delta":
        return bool(_delta_commits(ref)) or DeltaTable.isDeltaTable(spark, ref.uri)
    return NCFTable.is_table(ref.path)


_NCF_METRICS = {
    "numOutputRows": "num_output_rows",
    "numAddedFiles": "num_added_files",
    "numRemovedFiles": "num_removed_files",
    "numAddedBytes": "num_added_bytes",
    "numAffectedRows": "num_affected_rows",
}


def _ncf_version(ref: TableRef) -> TableVersion:
    """The newest NCF commit, its metrics under Delta's names (``numOutputRows``...)."""
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


def _ncf_result(spark: SparkSession, ref: TableRef, version: int | None) -> TableVersion:
    """The commit an NCF operation made, or the unchanged version (operation ``NONE``)."""
    if version is None:
        return TableVersion(ref.name, current_version(spark, ref).version, "NONE")
    return _ncf_version(ref)


def _ncf_write(ref: TableRef, df: DataFrame, mode: str, run_id: str | None):
    writer = df.write.format("ncf").mode(mode)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    if run_id:
        writer = writer.option("commitInfo.neurolake_run_id", run_id)
    return writer


def _run_info(run_id: str | None) -> dict[str, str]:
    return {"neurolake_run_id": run_id} if run_id else {}


def current_version(spark: SparkSession, ref: TableRef) -> TableVersion:
    """The latest committed version of ``ref`` and its commit's operation metrics.

    Read from the newest commit file of the Delta log (a public, documented format), which
    costs a file read instead of a Spark job.
    """
    if ref.format == "ncf":
        return _ncf_version(ref)
    commits = _delta_commits(ref)
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


def _save(spark: SparkSession, ref: TableRef, writer) -> TableVersion:
    """Run a Delta writer and return the version it committed.

    Delta commits nothing for some empty writes; the result then reports the unchanged
    version with operation ``NONE`` and no metrics, never the previous commit's metrics.
    """
    before = current_version(spark, ref).version if exists(spark, ref) else None
    writer.save(ref.uri)
    after = current_version(spark, ref)
    if after.version == before:
        return TableVersion(ref.name, after.version, "NONE")
    return after


ROWS_PER_FILE = 1_000_000
STABLE_MERGE_SOURCE = {
    "spark.databricks.delta.merge.materializeSource": "none",
    "spark.databricks.delta.merge.failSourceCachedAfterMaterialization": "false",
}


def in_few_files(df: DataFrame, rows: int) -> DataFrame:
    """``df`` (known to hold ``rows`` rows) spread over as few partitions as hold
    :data:`ROWS_PER_FILE` each, so that writing a small side output (such as a quarantine)
    leaves one file per partition written, not one per task, and no compaction to do.

    The rows are shuffled, so the work that computes them stays parallel."""
    if rows <= 0:
        return df
    return df.repartition(-(-rows // ROWS_PER_FILE))


def _commit_metadata(run_id: str | None) -> dict[str, str]:
    return {"userMetadata": json.dumps({"neurolake_run_id": run_id})} if run_id else {}


def overwrite_where(
    spark: SparkSession, ref: TableRef, df: DataFrame, condition: str, run_id: str | None = None
) -> TableVersion:
    """Atomically replace the rows matching ``condition`` with ``df`` (creating the table).

    Re-running with the same input leaves the same table, which makes batch loads idempotent.
    """
    if ref.format == "ncf":
        return _ncf_result(
            spark, ref, ncf_ops.replace_where(spark, ref.uri, df, condition, **_run_info(run_id))
        )
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", condition)
    for key, value in _commit_metadata(run_id).items():
        writer = writer.option(key, value)
    if ref.definition.partition_by and not exists(spark, ref):
        writer = writer.partitionBy(*ref.definition.partition_by)
    return _save(spark, ref, writer)


def overwrite(spark: SparkSession, ref: TableRef, df: DataFrame, run_id: str | None = None) -> TableVersion:
    """Atomically replace the whole table with ``df``."""
    if ref.format == "ncf":
        _ncf_write(ref, df, "overwrite", run_id).save(ref.uri)
        return current_version(spark, ref)
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    for key, value in _commit_metadata(run_id).items():
        writer = writer.option(key, value)
    if ref.definition.partition_by:
        writer = writer.partitionBy(*ref.definition.partition_by)
    return _save(spark, ref, writer)


def insert(spark: SparkSession, ref: TableRef, df: DataFrame, run_id: str | None = None) -> TableVersion:
    """Append ``df`` to the table (creating it)."""
    if ref.format == "ncf":
        _ncf_write(ref, df, "append", run_id).save(ref.uri)
        return current_version(spark, ref)
    writer = df.write.format("delta").mode("append")
    for key, value in _commit_metadata(run_id).items():
        writer = writer.option(key, value)
    if ref.definition.partition_by and not exists(spark, ref):
        writer = writer.partitionBy(*ref.definition.partition_by)
    return _save(spark, ref, writer)


def _commit_tagged(spark: SparkSession, run_id: str | None):
    """Tag the commits made inside with the run id (for Delta operations without writer options)."""
    return temporary_conf(
        spark,
        {
            "spark.databricks.delta.commitInfo.userMetadata": json.dumps({"neurolake_run_id": run_id})
            if run_id
            else None
        },
    )


def upsert(
    spark: SparkSession,
    ref: TableRef,
    source: DataFrame,
    keys: list[str],
    newer_than: str | None = None,
    run_id: str | None = None,
    stable_source: bool = False,
) -> TableVersion:
    """MERGE ``source`` into the table by ``keys``: update matches, insert the rest.

    With ``newer_than`` (a column), a match is only updated when the source row is newer,
    so replaying an old batch never undoes a later change. The table is created from
    ``source``'s schema if it does not exist.

    Delta reads a MERGE's source twice. Unless the source only scans Delta tables through
    deterministic steps, Delta first copies it to local disk so that both reads agree; a cached
    source is always copied, as a cache does not pin the versions of the tables it read.
    ``stable_source=True`` says both reads agree anyway (e.g. a cached batch of a pinned table
    version, transformed deterministically): no copy is made. Those settings are the
    session's while the MERGE runs, so no other MERGE should run in the session meanwhile.
    """
    if not keys:
        raise PipelineError(f"upsert into {ref.name}: at least one key column is needed")
    if not exists(spark, ref):
        return insert(spark, ref, source, run_id)
    if ref.format == "ncf":
        version = ncf_ops.merge(
            spark, ref.uri, source, keys, "update", "insert", newer_than, **_run_info(run_id)
        )
        return _ncf_result(spark, ref, version)
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    condition = f"s.`{newer_than}` > t.`{newer_than}`" if newer_than else None
    with _commit_tagged(spark, run_id), temporary_conf(spark, STABLE_MERGE_SOURCE if stable_source else {}):
        (
            DeltaTable.forPath(spark, ref.uri)
            .alias("t")
            .merge(source.alias("s"), on)
            .whenMatchedUpdateAll(condition=condition)
            .whenNotMatchedInsertAll()
            .execute()
        )
    return current_version(spark, ref)


def update(
    spark: SparkSession, ref: TableRef, condition: str, assignments: dict[str, str], run_id: str | None = None
) -> TableVersion:
    """Set columns (``{"status": "'cancelled'"}``, SQL expressions) on rows matching ``condition``."""
    if ref.format == "ncf":
        return _ncf_result(
            spark, ref, ncf_ops.update(spark, ref.uri, condition, assignments, **_run_info(run_id))
        )
    with _commit_tagged(spark, run_id):
        DeltaTable.forPath(spark, ref.uri).update(
            F.expr(condition), {k: F.expr(v) for k, v in assignments.items()}
        )
    return current_version(spark, ref)


def delete(spark: SparkSession, ref: TableRef, condition: str, run_id: str | None = None) -> TableVersion:
    """Delete the rows matching ``condition``."""
    if ref.format == "ncf":
        return _ncf_result(spark, ref, ncf_ops.delete(spark, ref.uri, condition, **_run_info(run_id)))
    with _commit_tagged(spark, run_id):
        DeltaTable.forPath(spark, ref.uri).delete(F.expr(condition))
    return current_version(spark, ref)


def erase_keys(
    spark: SparkSession, ref: TableRef, key: str, values: Iterable[Any], run_id: str | None = None
) -> TableVersion:
    """Delete every row whose ``key`` is in ``values`` (e.g. a GDPR erasure request).

    The old files stay readable by time travel until VACUUM removes them.
    """
    keys_df = spark.createDataFrame([(v,) for v in values], schema=f"`{key}` {_column_type(spark, ref, key)}")
    if ref.format == "ncf":
        version = ncf_ops.merge(spark, ref.uri, keys_df, [key], "delete", None, **_run_info(run_id))
        return _ncf_result(spark, ref, version)
    with _commit_tagged(spark, run_id):
        (
            DeltaTable.forPath(spark, ref.uri)
            .alias("t")
            .merge(keys_df.alias("s"), f"t.`{key}` = s.`{key}`")
            .whenMatchedDelete()
            .execute()
        )
    return current_version(spark, ref)


def _column_type(spark: SparkSession, ref: TableRef, column: str) -> str:
    fields = {
        f.name: f.dataType.simpleString() for f in spark.read.format(ref.format).load(ref.uri).schema.fields
    }
    if column not in fields:
        raise PipelineError(f"table {ref.name} has no column '{column}' (columns: {', '.join(fields)})")
    return fields[column]
