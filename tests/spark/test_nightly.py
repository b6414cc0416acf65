"""The nightly pipeline on generated data: reconciliation, late updates, idempotency, bad input."""

import shutil

import pytest
from chispa import assert_df_equality
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from neurolake_spark import bulk
from neurolake_spark.demo_data import generate_day, read_manifest
from neurolake_spark.errors import PipelineError, TableNameError
from neurolake_spark.pipeline import format_summary, run_nightly, run_step

from ..conftest import DAYS


def batch(lh, table, day):
    return lh.table(table).where(F.col("_batch_date") == F.lit(day).cast("date"))


def test_every_raw_row_is_in_bronze_or_quarantine(nightly_warehouse):
    lh, _ = nightly_warehouse
    quarantine = lh.table("quarantine.ingest")
    for day in DAYS:
        manifest = read_manifest(lh.settings.raw_dir, day)
        for source, rows in manifest.rows.items():
            accepted = batch(lh, f"bronze.{source}", day).count()
            held = quarantine.where((F.col("source") == source) & (F.col("_batch_date") == day)).count()
            assert accepted + held == rows, (day, source)
            assert held == manifest.defects[source].get("malformed", 0), (day, source)


def test_each_nights_quarantines_are_written_as_one_file_each(nightly_warehouse):
    _, results = nightly_warehouse
    written = {
        (result.run.run_date, output.name): output.files
        for result in results
        for step in result.steps
        for output in step.outputs
        if output.name.startswith("quarantine.") and output.rows
    }
    assert {name for _, name in written} == {"quarantine.ingest", "quarantine.quality"}
    assert set(written.values()) == {1}


def test_quarantined_rows_keep_raw_text_reason_and_file(nightly_warehouse):
    lh, _ = nightly_warehouse
    row = lh.table("quarantine.ingest").where("source = 'orders'").first()
    assert row.raw_record and row.reason and row._source_file.endswith(".csv") and row._run_id


def test_silver_has_one_row_per_key_with_the_latest_update(nightly_warehouse):
    lh, _ = nightly_warehouse
    orders = lh.table("silver.orders")
    assert orders.count() == orders.select("order_id").distinct().count()
    latest = (
        lh.table("bronze.orders")
        .groupBy("order_id")
        .agg(F.max_by("status", "updated_at").alias("status"), F.max("updated_at").alias("updated_at"))
    )
    late = orders.join(latest, "order_id").where(
        (orders.updated_at != latest.updated_at) | (orders.status != latest.status)
    )
    assert late.count() == 0
    day2_updates = read_manifest(lh.settings.raw_dir, DAYS[1]).defects["orders"]["late_update"]
    assert orders.where(F.to_date("order_ts") < F.to_date("updated_at")).count() >= day2_updates > 0


def test_gold_revenue_matches_silver(nightly_warehouse):
    lh, _ = nightly_warehouse
    expected = (
        lh.spark.sql(
            f"""
        SELECT sum(i.quantity * i.unit_price) AS total
        FROM delta.`{lh.resolve("silver.orders").uri}` o
        JOIN delta.`{lh.resolve("silver.order_items").uri}` i ON o.order_id = i.order_id
        WHERE o.status <> 'cancelled' AND o.customer_id IS NOT NULL AND i.quantity > 0 AND i.unit_price >= 0
        """
        )
        .first()
        .total
    )
    assert lh.table("gold.daily_revenue").agg(F.sum("revenue")).first()[0] == expected
    days = {
        r.order_date.isoformat()
        for r in lh.table("gold.daily_revenue").select("order_date").distinct().collect()
    }
    assert set(DAYS) <= days


