"""The catalog store on a real SQLite file: exactly-once ingest, concurrent writers, assets, definitions."""

from __future__ import annotations

import multiprocessing
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest

from neurolake_spark.catalog import schema
from neurolake_spark.catalog.errors import (
    AmbiguousDatasetError,
    CatalogError,
    InvalidEventError,
    InvalidTimeError,
    UnknownAssetError,
    UnknownDatasetError,
    UnknownRunError,
)
from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.run_status import RunStatus

from ..conftest import settings_for
from .test_catalog_events import T0, ds, nightly_events, run_events

DAY1 = datetime(2026, 11, 23, 2, tzinfo=UTC)
DAY2 = datetime(2026, 11, 24, 2, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    catalog = CatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield catalog
    catalog.close()


def two_nights():
    first, ids1 = nightly_events("2026-11-23", DAY1)
    second, ids2 = nightly_events("2026-11-24", DAY2, with_products=True, versions=2)
    return first + second, (ids1, ids2)


def test_each_event_is_stored_once(store, tmp_path):
    events, _ = two_nights()
    assert all(store.ingest(e) for e in events)
    assert not any(store.ingest(e) for e in events)
    rows = (
        sqlite3.connect(tmp_path / "catalog.db")
        .execute("SELECT COUNT(*), COUNT(DISTINCT identity) FROM events")
        .fetchone()
    )
    assert rows == (len(events), len(events))
    assert store.stats()["runs"] == len({e["run"]["runId"] for e in events})


def test_same_event_time_written_differently_is_the_same_event(store):
    start, _ = run_events("ingest", start=T0)
    assert store.ingest(start)
    same = {**start, "eventTime": T0.astimezone(timezone(timedelta(hours=2))).isoformat()}
    assert not store.ingest(same)


def test_events_out_of_order_give_the_same_catalog(tmp_path):
    events, _ = two_nights()
    answers = []
    for name, ordered in (("in-order", events), ("reversed", events[::-1])):
        catalog = CatalogStore(f"sqlite:///{tmp_path / name}.db")
        for event in ordered:
            catalog.ingest(event)
        graph = catalog.graph()
        answers.append(
            (
                graph.upstream("gold.daily_revenue").edge_keys(),
                graph.upstream("gold.daily_revenue", as_of="2026-11-23").edge_keys(),
                [(r["job"], r["state"], r["started"], r["ended"]) for r in catalog.list_runs(limit=50)],
            )
        )
        catalog.close()
    assert answers[0] == answers[1]


def test_failed_run_records_error_and_writes_no_version(store):
    events, ids = nightly_events("2026-11-23", DAY1, fail_gold=True)
    for event in events:
        store.ingest(event)
    run = store.get_run(ids["gold"])
    assert (run["state"], run["error"]) == ("failed", "silver.orders is empty")
    assert store.get_dataset("gold.daily_revenue").versions == []
    assert store.graph().upstream("gold.daily_revenue").edges == []


def test_run_details_parent_children_code_and_datasets(store):
    events, (ids, _) = two_nights()
    for event in events:
        store.ingest(event)
    nightly = store.get_run(ids["nightly"])
    assert {c["job"] for c in nightly["children"]} == {"ingest", "silver", "gold", "maintenance"}
    silver = store.get_run(ids["silver"])
    assert silver["parent"] == ids["nightly"]
    assert silver["code_version"] == "0.1.0 (git 0123456789ab)"
    assert silver["run_date"] == "2026-11-23"
    assert [(d["dataset"], d["version"]) for d in silver["outputs"]] == [
        ("silver.customers", "0"),
        ("silver.orders", "0"),
    ]
    assert {q["dataset"] for q in silver["quality"]} == {"bronze.customers", "bronze.orders"}
    with pytest.raises(UnknownAssetError, match="unknown run"):
        store.get_run("no-such-run")


def test_runs_list_by_job_newest_first(store):
    events, (ids1, ids2) = two_nights()
    for event in events:
        store.ingest(event)
    runs = store.list_runs(job="silver")
    assert [r["run"] for r in runs] == [ids2["silver"], ids1["silver"]]
    assert len(store.list_runs(limit=3)) == 3
    with pytest.raises(UnknownAssetError, match="unknown job 'silverr'"):
        store.list_runs(job="silverr")


def _ingest_all(url, events):
    catalog = CatalogStore(url)
    try:
        return sum(catalog.ingest(e) for e in events)
    finally:
        catalog.close()


def test_several_processes_write_one_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    events, _ = two_nights()
    halves = [events[: len(events) * 2 // 3], events[len(events) // 3 :], events]
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        stored = list(pool.map(_ingest_all, [url] * 3, halves))
    assert sum(stored) == len(events)
    catalog = CatalogStore(url)
    assert catalog.stats()["events"] == len(events)
    assert "raw.products" in catalog.graph().upstream("gold.daily_revenue").dataset_names()
    assert sqlite3.connect(tmp_path / "shared.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_are_recorded_and_applied_once(store, tmp_path):
    with store.write() as conn:
        assert schema.migrate(conn) == []
    versions = (
        sqlite3.connect(tmp_path / "catalog.db").execute("SELECT version FROM schema_migrations").fetchall()
    )
    assert versions == [(v,) for v, _, _ in schema.MIGRATIONS]
    CatalogStore(store.url).close()


def test_malformed_event_is_rejected_and_nothing_stored(store):
    event = run_events("ingest", start=T0)[0]
    event["inputs"] = [{"namespace": "file:///warehouse"}]
    with pytest.raises(InvalidEventError, match="inputs\\[0\\].name"):
        store.ingest(event)
    assert store.stats()["events"] == 0


def test_definitions_give_owner_description_and_tags(tmp_path):
    settings = settings_for(tmp_path / "warehouse")
    catalog = CatalogStore.from_settings(settings)
    events, _ = two_nights()
    for event in events:
        catalog.ingest(event)
    customers = catalog.get_dataset("silver.customers").summary
    table = settings.pipeline_definition().tables["silver.customers"]
    assert (customers.owner, customers.description, customers.tags) == (
        table.owner,
        table.description,
        table.tags,
    )
    assert (
        catalog.get_dataset("raw.orders").summary.description
        == settings.pipeline_definition().sources["orders"].description
    )
    assert catalog.sync_definitions() == 0
    catalog.tag("silver.customers", ["gdpr"])
    catalog.untag("silver.customers", list(table.tags))
    assert catalog.sync_definitions() == 1
    assert catalog.get_dataset("silver.customers").summary.tags == sorted(["gdpr", *table.tags])


def test_tag_untag_and_errors(store):
    for event in two_nights()[0]:
        store.ingest(event)
    assert store.tag("gold.daily_revenue", ["finance", "audited"]) == ["audited", "finance"]
    assert store.untag("gold.daily_revenue", ["audited"]) == ["finance"]
    with pytest.raises(UnknownAssetError, match="has no tag audited"):
        store.untag("gold.daily_revenue", ["audited"])
    with pytest.raises(CatalogError, match="non-empty tag"):
        store.tag("gold.daily_revenue", [" "])
    with pytest.raises(UnknownAssetError, match="did you mean gold.daily_revenue"):
        store.tag("gold.daily_revenu", ["x"])


@pytest.mark.parametrize(
    "text, by, expected",
    [
        ("revenue", "name", {"gold.daily_revenue"}),
        ("CATEGORY", "column", {"raw.products", "bronze.products", "silver.products"}),
        ("finance", "tag", {"gold.daily_revenue"}),
        ("finance", "any", {"gold.daily_revenue"}),
        ("nothing-like-this", "any", set()),
    ],
)
def test_search(store, text, by, expected):
    for event in two_nights()[0]:
        store.ingest(event)
    store.tag("gold.daily_revenue", ["finance"])
    assert {d.name for d in store.search(text, by)} == expected


def test_search_by_owner_and_description(tmp_path):
    catalog = CatalogStore.from_settings(settings_for(tmp_path / "warehouse"))
    for event in two_nights()[0]:
        catalog.ingest(event)
    assert {d.name for d in catalog.search("analytics", "owner")} == {"gold.daily_revenue"}
    assert {d.name for d in catalog.search("late updates", "description")} == {"silver.orders"}
    with pytest.raises(CatalogError, match="cannot search by 'size'"):
        catalog.search("x", "size")


def test_stats_counts_versions_and_quality_pass_rate(store):
    events, _ = two_nights()
    for event in events:
        store.ingest(event)
    assertions = [
        a
        for e in events
        if e["eventType"] == "COMPLETE"
        for d in e.get("inputs", [])
        for a in d.get("inputFacets", {}).get("dataQualityAssertions", {}).get("assertions", [])
    ]
    outputs = [d for e in events if e["eventType"] == "COMPLETE" for d in e.get("outputs", [])]
    stats = store.stats()
    assert stats["quality_results"] == len(assertions)
    assert stats["quality_pass_rate"] == pytest.approx(
        sum(a["success"] for a in assertions) / len(assertions)
    )
    assert stats["dataset_versions"] == len(outputs)
    assert stats["last_event"] == max(datetime.fromisoformat(e["eventTime"]) for e in events).replace(
        tzinfo=None
    )


def test_dataset_detail_versions_inputs_schema_and_quality_as_of(store):
    for event in two_nights()[0]:
        store.ingest(event)
    detail = store.get_dataset("silver.orders", as_of="2026-11-23")
    assert [(v["version"], v["job"]) for v in detail.versions] == [("1", "maintenance"), ("0", "silver")]
    assert detail.versions[1]["inputs"] == [{"dataset": "bronze.orders", "version": "0"}]
    assert [c["name"] for c in detail.columns] == ["order_id", "customer_id", "amount", "status"]
    bronze = store.get_dataset("bronze.orders")
    assert {q["run_date"] for q in bronze.quality} == {"2026-11-23", "2026-11-24"}
    assert {q["run_date"] for q in store.get_dataset("bronze.orders", as_of="2026-11-23").quality} == {
        "2026-11-23"
    }


def test_quality_report_filters(store):
    for event in two_nights()[0]:
        store.ingest(event)
    day2 = store.quality_report(run_date="2026-11-24")
    assert day2 and {r["run_date"] for r in day2} == {"2026-11-24"}
    failed = store.quality_report(failed_only=True)
    assert failed and not any(r["success"] for r in failed)
    assert {r["dataset"] for r in store.quality_report(dataset="bronze.customers")} == {"bronze.customers"}
    with pytest.raises(CatalogError, match="not a time"):
        store.quality_report(run_date="24/11/2026")


def test_spark_listener_events_are_stored_generically(store):
    path_in, path_out = "/data/warehouse/silver/orders", "/data/warehouse/gold/daily_revenue"
    events = run_events(
        "neurolake.execute_save_into_data_source_command.gold_daily_revenue",
        start=T0,
        code=None,
        job_namespace="default",
        inputs=[ds(path_in, namespace="file", fields=[("amount", "decimal(10,2)")])],
        outputs=[
            ds(
                path_out,
                namespace="file",
                fields=[("revenue", "decimal(12,2)")],
                lineage={"revenue": [(path_in, "amount", "DIRECT", "AGGREGATION")]},
            )
        ],
    )
    for event in events:
        assert store.ingest(event)
    assert store.graph().upstream(path_out).dataset_names() == {path_in, path_out}
    assert {d.namespace for d in store.search("warehouse/gold")} == {"file"}


def test_missing_catalog_is_an_error_for_readers(tmp_path):
    with pytest.raises(CatalogError, match="no catalog at .* run the pipeline"):
        CatalogStore.from_settings(settings_for(tmp_path / "empty"), create=False)


def test_bad_catalog_url_is_one_line_error():
    with pytest.raises(CatalogError, match="cannot"):
        CatalogStore("nosuchdb://x/y")


def test_runs_by_state_in_run_statuses_counting_every_event_type_of_a_state(store):
    started_only = run_events("ingest", start=T0)[0]
    running = run_events("silver", start=T0, state="RUNNING")
    for event in [started_only, *running, *run_events("gold", start=T0)]:
        store.ingest(event)
    assert store.stats()["runs_by_state"] == {RunStatus.RUNNING: 2, RunStatus.SUCCESS: 1}
    assert {r["job"]: r["state"] for r in store.list_runs()} == {
        "ingest": RunStatus.RUNNING,
        "silver": RunStatus.RUNNING,
        "gold": RunStatus.SUCCESS,
    }


def test_list_runs_by_status_and_start(store):
    first, ids1 = nightly_events("2026-11-23", DAY1, fail_gold=True)
    second, ids2 = nightly_events("2026-11-24", DAY2, versions=2)
    for event in first + second:
        store.ingest(event)
    failed = store.list_runs(status=RunStatus.FAILED)
    assert [(r["run"], r["state"]) for r in failed] == [(ids1["gold"], RunStatus.FAILED)]
    assert {r["run"] for r in store.list_runs(since="2026-11-24", limit=50)} == set(ids2.values())
    assert [r["run"] for r in store.list_runs("gold", status=RunStatus.SUCCESS)] == [ids2["gold"]]
    with pytest.raises(InvalidTimeError):
        store.list_runs(since="yesterday")


def test_list_datasets_by_layer_tag_and_text_one_page_at_a_time(store):
    for event in two_nights()[0]:
        store.ingest(event)
    store.tag("gold.daily_revenue", ["finance"])
    everything = [d.name for d in store.list_datasets()]
    assert [d.name for d in store.list_datasets(layer="silver")] == [
        n for n in everything if n.startswith("silver.")
    ]
    assert [d.name for d in store.list_datasets(tag="finance")] == ["gold.daily_revenue"]
    assert store.list_datasets(tag="fin") == []  # a tag filter is exact; search finds parts
    assert [d.name for d in store.list_datasets(text="category")] == [
        d.name for d in store.search("category")
    ]
    pages, after = [], None
    while page := store.list_datasets(after=after, limit=4):
        pages.append([d.name for d in page])
        after = (page[-1].name, page[-1].namespace)
    assert [n for p in pages for n in p] == everything and max(len(p) for p in pages) == 4


def test_list_datasets_by_owner(tmp_path):
    catalog = CatalogStore.from_settings(settings_for(tmp_path / "warehouse"))
    for event in two_nights()[0]:
        catalog.ingest(event)
    assert [d.name for d in catalog.list_datasets(owner="ANALYTICS")] == ["gold.daily_revenue"]


def test_errors_carry_the_facts_and_name_no_command_or_option(store):
    for event in two_nights()[0]:
        store.ingest(event)
    with pytest.raises(InvalidTimeError) as bad_time:
        store.graph().diff("gold.daily_revenue", "2026-11-23", "tomorrow")
    assert (bad_time.value.field, bad_time.value.value) == ("after", "tomorrow")
    with pytest.raises(UnknownDatasetError) as unknown:
        store.get_dataset("gold.daily_revenu")
    assert (unknown.value.name, unknown.value.suggestions) == ("gold.daily_revenu", ["gold.daily_revenue"])
    with pytest.raises(UnknownRunError) as run:
        store.get_run("no-such-run")
    assert run.value.run == "no-such-run"
    for error in (bad_time.value, unknown.value, run.value):
        assert "--" not in str(error) and "neurolake" not in str(error)


def test_a_name_in_several_namespaces_needs_a_choice(store):
    for namespace in ("s3://a", "s3://b"):
        for event in run_events("copy", start=T0, outputs=[ds("x.shared", namespace=namespace)]):
            store.ingest(event)
    with pytest.raises(AmbiguousDatasetError) as ambiguous:
        store.get_dataset("x.shared")
    assert ambiguous.value.namespaces == ["s3://a", "s3://b"]
    assert store.get_dataset("x.shared", namespace="s3://b").summary.namespace == "s3://b"


def test_a_catalog_from_before_the_run_index_gets_it_and_run_lists_read_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    CatalogStore(url).close()
    db = sqlite3.connect(tmp_path / "old.db")
    db.execute("DROP INDEX ix_runs_started")  # as a catalog made before migration 4 has it
    db.execute("DELETE FROM schema_migrations WHERE version >= 4")
    db.commit()
    CatalogStore(url).close()
    indexes = {row[1] for row in db.execute("PRAGMA index_list(runs)")}
    assert "ix_runs_started" in indexes
    plan = " ".join(
        row[3]
        for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT runs.id FROM runs JOIN jobs ON jobs.id = runs.job_id "
            "ORDER BY runs.started_at DESC NULLS LAST, runs.id DESC LIMIT 51"
        )
    )
    assert "ix_runs_started" in plan and "TEMP B-TREE" not in plan
