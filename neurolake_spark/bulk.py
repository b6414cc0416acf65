"""Row-level bulk operations behind one API: insert, upsert (MERGE), update, delete, erase.

Every call takes a resolved :class:`~neurolake_spark.tables.TableRef` and returns the
:class:`TableVersion` it committed, so a job does not care which format a table is::

    >>> from pyspark.sql import functions as F
    >>> from neurolake_spark import Lakehouse, bulk
    >>> lh = Lakehouse.open("conf/local.yaml")
    >>> spark, ref = lh.spark, lh.resolve("silver.orders")
    >>> schema = "order_id BIGINT, status STRING, updated_at INT"
    >>> bulk.insert(spark, ref, spark.createDataFrame([(1, "placed", 1), (2, "test", 1)], schema)).version
    0
    >>> updates_df = spark.createDataFrame([(1, "paid", 2), (3, "placed", 2)], schema)
    >>> bulk.upsert(spark, ref, updates_df, keys=["order_id"], newer_than="updated_at").operation
    'MERGE'
    >>> bulk.delete(spark, ref, F.col("status") == "test").version
    2
    >>> sorted(tuple(row) for row in lh.table("silver.orders").collect())
    [(1, 'paid', 2), (3, 'placed', 2)]
    >>> customers = lh.resolve("silver.customers")
    >>> _ = bulk.insert(spark, customers, spark.createDataFrame([(42,), (43,), (44,)], "customer_id BIGINT"))
    >>> bulk.erase_keys(spark, customers, "customer_id", [42, 43]).operation
    'MERGE'
    >>> [row.customer_id for row in lh.table("silver.customers").collect()]
    [44]

Each operation is one atomic commit, tagged with ``run_id`` when one is given. Conditions
and new values of ``update`` and ``delete`` are pyspark ``Column`` objects: text from a user
is parsed and checked by :mod:`neurolake_spark.conditions` first (``to_column``), never run
as SQL. The work is done by the table's format
(:mod:`~neurolake_spark.table_formats`): Delta, or NCF through
:mod:`ncf_datasource.spark.operations` (copy-on-write of the files that can hold matching
rows, pruned by statistics and the learned index).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession

from neurolake_spark.errors import PipelineError
from neurolake_spark.table_formats import STABLE_MERGE_SOURCE, CommitTag, TableVersion, table_format
from neurolake_spark.tables import TableRef
from neurolake_spark.testing_hooks import hold_commit

__all__ = [
    "ROWS_PER_FILE",
    "STABLE_MERGE_SOURCE",
    "TableVersion",
    "current_version",
    "delete",
    "erase_keys",
    "exists",
    "in_few_files",
    "insert",
    "overwrite",
    "overwrite_where",
    "update",
    "upsert",
]

ROWS_PER_FILE = 1_000_000


def exists(spark: SparkSession, ref: TableRef) -> bool:
    """Whether the table has at least one committed version."""
    return table_format(ref).exists(spark, ref)


def current_version(spark: SparkSession, ref: TableRef) -> TableVersion:
    """The latest committed version of ``ref`` and its commit's operation metrics.

    Read from the newest commit of the table's log, which costs a file read instead of a
    Spark job."""
    return table_format(ref).current_version(spark, ref)


def in_few_files(df: DataFrame, rows: int) -> DataFrame:
    """``df`` (known to hold ``rows`` rows) spread over as few partitions as hold
    :data:`ROWS_PER_FILE` each, so that writing a small side output (such as a quarantine)
    leaves one file per partition written, not one per task, and no compaction to do.

    The rows are shuffled, so the work that computes them stays parallel."""
    if rows <= 0:
        return df
    return df.repartition(-(-rows // ROWS_PER_FILE))


def overwrite_where(
    spark: SparkSession, ref: TableRef, df: DataFrame, condition: str, run_id: str | None = None
) -> TableVersion:
    """Atomically replace the rows matching ``condition`` with ``df`` (creating the table).

    Re-running with the same input leaves the same table, which makes batch loads idempotent.
    ``condition`` is Spark SQL text the caller writes itself (Delta's ``replaceWhere``: a batch
    date, names from the settings), never text from a user.
    """
    df = hold_commit(df, f"commit:{ref.name}")
    return table_format(ref).overwrite_where(spark, ref, df, condition, CommitTag(run_id))


def overwrite(spark: SparkSession, ref: TableRef, df: DataFrame, run_id: str | None = None) -> TableVersion:
    """Atomically replace the whole table with ``df``."""
    df = hold_commit(df, f"commit:{ref.name}")
    return table_format(ref).overwrite(spark, ref, df, CommitTag(run_id))


def insert(spark: SparkSession, ref: TableRef, df: DataFrame, run_id: str | None = None) -> TableVersion:
    """Append ``df`` to the table (creating it)."""
    return table_format(ref).insert(spark, ref, df, CommitTag(run_id))


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
    version, transformed deterministically): no copy is made (:data:`STABLE_MERGE_SOURCE`).
    Those settings are the session's while the MERGE runs, so no other MERGE should run in the
    session meanwhile. NCF reads the source in one pass and ignores ``stable_source``.
    """
    if not keys:
        raise PipelineError(f"upsert into {ref.name}: at least one key column is needed")
    source = hold_commit(source, f"commit:{ref.name}")
    if not exists(spark, ref):
        return insert(spark, ref, source, run_id)
    return table_format(ref).upsert(spark, ref, source, keys, newer_than, CommitTag(run_id), stable_source)


def update(
    spark: SparkSession,
    ref: TableRef,
    condition: Column,
    assignments: dict[str, Column],
    run_id: str | None = None,
) -> TableVersion:
    """Set columns (``{"status": F.lit("cancelled")}``) on rows matching ``condition``."""
    return table_format(ref).update(spark, ref, condition, assignments, CommitTag(run_id))


def delete(spark: SparkSession, ref: TableRef, condition: Column, run_id: str | None = None) -> TableVersion:
    """Delete the rows matching ``condition``."""
    return table_format(ref).delete(spark, ref, condition, CommitTag(run_id))


def erase_keys(
    spark: SparkSession, ref: TableRef, key: str, values: Iterable[Any], run_id: str | None = None
) -> TableVersion:
    """Delete every row whose ``key`` is in ``values`` (e.g. a GDPR erasure request).

    The old files stay readable by time travel until VACUUM removes them.
    """
    keys = spark.createDataFrame([(v,) for v in values], schema=f"`{key}` {_column_type(spark, ref, key)}")
    return table_format(ref).erase_keys(spark, ref, key, keys, CommitTag(run_id))


def _column_type(spark: SparkSession, ref: TableRef, column: str) -> str:
    fields = {
        f.name: f.dataType.simpleString() for f in spark.read.format(ref.format).load(ref.uri).schema.fields
    }
    if column not in fields:
        raise PipelineError(f"table {ref.name} has no column '{column}' (columns: {', '.join(fields)})")
    return fields[column]
