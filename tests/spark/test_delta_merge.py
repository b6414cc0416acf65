"""``bulk.upsert`` on Delta tables: a stable source is MERGEd without Delta's copy of it."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality
from pyspark import StorageLevel

from neurolake_spark import bulk
from neurolake_spark.pipeline_config import TableDefinition
from neurolake_spark.tables import TableRef

T0 = dt.datetime(2026, 11, 1)
SCHEMA = "order_id long, status string, updated_at timestamp"


def delta_ref(path):
    return TableRef("silver.orders", path, TableDefinition(format="delta"))


def spark_jobs_of(spark, group, action):
    """Run ``action`` in its own Spark job group; return how many Spark jobs it ran."""
    spark.sparkContext.setJobGroup(group, group)
    try:
        action()
    finally:
        spark.sparkContext.setJobGroup("", "")
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def test_stable_source_merges_the_same_rows_with_fewer_jobs_and_leaves_no_settings(spark, tmp_path):
    base = spark.createDataFrame([(i, "new", T0) for i in range(50)], SCHEMA)
    updates = spark.createDataFrame(
        [(i, "paid", T0 + dt.timedelta(hours=1)) for i in range(40, 60)]
        + [(3, "stale", T0 - dt.timedelta(hours=1))],
        SCHEMA,
    ).persist(StorageLevel.MEMORY_AND_DISK_DESER)
    updates.count()
    copied, stable = delta_ref(tmp_path / "copied"), delta_ref(tmp_path / "stable")
    for ref in (copied, stable):
        bulk.insert(spark, ref, base)

    jobs_copied = spark_jobs_of(
        spark,
        "merge-copied",
        lambda: bulk.upsert(spark, copied, updates, ["order_id"], newer_than="updated_at", run_id="r1"),
    )
    jobs_stable = spark_jobs_of(
        spark,
        "merge-stable",
        lambda: bulk.upsert(
            spark, stable, updates, ["order_id"], newer_than="updated_at", run_id="r1", stable_source=True
        ),
    )
    updates.unpersist()

    read = lambda ref: spark.read.format("delta").load(ref.uri)  # noqa: E731
    assert_df_equality(read(stable), read(copied), ignore_row_order=True)
    assert read(stable).where("status = 'paid'").count() == 20
    assert read(stable).where("order_id = 3").first().status == "new"
    assert jobs_stable < jobs_copied  # the cached source was not copied to disk first
    for key in bulk.STABLE_MERGE_SOURCE:  # set for the stable MERGE only
        assert spark.conf.get(key, None) is None
    assert spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) is None
