"""Row-level bulk operations on NCF tables, through ``neurolake_spark.bulk`` and directly."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from ncf_datasource.spark import operations as ops
from ncf_datasource.table import NCFTable, NCFTableError
from neurolake_spark import bulk
from neurolake_spark.pipeline_config import TableDefinition
from neurolake_spark.tables import TableRef

T0 = dt.datetime(2026, 11, 1)


def orders(spark, rows, ts=T0):
    return spark.createDataFrame(
        [(i, f"c{i % 5}", status, ts + dt.timedelta(hours=h)) for i, status, h in rows],
        "order_id long, customer string, status string, updated_at timestamp",
    )


def ref_for(path, fmt):
    return TableRef(f"silver.orders_{fmt}", path, TableDefinition(format=fmt))


def apply_pipeline(spark, ref):
    """The same sequence of bulk calls a job would make, whatever the table's format."""
    assert not bulk.exists(spark, ref)
    bulk.insert(spark, ref, orders(spark, [(i, "new", 0) for i in range(20)]), run_id="r1")
    bulk.upsert(
        spark,
        ref,
        orders(spark, [(1, "paid", 1), (2, "stale", -1), (50, "new", 0)]),
        keys=["order_id"],
        newer_than="updated_at",
    )
    bulk.update(spark, ref, F.col("order_id").isin(3, 4), {"status": F.lit("cancelled")})
    bulk.delete(spark, ref, F.col("order_id").between(18, 19))
    bulk.erase_keys(spark, ref, "order_id", [5, 6])
    bulk.overwrite_where(spark, ref, orders(spark, [(7, "replaced", 2)]), "order_id = 7", run_id="r2")
    return spark.read.format(ref.format).load(ref.uri)


def test_bulk_gives_the_same_table_on_ncf_as_on_delta(spark, tmp_path):
    ncf = apply_pipeline(spark, ref_for(tmp_path / "ncf", "ncf"))
    delta = apply_pipeline(spark, ref_for(tmp_path / "delta", "delta"))
    assert_df_equality(ncf, delta, ignore_row_order=True, ignore_nullable=True)
    statuses = {r["order_id"]: r["status"] for r in ncf.collect()}
    assert statuses[1] == "paid" and statuses[2] == "new" and statuses[50] == "new"
    assert statuses[3] == statuses[4] == "cancelled" and statuses[7] == "replaced"
    assert not {5, 6, 18, 19} & set(statuses)
    table = NCFTable(tmp_path / "ncf")
    operations = [h["operation"] for h in table.history()]
    assert operations == ["REPLACE WHERE", "MERGE", "DELETE", "UPDATE", "MERGE", "APPEND"]
    assert table.history()[0]["parameters"]["neurolake_run_id"] == "r2"
    version = bulk.current_version(spark, ref_for(tmp_path / "ncf", "ncf"))
    assert version.version == 5 and version.operation == "REPLACE WHERE" and version.rows_written == 1


def test_no_match_commits_nothing(spark, tmp_path):
    ref = ref_for(tmp_path / "t", "ncf")
    bulk.insert(spark, ref, orders(spark, [(1, "new", 0)]))
    result = bulk.delete(spark, ref, F.col("order_id") == 999)
    assert result.operation == "NONE" and result.version == 0 == NCFTable(ref.path).version


def test_operations_rewrite_only_files_that_can_match(spark, tmp_path):
    path = str(tmp_path / "t")
    for start in (0, 100, 200, 300):
        spark.range(start, start + 100, numPartitions=1).selectExpr("id", "'x' as s").write.format(
            "ncf"
        ).mode("append").option("sortKey", "id").save(path)
    version = ops.delete(spark, path, F.col("id").between(150, 160), "id BETWEEN 150 AND 160")
    commit = NCFTable(path).log.read(version)
    assert len(commit["remove"]) == 1 and commit["metrics"]["num_affected_rows"] == 11
    assert commit["parameters"]["predicate"] == "id BETWEEN 150 AND 160"
    condition = (F.col("s") == "x") & (F.col("id") == 305)
    version = ops.update(spark, path, condition, {"s": F.concat("s", F.lit("!"))}, "s = 'x' AND id = 305")
    commit = NCFTable(path).log.read(version)
    assert len(commit["remove"]) == 1 and commit["parameters"]["set"] == ["s"]
    source = spark.createDataFrame([(5, "merged"), (1000, "inserted")], "id long, s string")
    version = ops.merge(spark, path, source, ["id"], when_matched="update", when_not_matched="insert")
    assert len(NCFTable(path).log.read(version)["remove"]) == 1
    got = spark.read.format("ncf").load(path)
    assert got.count() == 400 - 11 + 1
    assert {r["id"]: r["s"] for r in got.where("s != 'x'").collect()} == {
        305: "x!",
        5: "merged",
        1000: "inserted",
    }


def test_merge_options_and_bad_sources(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.createDataFrame([(1, "a"), (2, "b"), (3, "c")], "id long, s string").write.format("ncf").mode(
        "append"
    ).save(path)
    ops.merge(
        spark,
        path,
        spark.createDataFrame([(2, "x"), (9, "y")], "id long, s string"),
        ["id"],
        when_matched="delete",
        when_not_matched=None,
    )
    assert sorted(r["id"] for r in spark.read.format("ncf").load(path).collect()) == [1, 3]
    with pytest.raises(NCFTableError, match="several rows for key"):
        ops.merge(spark, path, spark.createDataFrame([(1, "x"), (1, "y")], "id long, s string"), ["id"])
    with pytest.raises(NCFTableError, match="unknown"):
        ops.merge(spark, path, spark.createDataFrame([(1, 2)], "id long, other long"), ["id"])
    assert NCFTable(path).version == 1
