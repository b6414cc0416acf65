"""Gates on real Spark, Delta and GX: predicates agree with GX, quarantine splits exactly, blocks stop
early."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from py4j.protocol import Py4JJavaError
from pyspark.sql import functions as F

from neurolake_spark import bulk
from neurolake_spark.quality import QualityGateError, QualityGates
from neurolake_spark.quality.suites import load_suite
from neurolake_spark.transforms import to_silver

DAY = "2026-11-24"
ORDERS_SCHEMA = "order_id BIGINT, customer_id BIGINT, order_ts TIMESTAMP, status STRING, updated_at TIMESTAMP"


def ts(hour: int) -> datetime:
    """``hour`` hours after 2026-11-24 00:00 (24 and later: the next day)."""
    return datetime(2026, 11, 24) + timedelta(hours=hour)


def orders_frame(spark, rows):
    return spark.createDataFrame(rows, ORDERS_SCHEMA)


@pytest.fixture
def lakehouse(make_lakehouse, tmp_path):
    """A private warehouse whose suites folder is the test's own, with a salt file of its own."""
    salt = tmp_path / "salt"
    salt.write_text(secrets.token_hex(16), encoding="utf-8")
    suites = tmp_path / "suites"
    suites.mkdir()
    return make_lakehouse(
        tmp_path / "warehouse", **{"quality.suites": str(suites), "quality.pii_salt_file": str(salt)}
    )


def write_suite(lh, table: str, body: str) -> Path:
    path = Path(lh.settings.quality.suites) / f"{table}.yaml"
    path.write_text(body, encoding="utf-8")
    return path


EVERY_ROW_RULE = """
rules:
  - {name: id_present, type: not_null, column: id, action: quarantine}
  - {name: id_unique, type: unique, column: id, action: quarantine}
  - {name: q_range, type: between, column: q, min: 1, max: 10, action: quarantine}
  - {name: q_strict, type: between, column: q, min: 1, max: 10, strict_max: true, action: quarantine}
  - {name: s_known, type: in_set, column: s, values: [a, b], action: quarantine}
  - {name: s_lower, type: matches_regex, column: s, pattern: "^[a-z]+$", action: quarantine}
  - {name: s_no_digit, type: not_matches_regex, column: s, pattern: "[0-9]", action: quarantine}
  - {name: q_over_p, type: column_pair_greater, column_a: q, column_b: p, or_equal: true, action: quarantine}
  - {name: pair_unique, type: compound_unique, columns: [s, p], action: quarantine}
"""

# row: (row, id, q, p, s); comments say which rules each row fails, with GX's null semantics
ROWS = [
    (1, 10, 5, 1, "a"),  # passes all
    (2, None, 5, 1, "b"),  # id_present
    (3, None, None, 2, "a"),  # id_present; two null ids are not duplicates; a missing q passes q rules
    (4, 12, 0, None, "a"),  # q_range, q_strict
    (5, 13, 10, 3, "b"),  # q_strict
    (6, 13, 2, 9, "c1"),  # id_unique (13 twice), s_known, s_lower, s_no_digit, q_over_p
    (7, 14, 3, 4, None),  # q_over_p; s null passes s_known/s_lower/s_no_digit; (None, 4) unique
    (8, 15, 6, 5, "a"),  # pair_unique with row 9
    (9, 16, 7, 5, "a"),  # pair_unique with row 8
    (10, 17, 8, None, None),  # all of pair_unique's columns missing: passes
    (11, 18, 9, None, None),  # same
]
EXPECTED_FAILURES = {
    "id_present": {2, 3},
    "id_unique": {5, 6},
    "q_range": {4},
    "q_strict": {4, 5},
    "s_known": {6},
    "s_lower": {6},
    "s_no_digit": {6},
    "q_over_p": {6, 7},
    "pair_unique": {8, 9},
}


