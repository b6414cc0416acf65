"""Row-level operations on NCF tables with Spark: delete, update and merge, each one commit.

Conditions and new values of delete and update are pyspark ``Column`` objects, never SQL
text; ``predicate`` is how the commit describes the condition (the caller's own text, e.g.
``conditions.to_text`` of a parsed condition). Each operation finds the files that hold
matching rows with one scan of the table through the ``ncf`` source (so Spark's pushed
filters prune files by statistics and the learned index), rewrites only those files (copy
on write) with Spark, and commits "remove those files, add the rewritten ones" atomically.
A conflicting concurrent commit makes the operation start again from the new version.

Example::

    from pyspark.sql import functions as F
    from ncf_datasource.spark import operations as ops
    ops.delete(spark, "/lake/orders", F.col("status") == "test", "status = 'test'")
    ops.update(spark, "/lake/orders", F.col("order_id") == 42, {"status": F.lit("void")}, "order_id = 42")
    ops.merge(spark, "/lake/orders", updates_df, keys=["order_id"],
              when_matched="update", when_not_matched="insert")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ..table import DataFile, NCFTable, NCFTableError, SchemaMismatchError, Snapshot, with_retries
from ..table.retries import DEFAULT_RETRIES
from .options import DEFAULT_ROWS_PER_FILE
from .writer import write_task_files

FILE_COLUMN = "_ncf_file"
IN_LIST_LIMIT = 10_000


def scan(
    spark: SparkSession,
    snapshot: Snapshot,
    files: list[str] | None = None,
    columns: list[str] | None = None,
    with_file: bool = False,
) -> DataFrame:
    """A DataFrame over ``snapshot`` (optionally only some data files and columns)."""
    reader = spark.read.format("ncf").option("versionAsOf", snapshot.version)
    if files is not None:
        reader = reader.option("files", ",".join(files))
    if columns is not None:
        reader = reader.option("columns", ",".join(columns or snapshot.schema.names[:1]))
    if with_file:
        reader = reader.option("fileColumn", FILE_COLUMN)
    return reader.load(str(snapshot.table_path))


def referenced_columns(df: DataFrame, condition: Column) -> list[str]:
    """The columns of ``df`` that ``condition`` reads (all columns if Spark cannot tell)."""
    try:
        refs = df.where(condition)._jdf.queryExecution().analyzed().condition().references().toSeq()
        names = {refs.apply(i).name() for i in range(refs.size())}
    except Exception:
        return list(df.columns)
    return [c for c in df.columns if c in names]


def write_frame(df: DataFrame, snapshot: Snapshot, sort_key: str | None = None) -> list[DataFile]:
    """Write ``df`` (the table's columns) as new, uncommitted data files; their ``add`` actions."""
    table_path, schema = str(snapshot.table_path), snapshot.schema
    sort_key = sort_key or snapshot.sort_key

    def write(batches):
        files = write_task_files(Path(table_path), batches, schema, sort_key, DEFAULT_ROWS_PER_FILE)
        yield pa.RecordBatch.from_pydict({"file": [json.dumps(f.to_json()) for f in files]})

    rows = df.select(*schema.names).mapInArrow(write, "file string").collect()
    return [DataFile.from_json(json.loads(r["file"])) for r in rows]


def _matching_files(spark: SparkSession, snapshot: Snapshot, condition: Column) -> dict[str, int]:
    """Data files holding rows where ``condition`` is true, with how many such rows."""
    columns = referenced_columns(scan(spark, snapshot), condition)
    rows = (
        scan(spark, snapshot, columns=columns, with_file=True)
        .where(condition)
        .groupBy(FILE_COLUMN)
        .count()
        .collect()
    )
    return {r[FILE_COLUMN]: int(r["count"]) for r in rows}


def _commit(
    table: NCFTable,
    snapshot: Snapshot,
    operation: str,
    parameters: dict[str, Any],
    removed: list[str],
    frames: list[DataFrame],
    affected: int | None = None,
    read_whole_table: bool = False,
) -> int:
    """Commit "remove ``removed``, add the files written from ``frames``"; the first frame's
    rows are reported as ``num_output_rows``."""
    tx = table.begin(operation, snapshot, parameters)
    tx.read_whole_table = read_whole_table
    for path in removed:
        tx.remove(snapshot.files[path])
    try:
        for i, frame in enumerate(frames):
            written = write_frame(frame, snapshot)
            if i == 0:
                tx.metrics["num_output_rows"] = sum(f.rows for f in written)
            for data_file in written:
                tx.add(data_file)
    except BaseException:
        tx.abort()
        raise
    if affected is not None:
        tx.metrics["num_affected_rows"] = affected
    return tx.commit()


def delete(
    spark: SparkSession,
    path: str,
    condition: Column,
    predicate: str,
    retries: int = DEFAULT_RETRIES,
    **commit_info: Any,
) -> int | None:
    """Delete the rows where ``condition`` is true; the committed version, or None if none matched.

    ``predicate`` describes the condition in the commit."""
    table = NCFTable.open(path)

    def attempt() -> int | None:
        snapshot = table.snapshot()
        hits = _matching_files(spark, snapshot, condition)
        if not hits:
            return None
        files = sorted(hits)
        kept = scan(spark, snapshot, files).where(~F.coalesce(condition, F.lit(False)))
        return _commit(
            table,
            snapshot,
            "DELETE",
            {"predicate": predicate, **commit_info},
            files,
            [kept],
            sum(hits.values()),
        )

    return with_retries(attempt, retries)


def update(
    spark: SparkSession,
    path: str,
    condition: Column,
    assignments: dict[str, Column],
    predicate: str,
    retries: int = DEFAULT_RETRIES,
    **commit_info: Any,
) -> int | None:
    """Set columns (``{"status": F.lit("void")}``) on rows where ``condition`` is true.

    ``predicate`` describes the condition in the commit, which also lists the columns set."""
    table = NCFTable.open(path)
    if not assignments:
        raise NCFTableError(f"{path}: update needs at least one column to set")

    def attempt() -> int | None:
        snapshot = table.snapshot()
        unknown = sorted(set(assignments) - set(snapshot.schema.names))
        if unknown:
            raise SchemaMismatchError(f"{path}: update sets unknown columns {unknown}")
        cond = F.coalesce(condition, F.lit(False))
        hits = _matching_files(spark, snapshot, cond)
        if not hits:
            return None
        files = sorted(hits)
        data = scan(spark, snapshot, files)
        types = {f.name: f.dataType for f in data.schema.fields}
        new = data.select(
            *[
                F.when(cond, assignments[c].cast(types[c])).otherwise(F.col(c)).alias(c)
                if c in assignments
                else F.col(c)
                for c in data.columns
            ]
        )
        return _commit(
            table,
            snapshot,
            "UPDATE",
            {"predicate": predicate, "set": sorted(assignments), **commit_info},
            files,
            [new],
            sum(hits.values()),
        )

    return with_retries(attempt, retries)


def merge(
    spark: SparkSession,
    path: str,
    source: DataFrame,
    keys: list[str],
    when_matched: str | None = "update",
    when_not_matched: str | None = "insert",
    newer_than: str | None = None,
    retries: int = DEFAULT_RETRIES,
    **commit_info: Any,
) -> int | None:
    """MERGE ``source`` into the table by ``keys`` (null-safe equality).

    ``when_matched``: ``"update"`` (replace the row; with ``newer_than``, only when the source
    row's column is greater), ``"delete"`` or None; ``when_not_matched``: ``"insert"`` or None.
    Only files holding a matching key are rewritten. A source with several rows for one key
    is an error. Returns the committed version (None when nothing changed). Keyword
    ``commit_info`` (e.g. ``neurolake_run_id=...``) is recorded in the commit's parameters.
    """
    table = NCFTable.open(path)
    if not keys:
        raise NCFTableError(f"{path}: merge needs at least one key column")
    if when_matched not in ("update", "delete", None) or when_not_matched not in ("insert", None):
        raise NCFTableError(
            f"{path}: merge takes when_matched update|delete|None and when_not_matched insert|None"
        )

    def attempt() -> int | None:
        snapshot = table.snapshot()
        names = snapshot.schema.names
        missing = [
            k
            for k in keys + ([newer_than] if newer_than else [])
            if k not in names or k not in source.columns
        ]
        extra = [c for c in source.columns if c not in names]
        if missing or extra:
            raise SchemaMismatchError(
                f"{path}: merge source does not fit the table (missing {missing}, unknown {extra})"
            )
        types = {f.name: f.dataType for f in scan(spark, snapshot).schema.fields}
        src = source.select(
            *[(F.col(c) if c in source.columns else F.lit(None)).cast(types[c]).alias(c) for c in names]
        )
        duplicated = src.groupBy(*keys).count().where("count > 1").limit(1).collect()
        if duplicated:
            raise NCFTableError(f"{path}: merge source has several rows for key {duplicated[0].asDict()}")
        src = src.withColumn("_s", F.lit(True))
        on = None
        for k in keys:
            clause = F.col(f"t.{k}").eqNullSafe(F.col(f"s.{k}"))
            on = clause if on is None else on & clause
        target = scan(spark, snapshot, columns=keys, with_file=True)
        if len(keys) == 1:
            values = [r[0] for r in src.select(keys[0]).distinct().limit(IN_LIST_LIMIT + 1).collect()]
            if len(values) <= IN_LIST_LIMIT and None not in values:
                target = target.where(F.col(keys[0]).isin(values))  # pushed down: prunes files
        files = sorted(
            r[FILE_COLUMN]
            for r in target.alias("t")
            .join(src.alias("s"), on, "left_semi")
            .select(FILE_COLUMN)
            .distinct()
            .collect()
        )
        if files:
            # Source rows without a match in the candidate files match no other file either.
            rows = (
                scan(spark, snapshot, files)
                .withColumn("_t", F.lit(True))
                .alias("t")
                .join(src.alias("s"), on, "full_outer")
            )
            in_target, in_source = F.col("t._t").isNotNull(), F.col("s._s").isNotNull()
            matched = in_target & in_source
            take_source = ~in_target
            if when_matched == "update":
                take_source = take_source | (
                    (matched & (F.col(f"s.{newer_than}") > F.col(f"t.{newer_than}")))
                    if newer_than
                    else matched
                )
            if when_matched == "delete":
                rows = rows.where(~matched)
            if when_not_matched is None:
                rows = rows.where(in_target)
            rewritten = rows.select(
                *[F.when(take_source, F.col(f"s.{c}")).otherwise(F.col(f"t.{c}")).alias(c) for c in names]
            )
        elif when_not_matched == "insert":
            rewritten = src.select(*names)
        else:
            return None
        return _commit(
            table,
            snapshot,
            "MERGE",
            {
                "keys": keys,
                "when_matched": when_matched,
                "when_not_matched": when_not_matched,
                "newer_than": newer_than,
                **commit_info,
            },
            files,
            [rewritten],
            read_whole_table=when_not_matched == "insert",
        )

    return with_retries(attempt, retries)


def replace_where(
    spark: SparkSession,
    path: str,
    df: DataFrame,
    condition: str,
    retries: int = DEFAULT_RETRIES,
    **commit_info: Any,
) -> int:
    """Atomically replace the rows where ``condition`` is true by ``df`` (creating the table).

    Re-running with the same input leaves the same rows, which makes batch loads idempotent.
    ``condition`` is Spark SQL text that the caller writes itself (a batch date and names from
    its settings, as Delta's ``replaceWhere``), never text from a user.
    """
    if not NCFTable.is_table(path):
        writer = df.write.format("ncf").mode("append")
        for key, value in commit_info.items():
            writer = writer.option(f"commitInfo.{key}", str(value))
        writer.save(str(path))
        created = NCFTable(path)
        found = created.find_commit({key: str(value) for key, value in commit_info.items()})
        return created.version if found is None else found
    table = NCFTable.open(path)

    def attempt() -> int:
        snapshot = table.snapshot()
        unknown = [c for c in df.columns if c not in snapshot.schema.names]
        if unknown:
            raise SchemaMismatchError(f"{path}: the data has columns {unknown} that the table does not have")
        cond = F.expr(condition)
        files = sorted(_matching_files(spark, snapshot, cond))
        frames = [df.select(*snapshot.schema.names)]
        if files:
            frames.append(scan(spark, snapshot, files).where(~F.coalesce(cond, F.lit(False))))
        return _commit(
            table, snapshot, "REPLACE WHERE", {"predicate": condition, **commit_info}, files, frames
        )

    return with_retries(attempt, retries)
