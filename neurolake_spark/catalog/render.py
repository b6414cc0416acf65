"""Lineage graphs for people: one self-contained HTML page, SVG, Graphviz DOT, Mermaid, JSON.

Example::

    graph = store.graph().lineage("gold.daily_revenue", as_of="2026-11-24")
    html = render(graph, "html", store)      # open in any browser, no network needed
    Path("lineage.html").write_text(html)

The layout is computed here: nodes sit in columns by their depth (sources left), and
each column is ordered to keep edges short (a few barycenter sweeps). The markup is in
Jinja2 templates shipped with the package (``catalog/templates``: ``lineage.svg.j2``, the
page ``lineage.html.j2`` with its ``lineage.css`` and ``lineage.js``), autoescaped. The
page embeds the SVG drawing, the details of every node as JSON, and the script: clicking
a box shows its versions, runs, schema, column lineage, quality results and code version.
Nothing is loaded from the network. When the script has run, ``<body data-ready="true">``
is set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from neurolake_spark.catalog.errors import CatalogError
from neurolake_spark.catalog.graph import Graph, GraphNode
from neurolake_spark.catalog.queries import CatalogQueries
from neurolake_spark.catalog.times import utc_now
from neurolake_spark.catalog.words import describe_source, describe_transformation, format_time, in_words

FORMATS = ("html", "svg", "dot", "mermaid", "json")
COLUMN_GAP = 260
ROW_GAP = 74
MARGIN = 30
SIZES = {"dataset": (200, 48), "job": (150, 36), "column": (210, 48)}

# The page and the drawing (package data in ``catalog/templates``; the web console reuses them).
TEMPLATES = Environment(
    loader=PackageLoader("neurolake_spark.catalog", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def short_name(name: str, limit: int = 28) -> str:
    """A dataset name that fits a box: the last path segments of a file path, truncated with an ellipsis."""
    if "/" in name:
        name = "/".join(p for p in name.rstrip("/").split("/")[-2:])
    return name if len(name) <= limit else name[: limit - 1] + "…"


def drawable(graph: Graph) -> Graph:
    """``graph`` without the job boxes that only rewrote a table that another job builds from inputs.

    Maintenance (compaction, vacuum) writes new versions of every table from no input;
    drawing one box per table for it would hide the real flow. Those versions stay listed
    in each table's details.
    """
    fed = {e.target for e in graph.edges if graph.nodes[e.source].kind == "dataset"}
    built = {e.target for e in graph.edges if e.source in fed}
    hidden = {
        node_id
        for node_id, node in graph.nodes.items()
        if node.kind == "job"
        and node_id not in fed
        and node_id != graph.root
        and all(e.target in built for e in graph.edges if e.source == node_id)
    }
    if not hidden:
        return graph
    return Graph(
        root=graph.root,
        direction=graph.direction,
        depth=graph.depth,
        as_of=graph.as_of,
        nodes={k: v for k, v in graph.nodes.items() if k not in hidden},
        edges=[e for e in graph.edges if e.source not in hidden],
        column=graph.column,
    )


@dataclass
class Placed:
    node: GraphNode
    x: float
    y: float
    width: int
    height: int


def layout(graph: Graph) -> tuple[dict[str, Placed], int, int]:
    """Positions of every node (top-left corners), and the drawing's width and height."""
    if not graph.nodes:
        return {}, 2 * MARGIN, 2 * MARGIN
    low = min(n.depth for n in graph.nodes.values())
    columns: dict[int, list[str]] = {}
    for node in sorted(graph.nodes.values(), key=lambda n: (n.kind != "dataset", n.name, n.id)):
        columns.setdefault(node.depth - low, []).append(node.id)
    neighbours: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for edge in graph.edges:
        neighbours[edge.source].append(edge.target)
        neighbours[edge.target].append(edge.source)
    rank = {node: i for column in columns.values() for i, node in enumerate(column)}
    order = sorted(columns)
    for sweep in range(6):
        for index in order if sweep % 2 == 0 else reversed(order):
            column = columns[index]

            def barycenter(node: str) -> float:
                linked = [rank[n] for n in neighbours[node]]
                return sum(linked) / len(linked) if linked else rank[node]

            column.sort(key=lambda n: (barycenter(n), rank[n]))
            rank.update({node: i for i, node in enumerate(column)})
    tallest = max(len(c) for c in columns.values())
    placed = {}
    for index, column in columns.items():
        offset = (tallest - len(column)) * ROW_GAP / 2
        for i, node_id in enumerate(column):
            node = graph.nodes[node_id]
            width, height = SIZES[node.kind]
            placed[node_id] = Placed(
                node,
                MARGIN + index * COLUMN_GAP + (SIZES["column"][0] - width) / 2,
                MARGIN + offset + i * ROW_GAP + (SIZES["dataset"][1] - height) / 2,
                width,
                height,
            )
    width = MARGIN * 2 + max(columns) * COLUMN_GAP + SIZES["column"][0]
    height = MARGIN * 2 + (tallest - 1) * ROW_GAP + SIZES["dataset"][1]
    return placed, int(width), int(height)