def test_each_predicate_selects_exactly_the_rows_gx_counts(spark, lakehouse, tmp_path):
    suite = load_suite(write_suite(lakehouse, "bronze.orders", EVERY_ROW_RULE))
    df = spark.createDataFrame(ROWS, "row INT, id BIGINT, q INT, p INT, s STRING").cache()
    gates = QualityGates(lakehouse, DAY)
    results = {r.expectation: r for r in gates.validate(suite, df)}
    flags = df.select(
        "row", *[F.coalesce(r.passes(), F.lit(False)).alias(r.name) for r in suite.rules]
    ).collect()
    for rule in suite.rules:
        failing = {row["row"] for row in flags if not row[rule.name]}
        assert failing == EXPECTED_FAILURES[rule.name], rule.name
        assert results[rule.name].unexpected_count == len(failing), rule.name
        assert results[rule.name].success is (not failing)
        assert results[rule.name].element_count == len(ROWS)
    df.unpersist()


ORDERS_SUITE = """
rules:
  - {name: enough_rows, type: row_count_between, min: 1, max: 100, action: block}
  - {name: customer_present, type: not_null, column: customer_id, action: quarantine, block_above_percent: 50}
  - {name: updated_after_placed, type: column_pair_greater, column_a: updated_at, column_b: order_ts,
     or_equal: true, action: quarantine}
  - {name: status_known, type: in_set, column: status, values: [placed, paid], action: warn}
  - {name: fresh, type: freshness, column: updated_at, max_age_hours: 24, action: warn}
"""


def quarantined(lh, table="bronze.orders"):
    return lh.table("quarantine.quality").where(
        (F.col("_batch_date") == F.lit(DAY).cast("date")) & (F.col("dataset") == table)
    )


def test_gate_quarantines_warns_and_reruns_idempotently(spark, lakehouse):
    write_suite(lakehouse, "bronze.orders", ORDERS_SUITE)
    rows = [
        (1, 7, ts(1), "paid", ts(1)),
        (2, None, ts(2), "paid", ts(2)),  # customer_present
        (3, 8, ts(5), "placed", ts(4)),  # updated_after_placed
        (4, None, ts(6), "lost", ts(5)),  # both quarantine rules; status_known warns
        (5, 9, ts(7), "lost", ts(8)),  # status_known warns only
    ]
    with lakehouse.run("silver", run_date=DAY) as run, QualityGates(lakehouse, DAY) as gates:
        passed = gates.gate("bronze.orders", orders_frame(spark, rows), run)
        assert sorted(r.order_id for r in passed.collect()) == [1, 5]

    results = {r.expectation: r for r in run.quality}
    assert [r.dataset for r in run.quality] == ["bronze.orders"] * 5
    assert (results["customer_present"].unexpected_count, results["customer_present"].success) == (2, False)
    assert results["updated_after_placed"].unexpected_count == 2
    assert (results["status_known"].unexpected_count, results["status_known"].action) == (2, "warn")
    assert results["enough_rows"].observed_value == 5 and results["enough_rows"].success
    assert results["fresh"].success and results["fresh"].observed_value.startswith("2026-11-24T08:00")
    assert run.rows_quarantined == 3
    assert [o.files for o in run.outputs if o.name == "quarantine.quality"] == [1]

    stored = {r.record and json.loads(r.record)["order_id"]: r for r in quarantined(lakehouse).collect()}
    assert set(stored) == {2, 3, 4}
    assert stored[4].failed_rules == ["customer_present", "updated_after_placed"]
    assert stored[4].rule == "customer_present" and stored[3].rule == "updated_after_placed"
    assert {r.run_id for r in stored.values()} == {run.run_id}
    report = json.loads((gates.reports_dir / "bronze.orders.json").read_text())
    assert (report["rows_in"], report["rows_passed"], report["rows_quarantined"]) == (5, 2, 3)

    fixed = [row if row[0] != 2 else (2, 7, ts(2), "paid", ts(2)) for row in rows]
    with lakehouse.run("silver", run_date=DAY) as rerun, QualityGates(lakehouse, DAY) as gates:
        assert gates.gate("bronze.orders", orders_frame(spark, fixed), rerun).count() == 3
    again = quarantined(lakehouse).collect()
    assert sorted(json.loads(r.record)["order_id"] for r in again) == [3, 4]
    assert {r.run_id for r in again} == {rerun.run_id}


