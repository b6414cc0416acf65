"""Lineage graph queries: upstream, downstream, column lineage, paths and diffs, as of a time.

Example::

    graph = store.graph()
    g = graph.lineage("gold.daily_revenue", direction="upstream", depth=5, as_of="2026-11-24")
    [n.name for n in g.nodes.values() if n.kind == "dataset"]
    graph.column_lineage("gold.daily_revenue", "revenue")
    graph.path("raw.orders", "gold.daily_revenue")
    graph.diff("gold.daily_revenue", before="2026-11-23", after="2026-11-24")

The graph has dataset nodes and job nodes. A job node stands for one job producing one
dataset (``silver`` writing ``silver.orders``), so the drawing shows exactly which inputs
feed which output. Edges come from the completed runs in force at ``as_of``: for each job
and output, the latest run that completed at or before that time (see
:mod:`neurolake_spark.catalog.schema`). Each level of a traversal is one indexed query.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Select, Table, and_, select

from neurolake_spark.catalog import schema as s
from neurolake_spark.catalog.db import AnyRow
from neurolake_spark.catalog.errors import CatalogError, UnknownAssetError, UnknownColumnError
from neurolake_spark.catalog.queries import CatalogQueries, active_edges
from neurolake_spark.catalog.times import optional_time, parse_time

Direction = Literal["upstream", "downstream", "both"]
DIRECTIONS: tuple[Direction, ...] = ("upstream", "downstream", "both")
NodeKind = Literal["dataset", "job", "column"]
CHUNK = 500


@dataclass
class GraphNode:
    """A dataset, a job producing a dataset, or a dataset's column."""

    id: str
    kind: NodeKind
    name: str
    namespace: str = ""
    dataset_id: int | None = None
    job_id: int | None = None
    output: str | None = None
    column: str | None = None
    version: str | None = None
    depth: int = 0

    @property
    def label(self) -> str:
        """The node in words, the same in diffs, tooltips and headings.

        ``silver.orders``, ``job gold (writing gold.daily_revenue)``,
        ``job audit (reading only)``, ``column revenue of gold.daily_revenue``.
        """
        if self.kind == "job":
            return (
                f"job {self.name} (writing {self.output})"
                if self.output
                else f"job {self.name} (reading only)"
            )
        if self.kind == "column":
            return f"column {self.column} of {self.name}"
        return self.name


@dataclass
class GraphEdge:
    """A data flow between two nodes, from the run in force at the graph's time."""

    source: str
    target: str
    run: str | None = None
    completed: datetime | None = None
    input_version: str | None = None
    output_version: str | None = None
    job: str | None = None
    transformation: str | None = None


@dataclass
class Graph:
    """The answer of a graph query; ``root`` is the id of the node the query started from."""

    root: str
    direction: Direction
    depth: int
    as_of: datetime | None
    nodes: dict[str, GraphNode] = field(default_factory=dict)
    edges: list[GraphEdge] = field(default_factory=list)
    column: str | None = None

    def dataset_names(self) -> set[str]:
        return {n.name for n in self.nodes.values() if n.kind == "dataset"}

    def edge_keys(self) -> set[tuple[str, str]]:
        """Edges by node labels, so graphs of two times compare."""
        return {(self.nodes[e.source].label, self.nodes[e.target].label) for e in self.edges}

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "as_of": self.as_of,
            "column": self.column,
            "nodes": [asdict(n) for n in self.nodes.values()],
            "edges": [asdict(e) for e in self.edges],
        }


@dataclass
class GraphDiff:
    """What changed around a dataset between two times."""

    before: datetime
    after: datetime
    added_edges: list[tuple[str, str]]
    removed_edges: list[tuple[str, str]]
    new_versions: list[dict[str, Any]]


