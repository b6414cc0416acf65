"""The nightly pipeline with gates on the generator's defective data (the shared ``nightly_warehouse``)."""

from __future__ import annotations

import json
import os
import secrets
import shutil

import pytest
from pyspark.sql import functions as F

from neurolake_spark import bulk
from neurolake_spark.curate import build_silver
from neurolake_spark.demo_data import read_manifest
from neurolake_spark.pipeline import run_step
from neurolake_spark.quality import QualityGateError
from neurolake_spark.quality.gate import conf_relative
from neurolake_spark.quality.pii import SecretSource
from neurolake_spark.runs import JobRun


@pytest.fixture(scope="session")
def pii_secrets():
    """The salt and token key the gates read (env vars), unless the session already provides them."""
    os.environ.setdefault("NEUROLAKE_PII_SALT", "test-salt-" + secrets.token_hex(16))
    os.environ.setdefault("NEUROLAKE_TOKEN_KEY", "test-key-" + secrets.token_hex(16))


@pytest.fixture(scope="module")
def nightly(pii_secrets, nightly_warehouse):
    return nightly_warehouse


def step(result, name):
    return next(s for s in result.steps if s.job_name == name)


def quarantine_counts(lh, day):
    rows = (
        lh.table("quarantine.quality")
        .where(F.col("_batch_date") == F.lit(day).cast("date"))
        .groupBy("dataset", "rule")
        .count()
        .collect()
    )
    return {(r.dataset, r.rule): r["count"] for r in rows}


def test_known_defects_are_quarantined_in_their_exact_numbers(nightly):
    lh, results = nightly
    for result in results:
        day = result.run.run_date
        manifest = read_manifest(lh.settings.raw_dir, day)
        counts = quarantine_counts(lh, day)
        assert (
            counts.get(("bronze.orders", "customer_present"), 0)
            == manifest.defects["orders"]["null_customer"]
        )
        items = sum(n for (table, _), n in counts.items() if table == "bronze.order_items")
        assert items == manifest.defects["order_items"]["out_of_range"]
        assert manifest.defects["orders"]["null_customer"] > 0 and items > 0
        results_by_rule = {(q.dataset, q.expectation): q for q in step(result, "silver").quality}
        assert (
            results_by_rule[("bronze.orders", "customer_present")].unexpected_count
            == manifest.defects["orders"]["null_customer"]
        )
        assert (
            results_by_rule[("bronze.order_items", "quantity_in_range")].unexpected_count
            + results_by_rule[("bronze.order_items", "unit_price_not_negative")].unexpected_count
            == items
        )


def test_gates_pass_the_default_run_and_counts_reconcile(nightly):
    lh, results = nightly
    for result in results:
        assert result.run.status == "success"
        silver = step(result, "silver")
        assert all(q.success for q in silver.quality if q.action == "block")
        silver_rows = {o.name: o.rows for o in silver.outputs if o.name.startswith("silver.")}
        quarantined = {}
        counts = quarantine_counts(lh, result.run.run_date)
        for table in ("orders", "order_items", "customers", "payments", "products"):
            rows_in = next(
                q.element_count
                for q in silver.quality
                if q.dataset == f"bronze.{table}" and q.expectation == "enough_rows"
            )
            quarantined[table] = sum(n for (t, _), n in counts.items() if t == f"bronze.{table}")
            assert rows_in == silver_rows[f"silver.{table}"] + quarantined[table], table
        assert silver.rows_quarantined == sum(quarantined.values())
        commits = [o for o in silver.outputs if o.name == "quarantine.quality"]
        assert len(commits) == 1, "the step's quarantined rows are not one commit"
        assert commits[0].rows == silver.rows_quarantined


class _StopBeforeMerge(Exception):
    pass


def test_the_silver_gate_sees_one_row_per_key_though_bronze_holds_duplicates(nightly):
    """Why the shipped bronze suites have no uniqueness rule on the key: it could never fail."""
    lh, results = nightly
    day = results[-1].run.run_date
    sources = lh.settings.pipeline_definition().sources
    duplicated_in_bronze, seen = {}, {}

    def record(lh_, batches, run):
        for name, batch in batches.items():
            keys = sources[name].key
            seen[name] = batch.groupBy(*keys).count().where("count > 1").count()
            bronze = lh.table(sources[name].bronze).where(F.col("_batch_date") == F.lit(day).cast("date"))
            duplicated_in_bronze[name] = bronze.groupBy(*keys).count().where("count > 1").count()
        raise _StopBeforeMerge

    versions = {
        name: bulk.current_version(lh.spark, lh.resolve(s.silver)).version for name, s in sources.items()
    }
    with pytest.raises(_StopBeforeMerge):
        build_silver(lh, day, JobRun("silver-probe", lh.settings, run_date=day), before_merge=record)
    assert seen == {name: 0 for name in sources}
    assert duplicated_in_bronze["orders"] > 0
    assert versions == {
        name: bulk.current_version(lh.spark, lh.resolve(s.silver)).version for name, s in sources.items()
    }


