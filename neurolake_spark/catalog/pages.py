"""Paginated, filtered catalog queries for lists (what the HTTP service's list routes call).

Example::

    page = asset_page(store, AssetQuery(layer="silver", tag="pii"), offset=0, limit=50)
    page.items[0].name, page.has_more
    asset_page(store, AssetQuery(text="100%_sure", by="description"))   # % and _ match literally

Every query takes an optional ``scope``, an object with ``namespaces`` (whole namespaces)
and ``tables`` (name patterns with ``*`` and ``?``) that limits what is visible; ``None``
sees everything. Text filters are case-insensitive substrings in which ``%``, ``_`` and
``\\`` are ordinary characters. Pages are ``offset`` / ``limit`` over a stable order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select

from neurolake_spark.catalog import schema as s
from neurolake_spark.catalog.errors import CatalogError
from neurolake_spark.catalog.queries import (
    SEARCH_FIELDS,
    CatalogQueries,
    run_info,
    run_query,
    states_of,
    tags_of,
)
from neurolake_spark.catalog.times import utc_now
from neurolake_spark.run_status import RunStatus


class Scope(Protocol):
    """What a caller may see: whole ``namespaces`` and table name patterns (``tables``)."""

    @property
    def namespaces(self) -> Sequence[str]: ...

    @property
    def tables(self) -> Sequence[str]: ...


@dataclass
class AssetQuery:
    """Filters of an asset list: ``text`` searched in ``by`` (any, name, column, tag, owner, description)."""

    layer: str | None = None
    tag: str | None = None
    owner: str | None = None
    text: str | None = None
    by: str = "any"
    namespace: str | None = None


@dataclass
class AssetRow:
    """A dataset as a list shows it."""

    id: int
    name: str
    namespace: str
    layer: str
    format: str | None
    owner: str | None
    description: str | None
    updated_at: datetime | None
    tags: list[str] = field(default_factory=list)


@dataclass
class Page:
    items: list[Any]
    has_more: bool


def like_pattern(text: str) -> str:
    """``%text%`` for ``LIKE ... ESCAPE '\\'`` with ``%``, ``_`` and ``\\`` in ``text`` taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _glob_to_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def scope_condition(scope: Scope | None) -> ColumnElement[bool] | None:
    """The datasets ``scope`` sees, as a condition on ``datasets`` joined with ``namespaces`` (None: all).

    Name patterns match regardless of case, on SQLite and PostgreSQL alike.
    """
    if scope is None or "*" in scope.tables:
        return None
    d, n = s.datasets.c, s.namespaces.c
    parts = [func.lower(d.name).like(_glob_to_like(p.lower()), escape="\\") for p in scope.tables]
    if scope.namespaces:
        parts.append(n.name.in_(list(scope.namespaces)))
    return or_(*parts) if parts else false()


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    return func.lower(column).like(like_pattern(text), escape="\\")


def _asset_conditions(query: AssetQuery, scope: Scope | None) -> list[ColumnElement[bool]]:
    d, n = s.datasets.c, s.namespaces.c
    conditions: list[ColumnElement[bool]] = []
    visible = scope_condition(scope)
    if visible is not None:
        conditions.append(visible)
    if query.namespace:
        conditions.append(n.name == query.namespace)
    if query.layer:
        conditions.append(d.name.like(_glob_to_like(query.layer) + ".%", escape="\\"))
    if query.tag:
        conditions.append(
            d.id.in_(select(s.dataset_tags.c.dataset_id).where(s.dataset_tags.c.tag == query.tag))
        )
    if query.owner:
        conditions.append(_contains(d.owner, query.owner))
    if query.text:
        if query.by not in SEARCH_FIELDS:
            raise CatalogError(f"cannot search by {query.by!r} (choose one of {', '.join(SEARCH_FIELDS)})")
        text = query.text.strip()
        matches = {
            "name": _contains(d.name, text),
            "owner": _contains(d.owner, text),
            "description": _contains(d.description, text),
            "column": d.id.in_(
                select(s.dataset_columns.c.dataset_id).where(_contains(s.dataset_columns.c.name, text))
            ),
            "tag": d.id.in_(select(s.dataset_tags.c.dataset_id).where(_contains(s.dataset_tags.c.tag, text))),
        }
        conditions.append(or_(*matches.values()) if query.by == "any" else matches[query.by])
    return conditions


