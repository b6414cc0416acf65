"""``Lakehouse``: the notebook and job entry point to one environment.

Example (a notebook; ``conf/local.yaml`` keeps the warehouse beside ``conf/``)::

    >>> from pyspark.sql import functions as F
    >>> from neurolake_spark import Lakehouse, bulk
    >>> lh = Lakehouse.open("conf/local.yaml")
    >>> spark = lh.spark                                # Delta and ``ncf`` ready
    >>> rows = [(1, "paid"), (2, "paid"), (3, "shipped")]
    >>> orders = spark.createDataFrame(rows, "order_id BIGINT, status STRING")
    >>> bulk.insert(spark, lh.resolve("silver.orders"), orders).version
    0
    >>> bulk.delete(spark, lh.resolve("silver.orders"), F.col("status") == "shipped").version
    1
    >>> lh.table("silver.orders").groupBy("status").count().show()
    +------+-----+
    |status|count|
    +------+-----+
    |  paid|    2|
    +------+-----+
    <BLANKLINE>
    >>> lh.table("silver.orders", version=0).count()    # time travel
    3
"""

from __future__ import annotations

import os
from functools import cached_property

from pyspark.sql import DataFrame, SparkSession

from neurolake_spark.config import Settings, load_settings
from neurolake_spark.errors import PipelineError
from neurolake_spark.runs import JobRun
from neurolake_spark.tables import TableRef, TableResolver


class Lakehouse:
    """Settings, the SparkSession and the table names of one environment.

    Creating one registers the run listeners (metrics, lineage) for the runs of this process
    (:func:`~neurolake_spark.session.register_run_listeners`)."""

    def __init__(self, settings: Settings, spark: SparkSession | None = None):
        # lazy: Delta, the ncf source and OpenLineage stay out of CLI start-up
        from neurolake_spark.session import register_run_listeners

        register_run_listeners()
        self.settings = settings
        if spark is not None:
            self.__dict__["spark"] = spark

    @classmethod
    def open(
        cls,
        conf_file: str | os.PathLike | None = None,
        overrides: list[str] | dict | None = None,
        spark: SparkSession | None = None,
    ) -> Lakehouse:
        """Load ``conf_file`` (default ``$NEUROLAKE_CONF`` or ``conf/local.yaml``) with overrides."""
        return cls(load_settings(conf_file, overrides), spark=spark)

    @cached_property
    def spark(self) -> SparkSession:
        """The SparkSession, built from the settings on first use."""
        # lazy: Delta, the ncf source and OpenLineage stay out of CLI start-up
        from neurolake_spark.session import build_spark

        return build_spark(self.settings)

    @cached_property
    def tables(self) -> TableResolver:
        return TableResolver(self.settings.warehouse, self.settings.pipeline_definition())

    def resolve(self, name: str) -> TableRef:
        """The storage path and format of a logical table name."""
        return self.tables.resolve(name)

    def table(self, name: str, version: int | None = None, timestamp: str | None = None) -> DataFrame:
        """Read a table (optionally as of a version or a timestamp)."""
        ref = self.resolve(name)
        # lazy: Delta, the ncf source and OpenLineage stay out of CLI start-up
        from neurolake_spark import bulk

        if not bulk.exists(self.spark, ref):
            raise PipelineError(
                f"table {name} does not exist yet (no data at {ref.path}); run the pipeline first"
            )
        reader = self.spark.read.format(ref.format)
        if version is not None:
            reader = reader.option("versionAsOf", int(version))
        if timestamp is not None:
            reader = reader.option("timestampAsOf", timestamp)
        return reader.load(ref.uri)

    def run(self, job_name: str, run_date: str | None = None, parent: JobRun | None = None) -> JobRun:
        """A :class:`JobRun` for a step of this environment (use it as a context manager)."""
        return JobRun(job_name, self.settings, parent=parent, run_date=run_date)