def collect_details(graph: Graph, store: CatalogQueries) -> dict[str, dict[str, Any]]:
    """What a click on each node shows, as JSON-able dicts with times in UTC words."""
    dataset_ids = {n.dataset_id for n in graph.nodes.values() if n.dataset_id is not None and n.kind != "job"}
    datasets = store.dataset_details(sorted(dataset_ids), as_of=graph.as_of)
    job_ids = {n.job_id for n in graph.nodes.values() if n.job_id is not None}
    job_runs = {job_id: store.job_runs(job_id, graph.as_of) for job_id in job_ids}
    details: dict[str, dict[str, Any]] = {}
    for node in graph.nodes.values():
        if node.kind == "job":
            assert node.job_id is not None  # every job node has one
            details[node.id] = in_words(
                {
                    "kind": "job",
                    "title": f"Job {node.name}",
                    "produces": node.output,
                    "runs": job_runs[node.job_id],
                    "inputs": sorted(
                        {graph.nodes[e.source].name for e in graph.edges if e.target == node.id}
                    ),
                }
            )
            continue
        assert node.dataset_id is not None  # every dataset and column node has one
        detail = datasets[node.dataset_id]
        summary = detail.summary
        latest_checks = [q for q in detail.quality if detail.quality and q["run"] == detail.quality[0]["run"]]
        details[node.id] = in_words(
            {
                "kind": node.kind,
                "title": node.name if node.kind == "dataset" else f"{node.name}.{node.column}",
                "column": node.column,
                "namespace": summary.namespace,
                "format": summary.format,
                "owner": summary.owner,
                "description": summary.description,
                "tags": summary.tags,
                "version": node.version
                if node.version is not None
                else (detail.versions[0]["version"] if detail.versions else None),
                "last_updated": summary.last_updated,
                "quality": {
                    "checks": len(latest_checks),
                    "passed": sum(q["success"] for q in latest_checks),
                    "run_date": latest_checks[0]["run_date"] if latest_checks else None,
                },
                "versions": detail.versions,
                "columns": detail.columns,
                "column_lineage": {
                    column: [{**source, "how": describe_source(source)} for source in sources]
                    for column, sources in detail.column_lineage.items()
                },
                "quality_results": detail.quality,
                "written_by": detail.writers,
                "read_by": detail.readers,
            }
        )
    return details


def _node_caption(node: GraphNode, detail: dict[str, Any] | None) -> tuple[str, str, str]:
    """(title, subtitle, state class) of a box."""
    if node.kind == "job":
        runs = (detail or {}).get("runs") or []
        state = runs[0]["state"] if runs else ""
        return f"⚙ {short_name(node.name, 20)}", state, "failed" if state == "failed" else ""
    title = short_name(node.name) if node.kind == "dataset" else short_name(f"{node.name}", 30)
    parts = []
    if node.kind == "column":
        parts.append(f"column {node.column}")
    version = (detail or {}).get("version", node.version)
    if version is not None and node.kind == "dataset":
        parts.append(f"version {version}")
    quality = (detail or {}).get("quality") or {}
    state = ""
    if quality.get("checks") and node.kind == "dataset":
        failed = quality["checks"] - quality["passed"]
        parts.append(f"{failed} of {quality['checks']} checks failed" if failed else "checks passed")
        state = "warn" if failed else "ok"
    return title, " · ".join(parts), state


