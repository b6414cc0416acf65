"""Lineage of real pipeline runs: every event valid per the spec, delivered to the catalog."""

import json

import pytest
from openlineage.client.event_v2 import RunState
from pyspark.sql import functions as F

from neurolake_spark.lineage.events import build_event, to_dict
from neurolake_spark.lineage.spool import Spool
from neurolake_spark.run_model import QualityResult
from tests.openlineage_schema import validate_event


def all_runs(results):
    for result in results:
        yield result.run
        yield from result.steps


def test_nightly_runs_emit_valid_events_with_lineage(nightly_warehouse):
    lh, results = nightly_warehouse
    namespace = lh.settings.lineage_namespace
    for run in all_runs(results):
        assert run.status == "success"
        for state in (RunState.START, RunState.COMPLETE):
            validate_event(to_dict(build_event(run, state)))

    for result in results:
        steps = {step.job_name: step for step in result.steps}
        for step in result.steps:
            parent = to_dict(build_event(step, RunState.START))["run"]["facets"]["parent"]
            assert parent["run"]["runId"] == result.run.run_id and parent["job"]["name"] == "nightly"

        ingest = to_dict(build_event(steps["ingest"], RunState.COMPLETE))
        assert {d["name"] for d in ingest["inputs"]} >= {"raw.orders", "raw.customers"}
        bronze = next(d for d in ingest["outputs"] if d["name"] == "bronze.orders")
        assert bronze["namespace"] == namespace
        sources = {f["inputFields"][0]["name"] for f in bronze["facets"]["columnLineage"]["fields"].values()}
        assert sources == {"raw.orders"}

        gold = to_dict(build_event(steps["gold"], RunState.COMPLETE))
        revenue = next(d for d in gold["outputs"] if d["name"] == "gold.daily_revenue")
        table_version = lh.spark.sql(f"DESCRIBE HISTORY delta.`{lh.resolve('gold.daily_revenue').uri}`")
        versions = [row.version for row in table_version.collect()]
        assert int(revenue["facets"]["version"]["datasetVersion"]) in versions
        assert (
            revenue["outputFacets"]["outputStatistics"]["rowCount"]
            == lh.table(
                "gold.daily_revenue", version=int(revenue["facets"]["version"]["datasetVersion"])
            ).count()
        )
        fed_by = {
            (f["name"], f["field"])
            for f in revenue["facets"]["columnLineage"]["fields"]["revenue"]["inputFields"]
        }
        assert ("silver.order_items", "unit_price") in fed_by

        for step in result.steps:
            event = to_dict(build_event(step, RunState.COMPLETE))
            inputs = {d["name"]: d for d in event["inputs"]}
            for validated in {q.dataset for q in step.quality}:
                assertions = inputs[validated]["inputFacets"]["dataQualityAssertions"]["assertions"]
                assert len(assertions) == len([q for q in step.quality if q.dataset == validated])


def test_nightly_events_reached_the_catalog(nightly_warehouse):
    from neurolake_spark.catalog.store import CatalogStore

    lh, results = nightly_warehouse
    root = lh.settings.lineage_spool_dir
    waiting = [p for queue in root.glob("*/transport.json") for p in Spool(root, queue.parent.name).pending()]
    assert waiting == [], "events of a healthy run must not stay in the spool"
    store = CatalogStore.from_settings(lh.settings)
    try:
        for run in all_runs(results):
            for state in (RunState.START, RunState.COMPLETE):
                assert store.ingest(to_dict(build_event(run, state))) is False, (
                    f"{run.job_name} {state} not stored"
                )
    finally:
        store.close()


@pytest.fixture
def file_lineage(make_lakehouse, nightly_warehouse, tmp_path):
    """A lakehouse reading the nightly tables, emitting lineage to a JSON-lines file."""
    shared, _ = nightly_warehouse
    events = tmp_path / "events.jsonl"
    lh = make_lakehouse(
        shared.settings.warehouse,
        **{
            "lineage.transports": [{"type": "file", "location": str(events)}],
            "lineage.spool_dir": str(tmp_path / "spool"),
            "metrics.enabled": False,
        },
    )
    return lh, events


def test_emitted_events_carry_quality_facets_and_failures(file_lineage):
    lh, events = file_lineage
    orders = lh.table("silver.orders")
    total, null_customers = orders.agg(F.count(F.lit(1)), F.count_if(F.col("customer_id").isNull())).first()
    with lh.run("orders_audit", run_date="2026-11-24") as run:
        ref = lh.resolve("silver.orders")
        run.add_input("silver.orders", path=ref.uri, version=1)
        run.record_quality(
            [
                QualityResult(
                    "silver.orders",
                    "customer_id_not_null",
                    success=null_customers == 0,
                    column="customer_id",
                    unexpected_count=null_customers,
                    element_count=total,
                )
            ]
        )
    with pytest.raises(Exception, match="nope"), lh.run("broken_step", run_date="2026-11-24"):
        lh.resolve("silver.nope")

    emitted = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(e["job"]["name"], e["eventType"]) for e in emitted] == [
        ("orders_audit", "START"),
        ("orders_audit", "COMPLETE"),
        ("broken_step", "START"),
        ("broken_step", "FAIL"),
    ]
    for event in emitted:
        validate_event(event)
    (audited,) = emitted[1]["inputs"]
    assert audited["inputFacets"]["dataQualityMetrics"]["rowCount"] == total
    assert (
        audited["inputFacets"]["dataQualityMetrics"]["columnMetrics"]["customer_id"]["nullCount"]
        == null_customers
    )
    assertion = audited["inputFacets"]["dataQualityAssertions"]["assertions"][0]
    assert (assertion["assertion"], assertion["column"]) == ("customer_id_not_null", "customer_id")
    assert "nope" in emitted[3]["run"]["facets"]["errorMessage"]["message"]