def asset_page(
    store: CatalogQueries, query: AssetQuery, scope: Scope | None = None, offset: int = 0, limit: int = 50
) -> Page:
    """One page of datasets matching ``query`` within ``scope``, by name."""
    d, n = s.datasets.c, s.namespaces.c
    statement = (
        select(d.id, d.name, n.name.label("namespace"), d.format, d.owner, d.description, d.updated_at)
        .join(s.namespaces, n.id == d.namespace_id)
        .where(and_(True, *_asset_conditions(query, scope)))
        .order_by(d.name, n.name, d.id)
        .offset(offset)
        .limit(limit + 1)
    )
    with store.db.read() as conn:
        rows = conn.execute(statement).all()
        more, rows = len(rows) > limit, rows[:limit]
        tags = tags_of(conn, [row.id for row in rows]) if rows else {}
    items = [
        AssetRow(
            id=row.id,
            name=row.name,
            namespace=row.namespace,
            layer=layer_of(row.name),
            format=row.format,
            owner=row.owner,
            description=row.description,
            updated_at=row.updated_at,
            tags=tags[row.id],
        )
        for row in rows
    ]
    return Page(items, more)


def visible_names(store: CatalogQueries, scope: Scope | None = None, limit: int = 100_000) -> list[str]:
    """Names of the datasets ``scope`` sees (for did-you-mean suggestions)."""
    d, n = s.datasets.c, s.namespaces.c
    statement = select(d.name).join(s.namespaces, n.id == d.namespace_id).distinct().limit(limit)
    visible = scope_condition(scope)
    if visible is not None:
        statement = statement.where(visible)
    with store.db.read() as conn:
        return list(conn.scalars(statement))


def tag_counts(store: CatalogQueries, scope: Scope | None = None) -> list[tuple[str, int]]:
    """Every tag with the number of visible datasets carrying it, by tag."""
    t, d, n = s.dataset_tags.c, s.datasets.c, s.namespaces.c
    statement = (
        select(t.tag, func.count(func.distinct(t.dataset_id)))
        .join(s.datasets, d.id == t.dataset_id)
        .join(s.namespaces, n.id == d.namespace_id)
        .group_by(t.tag)
        .order_by(t.tag)
    )
    visible = scope_condition(scope)
    if visible is not None:
        statement = statement.where(visible)
    with store.db.read() as conn:
        return [(tag, count) for tag, count in conn.execute(statement)]


def layer_of(name: str) -> str:
    """A dataset's layer: the part of its name before the first dot ("" without one)."""
    return name.split(".", 1)[0] if "." in name else ""


def assets_per_layer(store: CatalogQueries, scope: Scope | None = None) -> dict[str, int]:
    """Visible datasets per layer (:func:`layer_of`)."""
    d, n = s.datasets.c, s.namespaces.c
    statement = select(d.name).join(s.namespaces, n.id == d.namespace_id)
    visible = scope_condition(scope)
    if visible is not None:
        statement = statement.where(visible)
    counts: dict[str, int] = {}
    with store.db.read() as conn:
        for (name,) in conn.execute(statement.execution_options(yield_per=5000)):
            layer = layer_of(name)
            counts[layer] = counts.get(layer, 0) + 1
    return dict(sorted(counts.items()))


