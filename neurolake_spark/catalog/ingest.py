"""The catalog's write path: one OpenLineage RunEvent in, rows and lineage edges out.

Example::

    writer = EventWriter(db, Definitions(settings))
    writer.ingest(run_event)          # True, or False for an event already stored

Each event is stored exactly once (its identity is run id, event type, event time and
job) and the queryable model is updated in the same short write transaction: the job,
the run (its state only moves forward), each input and output dataset with its schema
version, statistics, column lineage and quality results, and, when the run completes,
its lineage edges (see :mod:`neurolake_spark.catalog.schema`). Events may arrive out of
order; the result is the same.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from neurolake_spark.catalog import schema as s
from neurolake_spark.catalog.curation import Definitions, apply_definition
from neurolake_spark.catalog.db import CatalogDatabase, insert_ignore
from neurolake_spark.catalog.events import (
    DatasetRecord,
    RunEventRecord,
    fingerprint,
    flatten_fields,
    parse_run_event,
)
from neurolake_spark.catalog.times import utc_now
from neurolake_spark.run_status import RunStatus

# How far along a run an OpenLineage event type says it is: a run's stored state only moves forward.
STATE_RANK = {"OTHER": 0, "START": 1, "RUNNING": 2, "COMPLETE": 3, "FAIL": 3, "ABORT": 3}


class EventWriter:
    """Stores RunEvents in one catalog database; see the module docstring.

    New datasets get owner, description and tags from ``definitions``. The ids of
    namespaces and datasets are cached once their transaction has committed.
    """

    def __init__(self, db: CatalogDatabase, definitions: Definitions):
        self.db = db
        self.definitions = definitions
        self._known_ids: dict[tuple[str, ...], int] = {}
        self._new_ids: dict[tuple[str, ...], int] = {}

    def ingest(self, event: dict[str, Any]) -> bool:
        """Store one OpenLineage RunEvent; False if an event with the same identity is already stored.

        Raises :class:`~neurolake_spark.catalog.errors.InvalidEventError` for a malformed event.
        """
        record = parse_run_event(event)
        payload = json.dumps(event, separators=(",", ":"), default=str)
        self._new_ids = {}
        with self.db.write() as conn:
            inserted = conn.execute(
                insert_ignore(conn, s.events).values(
                    identity=record.identity,
                    run_uuid=record.run_uuid,
                    event_type=record.event_type,
                    event_time=record.event_time,
                    job_namespace=record.job_namespace,
                    job_name=record.job_name,
                    received_at=utc_now(),
                    payload=payload,
                )
            ).rowcount
            if inserted:
                job_id = self._job_id(conn, record)
                run_id, state = self._upsert_run(conn, record, job_id)
                for dataset in record.datasets:
                    self._record_dataset(conn, record, run_id, dataset)
                if RunStatus.from_openlineage(state) is RunStatus.SUCCESS:
                    self._derive_edges(conn, run_id)
        self._known_ids.update(self._new_ids)
        return bool(inserted)

    def _namespace_id(self, conn: Connection, name: str) -> int:
        key = ("namespace", name)
        if key not in self._known_ids:
            conn.execute(insert_ignore(conn, s.namespaces).values(name=name))
            self._new_ids[key] = conn.execute(
                select(s.namespaces.c.id).where(s.namespaces.c.name == name)
            ).scalar_one()
        return self._known_ids.get(key) or self._new_ids[key]

    def _job_id(self, conn: Connection, record: RunEventRecord) -> int:
        namespace_id = self._namespace_id(conn, record.job_namespace)
        table = s.jobs
        conn.execute(
            insert_ignore(conn, table).values(
                namespace_id=namespace_id,
                name=record.job_name,
                description=record.job_description,
                created_at=record.event_time,
                updated_at=record.event_time,
            )
        )
        row = conn.execute(
            select(table.c.id, table.c.updated_at).where(
                table.c.namespace_id == namespace_id, table.c.name == record.job_name
            )
        ).one()
        if record.event_time > row.updated_at:
            values: dict[str, Any] = {"updated_at": record.event_time}
            if record.job_description:
                values["description"] = record.job_description
            conn.execute(update(table).where(table.c.id == row.id).values(**values))
        return int(row.id)

    def _upsert_run(self, conn: Connection, record: RunEventRecord, job_id: int) -> tuple[int, str]:
        """Insert or update the run; returns its id and its stored state (an OpenLineage event type)."""
        table = s.runs
        conn.execute(
            insert_ignore(conn, table).values(
                run_uuid=record.run_uuid,
                job_id=job_id,
                state=record.event_type,
                updated_at=record.event_time,
            )
        )
        row = conn.execute(select(table).where(table.c.run_uuid == record.run_uuid)).one()
        values: dict[str, Any] = {}
        newer_state = STATE_RANK[record.event_type] > STATE_RANK[row.state] or (
            STATE_RANK[record.event_type] == STATE_RANK[row.state] and record.event_time >= row.updated_at
        )
        if newer_state:
            values.update(state=record.event_type, updated_at=record.event_time)
        if row.started_at is None or record.event_time < row.started_at:
            values["started_at"] = record.event_time
        if RunStatus.from_openlineage(record.event_type).terminal and newer_state:
            values["ended_at"] = record.event_time
        for name in ("parent_run_uuid", "nominal_time", "code_version", "git_sha", "error_message"):
            if getattr(record, name) is not None:
                values[name] = getattr(record, name)
        if record.run_facets:
            facets = {**json.loads(row.facets or "{}"), **record.run_facets}
            values["facets"] = json.dumps(facets, default=str)
        if values:
            conn.execute(update(table).where(table.c.id == row.id).values(**values))
        return int(row.id), str(values.get("state", row.state))

    def _dataset_id(
        self, conn: Connection, namespace: str, name: str, seen_at: datetime, fmt: str | None = None
    ) -> int:
        key = ("dataset", namespace, name)
        if key in self._known_ids:
            return self._known_ids[key]
        namespace_id = self._namespace_id(conn, namespace)
        table = s.datasets
        created = conn.execute(
            insert_ignore(conn, table).values(
                namespace_id=namespace_id,
                name=name,
                format=fmt,
                created_at=seen_at,
                updated_at=seen_at,
            )
        ).rowcount
        dataset_id: int = conn.execute(
            select(table.c.id).where(table.c.namespace_id == namespace_id, table.c.name == name)
        ).scalar_one()
        if created:
            definition = self.definitions.get(name)
            if definition:
                apply_definition(conn, dataset_id, definition)
        self._new_ids[key] = dataset_id
        return dataset_id

    def _record_dataset(
        self, conn: Connection, record: RunEventRecord, run_id: int, ds: DatasetRecord
    ) -> None:
        dataset_id = self._dataset_id(conn, ds.namespace, ds.name, record.event_time, ds.format)
        table = s.datasets
        current = conn.execute(select(table).where(table.c.id == dataset_id)).one()
        values: dict[str, Any] = {}
        schema_id = None
        if ds.fields is not None:
            schema_id = _schema_id(conn, dataset_id, ds.fields, record)
            if record.event_time >= current.updated_at or current.current_schema_id is None:
                if schema_id != current.current_schema_id:
                    values["current_schema_id"] = schema_id
                    _replace_columns(conn, dataset_id, ds.fields)
        if record.event_time > current.updated_at:
            values["updated_at"] = record.event_time
        if ds.format and not current.format:
            values["format"] = ds.format
        if ds.owners and not current.owner:
            values["owner"] = ", ".join(ds.owners)
        if ds.description and not current.description:
            values["description"] = ds.description
        if values:
            conn.execute(update(table).where(table.c.id == dataset_id).values(**values))
        for tag in ds.tags:
            conn.execute(
                insert_ignore(conn, s.dataset_tags).values(dataset_id=dataset_id, tag=tag, source="event")
            )

        lineage_id = (
            self._column_lineage_id(conn, ds, record.event_time)
            if ds.column_lineage or ds.dataset_dependencies
            else None
        )
        key = {"run_id": run_id, "dataset_id": dataset_id, "role": ds.role}
        details = {
            "version": ds.version,
            "schema_id": schema_id,
            "row_count": ds.row_count,
            "size_bytes": ds.size_bytes,
            "file_count": ds.file_count,
            "column_lineage_id": lineage_id,
            "quality_metrics": None
            if ds.quality_metrics is None
            else json.dumps(ds.quality_metrics, default=str),
        }
        details = {k: v for k, v in details.items() if v is not None}
        conn.execute(insert_ignore(conn, s.run_datasets).values(**key))
        if details:
            rd = s.run_datasets.c
            conn.execute(
                update(s.run_datasets)
                .where(rd.run_id == run_id, rd.dataset_id == dataset_id, rd.role == ds.role)
                .values(**details)
            )
        if ds.assertions:
            _replace_quality(conn, record, run_id, dataset_id, ds)

    def _column_lineage_id(self, conn: Connection, ds: DatasetRecord, seen_at: datetime) -> int:
        items = sorted(
            {
                (
                    f.output_field,
                    f.namespace,
                    f.name,
                    f.input_field,
                    f.transformation_type or "",
                    f.transformation_subtype or "",
                    f.description or "",
                )
                for f in ds.column_lineage
            }
            | {("", ns, name, "", "INDIRECT", "", "") for ns, name in ds.dataset_dependencies}
        )
        digest = fingerprint(items)
        table = s.column_lineage_sets
        created = conn.execute(insert_ignore(conn, table).values(fingerprint=digest)).rowcount
        set_id = conn.execute(select(table.c.id).where(table.c.fingerprint == digest)).scalar_one()
        if created:
            conn.execute(
                s.column_lineage_fields.insert(),
                [
                    {
                        "set_id": set_id,
                        "output_field": out,
                        "input_dataset_id": self._dataset_id(conn, ns, name, seen_at),
                        "input_field": field_,
                        "transformation_type": kind or None,
                        "transformation_subtype": sub or None,
                        "description": text or None,
                    }
                    for out, ns, name, field_, kind, sub, text in items
                ],
            )
        return set_id

    def _derive_edges(self, conn: Connection, run_id: int) -> None:
        """Rebuild the edges of a completed run and mark what they supersede."""
        run = conn.execute(select(s.runs.c.job_id, s.runs.c.ended_at).where(s.runs.c.id == run_id)).one()
        edges = s.lineage_edges
        conn.execute(delete(edges).where(edges.c.run_id == run_id))
        rd = s.run_datasets.c
        rows = conn.execute(
            select(rd.dataset_id, rd.role, rd.version, rd.column_lineage_id).where(rd.run_id == run_id)
        ).all()
        inputs = {r.dataset_id: r.version for r in rows if r.role == "input"}
        outputs = [r for r in rows if r.role == "output"]
        feeds: dict[int | None, dict[int | None, str | None]] = {}
        referenced: set[int] = set()
        for output in outputs:
            sources: set[int] = set()
            if output.column_lineage_id is not None:
                sources = set(
                    conn.scalars(
                        select(s.column_lineage_fields.c.input_dataset_id)
                        .where(s.column_lineage_fields.c.set_id == output.column_lineage_id)
                        .distinct()
                    )
                )
            sources.discard(output.dataset_id)
            referenced |= sources
            chosen: dict[int | None, str | None] = (
                {d: inputs.get(d) for d in sources} if sources else dict(inputs)
            )
            feeds[output.dataset_id] = chosen or {None: None}
        unreferenced: dict[int | None, str | None] = {d: v for d, v in inputs.items() if d not in referenced}
        if unreferenced and all(o.column_lineage_id for o in outputs):
            feeds[None] = unreferenced
        versions = {o.dataset_id: o.version for o in outputs}
        for output_id, feeding in feeds.items():
            same_key = and_(
                edges.c.job_id == run.job_id, edges.c.output_dataset_id.is_not_distinct_from(output_id)
            )
            later = conn.scalar(
                select(func.min(edges.c.completed_at)).where(same_key, edges.c.completed_at > run.ended_at)
            )
            conn.execute(
                update(edges)
                .where(
                    same_key,
                    edges.c.completed_at < run.ended_at,
                    or_(edges.c.superseded_at.is_(None), edges.c.superseded_at > run.ended_at),
                )
                .values(superseded_at=run.ended_at)
            )
            conn.execute(
                edges.insert(),
                [
                    {
                        "run_id": run_id,
                        "job_id": run.job_id,
                        "input_dataset_id": input_id,
                        "input_version": version,
                        "output_dataset_id": output_id,
                        "output_version": versions.get(output_id),
                        "completed_at": run.ended_at,
                        "superseded_at": later,
                    }
                    for input_id, version in feeding.items()
                ],
            )


def _schema_id(
    conn: Connection, dataset_id: int, fields: list[dict[str, Any]], record: RunEventRecord
) -> int:
    table = s.schema_versions
    digest = fingerprint(fields)
    conn.execute(
        insert_ignore(conn, table).values(
            dataset_id=dataset_id,
            fingerprint=digest,
            fields=json.dumps(fields, default=str),
            first_seen_at=record.event_time,
            first_run_uuid=record.run_uuid,
        )
    )
    schema_id: int = conn.execute(
        select(table.c.id).where(table.c.dataset_id == dataset_id, table.c.fingerprint == digest)
    ).scalar_one()
    return schema_id


def _replace_columns(conn: Connection, dataset_id: int, fields: list[dict[str, Any]]) -> None:
    conn.execute(delete(s.dataset_columns).where(s.dataset_columns.c.dataset_id == dataset_id))
    rows = {
        name: {
            "dataset_id": dataset_id,
            "name": name,
            "type": spec.get("type"),
            "description": spec.get("description"),
        }
        for name, spec in flatten_fields(fields)
    }
    if rows:
        conn.execute(s.dataset_columns.insert(), list(rows.values()))


def _replace_quality(
    conn: Connection, record: RunEventRecord, run_id: int, dataset_id: int, ds: DatasetRecord
) -> None:
    table = s.quality_results
    conn.execute(delete(table).where(table.c.run_id == run_id, table.c.dataset_id == dataset_id))
    nominal = conn.scalar(select(s.runs.c.nominal_time).where(s.runs.c.id == run_id))
    run_date = (nominal or record.event_time).date().isoformat()
    conn.execute(
        table.insert(),
        [
            {
                "run_id": run_id,
                "dataset_id": dataset_id,
                "dataset_version": ds.version,
                "expectation": a.expectation,
                "column_name": a.column,
                "success": a.success,
                "severity": a.severity,
                "observed_value": a.observed_value,
                "expected_value": a.expected_value,
                "unexpected_count": a.unexpected_count,
                "run_date": run_date,
                "recorded_at": record.event_time,
            }
            for a in ds.assertions
        ],
    )