def test_a_small_batch_is_checked_in_one_partition_a_large_one_keeps_its_partitions(spark, lakehouse):
    """Spark's size estimate (the input's size, not the rows left) decides: three rows of a range
    are cached as one partition, three rows filtered from a range of ten million keep their three."""
    write_suite(lakehouse, "bronze.orders", ORDERS_SUITE)

    def three_orders(ids):
        return ids.where(F.col("id") < 3).select(
            (F.col("id") + 1).alias("order_id"),
            F.when(F.col("id") != 1, F.col("id") + 6).alias("customer_id"),
            F.lit(ts(1)).alias("order_ts"),
            F.lit("paid").alias("status"),
            F.lit(ts(2)).alias("updated_at"),
        )

    small, large = (three_orders(spark.range(0, end, numPartitions=3)) for end in (3, 10_000_000))
    for batch, partitions in ((small, 1), (large, 3)):
        with lakehouse.run("silver", run_date=DAY) as run, QualityGates(lakehouse, DAY) as gates:
            passed = gates.gate("bronze.orders", batch, run)
            assert sorted(r.order_id for r in passed.collect()) == [1, 3]
            assert passed.rdd.getNumPartitions() == partitions
        assert run.rows_quarantined == 1


def test_block_raises_before_anything_is_written(spark, lakehouse):
    write_suite(lakehouse, "bronze.orders", ORDERS_SUITE.replace("max: 100", "max: 2"))
    rows = [(i, None if i == 1 else i, ts(1), "paid", ts(1)) for i in range(1, 4)]
    with pytest.raises(QualityGateError) as error:
        with lakehouse.run("silver", run_date=DAY) as run, QualityGates(lakehouse, DAY) as gates:
            gates.gate("bronze.orders", orders_frame(spark, rows), run)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        "quality gate blocked bronze.orders: rule 'enough_rows' (row_count_between) failed: observed 3"
    )
    assert run.status == "failed" and {r.expectation for r in run.quality if not r.success} == {
        "enough_rows",
        "customer_present",
    }
    assert not bulk.exists(spark, lakehouse.resolve("quarantine.quality"))
    report = json.loads(error.value.report_paths[0].read_text())
    assert report["blocked_by"] and report["rows_quarantined"] == 0


def test_too_many_quarantined_rows_block(spark, lakehouse):
    write_suite(lakehouse, "bronze.orders", ORDERS_SUITE)
    rows = [(i, None if i <= 2 else i, ts(1), "paid", ts(1)) for i in range(1, 4)]
    with (
        pytest.raises(
            QualityGateError,
            match=r"rule 'customer_present' \(not_null\) failed on 2 of 3 rows "
            r"\(66.67% > block_above_percent 50.0\)",
        ),
        lakehouse.run("silver", run_date=DAY) as run,
        QualityGates(lakehouse, DAY) as gates,
    ):
        gates.gate("bronze.orders", orders_frame(spark, rows), run)


def pipeline_lakehouse(spark, lakehouse, tmp_path, sources):
    """``lakehouse`` with a pipeline of its own: one orders-shaped source per name, bronze.N -> silver.N."""
    entries = "\n".join(
        f"""  {name}: {{format: csv, schema: "{ORDERS_SCHEMA}", key: [order_id], order_by: updated_at,
           bronze: bronze.{name}, silver: silver.{name}}}"""
        for name in sources
    )
    tables = "\n".join(
        f"  {layer}.{name}: {{format: delta{', partition_by: [_batch_date]' if layer == 'bronze' else ''}}}"
        for name in sources
        for layer in ("bronze", "silver")
    )
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        f"sources:\n{entries}\ntables:\n{tables}\n"
        "  quarantine.quality: {format: delta, partition_by: [_batch_date]}\n",
        encoding="utf-8",
    )
    return type(lakehouse)(lakehouse.settings.model_copy(update={"pipeline": pipeline}), spark=spark)


