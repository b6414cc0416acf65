"""The ``ncf`` Spark data source: batch reads and writes, time travel, pushdown, partitioning."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.datasource import EqualTo, GreaterThan, In, IsNull, Not, StringStartsWith
from pyspark.sql.utils import AnalysisException

from ncf_datasource.spark.options import NCFOptions
from ncf_datasource.spark.reader import NCFPushdownReader
from ncf_datasource.table import NCFTable


@pytest.fixture
def events(spark):
    return spark.range(0, 3000).select(
        F.col("id"),
        (F.col("id") % 7).cast("int").alias("k"),
        F.when(F.col("id") % 10 == 0, None).otherwise(F.concat(F.lit("n"), F.col("id"))).alias("s"),
        (F.lit(dt.datetime(2026, 1, 1)) + F.make_interval(secs=F.col("id"))).alias("ts"),
        (F.col("id") / 3).alias("d"),
        F.col("id").cast("decimal(12,2)").alias("amount"),
        F.date_add(F.lit(dt.date(2026, 1, 1)), (F.col("id") % 3).cast("int")).alias("day"),
    )


def read(spark, path, **options):
    reader = spark.read.format("ncf")
    for k, v in options.items():
        reader = reader.option(k, v)
    return reader.load(str(path))


def test_round_trip_append_overwrite_and_time_travel(spark, events, tmp_path):
    path = tmp_path / "events"
    events.write.format("ncf").mode("append").save(str(path))
    assert_df_equality(read(spark, path), events, ignore_row_order=True, ignore_nullable=True)
    events.limit(10).write.format("ncf").mode("append").save(str(path))
    assert read(spark, path).count() == 3010
    stamp_v0 = NCFTable(path).history()[-1]["timestamp"]
    spark.range(5).withColumnRenamed("id", "other").write.format("ncf").mode("overwrite").option(
        "overwriteSchema", "true"
    ).save(str(path))
    assert read(spark, path).columns == ["other"] and read(spark, path).count() == 5
    assert read(spark, path, versionAsOf=1).count() == 3010
    as_of = dt.datetime.fromtimestamp(stamp_v0 / 1000, dt.UTC).isoformat()
    assert_df_equality(
        read(spark, path, timestampAsOf=as_of), events, ignore_row_order=True, ignore_nullable=True
    )
    assert [h["operation"] for h in NCFTable(path).history()] == ["OVERWRITE", "APPEND", "APPEND"]


FILTERS = [
    "id = 17",
    "id <= 3 OR id >= 2998",
    "k IN (1, 3) AND id < 30",
    "s IS NULL AND id < 100",
    "s LIKE 'n29%'",
    "NOT (k = 2) AND id < 20",
    "amount >= 2999.00",
    "day = DATE'2026-01-02' AND id < 20",
    "ts < TIMESTAMP'2026-01-01 00:00:05'",
    "d > 999.5 AND d < 1000",
    "s <=> NULL AND id < 50",
]


def test_filters_give_the_same_rows_as_spark(spark, events, tmp_path):
    path = tmp_path / "events"
    events.repartition(4).write.format("ncf").mode("append").option("sortKey", "id").save(str(path))
    expected = events.cache()
    for condition in FILTERS:
        assert_df_equality(
            read(spark, path).where(condition),
            expected.where(condition),
            ignore_row_order=True,
            ignore_nullable=True,
        )
    expected.unpersist()


def test_pushed_filters_skip_files_and_float_filters_go_back_to_spark(spark, tmp_path):
    path = tmp_path / "t"
    for start in (0, 100, 200):
        spark.range(start, start + 100, numPartitions=1).selectExpr(
            "id", "cast(id as double) as d", "concat('x', id) as s"
        ).write.format("ncf").mode("append").save(str(path))
    snapshot = NCFTable(path).snapshot()
    schema = read(spark, path).schema
    reader = NCFPushdownReader(snapshot, schema, NCFOptions())
    rejected = list(
        reader.pushFilters(
            [GreaterThan(("id",), 150), GreaterThan(("d",), 1.0), StringStartsWith(("s",), "x1")]
        )
    )
    assert rejected == [GreaterThan(("d",), 1.0)]
    parts = [p for partition in reader.partitions() for p in partition.parts]
    assert len(parts) == 1 and parts[0].path.endswith(
        next(f.path for f in snapshot.files.values() if f.stats["id"]["min"] == 100)
    )
    nothing = NCFPushdownReader(snapshot, schema, NCFOptions())
    assert list(nothing.pushFilters([In(("id",), (999,)), Not(IsNull(("s",))), EqualTo(("s",), "x5")])) == []
    assert [p.parts for p in nothing.partitions()] == [[]]


def test_small_files_share_tasks_and_big_files_split_by_row_groups(spark, tmp_path):
    path = tmp_path / "t"
    table = NCFTable.create(path, __import__("pyarrow").schema([("id", __import__("pyarrow").int64())]))
    import pyarrow as pa

    for i in range(40):
        table.append(pa.table({"id": [i]}))
    assert read(spark, path).rdd.getNumPartitions() == 1
    spark.range(10_000).write.format("ncf").mode("append").option("rowGroupSize", 1000).save(str(path))
    df = read(spark, path, maxRowsPerPartition=2500)
    assert df.rdd.getNumPartitions() >= 4
    assert df.count() == 10_040 and df.agg(F.sum("id")).first()[0] == sum(range(40)) + sum(range(10_000))


def test_columns_option_and_user_schema_limit_what_is_read(spark, events, tmp_path):
    path = tmp_path / "t"
    events.write.format("ncf").mode("append").save(str(path))
    narrow = read(spark, path, columns="id, s")
    assert narrow.columns == ["id", "s"]
    assert_df_equality(narrow, events.select("id", "s"), ignore_row_order=True, ignore_nullable=True)
    given = spark.read.format("ncf").schema("k int, id long").load(str(path))
    assert_df_equality(given, events.select("k", "id"), ignore_row_order=True, ignore_nullable=True)
    with pytest.raises(Exception, match="unknown columns"):
        read(spark, path, columns="id,nope").collect()


def test_schema_evolution_and_incompatible_types(spark, tmp_path):
    path = tmp_path / "t"
    spark.range(3).write.format("ncf").mode("append").save(str(path))
    wider = spark.range(3, 5).withColumn("label", F.lit("new"))
    with pytest.raises(Exception, match="mergeSchema"):
        wider.write.format("ncf").mode("append").save(str(path))
    wider.write.format("ncf").mode("append").option("mergeSchema", "true").save(str(path))
    got = read(spark, path).orderBy("id").collect()
    assert [r["label"] for r in got] == [None, None, None, "new", "new"]
    with pytest.raises(Exception, match="column 'id' is int64 in the table but string"):
        spark.range(1).selectExpr("'x' as id").write.format("ncf").mode("append").save(str(path))
    assert NCFTable(path).version == 1


def test_a_bad_option_value_is_an_error_naming_the_option(spark, tmp_path):
    path = str(tmp_path / "t")
    with pytest.raises(Exception, match="maxRowsPerFile must be a positive integer, got 'many'"):
        spark.range(3).write.format("ncf").mode("append").option("maxRowsPerFile", "many").save(path)
    spark.range(3).write.format("ncf").mode("append").save(path)
    with pytest.raises(Exception, match="batchSize must be a positive integer, got 'big'"):
        spark.read.format("ncf").option("batchSize", "big").load(path).collect()
    with pytest.raises(Exception, match="filterPushdown must be true or false, got 'maybe'"):
        spark.read.format("ncf").option("filterPushdown", "maybe").load(path).collect()
    assert NCFTable(path).version == 0


def test_reading_something_that_is_not_a_table_is_a_clear_error(spark, tmp_path):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "a.csv").write_text("x\n1\n")
    with pytest.raises(Exception, match="not an NCF table"):
        read(spark, tmp_path / "csv").collect()
    with pytest.raises(Exception, match="not an NCF table and not empty"):
        spark.range(1).write.format("ncf").mode("append").save(str(tmp_path / "csv"))
    with pytest.raises(AnalysisException, match="ErrorIfExists"):
        spark.range(1).write.format("ncf").save(str(tmp_path / "new"))


def test_a_failed_job_commits_nothing_and_leaves_no_files(spark, tmp_path):
    path = tmp_path / "t"
    spark.range(10).write.format("ncf").mode("append").save(str(path))
    before = set(os.listdir(path))

    @F.udf("long")
    def explode_on_7(x):
        if x == 7:
            raise ValueError("boom")
        return x

    failing = spark.range(0, 20, numPartitions=4).select(explode_on_7("id").alias("id"))
    with pytest.raises(Exception, match="boom"):
        failing.write.format("ncf").mode("append").save(str(path))
    assert NCFTable(path).version == 0 and read(spark, path).count() == 10
    # Files of tasks that finished after Spark aborted the job may remain, and the hidden temporary
    # file of a task killed mid-write (vacuum removes both): never referenced.
    leftovers = set(os.listdir(path)) - before
    assert all(n.endswith(".ncf") or (n.startswith(".") and n.endswith(".tmp")) for n in leftovers)
    assert not leftovers & set(NCFTable(path).snapshot().files)
