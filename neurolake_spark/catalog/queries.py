"""The catalog's read side: datasets, search, versions, runs, quality results and counts.

Example::

    queries = CatalogQueries(CatalogDatabase(url))
    queries.list_datasets(layer="gold", tag="finance", limit=50)
    queries.search("email", by="column")
    queries.get_dataset("gold.daily_revenue", as_of="2026-11-24").versions
    queries.list_runs(job="silver", status=RunStatus.FAILED, since="2026-11-01")
    queries.get_run(run_id)["outputs"]

Every method reads in one transaction and answers with the plain records of
:mod:`.records` (naive UTC datetimes, :class:`~neurolake_spark.run_status.RunStatus`);
unknown names raise the structured errors of :mod:`.errors`. The CLI and an HTTP API
call these same methods.
"""

from __future__ import annotations

import difflib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    cast,
    func,
    or_,
    select,
    true,
    tuple_,
)

from neurolake_spark.catalog import schema as s
from neurolake_spark.catalog.db import AnyRow, CatalogDatabase
from neurolake_spark.catalog.errors import (
    AmbiguousDatasetError,
    CatalogError,
    UnknownDatasetError,
    UnknownJobError,
    UnknownRunError,
)
from neurolake_spark.catalog.events import EVENT_TYPES, flatten_fields
from neurolake_spark.catalog.records import (
    CatalogStats,
    ColumnInfo,
    ColumnSource,
    DatasetDetail,
    DatasetSummary,
    DatasetVersion,
    InputVersion,
    QualityResult,
    RunDataset,
    RunDetail,
    RunInfo,
    SchemaVersion,
)
from neurolake_spark.catalog.times import optional_time, parse_time
from neurolake_spark.run_status import RunStatus

SEARCH_FIELDS = ("any", "name", "column", "tag", "owner", "description")
COMPLETED = RunStatus.SUCCESS.openlineage  # ``runs.state`` of a run that completed


def active_edges(as_of: datetime | None) -> ColumnElement[bool]:
    """The lineage edges in force at ``as_of`` (now if None)."""
    e = s.lineage_edges.c
    if as_of is None:
        return e.superseded_at.is_(None)
    return and_(e.completed_at <= as_of, or_(e.superseded_at.is_(None), e.superseded_at > as_of))


def find_dataset(
    conn: Connection, name: str, namespace: str | None = None, default_namespace: str | None = None
) -> AnyRow:
    """The dataset ``name`` (``id``, ``name``, ``namespace``), preferring ``default_namespace`` if in several.

    Raises :class:`UnknownDatasetError` (with the closest names) or :class:`AmbiguousDatasetError`.
    """
    d, n = s.datasets.c, s.namespaces.c
    query = (
        select(d.id, d.name, n.name.label("namespace"))
        .join(s.namespaces, n.id == d.namespace_id)
        .where(d.name == name)
        .order_by(n.name)
    )
    if namespace:
        query = query.where(n.name == namespace)
    rows = conn.execute(query).all()
    if len(rows) > 1:
        preferred = [r for r in rows if r.namespace == default_namespace]
        if len(preferred) == 1:
            return preferred[0]
        raise AmbiguousDatasetError(name, [r.namespace for r in rows])
    if not rows:
        known = list(conn.scalars(select(d.name).distinct()))
        raise UnknownDatasetError(name, namespace, difflib.get_close_matches(name, known, n=3))
    return rows[0]


def tags_of(conn: Connection, dataset_ids: list[int]) -> dict[int, list[str]]:
    """The tags of each dataset, sorted."""
    t = s.dataset_tags.c
    tags: dict[int, list[str]] = {i: [] for i in dataset_ids}
    for row in conn.execute(select(t.dataset_id, t.tag).where(t.dataset_id.in_(dataset_ids)).order_by(t.tag)):
        tags[row.dataset_id].append(row.tag)
    return tags


def states_of(status: RunStatus) -> list[str]:
    """The OpenLineage event types stored in ``runs.state`` that mean ``status``."""
    return [t for t in EVENT_TYPES if RunStatus.from_openlineage(t) is status]