def land(spark, lh, source, day, rows):
    """Append ``rows`` to ``bronze.<source>`` as the batch of ``day``; return that bronze frame."""
    bronze = orders_frame(spark, rows).select(
        "*",
        F.lit(f"{source}:{day}").alias("_batch_id"),
        F.lit(day).cast("date").alias("_batch_date"),
        F.lit("f.csv").alias("_source_file"),
        F.current_timestamp().alias("_ingested_at"),
        F.lit("r").alias("_run_id"),
    )
    bulk.insert(spark, lh.resolve(f"bronze.{source}"), bronze)
    return bronze


def test_blocked_silver_step_writes_no_silver_table(spark, lakehouse, tmp_path):
    """The pipeline's silver step with gates: a critical failure fails the step and silver stays unwritten."""
    from neurolake_spark.pipeline import run_step

    lh = pipeline_lakehouse(spark, lakehouse, tmp_path, ["orders"])
    write_suite(lh, "bronze.orders", ORDERS_SUITE.replace("max: 100", "max: 1"))
    bronze = land(spark, lh, "orders", DAY, [(1, 5, ts(1), "paid", ts(1)), (2, 6, ts(2), "paid", ts(2))])
    with pytest.raises(QualityGateError, match="quality gate blocked bronze.orders: rule 'enough_rows'"):
        run_step(lh, "silver", DAY)
    assert not bulk.exists(spark, lh.resolve("silver.orders"))

    write_suite(lh, "bronze.orders", ORDERS_SUITE)
    run = run_step(lh, "silver", DAY)
    assert run.status == "success" and lh.table("silver.orders").count() == 2
    batch = to_silver(bronze.where("_batch_date = DATE'2026-11-24'"), ["order_id"], "updated_at")
    assert {r.expectation for r in run.quality} == {
        "enough_rows",
        "customer_present",
        "updated_after_placed",
        "status_known",
        "fresh",
    }
    assert batch.count() == next(r.element_count for r in run.quality if r.expectation == "enough_rows")


def test_silver_step_fails_before_any_merge_when_its_quarantine_cannot_be_committed(
    spark, lakehouse, tmp_path
):
    """The quarantine is committed before the step's batches are merged: its failure fails the
    step and no silver table is written."""
    from neurolake_spark.pipeline import run_step

    lh = pipeline_lakehouse(spark, lakehouse, tmp_path, ["orders"])
    write_suite(lh, "bronze.orders", ORDERS_SUITE)
    land(spark, lh, "orders", DAY, [(1, 5, ts(1), "paid", ts(1)), (2, None, ts(2), "paid", ts(2))])
    in_the_way = lh.resolve("quarantine.quality").path
    in_the_way.parent.mkdir(parents=True, exist_ok=True)
    in_the_way.write_text("not a table")
    with pytest.raises(Py4JJavaError, match="quarantine/quality/_delta_log"):
        run_step(lh, "silver", DAY)
    assert in_the_way.read_text() == "not a table"
    assert not bulk.exists(spark, lh.resolve("silver.orders"))


NEXT_DAY = "2026-11-25"
SOURCES = ["orders", "returns", "refunds"]  # the last one is gated last


