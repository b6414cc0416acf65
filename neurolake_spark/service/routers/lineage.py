"""Lineage graphs of an asset, in Marquez's graph shape, and what changed between two times.

``GET /api/v1/catalog/assets/{name}/lineage`` answers ``{"graph": [node, ...], "truncated": bool}``;
each node is ``{"id", "type", "data", "inEdges", "outEdges"}`` with ids
``dataset:<namespace>:<name>``, ``job:<namespace>:<name>`` and
``datasetField:<namespace>:<name>:<field>``, and edges ``{"origin", "destination", ...}``. The
graph comes from :class:`~neurolake_spark.catalog.graph.LineageGraph`, limited to the caller's
tenant and to ``service.graph_node_limit`` nodes nearest the asset (``truncated: true`` then).
Auditor role.
"""

from __future__ import annotations

from collections import deque
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from neurolake_spark.catalog import pages
from neurolake_spark.catalog.graph import Graph
from neurolake_spark.service.deps import Auditor, context
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.resolve import resolve_asset
from neurolake_spark.service.routers.catalog import AssetName, Namespace
from neurolake_spark.service.times import TIME_HELP, TimeQuery, UtcTime, request_time, with_utc

router = APIRouter(prefix="/api/v1/catalog", tags=["lineage"])
DIRECTIONS = {"up": "upstream", "down": "downstream", "both": "both"}
Depth = Annotated[int, Query(ge=1, le=50, description="how many jobs to follow")]


class Edge(BaseModel):
    origin: str
    destination: str
    run: str | None = None
    completed: UtcTime | None = None
    transformation: str | None = None


class Node(BaseModel):
    id: str
    type: Literal["DATASET", "JOB", "DATASET_FIELD"]
    data: dict[str, Any]
    inEdges: list[Edge]
    outEdges: list[Edge]


class LineageGraphOut(BaseModel):
    root: str
    as_of: UtcTime | None
    direction: Literal["up", "down", "both"]
    depth: int
    truncated: bool = Field(description="true when nodes beyond the node limit were left out")
    graph: list[Node]


class LineageDiff(BaseModel):
    before: UtcTime
    after: UtcTime
    added_edges: list[tuple[str, str]]
    removed_edges: list[tuple[str, str]]
    new_versions: list[dict[str, Any]]


def to_marquez(
    graph: Graph, job_namespaces: dict[str, str], scope, limit: int
) -> tuple[str, list[Node], bool]:
    """The graph as Marquez nodes (root id, nodes, truncated), within ``scope`` and ``limit`` nodes."""
    ids: dict[str, str] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for node in graph.nodes.values():
        if node.kind == "job":
            node_id = f"job:{job_namespaces.get(node.name, '')}:{node.name}"
            entry = nodes.setdefault(
                node_id,
                {
                    "type": "JOB",
                    "data": {"name": node.name, "namespace": job_namespaces.get(node.name), "outputs": []},
                },
            )
            if node.output:
                entry["data"]["outputs"].append(node.output)
        elif not scope.sees(node.name, node.namespace):
            continue
        elif node.kind == "column":
            node_id = f"datasetField:{node.namespace}:{node.name}:{node.column}"
            nodes[node_id] = {
                "type": "DATASET_FIELD",
                "data": {"namespace": node.namespace, "dataset": node.name, "field": node.column},
            }
        else:
            node_id = f"dataset:{node.namespace}:{node.name}"
            nodes[node_id] = {
                "type": "DATASET",
                "data": {"namespace": node.namespace, "name": node.name, "version": node.version},
            }
        ids[node.id] = node_id
    edges: dict[tuple[str, str], Edge] = {}
    for edge in graph.edges:
        origin, destination = ids.get(edge.source), ids.get(edge.target)
        if origin in nodes and destination in nodes and (origin, destination) not in edges:
            edges[(origin, destination)] = Edge(
                origin=origin,
                destination=destination,
                run=edge.run,
                completed=edge.completed,
                transformation=edge.transformation,
            )
    linked = {end for pair in edges for end in pair}
    nodes = {k: v for k, v in nodes.items() if v["type"] != "JOB" or k in linked}
    root = ids[graph.root]
    kept, truncated = _nearest(root, nodes, edges, limit)
    out = {
        node_id: Node(
            id=node_id, type=nodes[node_id]["type"], data=nodes[node_id]["data"], inEdges=[], outEdges=[]
        )
        for node_id in kept
    }
    for (origin, destination), edge in edges.items():
        if origin in out and destination in out:
            out[origin].outEdges.append(edge)
            out[destination].inEdges.append(edge)
    return root, list(out.values()), truncated


