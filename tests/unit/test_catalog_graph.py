"""Graph queries on a catalog built from test events.

Directions, depth, as-of, supersession, columns, paths and diffs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from neurolake_spark.catalog.errors import CatalogError, UnknownAssetError
from neurolake_spark.catalog.store import CatalogStore

from .test_catalog_events import ds, nightly_events, run_events

DAY1 = datetime(2026, 11, 23, 2, tzinfo=UTC)
DAY2 = datetime(2026, 11, 24, 2, tzinfo=UTC)
DAY3 = datetime(2026, 11, 25, 2, tzinfo=UTC)
CHAIN = {f"{layer}.{source}" for layer in ("raw", "bronze", "silver") for source in ("orders", "customers")}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Day 1: orders + customers. Day 2: products added (gold reads it). Day 3: gold fails."""
    catalog = CatalogStore(f"sqlite:///{tmp_path_factory.mktemp('graph') / 'catalog.db'}")
    for events in (
        nightly_events("2026-11-23", DAY1)[0],
        nightly_events("2026-11-24", DAY2, with_products=True, versions=2)[0],
        nightly_events("2026-11-25", DAY3, fail_gold=True, versions=4)[0],
    ):
        for event in events:
            catalog.ingest(event)
    yield catalog
    catalog.close()


def versions(graph):
    return {n.name: n.version for n in graph.nodes.values() if n.kind == "dataset"}


def test_upstream_now_reaches_every_raw_source(store):
    graph = store.graph().upstream("gold.daily_revenue")
    products = {"raw.products", "bronze.products", "silver.products"}
    assert graph.dataset_names() == CHAIN | products | {"gold.daily_revenue"}
    assert graph.nodes[graph.root].name == "gold.daily_revenue"
    jobs = {(n.name, n.output) for n in graph.nodes.values() if n.kind == "job"}
    assert ("maintenance", "silver.orders") in jobs and ("gold", "gold.daily_revenue") in jobs
    assert ("gold", "gold.customer_ltv") not in jobs


def test_as_of_first_day_is_the_first_days_graph(store):
    graph = store.graph().upstream("gold.daily_revenue", as_of="2026-11-23")
    assert graph.dataset_names() == CHAIN | {"gold.daily_revenue"}
    assert versions(graph)["gold.daily_revenue"] == "0"
    assert versions(graph)["silver.orders"] == "1"  # maintenance ran after silver that night
    day2 = store.graph().upstream("gold.daily_revenue", as_of=DAY2 + timedelta(hours=1))
    assert versions(day2)["gold.daily_revenue"] == "2"


def test_before_any_run_only_the_table_itself(store):
    graph = store.graph().lineage("gold.daily_revenue", as_of="2026-11-01")
    assert list(graph.nodes) == [graph.root] and graph.edges == []


def test_failed_run_keeps_the_previous_runs_edges(store):
    now = store.graph().upstream("gold.daily_revenue", depth=1)
    assert now.dataset_names() == {
        "gold.daily_revenue",
        "silver.orders",
        "silver.customers",
        "silver.products",
    }
    assert versions(now)["gold.daily_revenue"] == "2"


def test_a_later_run_with_fewer_inputs_supersedes_the_edge(tmp_path):
    catalog = CatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    for events in (
        nightly_events("2026-11-23", DAY1, with_products=True)[0],
        nightly_events("2026-11-24", DAY2, versions=2)[0],
    ):
        for event in events:
            catalog.ingest(event)
    graph = catalog.graph()
    assert "silver.products" not in graph.upstream("gold.daily_revenue", depth=1).dataset_names()
    assert (
        "silver.products" in graph.upstream("gold.daily_revenue", depth=1, as_of="2026-11-23").dataset_names()
    )
    diff = graph.diff("gold.daily_revenue", "2026-11-23", "2026-11-24", depth=1)
    assert diff.removed_edges == [("silver.products", "job gold (writing gold.daily_revenue)")]
    assert diff.added_edges == []


def test_depth_limits_the_walk(store):
    graph = store.graph().upstream("gold.daily_revenue", depth=2)
    assert {n.split(".")[0] for n in graph.dataset_names()} == {"gold", "silver", "bronze"}


def test_downstream_of_a_raw_source(store):
    graph = store.graph().downstream("raw.orders")
    assert graph.dataset_names() == {
        "raw.orders",
        "bronze.orders",
        "quarantine.ingest",
        "silver.orders",
        "gold.daily_revenue",
    }