def _drawing(
    graph: Graph, details: dict[str, dict[str, Any]] | None, marks: dict[Any, str] | None = None
) -> dict[str, Any]:
    """What ``lineage.svg.j2`` draws: the size, each edge's path and tooltip, each box's place and words.

    ``marks`` adds a class to edges (keyed by ``(source, target)``) and boxes (keyed by node id),
    e.g. ``added`` and ``removed`` in a diff.
    """
    marks = marks or {}
    placed, width, height = layout(graph)
    edges = []
    for edge in graph.edges:
        a, b = placed[edge.source], placed[edge.target]
        x1, y1 = a.x + a.width, a.y + a.height / 2
        x2, y2 = b.x, b.y + b.height / 2
        if x2 <= x1:  # a backward edge (a cycle): loop around below
            x1, x2 = a.x + a.width / 2, b.x + b.width / 2
            y1, y2 = a.y + a.height, b.y + b.height
            bend = max(y1, y2) + ROW_GAP / 2
            path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{bend:.1f} {x2:.1f},{bend:.1f} {x2:.1f},{y2:.1f}"
        else:
            middle = (x1 + x2) / 2
            path = f"M{x1:.1f},{y1:.1f} C{middle:.1f},{y1:.1f} {middle:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        tip = [f"{a.node.label} → {b.node.label}"]
        if edge.transformation:
            tip.append(describe_transformation(edge.transformation))
        if edge.job and graph.column:
            tip.append(f"by job {edge.job}")
        if edge.run:
            tip.append(f"run {edge.run}, completed {format_time(edge.completed)}")
        mark = marks.get((edge.source, edge.target))
        if mark:
            tip.append(mark)
        edges.append(
            {
                "classes": " ".join(c for c in ("edge", mark) if c),
                "path": path,
                "source": edge.source,
                "target": edge.target,
                "tip": "; ".join(tip),
                "label": describe_transformation(edge.transformation)
                if graph.column and edge.transformation
                else None,
                "label_x": f"{(x1 + x2) / 2:.1f}",
                "label_y": f"{(y1 + y2) / 2 - 4:.1f}",
            }
        )
    boxes = []
    for node_id, place in placed.items():
        node = place.node
        title, subtitle, state = _node_caption(node, (details or {}).get(node_id))
        boxes.append(
            {
                "id": node_id,
                "classes": " ".join(
                    c
                    for c in (
                        "node",
                        node.kind,
                        state,
                        "root" if node_id == graph.root else "",
                        marks.get(node_id),
                    )
                    if c
                ),
                "label": node.label,
                "x": f"{place.x:.1f}",
                "y": f"{place.y:.1f}",
                "width": place.width,
                "height": place.height,
                "radius": 18 if node.kind == "job" else 8,
                "center_x": f"{place.x + place.width / 2:.1f}",
                "title_y": f"{place.y + (17 if subtitle else place.height / 2 + 4.5):.1f}",
                "title": title,
                "subtitle": subtitle,
                "subtitle_y": f"{place.y + place.height - 9:.1f}",
            }
        )
    return {"width": width, "height": height, "edges": edges, "boxes": boxes}


def to_svg(
    graph: Graph,
    details: dict[str, dict[str, Any]] | None = None,
    marks: dict[Any, str] | None = None,
    standalone: bool = True,
) -> str:
    """The drawing alone: a standalone SVG document, or (``standalone=False``) an ``<svg>`` element to
    place in a page that links ``lineage-svg.css`` itself (a strict CSP allows no inline style).

    ``marks``: extra classes for edges and boxes, see :func:`_drawing`.
    """
    return TEMPLATES.get_template("lineage.svg.j2").render(
        _drawing(graph, details, marks), standalone=standalone
    )