def test_runs_record_versions_and_counts(nightly_warehouse):
    lh, results = nightly_warehouse
    for result in results:
        assert result.run.status == "success"
        assert [s.job_name for s in result.steps] == ["ingest", "silver", "gold", "maintenance"]
        assert all(s.parent is result.run and s.status == "success" for s in result.steps)
        ingest = result.steps[0]
        assert ingest.rows_in == sum(read_manifest(lh.settings.raw_dir, result.run.run_date).rows.values())
        assert ingest.rows_in == ingest.rows_out
        maintenance = result.steps[3]
        earlier = {(o.name, o.version) for step in result.steps[:3] for o in step.outputs}
        for output in maintenance.outputs:
            assert (output.name, output.version) not in earlier, (
                f"{output.name} v{output.version} reported twice"
            )
            history = DeltaTable.forPath(lh.spark, lh.resolve(output.name).uri).history()
            operation = history.where(F.col("version") == output.version).first().operation
            assert operation in ("OPTIMIZE", "VACUUM START", "VACUUM END"), (output.name, operation)
    summary = format_summary(results[1])
    assert "gold.daily_revenue" in summary and "quarantined" in summary and "success" in summary
    prom = (lh.settings.metrics_textfile_dir / "neurolake_ingest.prom").read_text()
    assert 'neurolake_job_runs_total{job_name="ingest",status="success"} 2.0' in prom


def test_time_travel_to_the_first_night(nightly_warehouse):
    lh, results = nightly_warehouse
    first_gold = next(o for o in results[0].steps[2].outputs if o.name == "gold.daily_revenue")
    old = lh.table("gold.daily_revenue", version=first_gold.version)
    assert old.where(F.col("order_date") == DAYS[1]).count() == 0
    assert lh.table("gold.daily_revenue").where(F.col("order_date") == DAYS[1]).count() > 0


def test_rerunning_a_date_leaves_the_same_tables(make_lakehouse, tmp_path):
    lh = make_lakehouse(tmp_path, **{"maintenance.vacuum": False, "maintenance.optimize": False})
    generate_day(lh.settings.raw_dir, DAYS[0], scale=0.005, seed=5)
    run_nightly(lh, DAYS[0])
    before = {
        name: lh.table(name)
        for name in ("bronze.orders", "silver.orders", "gold.daily_revenue", "quarantine.ingest")
    }
    snapshots = {
        name: (df.drop("_ingested_at", "_run_id"), bulk.current_version(lh.spark, lh.resolve(name)).version)
        for name, df in before.items()
    }
    frozen = {
        name: lh.table(name, version=v).drop("_ingested_at", "_run_id") for name, (_, v) in snapshots.items()
    }
    run_nightly(lh, DAYS[0])
    for name, old in frozen.items():
        assert_df_equality(
            lh.table(name).drop("_ingested_at", "_run_id"), old, ignore_row_order=True, ignore_nullable=True
        )


def test_missing_source_folder_is_a_clear_error(make_lakehouse, tmp_path):
    lh = make_lakehouse(tmp_path)
    with pytest.raises(
        PipelineError, match=r"source 'customers' has no raw files for 2026-01-05 \(expected them in"
    ):
        run_step(lh, "ingest", "2026-01-05")


def test_a_source_without_files_stops_ingest_before_any_source_is_written(make_lakehouse, tmp_path):
    lh = make_lakehouse(tmp_path)
    generate_day(lh.settings.raw_dir, DAYS[0], scale=0.002, seed=3)
    shutil.rmtree(lh.settings.raw_dir / "payments" / f"date={DAYS[0]}")
    with pytest.raises(PipelineError, match=rf"source 'payments' has no raw files for {DAYS[0]}"):
        run_step(lh, "ingest", DAYS[0])
    written = [
        name
        for name in lh.tables.names("bronze") + ["quarantine.ingest"]
        if bulk.exists(lh.spark, lh.resolve(name))
    ]
    assert written == []


def test_unknown_step_and_bad_date(make_lakehouse, tmp_path):
    lh = make_lakehouse(tmp_path)
    with pytest.raises(PipelineError, match="unknown step 'bronze'"):
        run_step(lh, "bronze", "2026-01-05")
    with pytest.raises(PipelineError, match="bad date '2026-1-5'"):
        run_step(lh, "ingest", "2026-1-5")


def test_reading_unknown_hostile_or_missing_tables(make_lakehouse, tmp_path):
    lh = make_lakehouse(tmp_path)
    with pytest.raises(TableNameError, match="unknown table"):
        lh.table("silver.nope")
    with pytest.raises(TableNameError, match="invalid table name"):
        lh.table("../silver.orders")
    with pytest.raises(PipelineError, match="does not exist yet"):
        lh.table("silver.orders")