def test_one_blocked_source_blocks_the_whole_silver_step(spark, lakehouse, tmp_path):
    """The last source blocks: the sources before it are clean, yet no silver table and no quarantine row
    of the step is written; one line names every blocked table and rule."""
    from neurolake_spark.pipeline import run_step

    lh = pipeline_lakehouse(spark, lakehouse, tmp_path, SOURCES)
    next_day = [
        (3, None, ts(25), "paid", ts(25)),
        (4, 7, ts(26), "paid", ts(26)),
        (5, 8, ts(27), "paid", ts(27)),
    ]
    for source in SOURCES:
        write_suite(lh, f"bronze.{source}", ORDERS_SUITE)
        land(spark, lh, source, DAY, [(1, 5, ts(1), "paid", ts(1)), (2, None, ts(2), "paid", ts(2))])
        land(spark, lh, source, NEXT_DAY, next_day)  # row 3 has no customer: quarantined, 1 of 3 rows
    assert run_step(lh, "silver", DAY).status == "success"
    tables = [f"silver.{s}" for s in SOURCES] + ["quarantine.quality"]
    before = {t: bulk.current_version(spark, lh.resolve(t)).version for t in tables}
    reports = QualityGates(lh, NEXT_DAY).reports_dir

    write_suite(lh, "bronze.refunds", ORDERS_SUITE.replace("max: 100", "max: 2"))
    with pytest.raises(QualityGateError) as error:
        run_step(lh, "silver", NEXT_DAY)
    assert str(error.value) == (
        "quality gate blocked bronze.refunds: rule 'enough_rows' (row_count_between) "
        f"failed: observed 3; report: {reports / 'bronze.refunds.json'}"
    )
    assert {t: bulk.current_version(spark, lh.resolve(t)).version for t in tables} == before
    assert json.loads(error.value.report_paths[0].read_text())["blocked_by"]

    write_suite(lh, "bronze.orders", ORDERS_SUITE.replace("max: 100", "max: 2"))
    with pytest.raises(QualityGateError) as error:
        run_step(lh, "silver", NEXT_DAY)
    message = str(error.value)
    assert "\n" not in message and message.startswith(
        "quality gate blocked bronze.orders: rule 'enough_rows' (row_count_between) failed: observed 3; "
        "bronze.refunds: rule 'enough_rows' (row_count_between) failed: observed 3; reports: "
    )
    assert error.value.report_paths == [reports / "bronze.orders.json", reports / "bronze.refunds.json"]
    assert {t: bulk.current_version(spark, lh.resolve(t)).version for t in tables} == before
    assert quarantined(lh).count() == 1  # the first day's row only

    for source in SOURCES:
        write_suite(lh, f"bronze.{source}", ORDERS_SUITE)
    run = run_step(lh, "silver", NEXT_DAY)
    after = {t: bulk.current_version(spark, lh.resolve(t)).version for t in tables}
    assert all(after[t] > before[t] for t in tables)
    assert [lh.table(t).count() for t in tables[:-1]] == [3, 3, 3]  # 1 + 2 rows passed
    assert run.rows_quarantined == 3
    assert [o.files for o in run.outputs if o.name == "quarantine.quality"] == [1]


def test_unknown_column_in_a_suite_names_file_table_and_rule(spark, lakehouse):
    path = write_suite(
        lakehouse,
        "bronze.orders",
        "rules:\n  - {name: typo, type: not_null, column: custmer_id, action: block}\n",
    )
    from neurolake_spark.errors import ConfigError

    with (
        pytest.raises(
            ConfigError, match=rf"{path}: table bronze.orders, rule 'typo': no column 'custmer_id'"
        ),
        lakehouse.run("silver", run_date=DAY) as run,
    ):
        QualityGates(lakehouse, DAY).gate(
            "bronze.orders", orders_frame(spark, [(1, 1, ts(1), "paid", ts(1))]), run
        )


def test_decimal_bounds_and_values(spark, lakehouse):
    write_suite(
        lakehouse,
        "bronze.order_items",
        """
rules:
  - {name: price_ok, type: between, column: unit_price, min: 0, action: quarantine}
""",
    )
    df = spark.createDataFrame(
        [(1, Decimal("1.50")), (2, Decimal("-0.01")), (3, Decimal("0.00")), (4, None)],
        "line_no INT, unit_price DECIMAL(10,2)",
    )
    with lakehouse.run("silver", run_date=DAY) as run, QualityGates(lakehouse, DAY) as gates:
        passed = gates.gate("bronze.order_items", df, run)
        assert sorted(r.line_no for r in passed.collect()) == [1, 3, 4]
    assert run.quality[0].unexpected_count == 1 and run.rows_quarantined == 1
