"""run_concurrently: results in order, Spark local properties inherited, the first error raised
only after every task has ended."""

import threading

import pytest

from neurolake_spark.concurrency import run_concurrently


def test_results_come_back_in_task_order_and_threads_keep_the_callers_spark_properties(spark):
    spark.sparkContext.setLocalProperty("neurolake.test", "caller")
    try:

        def task(n):
            return lambda: (
                spark.range(n).count(),
                spark.sparkContext.getLocalProperty("neurolake.test"),
                threading.current_thread().name,
            )

        results = run_concurrently(spark, [task(n) for n in (5, 1, 3)], "counting")
    finally:
        spark.sparkContext.setLocalProperty("neurolake.test", None)
    assert [(count, prop) for count, prop, _ in results] == [(5, "caller"), (1, "caller"), (3, "caller")]
    assert all(name.startswith("counting") for _, _, name in results)


def test_a_failing_task_raises_its_own_error_after_the_others_have_finished(spark):
    finished = []
    release = threading.Event()

    def fails():
        release.wait(timeout=60)
        raise ValueError("table x: bad batch")

    def slow():
        release.set()
        finished.append(spark.range(1000).selectExpr("sum(id)").first()[0])

    with pytest.raises(ValueError, match="table x: bad batch"):
        run_concurrently(spark, [fails, slow], "failing")
    assert finished == [499500]