def test_results_are_on_the_job_runs_with_the_validated_tables(nightly):
    _, results = nightly
    silver, gold = step(results[-1], "silver"), step(results[-1], "gold")
    assert {q.dataset for q in silver.quality} == {
        "bronze.orders",
        "bronze.order_items",
        "bronze.customers",
        "bronze.payments",
        "bronze.products",
    }
    assert {q.dataset for q in gold.quality} >= {"silver.orders", "silver.order_items", "silver.customers"}
    warned = [q for q in silver.quality if not q.success and q.action == "warn"]
    assert all(q.severity == "warning" for q in warned)
    assert all(q.severity == "critical" for q in silver.quality + gold.quality if q.action == "block")
    json.dumps([q.__dict__ for q in silver.quality + gold.quality])


def test_no_raw_email_or_phone_reaches_silver_gold_or_quarantine(nightly, spark):
    lh, _ = nightly
    raw = spark.read.json(str(lh.settings.raw_dir / "customers"))
    raw_values = (
        raw.select(F.explode(F.array("email", "phone", "name", "address")).alias("value"))
        .where(F.col("value").isNotNull())
        .distinct()
    )
    assert raw_values.where(F.col("value").contains("@")).count() > 0
    tables = [n for n in lh.tables.names() if n.split(".")[0] in ("silver", "gold")]
    for name in tables:
        frame = lh.table(name)
        values = frame.select(
            F.explode(F.array(*[F.col(c).cast("string") for c in frame.columns])).alias("value")
        )
        leaked = values.join(raw_values, "value").count()
        assert leaked == 0, f"{leaked} raw PII values in {name}"
    records = lh.table("quarantine.quality").select("record").collect()
    raw_set = {r.value for r in raw_values.collect()}
    assert not any(v in raw_set for r in records for v in map(str, json.loads(r.record).values()))


def test_salt_and_token_key_are_nowhere_in_runs_or_warehouse_metadata(nightly):
    lh, results = nightly
    quality = lh.settings.quality
    secrets_used = [SecretSource(quality).salt(), SecretSource(quality).token_key()]
    runs = [r.run for r in results] + [s for r in results for s in r.steps]
    texts = [repr(run.quality) + repr(run.facts) + repr(run.inputs) + repr(run.outputs) for run in runs]
    warehouse = lh.settings.warehouse
    for path in warehouse.rglob("*"):
        if path.is_file() and not path.name.endswith(".parquet"):
            texts.append(path.read_bytes().decode("latin-1"))
    for secret in secrets_used:
        assert not any(secret in text for text in texts)


def test_a_blocked_gold_table_blocks_the_whole_gold_step(nightly, spark, tmp_path):
    """gold.customer_ltv (written second) blocks: gold.daily_revenue, whose rule would quarantine rows,
    is not written either, and neither is the quarantine."""
    lh, results = nightly
    suites = tmp_path / "suites"
    shutil.copytree(conf_relative(lh.settings, lh.settings.quality.suites), suites)
    (suites / "gold.daily_revenue.yaml").write_text(
        "rules:\n  - {name: no_revenue, type: between, column: revenue, max: 0, action: quarantine}\n"
    )
    (suites / "gold.customer_ltv.yaml").write_text(
        "rules:\n  - {name: no_value, type: between, column: lifetime_value, max: 0, action: block}\n"
    )
    quality = lh.settings.quality.model_copy(update={"suites": suites})
    gated = type(lh)(lh.settings.model_copy(update={"quality": quality}), spark=spark)
    tables = ["gold.daily_revenue", "gold.customer_ltv", "quarantine.quality"]
    before = {t: bulk.current_version(spark, lh.resolve(t)).version for t in tables}

    with pytest.raises(QualityGateError) as error:
        run_step(gated, "gold", results[-1].run.run_date)
    message = str(error.value)
    assert "\n" not in message and "gold.daily_revenue" not in message
    assert message.startswith("quality gate blocked gold.customer_ltv: rule 'no_value' (between) failed: ")
    assert message.endswith(f"; report: {error.value.report_paths[0]}")
    assert {t: bulk.current_version(spark, lh.resolve(t)).version for t in tables} == before