def activity_per_day(
    store: CatalogQueries, days: int = 30, now: datetime | None = None
) -> dict[str, dict[str, int]]:
    """Runs started, events received and rows written to ``quarantine.*`` per day, the last ``days`` days."""
    since = (now or utc_now()) - timedelta(days=days)
    r, e, rd, d = s.runs.c, s.events.c, s.run_datasets.c, s.datasets.c
    out: dict[str, dict[str, int]] = {"runs": {}, "events": {}, "quarantined_rows": {}}
    with store.db.read() as conn:
        for day, count in conn.execute(
            select(func.date(r.started_at), func.count())
            .where(r.started_at >= since)
            .group_by(func.date(r.started_at))
        ):
            out["runs"][str(day)] = count
        for day, count in conn.execute(
            select(func.date(e.event_time), func.count())
            .where(e.event_time >= since)
            .group_by(func.date(e.event_time))
        ):
            out["events"][str(day)] = count
        night = func.coalesce(func.date(r.nominal_time), func.date(r.started_at))
        for day, rows in conn.execute(
            select(night, func.sum(rd.row_count))
            .select_from(s.run_datasets)
            .join(s.runs, r.id == rd.run_id)
            .join(s.datasets, d.id == rd.dataset_id)
            .where(
                rd.role == "output", d.name.like("quarantine.%"), r.state == "COMPLETE", r.started_at >= since
            )
            .group_by(night)
        ):
            out["quarantined_rows"][str(day)] = int(rows or 0)
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _run_visible(scope: Scope | None) -> ColumnElement[bool] | None:
    visible = scope_condition(scope)
    if visible is None:
        return None
    rd, d, n = s.run_datasets.c, s.datasets.c, s.namespaces.c
    return exists(
        select(rd.run_id)
        .join(s.datasets, d.id == rd.dataset_id)
        .join(s.namespaces, n.id == d.namespace_id)
        .where(rd.run_id == s.runs.c.id, visible)
    )


def run_page(
    store: CatalogQueries,
    job: str | None = None,
    state: RunStatus | None = None,
    since: datetime | None = None,
    scope: Scope | None = None,
    offset: int = 0,
    limit: int = 50,
) -> Page:
    """Runs newest first, optionally of one job, in one state, started at or after ``since``.
    A scoped caller sees the runs that read or wrote at least one visible dataset."""
    r, j = s.runs.c, s.jobs.c
    conditions: list[ColumnElement[bool]] = []
    if job:
        conditions.append(j.name == job)
    if state is not None:
        conditions.append(r.state.in_(states_of(state)))
    if since is not None:
        conditions.append(r.started_at >= since)
    visible = _run_visible(scope)
    if visible is not None:
        conditions.append(visible)
    statement = (
        run_query()
        .where(and_(True, *conditions))
        .order_by(r.started_at.desc().nulls_last(), r.id.desc())
        .offset(offset)
        .limit(limit + 1)
    )
    with store.db.read() as conn:
        rows = conn.execute(statement).all()
    items = [run_info(row) for row in rows[:limit]]
    return Page(items, len(rows) > limit)


def run_visible(store: CatalogQueries, run_uuid: str, scope: Scope | None = None) -> bool:
    """True when the run exists and ``scope`` sees it (see :func:`run_page`)."""
    statement = select(s.runs.c.id).where(s.runs.c.run_uuid == run_uuid)
    visible = _run_visible(scope)
    if visible is not None:
        statement = statement.where(visible)
    with store.db.read() as conn:
        return conn.scalar(statement) is not None


def job_namespaces(store: CatalogQueries, names: set[str]) -> dict[str, str]:
    """The namespace of each job name (the first one when a name exists in several)."""
    if not names:
        return {}
    j, n = s.jobs.c, s.namespaces.c
    found: dict[str, str] = {}
    with store.db.read() as conn:
        for name, namespace in conn.execute(
            select(j.name, n.name)
            .join(s.namespaces, n.id == j.namespace_id)
            .where(j.name.in_(sorted(names)))
            .order_by(j.id)
        ):
            found.setdefault(name, namespace)
    return found


def find_visible(
    store: CatalogQueries, name: str, namespace: str | None = None, scope: Scope | None = None
) -> list[str]:
    """The namespaces in which a dataset called ``name`` exists and ``scope`` sees it."""
    d, n = s.datasets.c, s.namespaces.c
    statement = select(n.name).join(s.datasets, d.namespace_id == n.id).where(d.name == name).order_by(n.name)
    if namespace:
        statement = statement.where(n.name == namespace)
    visible = scope_condition(scope)
    if visible is not None:
        statement = statement.where(visible)
    with store.db.read() as conn:
        return list(conn.scalars(statement))
