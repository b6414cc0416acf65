"""The service's statement runner in process on the nightly warehouse: results spooled in chunks,
Arrow chunks, parameters bound by Spark, PII masked without the grant, tenants, and a cancel
that really stops the Spark jobs (Spark's status tracker)."""

from __future__ import annotations

import time

import pyarrow as pa
import pytest
from delta.tables import DeltaTable
from pyspark.sql.pandas.types import to_arrow_schema

from neurolake_spark.service.engine import ServiceEngine
from neurolake_spark.service.statements import (
    CANCELED,
    FAILED,
    PENDING,
    SUCCEEDED,
    Busy,
    Caller,
    StatementRunner,
    rows_to_batch,
)
from neurolake_spark.service.table_access import TableAccess
from neurolake_spark.service.tenants import TenantScope

EVERYTHING = TenantScope("default", tables=("*",))


@pytest.fixture(scope="module")
def runner(nightly_warehouse, tmp_path_factory):
    lh, _ = nightly_warehouse
    engine = ServiceEngine(lh.settings)
    runner = StatementRunner(
        engine,
        TableAccess(lh.settings),
        tmp_path_factory.mktemp("spool"),
        concurrency=2,
        queue=1,
        chunk_rows=30_000,
    )
    yield runner
    runner.close()


def caller(scope=EVERYTHING, pii=False):
    return Caller("tester", None, scope, pii)


def run(runner, text, parameters=None, who=None, row_limit=1_000_000, wait=120):
    statement = runner.submit(runner.check(text), parameters or {}, who or caller(), row_limit, 1 << 30)
    assert statement.done.wait(wait), f"{text} did not finish"
    return statement


def rows(runner, statement):
    return [r for i in range(len(statement.chunks)) for r in runner.chunk_json(statement, i)["data_array"]]


def test_a_result_of_100k_rows_comes_in_chunks_json_and_arrow(runner):
    statement = run(runner, "SELECT id, id * 2 AS twice FROM range(100000)")
    assert statement.state == SUCCEEDED, statement.error
    assert [c.row_count for c in statement.chunks] == [30_000, 30_000, 30_000, 10_000]
    assert [c.row_offset for c in statement.chunks] == [0, 30_000, 60_000, 90_000]
    second = runner.chunk_json(statement, 1)
    assert second["data_array"][0] == [30_000, 60_000] and second["next_chunk_index"] == 2
    _, path = runner.chunk(statement, 3)
    with pa.OSFile(str(path), "rb") as source:
        table = pa.ipc.open_stream(source).read_all()
    assert table.column_names == ["id", "twice"] and table.num_rows == 10_000
    assert table.column("id")[-1].as_py() == 99_999


EVERY_TYPE = """
SELECT id, CAST(id AS TINYINT) AS b, CAST(id AS SMALLINT) AS s, CAST(id AS INT) AS i,
       CAST(id / 3 AS FLOAT) AS f, IF(id = 2, CAST('NaN' AS DOUBLE), id / 7) AS d,
       CAST(id / 3 AS DECIMAL(38, 10)) AS big_decimal, IF(id = 1, NULL, concat('é', id)) AS text,
       CAST(concat('b', id) AS BINARY) AS raw, id % 2 = 0 AS flag, DATE'2026-12-05' + CAST(id AS INT) AS day,
       TIMESTAMP'2026-12-05 10:00:00+02:00' + make_interval(0, 0, 0, 0, CAST(id AS INT)) AS at,
       TIMESTAMP_NTZ'2026-12-05 10:00:00' AS local_at, array(id, NULL) AS values,
       map('k', id) AS pairs, named_struct('x', id, 'y', array(named_struct('z', 'w'))) AS nested,
       INTERVAL '3' DAY AS span, id AS id
FROM range(5)
"""


def test_every_spark_type_and_duplicate_names_spool_as_spark_collects_them(runner, spark):
    statement = run(runner, EVERY_TYPE)
    assert statement.state == SUCCEEDED, statement.error
    _, path = runner.chunk(statement, 0)
    with pa.OSFile(str(path), "rb") as source:
        spooled = pa.ipc.open_stream(source).read_all()
    frame = spark.sql(EVERY_TYPE)
    schema = to_arrow_schema(frame.schema, timezone="UTC")
    expected = pa.Table.from_batches([rows_to_batch(frame.collect(), frame.schema, schema)])
    assert spooled.column_names[0] == spooled.column_names[-1] == "id"
    nan_column = spooled.column_names.index("d")  # NaN equals nothing: compared as text below
    assert spooled.remove_column(nan_column).equals(expected.remove_column(nan_column))
    assert str(spooled.column(nan_column).to_pylist()) == str(expected.column(nan_column).to_pylist())
    assert runner.chunk_json(statement, 0)["data_array"][2][5] == "NaN"