def test_both_directions_from_the_middle(store):
    graph = store.graph().lineage("silver.orders", "both")
    assert {"raw.orders", "gold.daily_revenue"} <= graph.dataset_names()
    assert "silver.customers" not in graph.dataset_names()


def test_job_lineage(store):
    graph = store.graph().job_lineage("silver", depth=1)
    assert graph.nodes[graph.root].name == "silver"
    assert graph.dataset_names() == {
        f"{layer}.{s}" for layer in ("bronze", "silver") for s in ("orders", "customers", "products")
    }
    with pytest.raises(UnknownAssetError, match="unknown job"):
        store.graph().job_lineage("platinum")


def test_column_lineage_upstream_follows_each_column(store):
    graph = store.graph().column_lineage("gold.daily_revenue", "revenue")
    columns = {(n.name, n.column) for n in graph.nodes.values()}
    assert columns == {("gold.daily_revenue", "revenue")} | {
        (f"{layer}.{table}", column)
        for layer in ("raw", "bronze", "silver")
        for table, column in (("orders", "amount"), ("orders", "status"), ("products", "category"))
    }
    into_gold = {
        (graph.nodes[e.source].column, e.transformation)
        for e in graph.edges
        if graph.nodes[e.target].name == "gold.daily_revenue"
    }
    assert into_gold == {
        ("amount", "DIRECT AGGREGATION"),
        ("status", "INDIRECT FILTER"),
        ("category", "INDIRECT GROUP_BY"),
    }
    day1 = store.graph().column_lineage("gold.daily_revenue", "revenue", as_of="2026-11-23")
    assert "silver.products" not in {n.name for n in day1.nodes.values()}


def test_column_lineage_downstream(store):
    graph = store.graph().column_lineage("raw.customers", "country", direction="downstream")
    assert {(n.name, n.column) for n in graph.nodes.values()} == {
        ("raw.customers", "country"),
        ("bronze.customers", "country"),
        ("silver.customers", "country"),
        ("gold.daily_revenue", "country"),
    }


def test_unknown_column_and_table(store):
    with pytest.raises(UnknownAssetError, match="has no column 'revenu'.*revenue"):
        store.graph().column_lineage("gold.daily_revenue", "revenu")
    with pytest.raises(UnknownAssetError, match="unknown table 'gold.nope'"):
        store.graph().upstream("gold.nope")


def test_path_between_datasets(store):
    graph = store.graph().path("raw.orders", "gold.daily_revenue")
    assert [n.name for n in graph.nodes.values() if n.kind == "job"] and len(graph.edges) == 6
    assert graph.dataset_names() == {"raw.orders", "bronze.orders", "silver.orders", "gold.daily_revenue"}
    assert store.graph().path("raw.customers", "bronze.orders") is None
    assert store.graph().path("raw.products", "gold.daily_revenue", as_of="2026-11-23") is None


def test_diff_between_days(store):
    diff = store.graph().diff("gold.daily_revenue", "2026-11-23", "2026-11-24")
    assert ("silver.products", "job gold (writing gold.daily_revenue)") in diff.added_edges
    assert diff.removed_edges == []
    written = {(v["dataset"], v["version"]) for v in diff.new_versions}
    assert ("gold.daily_revenue", "2") in written and ("gold.daily_revenue", "0") not in written
    with pytest.raises(CatalogError, match="must not be earlier"):
        store.graph().diff("gold.daily_revenue", "2026-11-24", "2026-11-23")


def test_bad_arguments(store):
    with pytest.raises(CatalogError, match="not a time"):
        store.graph().upstream("gold.daily_revenue", as_of="soon")
    with pytest.raises(CatalogError, match="depth must be at least 1"):
        store.graph().upstream("gold.daily_revenue", depth=0)
    with pytest.raises(CatalogError, match="direction must be one of"):
        store.graph().lineage("gold.daily_revenue", "sideways")


def test_cycles_do_not_loop(tmp_path):
    catalog = CatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    start = DAY1
    for job, source, target in (("a", "x.one", "x.two"), ("b", "x.two", "x.one")):
        for event in run_events(job, start=start, inputs=[ds(source)], outputs=[ds(target)]):
            catalog.ingest(event)
        start += timedelta(minutes=5)
    graph = catalog.graph().lineage("x.one", depth=50)
    assert graph.dataset_names() == {"x.one", "x.two"} and len(graph.edges) == 4