def _chunks(ids: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    items = list(ids)
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LineageGraph:
    """Graph queries over one catalog's :class:`~.queries.CatalogQueries`; see the module docstring."""

    def __init__(self, queries: CatalogQueries):
        self.queries = queries
        self.db = queries.db

    def lineage(
        self,
        name: str,
        direction: Direction = "both",
        depth: int = 10,
        as_of: datetime | str | None = None,
        namespace: str | None = None,
    ) -> Graph:
        """The graph around dataset ``name``: its upstream, downstream or both, ``depth`` jobs deep."""
        _check(direction, depth)
        moment = optional_time(as_of, "as_of")
        root_id = self.queries.dataset_id(name, namespace)
        graph = Graph(root=f"dataset:{root_id}", direction=direction, depth=depth, as_of=moment)
        raw_edges = []
        with self.db.read() as conn:
            if direction in ("upstream", "both"):
                raw_edges += self._walk(conn, {root_id}, "upstream", depth, moment)
            if direction in ("downstream", "both"):
                raw_edges += self._walk(conn, {root_id}, "downstream", depth, moment)
            self._build(conn, graph, raw_edges, {root_id})
        return graph

    def upstream(self, name: str, depth: int = 10, as_of: datetime | str | None = None) -> Graph:
        """Everything ``name`` was built from, ``depth`` jobs back."""
        return self.lineage(name, "upstream", depth, as_of)

    def downstream(self, name: str, depth: int = 10, as_of: datetime | str | None = None) -> Graph:
        """Everything built from ``name``, ``depth`` jobs forward."""
        return self.lineage(name, "downstream", depth, as_of)

    def job_lineage(
        self, job: str, direction: Direction = "both", depth: int = 10, as_of: datetime | str | None = None
    ) -> Graph:
        """The graph around a job: what it read (and their upstream), what it wrote (and their downstream)."""
        _check(direction, depth)
        moment = optional_time(as_of, "as_of")
        job_id = self.queries.job_id(job)
        e = s.lineage_edges.c
        with self.db.read() as conn:
            own = conn.execute(_edge_query().where(e.job_id == job_id, active_edges(moment))).all()
            raw_edges = list(own)
            if direction in ("upstream", "both") and depth > 1:
                inputs = {r.input_dataset_id for r in own if r.input_dataset_id is not None}
                raw_edges += self._walk(conn, inputs, "upstream", depth - 1, moment)
            if direction in ("downstream", "both") and depth > 1:
                outputs = {r.output_dataset_id for r in own if r.output_dataset_id is not None}
                raw_edges += self._walk(conn, outputs, "downstream", depth - 1, moment)
            graph = Graph(root="", direction=direction, depth=depth, as_of=moment)
            self._build(conn, graph, raw_edges, set())
        roots = [n.id for n in graph.nodes.values() if n.kind == "job" and n.job_id == job_id]
        if not roots:
            raise UnknownAssetError(
                f"job '{job}' has no completed run with inputs or outputs{' at that time' if moment else ''}"
            )
        graph.root = roots[0]
        return graph

    def _walk(
        self, conn: Connection, start: set[int], direction: str, depth: int, as_of: datetime | None
    ) -> list[AnyRow]:
        """Breadth-first over lineage_edges, one query per level (and per 500 datasets)."""
        e = s.lineage_edges.c
        near, far = (
            (e.output_dataset_id, "input_dataset_id")
            if direction == "upstream"
            else (e.input_dataset_id, "output_dataset_id")
        )
        seen, frontier, found = set(start), set(start), []
        for _ in range(depth):
            next_frontier: set[int] = set()
            for chunk in _chunks(frontier):
                for row in conn.execute(_edge_query().where(near.in_(chunk), active_edges(as_of))):
                    found.append(row)
                    reached = getattr(row, far)
                    if reached is not None and reached not in seen:
                        seen.add(reached)
                        next_frontier.add(reached)
            if not next_frontier:
                break
            frontier = next_frontier
        return found

    def _build(self, conn: Connection, graph: Graph, raw_edges: list[AnyRow], roots: set[int]) -> None:
        """Turn edge rows into dataset and job nodes with names, versions and run ids."""
        dataset_ids = set(roots)
        job_ids: set[int] = set()
        for row in raw_edges:
            dataset_ids.update(d for d in (row.input_dataset_id, row.output_dataset_id) if d is not None)
            job_ids.add(row.job_id)
        names = self._dataset_names(conn, dataset_ids)
        job_names = self._names(conn, s.jobs, job_ids)
        run_uuids = self._run_uuids(conn, {r.run_id for r in raw_edges})
        for dataset_id in dataset_ids:
            name, namespace = names[dataset_id]
            graph.nodes[f"dataset:{dataset_id}"] = GraphNode(
                id=f"dataset:{dataset_id}",
                kind="dataset",
                name=name,
                namespace=namespace,
                dataset_id=dataset_id,
            )
        seen_edges: set[tuple[str, str]] = set()
        latest_version: dict[int, tuple[datetime, str | None]] = {}

        def add(source: str, target: str, row: AnyRow) -> None:
            if (source, target) in seen_edges:
                return
            seen_edges.add((source, target))
            graph.edges.append(
                GraphEdge(
                    source=source,
                    target=target,
                    run=run_uuids.get(row.run_id),
                    completed=row.completed_at,
                    input_version=row.input_version,
                    output_version=row.output_version,
                    job=job_names.get(row.job_id),
                )
            )

        for row in raw_edges:
            job_node = f"job:{row.job_id}:{row.output_dataset_id or '-'}"
            if job_node not in graph.nodes:
                graph.nodes[job_node] = GraphNode(
                    id=job_node,
                    kind="job",
                    name=job_names[row.job_id],
                    job_id=row.job_id,
                    dataset_id=row.output_dataset_id,
                    output=names[row.output_dataset_id][0] if row.output_dataset_id else None,
                )
            if row.input_dataset_id is not None:
                add(f"dataset:{row.input_dataset_id}", job_node, row)
                latest_version.setdefault(row.input_dataset_id, (datetime.min, row.input_version))
            if row.output_dataset_id is not None:
                add(job_node, f"dataset:{row.output_dataset_id}", row)
                known = latest_version.get(row.output_dataset_id)
                if known is None or known[0] <= row.completed_at:
                    latest_version[row.output_dataset_id] = (row.completed_at, row.output_version)
        for dataset_id, (_, version) in latest_version.items():
            graph.nodes[f"dataset:{dataset_id}"].version = version
        _assign_depths(graph)

    def _dataset_names(self, conn: Connection, ids: set[int]) -> dict[int, tuple[str, str]]:
        d, n = s.datasets.c, s.namespaces.c
        found: dict[int, tuple[str, str]] = {}
        for chunk in _chunks(ids):
            for row in conn.execute(
                select(d.id, d.name, n.name.label("namespace"))
                .join(s.namespaces, n.id == d.namespace_id)
                .where(d.id.in_(chunk))
            ):
                found[row.id] = (row.name, row.namespace)
        return found

    def _names(self, conn: Connection, table: Table, ids: set[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for chunk in _chunks(ids):
            found.update(
                (row.id, row.name)
                for row in conn.execute(select(table.c.id, table.c.name).where(table.c.id.in_(chunk)))
            )
        return found

    def _run_uuids(self, conn: Connection, ids: set[int]) -> dict[int, str]:
        r = s.runs.c
        found: dict[int, str] = {}
        for chunk in _chunks(ids):
            found.update(
                (row.id, row.run_uuid)
                for row in conn.execute(select(r.id, r.run_uuid).where(r.id.in_(chunk)))
            )
        return found

    def column_lineage(
        self,
        name: str,
        column: str,
        direction: Direction = "upstream",
        depth: int = 10,
        as_of: datetime | str | None = None,
        namespace: str | None = None,
    ) -> Graph:
        """Where one column comes from (``upstream``) or what it feeds (``downstream``), column by column."""
        _check(direction, depth)
        moment = optional_time(as_of, "as_of")
        root_id = self.queries.dataset_id(name, namespace)
        with self.db.read() as conn:
            self._check_column(conn, root_id, name, column)
            raw: list[tuple[Any, ...]] = []
            if direction in ("upstream", "both"):
                raw += self._walk_columns(conn, (root_id, column), "upstream", depth, moment)
            if direction in ("downstream", "both"):
                raw += self._walk_columns(conn, (root_id, column), "downstream", depth, moment)
            graph = Graph(
                root=f"column:{root_id}:{column}",
                direction=direction,
                depth=depth,
                as_of=moment,
                column=column,
            )
            dataset_ids = {root_id} | {r[0] for r in raw} | {r[2] for r in raw}
            names = self._dataset_names(conn, dataset_ids)
            job_names = self._names(conn, s.jobs, {r[5] for r in raw})
            run_uuids = self._run_uuids(conn, {r[4] for r in raw})

        def node(dataset_id: int, field_name: str) -> str:
            node_id = f"column:{dataset_id}:{field_name}"
            if node_id not in graph.nodes:
                graph.nodes[node_id] = GraphNode(
                    id=node_id,
                    kind="column",
                    name=names[dataset_id][0],
                    namespace=names[dataset_id][1],
                    dataset_id=dataset_id,
                    column=field_name,
                )
            return node_id

        node(root_id, column)
        seen: set[tuple[Any, ...]] = set()
        for in_ds, in_field, out_ds, out_field, run_id, job_id, kind, subtype, completed in raw:
            key = (in_ds, in_field, out_ds, out_field, job_id)
            if key in seen:
                continue
            seen.add(key)
            graph.edges.append(
                GraphEdge(
                    source=node(in_ds, in_field),
                    target=node(out_ds, out_field),
                    run=run_uuids.get(run_id),
                    completed=completed,
                    job=job_names.get(job_id),
                    transformation=" ".join(t for t in (kind, subtype) if t) or None,
                )
            )
        _assign_depths(graph)
        return graph

    def _check_column(self, conn: Connection, dataset_id: int, name: str, column: str) -> None:
        c, f = s.dataset_columns.c, s.column_lineage_fields.c
        columns = set(conn.scalars(select(c.name).where(c.dataset_id == dataset_id)))
        if column in columns:
            return
        if conn.scalar(
            select(f.input_field).where(f.input_dataset_id == dataset_id, f.input_field == column).limit(1)
        ):
            return
        raise UnknownColumnError(name, column, sorted(columns)[:30])

    def _walk_columns(
        self, conn: Connection, start: tuple[int, str], direction: str, depth: int, as_of: datetime | None
    ) -> list[tuple[Any, ...]]:
        """Column edges ``(in_ds, in_field, out_ds, out_field, run_id, job_id, type, subtype, completed)``."""
        e, rd, f = s.lineage_edges.c, s.run_datasets.c, s.column_lineage_fields.c
        seen, frontier, found = {start}, {start}, []
        for _ in range(depth):
            by_dataset: dict[int, set[str]] = {}
            for dataset_id, field_name in frontier:
                by_dataset.setdefault(dataset_id, set()).add(field_name)
            active_writes = (
                select(e.run_id, e.job_id, e.output_dataset_id, e.completed_at)
                .where(active_edges(as_of))
                .distinct()
            )
            if direction == "upstream":
                writes = active_writes.where(e.output_dataset_id.in_(list(by_dataset))).subquery()
                query = (
                    select(
                        f.input_dataset_id,
                        f.input_field,
                        writes.c.output_dataset_id,
                        f.output_field,
                        writes.c.run_id,
                        writes.c.job_id,
                        f.transformation_type,
                        f.transformation_subtype,
                        writes.c.completed_at,
                    )
                    .select_from(writes)
                    .join(
                        s.run_datasets,
                        and_(
                            rd.run_id == writes.c.run_id,
                            rd.dataset_id == writes.c.output_dataset_id,
                            rd.role == "output",
                        ),
                    )
                    .join(s.column_lineage_fields, f.set_id == rd.column_lineage_id)
                    .where(f.output_field != "")
                )
            else:
                writes = active_writes.subquery()
                query = (
                    select(
                        f.input_dataset_id,
                        f.input_field,
                        rd.dataset_id,
                        f.output_field,
                        rd.run_id,
                        writes.c.job_id,
                        f.transformation_type,
                        f.transformation_subtype,
                        writes.c.completed_at,
                    )
                    .select_from(s.column_lineage_fields)
                    .join(s.run_datasets, and_(rd.column_lineage_id == f.set_id, rd.role == "output"))
                    .join(
                        writes,
                        and_(writes.c.run_id == rd.run_id, writes.c.output_dataset_id == rd.dataset_id),
                    )
                    .where(f.input_dataset_id.in_(list(by_dataset)), f.output_field != "")
                )
            next_frontier: set[tuple[int, str]] = set()
            for result in conn.execute(query):
                row = tuple(result)
                near = (row[2], row[3]) if direction == "upstream" else (row[0], row[1])
                if near[1] not in by_dataset.get(near[0], ()):
                    continue
                found.append(row)
                far = (row[0], row[1]) if direction == "upstream" else (row[2], row[3])
                if far not in seen:
                    seen.add(far)
                    next_frontier.add(far)
            if not next_frontier:
                break
            frontier = next_frontier
        return found

    def path(
        self, source: str, target: str, as_of: datetime | str | None = None, max_depth: int = 50
    ) -> Graph | None:
        """The shortest chain of jobs from dataset ``source`` to dataset ``target``, or None."""
        moment = optional_time(as_of, "as_of")
        start, goal = self.queries.dataset_id(source), self.queries.dataset_id(target)
        e = s.lineage_edges.c
        came_from: dict[int, Any] = {start: None}
        frontier = deque([start])
        with self.db.read() as conn:
            for _ in range(max_depth):
                if goal in came_from or not frontier:
                    break
                level = list(frontier)
                frontier.clear()
                for chunk in _chunks(level):
                    for row in conn.execute(
                        _edge_query().where(e.input_dataset_id.in_(chunk), active_edges(moment))
                    ):
                        reached = row.output_dataset_id
                        if reached is not None and reached not in came_from:
                            came_from[reached] = row
                            frontier.append(reached)
            if goal not in came_from:
                return None
            chain, current = [], goal
            while came_from[current] is not None:
                chain.append(came_from[current])
                current = came_from[current].input_dataset_id
            graph = Graph(root=f"dataset:{start}", direction="downstream", depth=len(chain), as_of=moment)
            self._build(conn, graph, chain[::-1], {start, goal})
        return graph

    def diff(
        self,
        name: str,
        before: datetime | str,
        after: datetime | str,
        direction: Direction = "both",
        depth: int = 10,
    ) -> GraphDiff:
        """Edges added and removed around ``name`` between two times, and the versions written in between."""
        before, after = parse_time(before, "before"), parse_time(after, "after")
        if after < before:
            raise CatalogError("the second time must not be earlier than the first")
        old, new = self.lineage(name, direction, depth, before), self.lineage(name, direction, depth, after)
        ids = {n.dataset_id for g in (old, new) for n in g.nodes.values() if n.kind == "dataset"}
        rd, r, d, j = s.run_datasets.c, s.runs.c, s.datasets.c, s.jobs.c
        versions = []
        with self.db.read() as conn:
            for chunk in _chunks(ids):
                versions += [
                    {
                        "dataset": row.name,
                        "version": row.version,
                        "run": row.run_uuid,
                        "job": row.job,
                        "completed": row.ended_at,
                    }
                    for row in conn.execute(
                        select(d.name, rd.version, r.run_uuid, j.name.label("job"), r.ended_at)
                        .join(s.runs, r.id == rd.run_id)
                        .join(s.datasets, d.id == rd.dataset_id)
                        .join(s.jobs, j.id == r.job_id)
                        .where(
                            rd.dataset_id.in_(chunk),
                            rd.role == "output",
                            r.state == "COMPLETE",
                            r.ended_at > before,
                            r.ended_at <= after,
                        )
                    )
                ]
        versions.sort(key=lambda v: (v["completed"], v["dataset"]))
        old_keys, new_keys = old.edge_keys(), new.edge_keys()
        return GraphDiff(before, after, sorted(new_keys - old_keys), sorted(old_keys - new_keys), versions)


def _edge_query() -> Select[Any]:
    e = s.lineage_edges.c
    return select(
        e.run_id,
        e.job_id,
        e.input_dataset_id,
        e.input_version,
        e.output_dataset_id,
        e.output_version,
        e.completed_at,
    )


def _check(direction: str, depth: int) -> None:
    if direction not in DIRECTIONS:
        raise CatalogError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if depth < 1:
        raise CatalogError(f"depth must be at least 1, not {depth}")


def _assign_depths(graph: Graph) -> None:
    """Layer every node: sources on the left, the root's consumers on the right (longest path)."""
    incoming: dict[str, list[str]] = {n: [] for n in graph.nodes}
    outgoing: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for edge in graph.edges:
        outgoing[edge.source].append(edge.target)
        incoming[edge.target].append(edge.source)
    order, state = [], {}

    def visit(node: str) -> None:  # depth-first topological order; back edges (cycles) are ignored
        stack = [(node, iter(incoming[node]))]
        state[node] = 1
        while stack:
            current, parents = stack[-1]
            parent = next(parents, None)
            if parent is None:
                stack.pop()
                state[current] = 2
                order.append(current)
            elif parent not in state:
                state[parent] = 1
                stack.append((parent, iter(incoming[parent])))

    for node in sorted(graph.nodes):
        if node not in state:
            visit(node)
    position = {n: i for i, n in enumerate(order)}
    for node in order:
        parents = [p for p in incoming[node] if position[p] < position[node]]
        graph.nodes[node].depth = max((graph.nodes[p].depth + 1 for p in parents), default=0)
    for node in reversed(order):  # a source sits just left of its first consumer, not in column 0
        if not incoming[node] and outgoing[node]:
            graph.nodes[node].depth = min(graph.nodes[c].depth for c in outgoing[node]) - 1
