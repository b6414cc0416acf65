"""``Lakehouse``: the notebook and job entry point to one environment.

Example (a notebook)::

    from neurolake_spark import Lakehouse
    lh = Lakehouse.open("conf/local.yaml")
    lh.table("silver.orders").groupBy("status").count().show()
    lh.table("gold.daily_revenue", version=0)          # time travel
    spark = lh.spark                                    # Delta and ``ncf`` ready
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
    """Settings, the SparkSession and the table names of one environment."""

    def __init__(self, settings: Settings, spark: SparkSession | None = None):
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
