"""Renderers and the auditor CLI (in-process ``neurolake`` calls on a catalog built from test events)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from neurolake_spark.catalog.errors import CatalogError
from neurolake_spark.catalog.render import drawable, layout, render, short_name
from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.catalog.words import describe_transformation
from neurolake_spark.cli import main
from neurolake_spark.cli.display import text_table

from .test_catalog_events import ds, nightly_events, run_events

DAY1 = datetime(2026, 11, 23, 2, tzinfo=UTC)
DAY2 = datetime(2026, 11, 24, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("warehouse")
    catalog = CatalogStore(f"sqlite:///{folder / 'catalog.db'}")
    ids = []
    for events, run_ids in (
        nightly_events("2026-11-23", DAY1),
        nightly_events("2026-11-24", DAY2, with_products=True, versions=2),
    ):
        ids.append(run_ids)
        for event in events:
            catalog.ingest(event)
    catalog.close()
    return folder, ids


@pytest.fixture
def store(warehouse):
    catalog = CatalogStore(f"sqlite:///{warehouse[0] / 'catalog.db'}")
    yield catalog
    catalog.close()


def cli(warehouse, capsys, *argv):
    """Run ``neurolake`` in-process on the test warehouse; returns (exit code, stdout, stderr)."""
    command, *rest = argv
    sub = [rest.pop(0)] if command in ("lineage", "catalog", "runs", "quality") else []
    code = main([command, *sub, "--set", f"storage.warehouse={warehouse[0]}", *rest])
    out, err = capsys.readouterr()
    return code, out, err


def test_html_is_self_contained_with_every_node_and_its_details(store):
    graph = drawable(store.graph().lineage("gold.daily_revenue"))
    html = render(graph, "html", store)
    drawn = re.findall(r'<g class="node[^"]*" data-id="([^"]+)"', html)
    assert sorted(drawn) == sorted(graph.nodes)
    data = json.loads(
        re.search(r'<script type="application/json" id="lineage-data">(.*?)</script>', html, re.S).group(1)
    )
    assert set(data["details"]) == set(graph.nodes)
    gold = data["details"][graph.root]
    assert [v["version"] for v in gold["versions"]] == ["2", "0"]
    assert gold["column_lineage"]["revenue"][0]["how"] == "aggregated from"
    bronze_orders = next(d for d in data["details"].values() if d["title"] == "bronze.orders")
    assert {q["run_date"] for q in bronze_orders["quality_results"]} == {"2026-11-23", "2026-11-24"}
    assert not re.search(r"<(link|img|iframe)\b|<script[^>]+src=|url\(http", html)
    assert "data-ready" in html


def test_as_of_html_shows_only_that_days_versions(store):
    graph = store.graph().lineage("gold.daily_revenue", as_of="2026-11-23")
    data = json.loads(render(graph, "json", store))
    gold = data["details"][graph.root]
    assert [v["version"] for v in gold["versions"]] == ["0"]
    assert "silver.products" not in {n["name"] for n in data["nodes"]}


def test_svg_is_well_formed_xml_with_one_group_per_node(store):
    graph = store.graph().column_lineage("gold.daily_revenue", "revenue")
    svg = ET.fromstring(render(graph, "svg", store))
    groups = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if "node" in g.get("class", "").split()]
    assert len(groups) == len(graph.nodes)
    assert len([p for p in svg.iter("{http://www.w3.org/2000/svg}path") if p.get("class") == "edge"]) == len(
        graph.edges
    )


def test_a_node_is_described_alike_in_diffs_tooltips_and_headings(store):
    graph = drawable(store.graph().upstream("gold.daily_revenue"))
    svg = ET.fromstring(render(graph, "svg", store))
    ns = "{http://www.w3.org/2000/svg}"
    tips = {
        p.find(f"{ns}title").text.split(";")[0] for p in svg.iter(f"{ns}path") if p.get("class") == "edge"
    }
    assert tips == {f"{source} → {target}" for source, target in graph.edge_keys()}
    assert "silver.products → job gold (writing gold.daily_revenue)" in tips
    boxes = {g.get("data-id"): g.find(f"{ns}title").text for g in svg.iter(f"{ns}g") if g.get("data-id")}
    assert boxes == {node_id: node.label for node_id, node in graph.nodes.items()}
    heading = re.search(r"<h1>(.*?)</h1>", render(graph, "html", store)).group(1)
    assert heading.startswith("Lineage of gold.daily_revenue: where it comes from")


def test_layout_keeps_boxes_apart_and_flows_left_to_right(store):
    graph = store.graph().lineage("gold.daily_revenue")
    placed, width, height = layout(graph)
    boxes = list(placed.values())
    for i, a in enumerate(boxes):
        assert a.x >= 0 and a.x + a.width <= width and a.y >= 0 and a.y + a.height <= height
        for b in boxes[i + 1 :]:
            assert (
                a.x + a.width <= b.x or b.x + b.width <= a.x or a.y + a.height <= b.y or b.y + b.height <= a.y
            )
    for edge in graph.edges:
        assert placed[edge.source].x < placed[edge.target].x


def test_drawings_leave_out_jobs_that_only_rewrite_tables(store):
    graph = store.graph().upstream("gold.daily_revenue")
    drawn = drawable(graph)
    hidden = set(graph.nodes) - set(drawn.nodes)
    assert {(graph.nodes[n].name, graph.nodes[n].output) for n in hidden} == {
        ("maintenance", "silver.orders")
    }
    assert {n.name for n in drawn.nodes.values() if n.kind == "dataset"} == graph.dataset_names()
    assert f'data-id="{hidden.pop()}"' not in render(graph, "html", store)
    assert len(json.loads(render(graph, "json", store))["nodes"]) == len(graph.nodes)


def test_dot_and_mermaid_have_every_edge(store):
    graph = drawable(store.graph().upstream("gold.daily_revenue"))
    dot = render(graph, "dot")
    assert dot.startswith("digraph lineage {") and dot.count(" -> ") == len(graph.edges)
    mermaid = render(graph, "mermaid")
    assert mermaid.startswith("flowchart LR") and mermaid.count(" --> ") == len(graph.edges)


def test_hostile_names_are_escaped(tmp_path):
    catalog = CatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    evil = '</script><script>alert("x")</script>'
    for event in run_events(
        "ingest", start=DAY1, inputs=[ds(evil)], outputs=[ds("bronze.t", fields=[(evil, "string")])]
    ):
        catalog.ingest(event)
    graph = catalog.graph().lineage("bronze.t")
    for fmt in ("html", "svg"):
        assert "<script>alert" not in render(graph, fmt, catalog)
    assert 'alert(\\"x\\")' in render(graph, "dot")


def test_unknown_format(store):
    with pytest.raises(CatalogError, match="unknown format 'png'"):
        render(store.graph().upstream("gold.daily_revenue"), "png", store)


def test_plain_words():
    assert describe_transformation("INDIRECT FILTER") == "filters the rows (indirect)"
    assert describe_transformation("DIRECT SOMETHING_NEW") == "direct something new"
    assert short_name("/data/warehouse/silver/orders") == "silver/orders"
    assert short_name("x" * 40).endswith("…") and len(short_name("x" * 40)) == 28
    assert text_table(["a", "bb"], [[None, datetime(2026, 1, 2, 3, 4, 5)]]).splitlines() == [
        "a  bb",
        "-  2026-01-02 03:04:05 UTC",
    ]


def test_cli_lineage_show_to_file_and_stdout(warehouse, capsys, tmp_path):
    target = tmp_path / "gold.html"
    code, out, _ = cli(
        warehouse, capsys, "lineage", "show", "gold.daily_revenue", "--format", "html", "-o", str(target)
    )
    assert code == 0 and out.strip() == f"wrote {target}"
    assert "<svg" in target.read_text()
    code, out, _ = cli(
        warehouse,
        capsys,
        "lineage",
        "show",
        "gold.daily_revenue",
        "--column",
        "revenue",
        "--as-of",
        "2026-11-23",
        "--format",
        "mermaid",
    )
    assert code == 0 and out.startswith("flowchart LR") and "products" not in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ("lineage", "show", "gold.daily_revenu"),
            "unknown table 'gold.daily_revenu'.*did you mean gold.daily_revenue",
        ),
        (
            ("lineage", "show", "gold.daily_revenue", "--as-of", "next week"),
            "--as-of 'next week' is not a time",
        ),
        (("lineage", "show", "gold.daily_revenue", "--column", "nope"), "has no column 'nope'"),
        (("runs", "show", "0000"), "unknown run '0000'"),
        (("catalog", "untag", "gold.daily_revenue", "absent"), "has no tag absent"),
        (("quality", "report", "--date", "yesterday"), "--date 'yesterday' is not a time"),
        (
            ("lineage", "diff", "gold.daily_revenue", "--from", "monday", "--to", "2026-11-24"),
            "--from 'monday' is not a time",
        ),
        (
            ("lineage", "diff", "gold.daily_revenue", "--from", "2026-11-23", "--to", "friday"),
            "--to 'friday' is not a time",
        ),
        (
            ("catalog", "show", "nothing.close"),
            r"^neurolake: error: unknown table 'nothing.close': the catalog has no table of that name "
            r"\(see `neurolake catalog list`\)$",
        ),
        (("runs", "show", "0000"), r"^neurolake: error: unknown run '0000' \(see `neurolake runs list`\)$"),
    ],
)
def test_cli_bad_input_is_one_line(warehouse, capsys, argv, message):
    code, out, err = cli(warehouse, capsys, *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and re.search(message, err)


def test_cli_catalog_runs_and_quality(warehouse, capsys):
    _, ids = warehouse
    code, out, _ = cli(warehouse, capsys, "catalog", "search", "category", "--by", "column")
    assert code == 0 and {line.split()[0] for line in out.splitlines()[1:]} == {
        "raw.products",
        "bronze.products",
        "silver.products",
    }
    code, out, _ = cli(warehouse, capsys, "catalog", "tag", "gold.daily_revenue", "finance")
    assert (code, out.strip()) == (0, "gold.daily_revenue tags: finance")
    code, out, _ = cli(warehouse, capsys, "catalog", "show", "gold.daily_revenue", "--format", "json")
    assert json.loads(out)["summary"]["tags"] == ["finance"]
    cli(warehouse, capsys, "catalog", "untag", "gold.daily_revenue", "finance")
    code, out, _ = cli(warehouse, capsys, "runs", "list", "--job", "gold", "--format", "json")
    assert [r["run"] for r in json.loads(out)] == [ids[1]["gold"], ids[0]["gold"]]
    code, out, _ = cli(warehouse, capsys, "runs", "show", ids[0]["nightly"])
    assert code == 0 and all(ids[0][job] in out for job in ("ingest", "silver", "gold", "maintenance"))
    code, out, _ = cli(warehouse, capsys, "quality", "report", "--date", "2026-11-24", "--format", "json")
    rows = json.loads(out)
    assert (
        rows
        and {r["run_date"] for r in rows} == {"2026-11-24"}
        and {r["run"] for r in rows} == {ids[1]["silver"]}
    )
    code, out, _ = cli(warehouse, capsys, "quality", "report", "--failed")
    assert code == 0 and "FAILED" in out and "passed" not in out.split("\n", 1)[1]
    code, out, _ = cli(
        warehouse,
        capsys,
        "lineage",
        "diff",
        "gold.daily_revenue",
        "--from",
        "2026-11-23",
        "--to",
        "2026-11-24",
    )
    assert code == 0 and "silver.products -> job gold (writing gold.daily_revenue)" in out
    code, out, _ = cli(warehouse, capsys, "lineage", "path", "raw.customers", "bronze.orders")
    assert code == 1 and out.strip() == "no lineage path from raw.customers to bronze.orders"


def test_cli_tells_how_to_choose_among_namespaces(tmp_path, capsys):
    catalog = CatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    for namespace in ("s3://a", "s3://b"):
        for event in run_events("copy", start=DAY1, outputs=[ds("x.shared", namespace=namespace)]):
            catalog.ingest(event)
    catalog.close()
    code, out, err = cli((tmp_path,), capsys, "catalog", "show", "x.shared")
    assert code == 2 and out == ""
    assert err.strip() == (
        "neurolake: error: 'x.shared' exists in several namespaces (s3://a, s3://b); "
        "choose one with --set lineage.namespace=NAMESPACE"
    )
    code, out, _ = cli(
        (tmp_path,), capsys, "catalog", "show", "x.shared", "--set", "lineage.namespace=s3://b"
    )
    assert code == 0 and "namespace s3://b" in out.splitlines()[0]
