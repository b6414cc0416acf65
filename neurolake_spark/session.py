"""Building the SparkSession from settings: Delta, UTC, local tuning, the ``ncf`` source,
and the run listeners (:func:`register_run_listeners`).

Example::

    from neurolake_spark.config import load_settings
    from neurolake_spark.session import build_spark
    spark = build_spark(load_settings("conf/local.yaml"))

Under ``spark-submit`` the driver JVM is already running, so its jars must be passed on
the command line: ``spark-submit --jars "$(neurolake jars)" jobs/nightly.py ...``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from ncf_datasource.spark import NCFDataSource
from neurolake_spark import jars
from neurolake_spark.config import Settings
from neurolake_spark.lineage.listener import lineage_listeners
from neurolake_spark.lineage.spark_listener import listener_conf
from neurolake_spark.metrics import metrics_listeners
from neurolake_spark.run_listeners import ListenerRegistry, run_listeners

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.python.filterPushdown.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
    "spark.databricks.delta.optimizeWrite.enabled": "false",
    "spark.sql.sources.partitionOverwriteMode": "static",
}

LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.default.parallelism": "4",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}

# Runtime settings of a local session, also applied under a local spark-submit (see
# tune_local_submit). Delta's snapshot state and VACUUM's file listing default to 50 and
# 10,000 tasks, which costs minutes on a laptop; a local session needs only a few. Cached
# batches (ingest's parsed files, the quality gates' checked batches) are read back a few
# times within one step, so a local session keeps them uncompressed: filling the cache of a
# scale-10 day's five silver batches (deserialized) took 8.3 s compressed, 6.9 s not.
LOCAL_SQL_CONF = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
}


def jvm_coordinates(settings: Settings) -> list[str]:
    """Maven coordinates the session needs: Delta, extras, and the lineage listener when on."""
    coordinates = list(settings.jvm.packages) + list(settings.jvm.extra_packages)
    if settings.lineage.enabled and settings.lineage.spark_listener:
        coordinates.append(settings.lineage.spark_listener_package)
    return coordinates


def under_spark_submit() -> bool:
    """True when spark-submit started this Python process (its JVM is already running)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def session_conf(settings: Settings) -> dict[str, str]:
    """Every Spark setting the project applies, in the order later keys win.

    Under spark-submit, the master, driver memory and jars come from its command line.
    """
    conf = {
        "spark.app.name": settings.spark.app_name,
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.sql.warehouse.dir": str(settings.warehouse / "_spark_catalog"),
        **DELTA_CONF,
        **BASE_CONF,
    }
    if not under_spark_submit():
        jar_paths = jars.resolve_all(jvm_coordinates(settings), settings.jvm.jars_dir)
        conf.update(
            {
                "spark.master": settings.spark.master,
                "spark.driver.memory": settings.spark.driver_memory,
                "spark.jars": ",".join(str(p) for p in jar_paths),
            }
        )
    if settings.spark.master.startswith("local") and not under_spark_submit():
        conf.update(LOCAL_CONF)
        conf.update(LOCAL_SQL_CONF)
    if settings.lineage.enabled and settings.lineage.spark_listener:
        conf.update(listener_conf(settings))
    conf.update(settings.spark.conf)
    return conf


def tune_local_submit(spark: SparkSession) -> None:
    """Under a spark-submit with a local master, apply the local runtime settings that its
    command line (or the settings' ``spark.conf``) did not give.

    A local spark-submit of a small night takes twice as long without them (Delta's 50
    snapshot tasks on 2 cores).
    """
    if not under_spark_submit() or not spark.sparkContext.master.startswith("local"):
        return
    given = spark.sparkContext.getConf()
    for key, value in LOCAL_SQL_CONF.items():
        if not given.contains(key):
            spark.conf.set(key, value)


@contextmanager
def temporary_conf(spark: SparkSession, settings: dict[str, str | None]) -> Iterator[None]:
    """Give the session ``settings`` inside the block (a ``None`` value leaves that key alone),
    then unset them, so Spark's and Delta's defaults apply again.

    Unsetting rather than restoring the previous values keeps calls that overlap in threads
    from leaving one call's value behind for good."""
    given = {key: value for key, value in settings.items() if value is not None}
    for key, value in given.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key in given:
            spark.conf.unset(key)


def register_ncf(spark: SparkSession) -> None:
    """Register the ``ncf`` data source in ``spark``."""
    spark.dataSource.register(NCFDataSource)


def register_run_listeners(registry: ListenerRegistry = run_listeners) -> None:
    """Register the project's run listener factories: Prometheus metrics, then OpenLineage
    events (each makes listeners only when its settings turn it on).

    :func:`build_spark` and :class:`~neurolake_spark.lakehouse.Lakehouse` call it, so every
    ``JobRun`` of a process that has either gets them; calling it again changes nothing."""
    registry.register("metrics", metrics_listeners)
    registry.register("lineage", lineage_listeners)


def build_spark(settings: Settings) -> SparkSession:
    """Return the process's SparkSession configured from ``settings`` (created on first call),
    with the ``ncf`` source and the run listeners registered."""
    register_run_listeners()
    if not under_spark_submit():
        jars.check_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if settings.spark.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    for key, value in session_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.spark.log_level)
    tune_local_submit(spark)
    register_ncf(spark)
    return spark