def _nearest(root: str, nodes: dict, edges: dict, limit: int) -> tuple[list[str], bool]:
    """Up to ``limit`` node ids, nearest to ``root`` first (breadth-first, both directions)."""
    neighbours: dict[str, list[str]] = {}
    for origin, destination in edges:
        neighbours.setdefault(origin, []).append(destination)
        neighbours.setdefault(destination, []).append(origin)
    seen, queue = {root}, deque([root])
    order = []
    while queue and len(order) < limit:
        current = queue.popleft()
        order.append(current)
        for other in sorted(neighbours.get(current, ())):
            if other not in seen and other in nodes:
                seen.add(other)
                queue.append(other)
    return order, len(order) < len(nodes)


@router.get(
    "/assets/{name:path}/lineage/diff",
    response_model=LineageDiff,
    summary="Edges added and removed around an asset between two times (auditor)",
)
async def lineage_diff(
    request: Request,
    principal: Auditor,
    name: AssetName,
    from_: Annotated[str, Query(alias="from", max_length=64, description="the earlier time: " + TIME_HELP)],
    to: Annotated[str, Query(max_length=64, description="the later time")],
    namespace: Namespace = None,
    depth: Depth = 10,
) -> LineageDiff:
    ctx = context(request)
    await resolve_asset(ctx, principal, name, namespace)
    before, after = request_time(from_, "from"), request_time(to, "to")
    if after < before:
        raise Problem("invalid-parameter", "'to' must not be earlier than 'from'")
    diff = await ctx.gate.run(
        "lineage.diff", lambda store: store.graph().diff(name, before, after, depth=depth)
    )
    scope = ctx.scope(principal)

    def visible(label: str) -> bool:
        if label.startswith("job "):
            written = label.rsplit("(writing ", 1)
            return len(written) == 1 or scope.sees(written[1].rstrip(")"))
        return scope.sees(label)

    return LineageDiff(
        before=diff.before,
        after=diff.after,
        added_edges=[e for e in diff.added_edges if all(visible(x) for x in e)],
        removed_edges=[e for e in diff.removed_edges if all(visible(x) for x in e)],
        new_versions=with_utc([v for v in diff.new_versions if scope.sees(v["dataset"])]),
    )


@router.get(
    "/assets/{name:path}/lineage",
    response_model=LineageGraphOut,
    summary="The lineage graph of an asset (or of its columns), as of a time (auditor)",
)
async def lineage(
    request: Request,
    principal: Auditor,
    name: AssetName,
    namespace: Namespace = None,
    direction: Literal["up", "down", "both"] = "both",
    depth: Depth = 10,
    as_of: TimeQuery = None,
    columns: Annotated[bool, Query(description="column-level lineage of every column of the asset")] = False,
    column: Annotated[
        str | None, Query(max_length=500, description="column-level lineage of one column")
    ] = None,
    max_nodes: Annotated[
        int | None, Query(ge=1, le=100_000, description="node cap (service.graph_node_limit)")
    ] = None,
) -> LineageGraphOut:
    ctx = context(request)
    resolved = await resolve_asset(ctx, principal, name, namespace)
    when = request_time(as_of, "as_of")
    limit = min(max_nodes or ctx.settings.service.graph_node_limit, ctx.settings.service.graph_node_limit)
    way = DIRECTIONS[direction]

    def build(store) -> tuple[Graph, dict[str, str]]:
        graph = store.graph()
        if column or columns:
            wanted = (
                [column]
                if column
                else [c["name"] for c in store.get_dataset(name, resolved, as_of=when).columns]
            )
            result = None
            for field in wanted:
                part = graph.column_lineage(name, field, way, depth, when, resolved)
                if result is None:
                    result = part
                else:
                    result.nodes.update(part.nodes)
                    result.edges.extend(part.edges)
            if result is None:
                raise Problem("not-found", f"{name} has no columns recorded")
        else:
            result = graph.lineage(name, way, depth, when, resolved)
        jobs = {n.name for n in result.nodes.values() if n.kind == "job"}
        return result, pages.job_namespaces(store, jobs)

    graph, job_namespaces = await ctx.gate.run("lineage.graph", build)
    root, nodes, truncated = to_marquez(graph, job_namespaces, ctx.scope(principal), limit)
    return LineageGraphOut(
        root=root, as_of=graph.as_of, direction=direction, depth=depth, truncated=truncated, graph=nodes
    )