def _heading(graph: Graph) -> str:
    root = graph.nodes.get(graph.root)
    subject = root.label if root else "lineage"
    when = f"as of {format_time(graph.as_of)}" if graph.as_of else "now (latest runs)"
    what = {
        "upstream": "where it comes from",
        "downstream": "what it feeds",
        "both": "where it comes from and what it feeds",
    }
    return f"Lineage of {subject}: {what[graph.direction]}, {when}"


def to_html(graph: Graph, details: dict[str, dict[str, Any]]) -> str:
    """One self-contained page: the drawing, a legend and a details panel; no network needed."""
    # JSON inside a <script> element: escaping "<" means no "</script>" in a name can end it.
    data = json.dumps({"root": graph.root, "details": details}, default=str).replace("<", "\\u003c")
    return TEMPLATES.get_template("lineage.html.j2").render(
        _drawing(graph, details),
        standalone=True,
        heading=_heading(graph),
        datasets=sum(1 for n in graph.nodes.values() if n.kind != "job"),
        jobs=sum(1 for n in graph.nodes.values() if n.kind == "job"),
        generated=format_time(utc_now()),
        data=Markup(data),
    )


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(graph: Graph) -> str:
    """Graphviz DOT (``dot -Tpng``), left to right."""
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];']
    for node in graph.nodes.values():
        if node.kind == "job":
            attrs = f'label="{_quote(node.name)}", shape=ellipse, style=filled, fillcolor="#f1f5f9"'
        else:
            text = node.name if node.kind == "dataset" else f"{node.name}\\n{node.column}"
            if node.kind == "dataset" and node.version is not None:
                text += f"\\nversion {node.version}"
            fill = "#dbeafe" if node.kind == "dataset" else "#ede9fe"
            label = _quote(text).replace("\\\\n", "\\n")
            attrs = f'label="{label}", shape=box, style="rounded,filled", fillcolor="{fill}"'
        if node.id == graph.root:
            attrs += ", penwidth=3"
        lines.append(f'  "{node.id}" [{attrs}];')
    for edge in graph.edges:
        label = (
            f' [label="{_quote(describe_transformation(edge.transformation))}"]'
            if edge.transformation
            else ""
        )
        lines.append(f'  "{edge.source}" -> "{edge.target}"{label};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: Graph) -> str:
    """A Mermaid flowchart (paste into Markdown that renders Mermaid)."""
    ids = {node_id: f"n{i}" for i, node_id in enumerate(graph.nodes)}
    lines = ["flowchart LR"]
    for node_id, node in graph.nodes.items():
        text = node.name if node.kind != "column" else f"{node.name}.{node.column}"
        if node.kind == "dataset" and node.version is not None:
            text += f"<br/>version {node.version}"
        text = text.replace('"', "#quot;")
        lines.append(f'  {ids[node_id]}(["{text}"])' if node.kind == "job" else f'  {ids[node_id]}["{text}"]')
    for edge in graph.edges:
        label = f"|{describe_transformation(edge.transformation)}|" if edge.transformation else ""
        lines.append(f"  {ids[edge.source]} -->{label} {ids[edge.target]}")
    if graph.root in ids:
        lines.append(f"  style {ids[graph.root]} stroke-width:3px")
    return "\n".join(lines) + "\n"


def render(graph: Graph, fmt: str, store: CatalogQueries | None = None) -> str:
    """``graph`` in one of :data:`FORMATS`; ``html``, ``svg`` and ``json`` show node details from ``store``.

    The drawings (all but ``json``) leave out jobs that only rewrote tables (see :func:`drawable`).
    """
    if fmt not in FORMATS:
        raise CatalogError(f"unknown format {fmt!r} (choose one of {', '.join(FORMATS)})")
    if fmt != "json":
        graph = drawable(graph)
    if fmt == "dot":
        return to_dot(graph)
    if fmt == "mermaid":
        return to_mermaid(graph)
    details = collect_details(graph, store) if store is not None else {}
    if fmt == "svg":
        return to_svg(graph, details)
    if fmt == "json":
        return json.dumps({**in_words(graph.to_dict()), "details": details}, indent=2, default=str) + "\n"
    return to_html(graph, details)