class CatalogQueries:
    """Read queries over one catalog database; see the module docstring.

    ``default_namespace`` decides which dataset a bare name means when it exists in
    several namespaces (the pipeline's own lineage namespace).
    """

    def __init__(self, db: CatalogDatabase, default_namespace: str | None = None):
        self.db = db
        self.default_namespace = default_namespace

    # ------------------------------------------------------------ lookups

    def dataset_id(self, name: str, namespace: str | None = None) -> int:
        """The id of a dataset by name (raises :class:`UnknownDatasetError` with suggestions)."""
        with self.db.read() as conn:
            return int(find_dataset(conn, name, namespace, self.default_namespace).id)

    def job_id(self, name: str) -> int:
        """The id of a job by name (raises :class:`UnknownJobError`)."""
        with self.db.read() as conn:
            ids = list(conn.scalars(select(s.jobs.c.id).where(s.jobs.c.name == name)))
            if not ids:
                raise UnknownJobError(name, sorted(conn.scalars(select(s.jobs.c.name).distinct()))[:20])
            return int(ids[0])

    # ----------------------------------------------------------- datasets

    def list_datasets(
        self,
        namespace: str | None = None,
        *,
        layer: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        text: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[DatasetSummary]:
        """Datasets by name (then namespace), optionally filtered and one page at a time.

        ``layer`` is the part of the name before the first dot (``gold``), ``tag`` an exact
        tag, ``owner`` and ``text`` case-insensitive substrings (``text`` as :meth:`search`
        with ``by="any"``). ``after`` is the ``(name, namespace)`` of the last dataset of the
        previous page; ``limit`` the page size.
        """
        d, n = s.datasets.c, s.namespaces.c
        conditions: list[ColumnElement[bool]] = []
        if namespace is not None:
            conditions.append(n.name == namespace)
        if layer is not None:
            conditions.append(d.name.startswith(f"{layer}.", autoescape=True))
        if tag is not None:
            conditions.append(
                d.id.in_(select(s.dataset_tags.c.dataset_id).where(s.dataset_tags.c.tag == tag))
            )
        if owner is not None:
            conditions.append(_contains(d.owner, owner))
        if text is not None:
            conditions.append(_search_condition(text, "any"))
        if after is not None:
            conditions.append(tuple_(d.name, n.name) > tuple_(*after))
        with self.db.read() as conn:
            return self._summaries(conn, and_(true(), *conditions), limit=limit)

    def search(self, text: str, by: str = "any") -> list[DatasetSummary]:
        """Datasets whose name, column, tag, owner or description contains ``text`` (case-insensitive).

        ``by`` limits the search to one of those: ``queries.search("email", by="column")``.
        """
        if by not in SEARCH_FIELDS:
            raise CatalogError(f"cannot search by {by!r} (choose one of {', '.join(SEARCH_FIELDS)})")
        with self.db.read() as conn:
            return self._summaries(conn, _search_condition(text, by))

    def get_dataset(
        self, name: str, namespace: str | None = None, as_of: datetime | str | None = None, limit: int = 50
    ) -> DatasetDetail:
        """One dataset in full: columns, schema versions, versions with their runs and inputs,
        quality results and column lineage of its latest version (all as of ``as_of``)."""
        moment = optional_time(as_of, "as_of")
        with self.db.read() as conn:
            dataset = find_dataset(conn, name, namespace, self.default_namespace)
            return self._detail(conn, dataset.id, moment, limit)

    def dataset_details(
        self, dataset_ids: list[int], as_of: datetime | None = None, limit: int = 20
    ) -> dict[int, DatasetDetail]:
        """:meth:`get_dataset` for many datasets by id (what the HTML drawing shows per node)."""
        with self.db.read() as conn:
            return {i: self._detail(conn, i, as_of, limit) for i in dataset_ids}

    def _summaries(
        self,
        conn: Connection,
        where: ColumnElement[bool],
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> list[DatasetSummary]:
        d, n = s.datasets.c, s.namespaces.c
        query = (
            select(d.id, d.name, n.name.label("namespace"), d.format, d.owner, d.description)
            .join(s.namespaces, n.id == d.namespace_id)
            .where(where)
            .order_by(d.name, n.name)
        )
        if limit:
            query = query.limit(limit)
        rows = conn.execute(query).all()
        ids = [r.id for r in rows]
        if not ids:
            return []
        rd, r = s.run_datasets.c, s.runs.c
        version_query = (
            select(rd.dataset_id, func.count(), func.max(r.ended_at))
            .join(s.runs, r.id == rd.run_id)
            .where(rd.dataset_id.in_(ids), rd.role == "output", r.state == COMPLETED)
            .group_by(rd.dataset_id)
        )
        q = s.quality_results.c
        quality_query = (
            select(q.dataset_id, func.count(), func.sum(cast(q.success, Integer)))
            .where(q.dataset_id.in_(ids))
            .group_by(q.dataset_id)
        )
        if as_of is not None:
            version_query = version_query.where(r.ended_at <= as_of)
            quality_query = quality_query.where(q.recorded_at <= as_of)
        versions = {row[0]: (row[1], row[2]) for row in conn.execute(version_query)}
        quality = {row[0]: (row[1], int(row[2] or 0)) for row in conn.execute(quality_query)}
        tags = tags_of(conn, ids)
        return [
            DatasetSummary(
                id=row.id,
                name=row.name,
                namespace=row.namespace,
                format=row.format,
                owner=row.owner,
                description=row.description,
                tags=tags[row.id],
                versions=versions.get(row.id, (0, None))[0],
                last_updated=versions.get(row.id, (0, None))[1],
                quality_checks=quality.get(row.id, (0, 0))[0],
                quality_passed=quality.get(row.id, (0, 0))[1],
            )
            for row in rows
        ]

    def _detail(self, conn: Connection, dataset_id: int, as_of: datetime | None, limit: int) -> DatasetDetail:
        summary = self._summaries(conn, s.datasets.c.id == dataset_id, as_of)[0]
        schema_versions = _schema_versions(conn, dataset_id, as_of)
        rd, r, j, d = s.run_datasets.c, s.runs.c, s.jobs.c, s.datasets.c
        version_query = (
            select(
                r.id.label("run_id"),
                r.run_uuid,
                j.name.label("job"),
                r.ended_at,
                r.nominal_time,
                r.code_version,
                r.git_sha,
                rd.version,
                rd.row_count,
                rd.size_bytes,
                rd.file_count,
                rd.schema_id,
                rd.column_lineage_id,
            )
            .join(s.runs, r.id == rd.run_id)
            .join(s.jobs, j.id == r.job_id)
            .where(rd.dataset_id == dataset_id, rd.role == "output", r.state == COMPLETED)
            .order_by(r.ended_at.desc())
            .limit(limit)
        )
        if as_of is not None:
            version_query = version_query.where(r.ended_at <= as_of)
        version_rows = conn.execute(version_query).all()
        inputs_by_run: dict[int, list[InputVersion]] = {}
        if version_rows:
            e = s.lineage_edges.c
            for row in conn.execute(
                select(e.run_id, d.name, e.input_version)
                .join(s.datasets, d.id == e.input_dataset_id)
                .where(e.run_id.in_([v.run_id for v in version_rows]), e.output_dataset_id == dataset_id)
                .order_by(d.name)
            ):
                inputs_by_run.setdefault(row.run_id, []).append(
                    {"dataset": row.name, "version": row.input_version}
                )
        versions: list[DatasetVersion] = [
            {
                "version": v.version,
                "run": v.run_uuid,
                "job": v.job,
                "completed": v.ended_at,
                "run_date": v.nominal_time.date().isoformat() if v.nominal_time else None,
                "code_version": _code_text(v.code_version, v.git_sha),
                "rows": v.row_count,
                "bytes": v.size_bytes,
                "files": v.file_count,
                "inputs": inputs_by_run.get(v.run_id, []),
            }
            for v in version_rows
        ]
        latest_with_lineage = next((v for v in version_rows if v.column_lineage_id is not None), None)
        column_lineage = (
            {}
            if latest_with_lineage is None
            else _column_sources(conn, latest_with_lineage.column_lineage_id)
        )
        current_schema = schema_versions[-1]["fields"] if schema_versions else []
        columns: list[ColumnInfo] = [
            {"name": name, "type": spec.get("type"), "description": spec.get("description")}
            for name, spec in flatten_fields(current_schema)
        ]
        quality = _quality_rows(conn, s.quality_results.c.dataset_id == dataset_id, as_of, limit=limit)
        e = s.lineage_edges.c
        active = active_edges(as_of)
        writers = sorted(
            set(
                conn.scalars(
                    select(j.name)
                    .join(s.lineage_edges, e.job_id == j.id)
                    .where(e.output_dataset_id == dataset_id, active)
                )
            )
        )
        readers = sorted(
            set(
                conn.scalars(
                    select(j.name)
                    .join(s.lineage_edges, e.job_id == j.id)
                    .where(e.input_dataset_id == dataset_id, active)
                )
            )
        )
        return DatasetDetail(
            summary, columns, schema_versions, versions, quality, column_lineage, writers, readers
        )

    # ------------------------------------------------------------ quality

    def quality_report(
        self, run_date: str | None = None, dataset: str | None = None, failed_only: bool = False
    ) -> list[QualityResult]:
        """Quality results, newest first; ``run_date`` (YYYY-MM-DD) is the batch date of the run."""
        q = s.quality_results.c
        conditions: list[ColumnElement[bool]] = []
        if run_date:
            day = parse_time(run_date, "run_date", end_of_day=False).date()
            conditions.append(q.run_date == day.isoformat())
        if failed_only:
            conditions.append(q.success.is_(False))
        with self.db.read() as conn:
            if dataset:
                found = find_dataset(conn, dataset, default_namespace=self.default_namespace)
                conditions.append(q.dataset_id == found.id)
            return _quality_rows(conn, and_(true(), *conditions))

    def stats(self) -> CatalogStats:
        """Counts of everything, runs by state, the last event time and the overall quality pass rate."""
        with self.db.read() as conn:

            def count(table: Any) -> int:
                return int(conn.scalar(select(func.count()).select_from(table)) or 0)

            results = count(s.quality_results)
            versions = conn.scalar(
                select(func.count())
                .select_from(s.run_datasets)
                .join(s.runs, s.runs.c.id == s.run_datasets.c.run_id)
                .where(s.run_datasets.c.role == "output", s.runs.c.state == COMPLETED)
            )
            by_state: dict[RunStatus, int] = {}
            for state, number in conn.execute(select(s.runs.c.state, func.count()).group_by(s.runs.c.state)):
                status = RunStatus.from_openlineage(state)
                by_state[status] = by_state.get(status, 0) + number
            passed = conn.scalar(select(func.count()).where(s.quality_results.c.success.is_(True))) or 0
            return {
                "namespaces": count(s.namespaces),
                "datasets": count(s.datasets),
                "jobs": count(s.jobs),
                "runs": count(s.runs),
                "events": count(s.events),
                "quality_results": results,
                "dataset_versions": int(versions or 0),
                "runs_by_state": by_state,
                "last_event": conn.scalar(select(func.max(s.events.c.event_time))),
                "quality_pass_rate": passed / results if results else None,
            }

    # --------------------------------------------------------------- runs

    def list_runs(
        self,
        job: str | None = None,
        limit: int = 20,
        *,
        status: RunStatus | None = None,
        since: datetime | str | None = None,
    ) -> list[RunInfo]:
        """The latest runs (of one job, or all), newest first.

        ``status`` keeps runs in that state; ``since`` (a date or time) runs started then or later.
        """
        r = s.runs.c
        query = run_query().order_by(r.started_at.desc().nulls_last(), r.id.desc()).limit(limit)
        if job:
            query = query.where(r.job_id == self.job_id(job))
        if status is not None:
            query = query.where(r.state.in_(states_of(status)))
        if since is not None:
            query = query.where(r.started_at >= parse_time(since, "since", end_of_day=False))
        with self.db.read() as conn:
            return [run_info(row) for row in conn.execute(query)]

    def get_run(self, run_uuid: str) -> RunDetail:
        """One run: job, state, times, parent and child runs, code version, error, datasets, quality."""
        r = s.runs.c
        with self.db.read() as conn:
            row = conn.execute(run_query().where(r.run_uuid == run_uuid)).one_or_none()
            if row is None:
                raise UnknownRunError(run_uuid)
            children = [
                run_info(c)
                for c in conn.execute(run_query().where(r.parent_run_uuid == run_uuid).order_by(r.started_at))
            ]
            rd, d = s.run_datasets.c, s.datasets.c
            datasets = conn.execute(
                select(rd.role, d.name, rd.version, rd.row_count, rd.size_bytes, rd.file_count)
                .join(s.datasets, d.id == rd.dataset_id)
                .where(rd.run_id == row.id)
                .order_by(rd.role, d.name)
            ).all()

            def of_role(role: str) -> list[RunDataset]:
                return [
                    {
                        "dataset": x.name,
                        "version": x.version,
                        "rows": x.row_count,
                        "bytes": x.size_bytes,
                        "files": x.file_count,
                    }
                    for x in datasets
                    if x.role == role
                ]

            return {
                **run_info(row),
                "children": children,
                "inputs": of_role("input"),
                "outputs": of_role("output"),
                "quality": _quality_rows(conn, s.quality_results.c.run_id == row.id),
            }

    def job_runs(self, job_id: int, as_of: datetime | None = None, limit: int = 10) -> list[RunInfo]:
        """The latest runs of one job started before ``as_of``."""
        r = s.runs.c
        query = run_query().where(r.job_id == job_id).order_by(r.started_at.desc()).limit(limit)
        if as_of is not None:
            query = query.where(r.started_at <= as_of)
        with self.db.read() as conn:
            return [run_info(row) for row in conn.execute(query)]


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    return func.lower(column).like(f"%{text.strip().lower()}%")


def _search_condition(text: str, by: str) -> ColumnElement[bool]:
    d, c, t = s.datasets.c, s.dataset_columns.c, s.dataset_tags.c
    matches = {
        "name": _contains(d.name, text),
        "owner": _contains(d.owner, text),
        "description": _contains(d.description, text),
        "column": d.id.in_(select(c.dataset_id).where(_contains(c.name, text))),
        "tag": d.id.in_(select(t.dataset_id).where(_contains(t.tag, text))),
    }
    return or_(*matches.values()) if by == "any" else matches[by]


def _schema_versions(conn: Connection, dataset_id: int, as_of: datetime | None) -> list[SchemaVersion]:
    sv = s.schema_versions.c
    query = (
        select(sv.id, sv.fields, sv.first_seen_at, sv.first_run_uuid)
        .where(sv.dataset_id == dataset_id)
        .order_by(sv.first_seen_at)
    )
    if as_of is not None:
        query = query.where(sv.first_seen_at <= as_of)
    return [
        {
            "schema_id": row.id,
            "first_seen": row.first_seen_at,
            "first_run": row.first_run_uuid,
            "fields": json.loads(row.fields),
        }
        for row in conn.execute(query)
    ]


def _column_sources(conn: Connection, lineage_id: int) -> dict[str, list[ColumnSource]]:
    f, d = s.column_lineage_fields.c, s.datasets.c
    sources: dict[str, list[ColumnSource]] = {}
    for row in conn.execute(
        select(f.output_field, d.name, f.input_field, f.transformation_type, f.transformation_subtype)
        .join(s.datasets, d.id == f.input_dataset_id)
        .where(f.set_id == lineage_id, f.output_field != "")
        .order_by(f.output_field, d.name, f.input_field)
    ):
        sources.setdefault(row.output_field, []).append(
            {
                "dataset": row.name,
                "column": row.input_field,
                "type": row.transformation_type,
                "subtype": row.transformation_subtype,
            }
        )
    return sources


def _quality_rows(
    conn: Connection, where: ColumnElement[bool], as_of: datetime | None = None, limit: int | None = None
) -> list[QualityResult]:
    q, r, d, j = s.quality_results.c, s.runs.c, s.datasets.c, s.jobs.c
    query = (
        select(
            d.name.label("dataset"),
            q.dataset_version,
            q.expectation,
            q.column_name,
            q.success,
            q.severity,
            q.observed_value,
            q.expected_value,
            q.unexpected_count,
            q.run_date,
            q.recorded_at,
            r.run_uuid,
            j.name.label("job"),
        )
        .join(s.datasets, d.id == q.dataset_id)
        .join(s.runs, r.id == q.run_id)
        .join(s.jobs, j.id == r.job_id)
        .where(where)
        .order_by(q.recorded_at.desc(), d.name, q.expectation)
    )
    if as_of is not None:
        query = query.where(q.recorded_at <= as_of)
    if limit:
        query = query.limit(limit)
    return [
        {
            "dataset": row.dataset,
            "version": row.dataset_version,
            "expectation": row.expectation,
            "column": row.column_name,
            "success": bool(row.success),
            "severity": row.severity,
            "observed_value": row.observed_value,
            "expected_value": row.expected_value,
            "unexpected_count": row.unexpected_count,
            "run_date": row.run_date,
            "recorded": row.recorded_at,
            "run": row.run_uuid,
            "job": row.job,
        }
        for row in conn.execute(query)
    ]


def run_query() -> Select[Any]:
    """The columns a run is shown with (:func:`run_info` turns a row into a :class:`RunInfo`)."""
    r, j = s.runs.c, s.jobs.c
    return select(
        r.id,
        r.run_uuid,
        j.name.label("job"),
        r.state,
        r.nominal_time,
        r.started_at,
        r.ended_at,
        r.parent_run_uuid,
        r.code_version,
        r.git_sha,
        r.error_message,
    ).join(s.jobs, j.id == r.job_id)


def run_info(row: AnyRow) -> RunInfo:
    """A :func:`run_query` row as a :class:`RunInfo`."""
    duration = (row.ended_at - row.started_at).total_seconds() if row.ended_at and row.started_at else None
    return {
        "run": row.run_uuid,
        "job": row.job,
        "state": RunStatus.from_openlineage(row.state),
        "run_date": row.nominal_time.date().isoformat() if row.nominal_time else None,
        "started": row.started_at,
        "ended": row.ended_at,
        "duration_seconds": duration,
        "parent": row.parent_run_uuid,
        "code_version": _code_text(row.code_version, row.git_sha),
        "error": row.error_message,
    }


def _code_text(version: str | None, sha: str | None) -> str | None:
    if version and sha:
        return f"{version} (git {sha[:12]})"
    return version or (f"git {sha[:12]}" if sha else None)
