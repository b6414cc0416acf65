"""The catalog after two real nightly runs: the graph from raw to gold, versions, as-of, columns, quality."""

from __future__ import annotations

import pytest

from neurolake_spark.catalog.render import drawable, render
from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.curate import GOLD_LINEAGE
from neurolake_spark.run_status import RunStatus

GOLD = "gold.daily_revenue"


@pytest.fixture(scope="module")
def catalog(nightly_warehouse):
    lh, results = nightly_warehouse
    store = CatalogStore.from_settings(lh.settings, create=False)
    yield store, lh, results
    store.close()


def gold_versions(result):
    """The gold table versions one night's steps reported writing (gold, then maintenance), in order."""
    return [str(o.version) for step in result.steps for o in step.outputs if o.name == GOLD]


def test_graph_reaches_from_gold_back_to_the_raw_sources(catalog):
    store, lh, _ = catalog
    definition = lh.settings.pipeline_definition()
    silver_inputs = {source for sources in GOLD_LINEAGE[GOLD].values() for source, *_ in sources}
    by_silver = {s.silver: name for name, s in definition.sources.items()}
    expected = (
        {GOLD}
        | silver_inputs
        | {definition.sources[by_silver[t]].bronze for t in silver_inputs}
        | {f"raw.{by_silver[t]}" for t in silver_inputs}
    )
    graph = store.graph().upstream(GOLD)
    assert graph.dataset_names() - {"quarantine.ingest"} == expected
    assert {n.name for n in graph.nodes.values() if n.kind == "job"} >= {"ingest", "silver", "gold"}


def test_both_nights_versions_and_as_of_the_first_night(catalog):
    store, _, results = catalog
    first, second = gold_versions(results[0]), gold_versions(results[1])
    now = store.graph().upstream(GOLD)
    assert now.nodes[now.root].version == second[-1]
    assert [v["version"] for v in store.get_dataset(GOLD).versions] == (first + second)[::-1]
    end_of_first = results[0].run.ended_at
    then = store.graph().upstream(GOLD, as_of=end_of_first)
    assert then.nodes[then.root].version == first[-1]
    assert [v["version"] for v in store.get_dataset(GOLD, as_of=end_of_first).versions] == first[::-1]
    silver_orders_then = next(n for n in then.nodes.values() if n.name == "silver.orders")
    silver_orders_now = next(n for n in now.nodes.values() if n.name == "silver.orders")
    assert int(silver_orders_then.version) < int(silver_orders_now.version)
    diff = store.graph().diff(GOLD, end_of_first, results[1].run.ended_at)
    assert {v["version"] for v in diff.new_versions if v["dataset"] == GOLD} == set(second)


def test_column_lineage_of_revenue_reaches_raw_columns(catalog):
    store, _, _ = catalog
    graph = store.graph().column_lineage(GOLD, "revenue")
    columns = {(n.name, n.column) for n in graph.nodes.values()}
    for source, column, *_ in GOLD_LINEAGE[GOLD]["revenue"]:
        assert (source, column) in columns
        assert (source.replace("silver.", "raw."), column) in columns


def test_runs_have_parents_states_and_code_version(catalog):
    store, _, results = catalog
    for result in results:
        nightly = store.get_run(result.run.run_id)
        assert nightly["state"] is RunStatus.SUCCESS and nightly["run_date"] == result.run.run_date
        assert [c["run"] for c in nightly["children"]] == [s.run_id for s in result.steps]
        assert all(c["code_version"] for c in nightly["children"])


def test_quality_results_match_what_the_runs_recorded(catalog):
    store, _, results = catalog
    recorded = [(q.dataset, q.expectation, q.success) for r in results for s in r.steps for q in s.quality]
    stored = [(q["dataset"], q["expectation"], q["success"]) for q in store.quality_report()]
    assert sorted(stored) == sorted(recorded)


def test_html_of_gold_draws_every_node(catalog):
    store, _, _ = catalog
    graph = drawable(store.graph().lineage(GOLD))
    html = render(graph, "html", store)
    assert all(f'data-id="{node_id}"' in html for node_id in graph.nodes)
