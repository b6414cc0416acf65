"""The lineage page: ``/lineage/{name}`` draws a table's graph as of a time, and what changed since
another time; ``.../drawing`` answers the drawing alone (the page's script swaps it in without a
reload), ``.../node`` the details of one box, ``.../export.svg`` and ``.../export.html`` the drawing
and the self-contained report of ``neurolake lineage show --format svg|html``.

The graph comes from :class:`~neurolake_spark.catalog.graph.LineageGraph` (as the API's lineage
route), drawn by the catalog's own renderer (:mod:`neurolake_spark.catalog.render`), so the page,
its SVG export and the CLI's report agree. ``up`` and ``down`` say how many job steps to follow
each way (the page's "one more step" buttons raise them); ``column`` follows one column, ``*`` every
column; ``compare`` draws the union of the graph then and at ``as_of`` with added and removed
edges marked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from neurolake_spark.catalog.graph import Graph
from neurolake_spark.catalog.render import drawable, to_svg
from neurolake_spark.catalog.render import render as render_graph
from neurolake_spark.catalog.times import utc_now
from neurolake_spark.catalog.words import format_time
from neurolake_spark.service.auth import Principal
from neurolake_spark.service.console.base import TEMPLATES, AuditorPage, render, router_for
from neurolake_spark.service.deps import context
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.resolve import resolve_asset
from neurolake_spark.service.routers.lineage import _nearest
from neurolake_spark.service.tenants import TenantScope
from neurolake_spark.service.times import request_time

router = router_for()
Steps = Annotated[int, Query(ge=0, le=50, description="job steps to follow")]
Time = Annotated[str, Query(max_length=64)]
Column = Annotated[str, Query(max_length=500)]


@dataclass
class View:
    """What the page draws: a table, how far each way, one column or all, at a time, compared with another."""

    name: str
    namespace: str
    up: int = 3
    down: int = 3
    column: str = ""
    as_of: datetime | None = None
    compare: datetime | None = None

    def query(self) -> dict[str, str]:
        values = {"up": str(self.up), "down": str(self.down), "column": self.column}
        if self.as_of:
            values["as_of"] = self.as_of.isoformat(timespec="seconds")
        if self.compare:
            values["compare"] = self.compare.isoformat(timespec="seconds")
        return {k: v for k, v in values.items() if v}


def _merge(base: Graph | None, extra: Graph) -> Graph:
    """``base`` with the nodes and edges of ``extra``; ``extra``'s layers are aligned on its root
    (or, when ``base`` lacks that node, on ``base``'s root: the columns of one table sit side by side)."""
    if base is None:
        return extra
    anchor = base.nodes.get(extra.root) or base.nodes[base.root]
    shift = anchor.depth - extra.nodes[extra.root].depth
    for node_id, node in extra.nodes.items():
        if node_id not in base.nodes:
            node.depth += shift
            base.nodes[node_id] = node
    known = {(e.source, e.target) for e in base.edges}
    base.edges += [e for e in extra.edges if (e.source, e.target) not in known]
    return base


def _graph_at(store, view: View, when: datetime | None) -> Graph:
    """The graph of ``view`` at ``when``: ``up`` steps upstream and ``down`` downstream, merged."""
    lineage = store.graph()
    if view.column == "*":
        columns = [
            c["name"] for c in store.get_dataset(view.name, view.namespace, as_of=when, limit=1).columns
        ]
        if not columns:
            raise Problem("not-found", f"{view.name} has no columns recorded")
    else:
        columns = [view.column] if view.column else []
    graph: Graph | None = None
    for direction, steps in (("upstream", view.up), ("downstream", view.down)):
        if not steps:
            continue
        if columns:
            for column in columns:
                part = lineage.column_lineage(view.name, column, direction, steps, when, view.namespace)
                graph = _merge(graph, part)
        else:
            graph = _merge(graph, lineage.lineage(view.name, direction, steps, when, view.namespace))
    assert graph is not None  # _view makes at least one step
    return drawable(graph)


def _scoped(graph: Graph, scope: TenantScope, limit: int) -> tuple[Graph, bool]:
    """``graph`` without datasets the tenant does not see (and jobs left alone), at most ``limit`` nodes."""
    hidden = {
        node_id
        for node_id, node in graph.nodes.items()
        if node.kind != "job" and not scope.sees(node.name, node.namespace)
    }
    edges = [e for e in graph.edges if e.source not in hidden and e.target not in hidden]
    linked = {end for e in edges for end in (e.source, e.target)}
    nodes = {k: v for k, v in graph.nodes.items() if k not in hidden and (v.kind != "job" or k in linked)}
    # every column of the table is a starting point of a column-level view, as the root is
    root = graph.nodes[graph.root]
    starts = {k for k, v in nodes.items() if v.kind == "column" and v.dataset_id == root.dataset_id}
    links: dict[tuple[str, str], Any] = {(e.source, e.target): e for e in edges}
    links.update({(graph.root, start): None for start in starts - {graph.root}})
    kept, truncated = _nearest(graph.root, nodes, links, limit)
    keep = set(kept)
    graph.nodes = {k: v for k, v in nodes.items() if k in keep}
    graph.edges = [e for e in edges if e.source in keep and e.target in keep]
    return graph, truncated


Built = tuple[Graph, dict[Any, str], bool]


def _builder(request: Request, user: Principal, view: View) -> Callable[[Any], Built]:
    """What the gate runs in a worker thread: the drawn graph, its diff marks, and whether it was cut
    at the node limit."""
    ctx = context(request)
    limit = ctx.settings.service.graph_node_limit
    scope = ctx.scope(user)

    def build(store) -> Built:
        now, truncated = _scoped(_graph_at(store, view, view.as_of), scope, limit)
        if view.compare is None:
            return now, {}, truncated
        then, cut = _scoped(_graph_at(store, view, view.compare), scope, limit)
        marks: dict[Any, str] = {}
        for node_id in now.nodes.keys() - then.nodes.keys():
            marks[node_id] = "added"
        for node_id in then.nodes.keys() - now.nodes.keys():
            marks[node_id] = "removed"
        now_edges = {(e.source, e.target) for e in now.edges}
        then_edges = {(e.source, e.target) for e in then.edges}
        for key in now_edges - then_edges:
            marks[key] = "added"
        for key in then_edges - now_edges:
            marks[key] = "removed"
        return _merge(now, then), marks, truncated or cut

    return build


async def _view(
    request: Request, user: Principal, name: str, namespace, up, down, column, as_of, compare
) -> View:
    resolved = await resolve_asset(context(request), user, name, namespace)
    when = request_time(as_of or None, "as_of")
    before = request_time(compare or None, "compare")
    if before is not None and when is not None and when < before:
        raise Problem("invalid-parameter", "the time to compare with must be earlier than the time shown")
    if not up and not down:
        up = 1
    return View(name, resolved, up, down, column.strip(), when, before)


async def _drawing(request: Request, user: Principal, view: View) -> dict[str, Any]:
    ctx = context(request)
    graph, marks, truncated = await ctx.gate.run("console.lineage", _builder(request, user, view))
    added = sum(1 for k, v in marks.items() if isinstance(k, tuple) and v == "added")
    removed = sum(1 for k, v in marks.items() if isinstance(k, tuple) and v == "removed")
    return {
        "svg": Markup(to_svg(graph, marks=marks, standalone=False)),  # autoescaped by its template
        "nodes": len(graph.nodes),
        "tables": sum(1 for n in graph.nodes.values() if n.kind != "job"),
        "jobs": sum(1 for n in graph.nodes.values() if n.kind == "job"),
        "truncated": truncated,
        "added": added,
        "removed": removed,
        "root": graph.root,
        "graph": graph,
    }


def _summary(view: View, drawn: dict[str, Any]) -> str:
    when = f"as of {format_time(view.as_of)}" if view.as_of else "now"
    text = f"{drawn['tables']} table(s) and {drawn['jobs']} job step(s), {when}"
    if view.compare:
        text += (
            f"; since {format_time(view.compare)}: {drawn['added']} link(s) added, {drawn['removed']} removed"
        )
    if drawn["truncated"]:
        text += "; only the nearest boxes are drawn (node limit)"
    return text + "."


@router.get("/lineage")
async def lineage_index(request: Request, user: AuditorPage, table: str = "") -> Response:
    if table.strip():
        return RedirectResponse(f"/lineage/{quote(table.strip())}", status_code=303)
    return render(request, "lineage_index.html.j2")


def _params(up: int, down: int, column: str, as_of: str, compare: str) -> dict[str, Any]:
    return {"up": up, "down": down, "column": column, "as_of": as_of, "compare": compare}


@router.get("/lineage/{name:path}/drawing")
async def lineage_drawing(
    request: Request,
    name: str,
    user: AuditorPage,
    namespace: str | None = None,
    up: Steps = 3,
    down: Steps = 3,
    column: Column = "",
    as_of: Time = "",
    compare: Time = "",
) -> Response:
    view = await _view(request, user, name, namespace, up, down, column, as_of, compare)
    drawn = await _drawing(request, user, view)
    html = TEMPLATES.get_template("lineage_drawing.html.j2").render(
        drawn=drawn, summary=_summary(view, drawn), view=view
    )
    return HTMLResponse(html)


NodeId = Annotated[str, Query(max_length=200, pattern=r"^(dataset|job|column):[0-9]+(:.*)?$")]


async def _node_details(request: Request, user: Principal, node_id: str, when: datetime | None) -> Markup:
    """The details panel of one box (a table, one of its columns, or a job) as of ``when``."""
    ctx = context(request)
    scope = ctx.scope(user)
    kind, number = node_id.split(":")[0], int(node_id.split(":")[1])

    def load(store) -> dict[str, Any]:
        if kind == "job":
            runs = store.job_runs(number, when)
            return {"kind": "job", "job": runs[0]["job"] if runs else None, "runs": runs}
        try:
            detail = store.dataset_details([number], as_of=when)[number]
        except IndexError:  # no dataset has that id
            detail = None
        return {"kind": "dataset", "detail": detail}

    found = await ctx.gate.run("console.lineage.node", load)
    if found["kind"] == "dataset":
        detail = found["detail"]
        if detail is None or not scope.sees(detail.summary.name, detail.summary.namespace):
            raise Problem("not-found", "no such box in this graph")
        found["quality"] = (
            [q for q in detail.quality if q["run"] == detail.quality[0]["run"]] if detail.quality else []
        )
    return Markup(TEMPLATES.get_template("lineage_node.html.j2").render(found=found))


@router.get("/lineage/{name:path}/node")
async def lineage_node(
    request: Request, name: str, user: AuditorPage, id: NodeId = "", as_of: Time = ""
) -> Response:
    return HTMLResponse(await _node_details(request, user, id, request_time(as_of or None, "as_of")))


@router.get("/lineage/{name:path}/export.{kind}")
async def lineage_export(
    request: Request,
    name: str,
    kind: str,
    user: AuditorPage,
    namespace: str | None = None,
    up: Steps = 3,
    down: Steps = 3,
    column: Column = "",
    as_of: Time = "",
    compare: Time = "",
) -> Response:
    if kind not in ("svg", "html"):
        raise Problem("not-found", f"no export as {kind!r}: choose svg or html")
    view = await _view(request, user, name, namespace, up, down, column, as_of, compare)
    ctx = context(request)
    graph, marks, _ = await ctx.gate.run("console.lineage", _builder(request, user, view))
    if kind == "svg":
        body = to_svg(graph, marks=marks)
        media = "image/svg+xml"
    else:
        body = await ctx.gate.run("console.lineage.report", lambda store: render_graph(graph, "html", store))
        media = "text/html; charset=utf-8"
    stamp = (view.as_of or utc_now()).strftime("%Y%m%dT%H%M")
    filename = f"lineage-{name.replace('/', '_')}-{stamp}.{kind}"
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get("/lineage/{name:path}")
async def lineage_page(
    request: Request,
    name: str,
    user: AuditorPage,
    namespace: str | None = None,
    up: Steps = 3,
    down: Steps = 3,
    column: Column = "",
    as_of: Time = "",
    compare: Time = "",
) -> Response:
    ctx = context(request)
    view = await _view(request, user, name, namespace, up, down, column, as_of, compare)
    drawn = await _drawing(request, user, view)
    columns = await ctx.gate.run(
        "console.columns",
        lambda store: [c["name"] for c in store.get_dataset(name, view.namespace, limit=1).columns],
    )
    return render(
        request,
        "lineage.html.j2",
        view=view,
        drawn=drawn,
        root_details=await _node_details(request, user, drawn["root"], view.as_of),
        summary=_summary(view, drawn),
        columns=columns,
        params=_params(up, down, column, as_of, compare),
    )