def test_row_limit_truncates(runner):
    statement = run(runner, "SELECT id FROM range(1000)", row_limit=10)
    assert statement.state == SUCCEEDED and statement.total_rows == 10 and statement.truncated


def test_an_aggregate_on_silver_orders_matches_spark(runner, spark, nightly_warehouse):
    lh, _ = nightly_warehouse
    statement = run(runner, "SELECT status, count(*) AS n FROM silver.orders GROUP BY status ORDER BY status")
    assert statement.state == SUCCEEDED, statement.error
    expected = lh.table("silver.orders").groupBy("status").count().orderBy("status").collect()
    assert rows(runner, statement) == [[r["status"], r["count"]] for r in expected]
    assert statement.tables[0]["name"] == "silver.orders" and statement.tables[0]["version"] >= 0


def test_explain_reports_the_files_each_delta_scan_reads_after_data_skipping(
    runner, spark, nightly_warehouse
):
    lh, _ = nightly_warehouse
    files = DeltaTable.forPath(spark, lh.resolve("silver.orders").uri).detail().first()["numFiles"]
    highest = lh.table("silver.orders").agg({"order_id": "max"}).first()[0]
    everything = runner.explain(runner.check("SELECT * FROM silver.orders"), {}, caller())["scans"]
    assert everything == [
        {
            "table": "silver.orders",
            "files_total": files,
            "files_after_partition_filters": files,
            "files_read": files,
            "files_pruned": 0,
            "bytes_total": everything[0]["bytes_total"],
            "bytes_read": everything[0]["bytes_total"],
        }
    ]
    beyond = runner.check("SELECT * FROM silver.orders WHERE order_id > :highest")
    skipped = runner.explain(beyond, {"highest": highest}, caller())["scans"]
    assert [(s["files_read"], s["files_pruned"], s["bytes_read"]) for s in skipped] == [(0, files, 0)]


def test_parameters_with_quotes_are_bound_by_spark_not_pasted(runner):
    tricky = 'O\'Brien "x"; DROP TABLE silver.orders --'
    statement = run(runner, "SELECT :v AS v, :n + 1 AS n", {"v": tricky, "n": 41})
    assert statement.state == SUCCEEDED, statement.error
    assert rows(runner, statement) == [[tricky, 42]]


def test_pii_columns_are_masked_without_the_grant_and_shown_with_it(runner):
    text = "SELECT email, customer_id FROM bronze.customers WHERE email IS NOT NULL LIMIT 5"
    masked = run(runner, text)
    assert masked.state == SUCCEEDED, masked.error
    assert {r[0] for r in rows(runner, masked)} == {"[REDACTED]"}
    assert "email" in masked.tables[0]["masked_columns"]
    shown = run(runner, text, who=caller(pii=True))
    assert all("@" in r[0] for r in rows(runner, shown))


def test_a_table_outside_the_tenant_fails_like_an_unknown_one(runner):
    finance = TenantScope("finance", tables=("gold.*",))
    hidden = run(runner, "SELECT count(*) FROM silver.orders", who=caller(finance))
    unknown = run(runner, "SELECT count(*) FROM silver.nope", who=caller(finance))
    assert hidden.state == unknown.state == FAILED
    assert hidden.error["message"] == "unknown table 'silver.orders'"
    assert unknown.error["message"].startswith("unknown table 'silver.nope'")


LONG = "SELECT sum(hash(id)) FROM range(0, 100000000000, 1, 4)"


def test_cancel_stops_the_spark_jobs_of_a_long_statement(runner, spark):
    tracker = spark.sparkContext.statusTracker()
    statement = runner.submit(runner.check(LONG), {}, caller(), 10, 1 << 20)
    deadline = time.monotonic() + 120
    while not tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tracker.getActiveJobsIds(), "the long statement never started a Spark job"
    runner.cancel(statement)
    assert statement.done.wait(60) and statement.state == CANCELED
    deadline = time.monotonic() + 30
    while tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tracker.getActiveJobsIds() == []


def test_a_full_tenant_queue_is_refused_and_waiting_statements_cancel_at_once(runner):
    who = caller(TenantScope("busy", tables=("*",)))
    long = [runner.submit(runner.check(LONG), {}, who, 10, 1 << 20) for _ in range(3)]
    assert long[2].state == PENDING
    with pytest.raises(Busy, match="busy has 2 statements running and 1 waiting"):
        runner.submit(runner.check("VALUES (1)"), {}, who, 10, 1 << 20)
    other = runner.submit(runner.check("VALUES (1)"), {}, caller(), 10, 1 << 20)
    runner.cancel(other)
    runner.cancel(long[2])
    assert long[2].state == CANCELED and long[2].started is None
    for statement in long[:2]:
        runner.cancel(statement)
        assert statement.done.wait(60) and statement.state == CANCELED
