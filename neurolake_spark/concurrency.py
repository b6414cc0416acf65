"""Running a step's independent Spark work side by side, in threads of the driver.

Example::

    counts = run_concurrently(spark, [partial(land, name) for name in sources], "ingest")

Small batches spend most of their time in the driver between Spark jobs; on a few cores,
submitting the jobs of several tables at once keeps the executors busy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pyspark import inheritable_thread_target
from pyspark.sql import SparkSession

T = TypeVar("T")


def run_concurrently(spark: SparkSession, tasks: Sequence[Callable[[], T]], name: str) -> list[T]:
    """Run ``tasks`` in one thread each (named ``name``); return their results in order.

    The threads inherit the caller's Spark local properties and tags; the first error is
    raised once every task has ended.
    """
    if len(tasks) <= 1:
        return [task() for task in tasks]
    inherit = inheritable_thread_target(spark)
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix=name) as pool:
        futures = [pool.submit(inherit(task)) for task in tasks]
        return [future.result() for future in futures]
