"""``CatalogStore``: the lineage catalog in SQLite (embedded default) or PostgreSQL.

Example::

    store = CatalogStore.from_settings(settings)      # settings.catalog_url
    store.ingest(run_event)                            # True, or False for a duplicate
    store.search("revenue")                            # name, column, tag, owner, description
    store.tag("gold.daily_revenue", ["finance"])
    store.graph().upstream("gold.daily_revenue", as_of="2026-11-24")

``ingest`` stores each OpenLineage RunEvent exactly once (its identity is run id, event
type, event time and job) and updates the queryable model in one short transaction.
Several processes may write one SQLite file: the store uses WAL mode, a busy timeout,
and takes the write lock at the start of each write transaction.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    and_,
    cast,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from neurolake_spark.catalog import schema as s
from neurolake_spark.catalog.errors import CatalogError, UnknownAssetError
from neurolake_spark.catalog.events import (
    TERMINAL_STATES,
    DatasetRecord,
    RunEventRecord,
    fingerprint,
    parse_run_event,
    parse_time,
)
from neurolake_spark.errors import ConfigError

log = logging.getLogger(__name__)

STATE_RANK = {"OTHER": 0, "START": 1, "RUNNING": 2, "COMPLETE": 3, "FAIL": 3, "ABORT": 3}
STATE_WORDS = {
    "START": "running",
    "RUNNING": "running",
    "COMPLETE": "completed",
    "FAIL": "failed",
    "ABORT": "aborted",
    "OTHER": "unknown",
}
SEARCH_FIELDS = ("any", "name", "column", "tag", "owner", "description")
BUSY_TIMEOUT_SECONDS = 30


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def format_time(moment: datetime | None) -> str:
    """A stored time as ``2026-11-24 02:13:05 UTC`` (what auditors read)."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class DatasetSummary:
    """A dataset as lists and search results show it."""

    id: int
    name: str
    namespace: str
    format: str | None
    owner: str | None
    description: str | None
    tags: list[str]
    versions: int
    last_updated: datetime | None
    quality_checks: int
    quality_passed: int

    @property
    def quality_pass_rate(self) -> float | None:
        return self.quality_passed / self.quality_checks if self.quality_checks else None


@dataclass
class DatasetDetail:
    """Everything the catalog knows about one dataset (as of a time): what ``catalog show`` prints."""

    summary: DatasetSummary
    columns: list[dict[str, Any]]
    schema_versions: list[dict[str, Any]]
    versions: list[dict[str, Any]]
    quality: list[dict[str, Any]]
    column_lineage: dict[str, list[dict[str, Any]]]
    writers: list[str] = field(default_factory=list)
    readers: list[str] = field(default_factory=list)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    return str(value)


def to_json(value: Any) -> str:
    """Dataclasses, dicts and lists as indented JSON (times in ISO 8601 UTC)."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    return json.dumps(value, indent=2, default=_json_default)


class CatalogStore:
    """The catalog of one environment; see the module docstring."""

    def __init__(self, url: str, settings=None, default_namespace: str | None = None):
        self.url = url
        self.settings = settings
        self.default_namespace = default_namespace
        self.engine = _engine(url)
        self._definitions_cache: dict[str, dict[str, Any]] | None = None
        self._known_ids: dict[tuple[str, ...], int] = {}  # committed namespaces and datasets keep their ids
        self._new_ids: dict[tuple[str, ...], int] = {}
        try:
            with self.read() as conn:
                behind = s.current_version(conn) < s.LATEST_VERSION
            if behind:
                with self.write() as conn:
                    s.migrate(conn)
        except OperationalError as exc:
            raise CatalogError(f"cannot open the catalog at {_safe_url(url)}: {exc.orig}") from None

    @classmethod
    def from_settings(cls, settings, create: bool = True) -> CatalogStore:
        """The catalog at ``settings.catalog_url`` (default ``<warehouse>/catalog.db``).

        With ``create=False`` a missing SQLite file is an error instead of a new empty catalog
        (what read-only commands want).
        """
        url = settings.catalog_url
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///") :])
            if not create and not path.exists():
                raise CatalogError(f"no catalog at {path} yet: run the pipeline (neurolake nightly) first")
            path.parent.mkdir(parents=True, exist_ok=True)
        return cls(url, settings=settings, default_namespace=settings.lineage_namespace)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that holds the write lock from its start (short, please)."""
        with self.engine.connect() as conn:
            conn.execution_options(catalog_write=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242)")
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (one consistent snapshot)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # ---------------------------------------------------------------- ingest

    def ingest(self, event: dict) -> bool:
        """Store one OpenLineage RunEvent; False if an event with the same identity is already stored.

        Raises :class:`~neurolake_spark.catalog.errors.InvalidEventError` for a malformed event.
        """
        record = parse_run_event(event)
        payload = json.dumps(event, separators=(",", ":"), default=str)
        self._new_ids = {}
        with self.write() as conn:
            inserted = conn.execute(
                _insert_ignore(conn, s.events).values(
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
                if state == "COMPLETE":
                    self._derive_edges(conn, run_id)
        self._known_ids.update(self._new_ids)
        return bool(inserted)

    def _namespace_id(self, conn: Connection, name: str) -> int:
        key = ("namespace", name)
        if key not in self._known_ids:
            conn.execute(_insert_ignore(conn, s.namespaces).values(name=name))
            self._new_ids[key] = conn.scalar(select(s.namespaces.c.id).where(s.namespaces.c.name == name))
        return self._known_ids.get(key) or self._new_ids[key]

    def _job_id(self, conn: Connection, record: RunEventRecord) -> int:
        namespace_id = self._namespace_id(conn, record.job_namespace)
        table = s.jobs
        conn.execute(
            _insert_ignore(conn, table).values(
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
            values = {"updated_at": record.event_time}
            if record.job_description:
                values["description"] = record.job_description
            conn.execute(update(table).where(table.c.id == row.id).values(**values))
        return row.id

    def _upsert_run(self, conn: Connection, record: RunEventRecord, job_id: int) -> tuple[int, str]:
        table = s.runs
        conn.execute(
            _insert_ignore(conn, table).values(
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
        if record.event_type in TERMINAL_STATES and newer_state:
            values["ended_at"] = record.event_time
        for name in ("parent_run_uuid", "nominal_time", "code_version", "git_sha", "error_message"):
            if getattr(record, name) is not None:
                values[name] = getattr(record, name)
        if record.run_facets:
            facets = {**json.loads(row.facets or "{}"), **record.run_facets}
            values["facets"] = json.dumps(facets, default=str)
        if values:
            conn.execute(update(table).where(table.c.id == row.id).values(**values))
        return row.id, values.get("state", row.state)

    def _dataset_id(
        self, conn: Connection, namespace: str, name: str, seen_at: datetime, fmt: str | None = None
    ) -> int:
        key = ("dataset", namespace, name)
        if key in self._known_ids:
            return self._known_ids[key]
        namespace_id = self._namespace_id(conn, namespace)
        table = s.datasets
        created = conn.execute(
            _insert_ignore(conn, table).values(
                namespace_id=namespace_id,
                name=name,
                format=fmt,
                created_at=seen_at,
                updated_at=seen_at,
            )
        ).rowcount
        dataset_id = conn.scalar(
            select(table.c.id).where(table.c.namespace_id == namespace_id, table.c.name == name)
        )
        if created:
            definition = self._definitions().get(name)
            if definition:
                self._apply_definition(conn, dataset_id, definition)
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
            schema_id = self._schema_id(conn, dataset_id, ds.fields, record)
            if record.event_time >= current.updated_at or current.current_schema_id is None:
                if schema_id != current.current_schema_id:
                    values["current_schema_id"] = schema_id
                    self._replace_columns(conn, dataset_id, ds.fields)
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
                _insert_ignore(conn, s.dataset_tags).values(dataset_id=dataset_id, tag=tag, source="event")
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
        conn.execute(_insert_ignore(conn, s.run_datasets).values(**key))
        if details:
            rd = s.run_datasets.c
            conn.execute(
                update(s.run_datasets)
                .where(rd.run_id == run_id, rd.dataset_id == dataset_id, rd.role == ds.role)
                .values(**details)
            )
        if ds.assertions:
            self._replace_quality(conn, record, run_id, dataset_id, ds)

    def _schema_id(
        self, conn: Connection, dataset_id: int, fields: list[dict], record: RunEventRecord
    ) -> int:
        table = s.schema_versions
        digest = fingerprint(fields)
        conn.execute(
            _insert_ignore(conn, table).values(
                dataset_id=dataset_id,
                fingerprint=digest,
                fields=json.dumps(fields, default=str),
                first_seen_at=record.event_time,
                first_run_uuid=record.run_uuid,
            )
        )
        return conn.scalar(
            select(table.c.id).where(table.c.dataset_id == dataset_id, table.c.fingerprint == digest)
        )

    def _replace_columns(self, conn: Connection, dataset_id: int, fields: list[dict]) -> None:
        conn.execute(delete(s.dataset_columns).where(s.dataset_columns.c.dataset_id == dataset_id))
        rows = {}
        for name, spec in _flatten_fields(fields):
            rows[name] = {
                "dataset_id": dataset_id,
                "name": name,
                "type": spec.get("type"),
                "description": spec.get("description"),
            }
        if rows:
            conn.execute(s.dataset_columns.insert(), list(rows.values()))

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
        created = conn.execute(_insert_ignore(conn, table).values(fingerprint=digest)).rowcount
        set_id = conn.scalar(select(table.c.id).where(table.c.fingerprint == digest))
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

    def _replace_quality(
        self, conn: Connection, record: RunEventRecord, run_id: int, dataset_id: int, ds: DatasetRecord
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
            sources = set()
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
            chosen = {d: inputs.get(d) for d in sources} if sources else dict(inputs)
            feeds[output.dataset_id] = chosen or {None: None}
        unreferenced = {d: v for d, v in inputs.items() if d not in referenced}
        if unreferenced and all(o.column_lineage_id for o in outputs):
            feeds[None] = unreferenced
        versions = {o.dataset_id: o.version for o in outputs}
        for output_id, sources in feeds.items():
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
                    for input_id, version in sources.items()
                ],
            )

    # ----------------------------------------------------- definitions, tags

    def _definitions(self) -> dict[str, dict[str, Any]]:
        """Owner, description, tags and format per dataset name from the pipeline definition."""
        if self._definitions_cache is None:
            self._definitions_cache = {}
            if self.settings is not None:
                try:
                    definition = self.settings.pipeline_definition()
                except ConfigError as exc:
                    log.warning("catalog: pipeline definition not applied: %s", exc)
                    return self._definitions_cache
                for name, table in definition.tables.items():
                    self._definitions_cache[name] = {
                        "owner": table.owner,
                        "description": table.description,
                        "tags": list(table.tags),
                        "format": table.format,
                    }
                for name, source in definition.sources.items():
                    bronze = definition.tables[source.bronze]
                    self._definitions_cache[f"raw.{name}"] = {
                        "owner": bronze.owner,
                        "description": source.description or f"Raw {name} files.",
                        "tags": ["raw"],
                        "format": source.format,
                    }
        return self._definitions_cache

    def _apply_definition(self, conn: Connection, dataset_id: int, definition: dict[str, Any]) -> None:
        values = {k: definition[k] for k in ("owner", "description", "format") if definition.get(k)}
        if values:
            conn.execute(update(s.datasets).where(s.datasets.c.id == dataset_id).values(**values))
        tags = s.dataset_tags
        conn.execute(delete(tags).where(tags.c.dataset_id == dataset_id, tags.c.source == "definition"))
        for tag in definition["tags"]:
            conn.execute(
                _insert_ignore(conn, tags).values(dataset_id=dataset_id, tag=tag, source="definition")
            )

    def sync_definitions(self, settings=None) -> int:
        """Copy owners, descriptions and tags from the pipeline definition onto known datasets.

        Returns how many datasets changed (nothing is written when none did). Tags that came from the definition and
        are no longer in it are removed; tags added with :meth:`tag` stay.
        """
        if settings is not None:
            self.settings = settings
            self._definitions_cache = None
        definitions = self._definitions()
        d = s.datasets.c
        with self.read() as conn:
            rows = conn.execute(
                select(d.id, d.name, d.owner, d.description, d.format).where(d.name.in_(list(definitions)))
            ).all()
            tags = conn.execute(
                select(s.dataset_tags.c.dataset_id, s.dataset_tags.c.tag).where(
                    s.dataset_tags.c.source == "definition"
                )
            ).all()
        current_tags: dict[int, set[str]] = {}
        for dataset_id, tag in tags:
            current_tags.setdefault(dataset_id, set()).add(tag)
        stale = [
            row
            for row in rows
            if any(
                definitions[row.name].get(k) and definitions[row.name][k] != getattr(row, k)
                for k in ("owner", "description", "format")
            )
            or set(definitions[row.name]["tags"]) != current_tags.get(row.id, set())
        ]
        if stale:
            with self.write() as conn:
                for row in stale:
                    self._apply_definition(conn, row.id, definitions[row.name])
        return len(stale)

    def tag(self, name: str, tags: list[str], namespace: str | None = None) -> list[str]:
        """Add tags to a dataset; returns its tags afterwards."""
        clean = _clean_tags(tags)
        with self.write() as conn:
            dataset_id = self._find_dataset(conn, name, namespace).id
            for tag in clean:
                conn.execute(
                    _insert_ignore(conn, s.dataset_tags).values(dataset_id=dataset_id, tag=tag, source="user")
                )
            return self._tags_of(conn, [dataset_id])[dataset_id]

    def untag(self, name: str, tags: list[str], namespace: str | None = None) -> list[str]:
        """Remove tags from a dataset; returns its tags afterwards. Unknown tags are an error."""
        clean = _clean_tags(tags)
        with self.write() as conn:
            dataset_id = self._find_dataset(conn, name, namespace).id
            present = set(self._tags_of(conn, [dataset_id])[dataset_id])
            missing = [t for t in clean if t not in present]
            if missing:
                raise UnknownAssetError(
                    f"{name} has no tag {', '.join(missing)} (its tags: {', '.join(sorted(present)) or 'none'})"
                )
            conn.execute(
                delete(s.dataset_tags).where(
                    s.dataset_tags.c.dataset_id == dataset_id, s.dataset_tags.c.tag.in_(clean)
                )
            )
            return self._tags_of(conn, [dataset_id])[dataset_id]

    # ----------------------------------------------------------------- reads

    def _find_dataset(self, conn: Connection, name: str, namespace: str | None = None):
        d, n = s.datasets.c, s.namespaces.c
        query = (
            select(d.id, d.name, n.name.label("namespace"))
            .join(s.namespaces, n.id == d.namespace_id)
            .where(d.name == name)
        )
        if namespace:
            query = query.where(n.name == namespace)
        rows = conn.execute(query).all()
        if len(rows) > 1:
            preferred = [r for r in rows if r.namespace == self.default_namespace]
            if len(preferred) == 1:
                return preferred[0]
            spaces = ", ".join(r.namespace for r in rows)
            raise CatalogError(
                f"'{name}' exists in several namespaces ({spaces}); choose one with --namespace"
            )
        if not rows:
            known = list(conn.scalars(select(d.name).distinct()))
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else " (see `neurolake catalog list`)"
            where = f" in namespace {namespace}" if namespace else ""
            raise UnknownAssetError(
                f"unknown table '{name}'{where}: the catalog has no dataset of that name{hint}"
            )
        return rows[0]

    def dataset_id(self, name: str, namespace: str | None = None) -> int:
        """The id of a dataset by name (raises UnknownAssetError with suggestions)."""
        with self.read() as conn:
            return self._find_dataset(conn, name, namespace).id

    def job_id(self, name: str) -> int:
        """The id of a job by name (raises UnknownAssetError)."""
        with self.read() as conn:
            ids = list(conn.scalars(select(s.jobs.c.id).where(s.jobs.c.name == name)))
            if not ids:
                known = ", ".join(sorted(conn.scalars(select(s.jobs.c.name).distinct()))[:20])
                raise UnknownAssetError(f"unknown job '{name}' (known jobs: {known or 'none yet'})")
            return ids[0]

    def _tags_of(self, conn: Connection, dataset_ids: list[int]) -> dict[int, list[str]]:
        tags: dict[int, list[str]] = {i: [] for i in dataset_ids}
        for row in conn.execute(
            select(s.dataset_tags.c.dataset_id, s.dataset_tags.c.tag)
            .where(s.dataset_tags.c.dataset_id.in_(dataset_ids))
            .order_by(s.dataset_tags.c.tag)
        ):
            tags[row.dataset_id].append(row.tag)
        return tags

    def _summaries(self, conn: Connection, where=None, as_of: datetime | None = None) -> list[DatasetSummary]:
        d, n = s.datasets.c, s.namespaces.c
        query = (
            select(d.id, d.name, n.name.label("namespace"), d.format, d.owner, d.description)
            .join(s.namespaces, n.id == d.namespace_id)
            .order_by(d.name, n.name)
        )
        if where is not None:
            query = query.where(where)
        rows = conn.execute(query).all()
        ids = [r.id for r in rows]
        if not ids:
            return []
        rd, r = s.run_datasets.c, s.runs.c
        version_query = (
            select(rd.dataset_id, func.count(), func.max(r.ended_at))
            .join(s.runs, r.id == rd.run_id)
            .where(rd.dataset_id.in_(ids), rd.role == "output", r.state == "COMPLETE")
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
        tags = self._tags_of(conn, ids)
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

    def list_datasets(self, namespace: str | None = None) -> list[DatasetSummary]:
        """Every dataset, by name."""
        with self.read() as conn:
            where = None if namespace is None else s.namespaces.c.name == namespace
            return self._summaries(conn, where)

    def search(self, text: str, by: str = "any") -> list[DatasetSummary]:
        """Datasets whose name, column, tag, owner or description contains ``text`` (case-insensitive).

        ``by`` limits the search to one of those: ``store.search("email", by="column")``.
        """
        if by not in SEARCH_FIELDS:
            raise CatalogError(f"cannot search by {by!r} (choose one of {', '.join(SEARCH_FIELDS)})")
        pattern = f"%{text.strip().lower()}%"
        d = s.datasets.c
        matches = {
            "name": func.lower(d.name).like(pattern),
            "owner": func.lower(d.owner).like(pattern),
            "description": func.lower(d.description).like(pattern),
            "column": d.id.in_(
                select(s.dataset_columns.c.dataset_id).where(
                    func.lower(s.dataset_columns.c.name).like(pattern)
                )
            ),
            "tag": d.id.in_(
                select(s.dataset_tags.c.dataset_id).where(func.lower(s.dataset_tags.c.tag).like(pattern))
            ),
        }
        where = or_(*matches.values()) if by == "any" else matches[by]
        with self.read() as conn:
            return self._summaries(conn, where)

    def get_dataset(
        self, name: str, namespace: str | None = None, as_of: datetime | str | None = None, limit: int = 50
    ) -> DatasetDetail:
        """One dataset in full: columns, schema versions, versions with their runs and inputs,
        quality results and column lineage of its latest version (all as of ``as_of``)."""
        as_of = None if as_of is None else parse_time(as_of, "--as-of")
        with self.read() as conn:
            return self._detail(conn, self._find_dataset(conn, name, namespace).id, as_of, limit)

    def dataset_details(
        self, dataset_ids: list[int], as_of: datetime | None = None, limit: int = 20
    ) -> dict[int, DatasetDetail]:
        """:meth:`get_dataset` for many datasets by id (what the HTML renderer shows per node)."""
        with self.read() as conn:
            return {i: self._detail(conn, i, as_of, limit) for i in dataset_ids}

    def _detail(self, conn: Connection, dataset_id: int, as_of: datetime | None, limit: int) -> DatasetDetail:
        summary = self._summaries(conn, s.datasets.c.id == dataset_id, as_of)[0]
        sv = s.schema_versions.c
        schema_query = (
            select(sv.id, sv.fields, sv.first_seen_at, sv.first_run_uuid)
            .where(sv.dataset_id == dataset_id)
            .order_by(sv.first_seen_at)
        )
        if as_of is not None:
            schema_query = schema_query.where(sv.first_seen_at <= as_of)
        schema_versions = [
            {
                "schema_id": row.id,
                "first_seen": row.first_seen_at,
                "first_run": row.first_run_uuid,
                "fields": json.loads(row.fields),
            }
            for row in conn.execute(schema_query)
        ]
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
            .where(rd.dataset_id == dataset_id, rd.role == "output", r.state == "COMPLETE")
            .order_by(r.ended_at.desc())
            .limit(limit)
        )
        if as_of is not None:
            version_query = version_query.where(r.ended_at <= as_of)
        version_rows = conn.execute(version_query).all()
        inputs_by_run: dict[int, list[dict[str, Any]]] = {}
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
        versions = [
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
        column_lineage: dict[str, list[dict[str, Any]]] = {}
        latest_with_lineage = next((v for v in version_rows if v.column_lineage_id is not None), None)
        if latest_with_lineage is not None:
            f = s.column_lineage_fields.c
            for row in conn.execute(
                select(f.output_field, d.name, f.input_field, f.transformation_type, f.transformation_subtype)
                .join(s.datasets, d.id == f.input_dataset_id)
                .where(f.set_id == latest_with_lineage.column_lineage_id, f.output_field != "")
                .order_by(f.output_field, d.name, f.input_field)
            ):
                column_lineage.setdefault(row.output_field, []).append(
                    {
                        "dataset": row.name,
                        "column": row.input_field,
                        "type": row.transformation_type,
                        "subtype": row.transformation_subtype,
                    }
                )
        current_schema = schema_versions[-1]["fields"] if schema_versions else []
        columns = [
            {"name": name, "type": spec.get("type"), "description": spec.get("description")}
            for name, spec in _flatten_fields(current_schema)
        ]
        quality = self._quality_rows(conn, s.quality_results.c.dataset_id == dataset_id, as_of, limit=limit)
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

    def _quality_rows(
        self, conn: Connection, where, as_of: datetime | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
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

    def quality_report(
        self, run_date: str | None = None, dataset: str | None = None, failed_only: bool = False
    ) -> list[dict[str, Any]]:
        """Quality results, newest first; ``run_date`` (YYYY-MM-DD) is the batch date of the run."""
        q = s.quality_results.c
        conditions = []
        if run_date:
            conditions.append(
                q.run_date == parse_time(run_date, "--date", end_of_day=False).date().isoformat()
            )
        if failed_only:
            conditions.append(q.success.is_(False))
        with self.read() as conn:
            if dataset:
                conditions.append(q.dataset_id == self._find_dataset(conn, dataset).id)
            return self._quality_rows(conn, and_(True, *conditions))

    def stats(self) -> dict[str, Any]:
        """Counts of everything, the last event time and the overall quality pass rate."""
        with self.read() as conn:
            counts = {
                name: conn.scalar(select(func.count()).select_from(table))
                for name, table in (
                    ("namespaces", s.namespaces),
                    ("datasets", s.datasets),
                    ("jobs", s.jobs),
                    ("runs", s.runs),
                    ("events", s.events),
                    ("quality_results", s.quality_results),
                )
            }
            counts["dataset_versions"] = conn.scalar(
                select(func.count())
                .select_from(s.run_datasets)
                .join(s.runs, s.runs.c.id == s.run_datasets.c.run_id)
                .where(s.run_datasets.c.role == "output", s.runs.c.state == "COMPLETE")
            )
            states = dict(conn.execute(select(s.runs.c.state, func.count()).group_by(s.runs.c.state)).all())
            passed = conn.scalar(select(func.count()).where(s.quality_results.c.success.is_(True)))
            return {
                **counts,
                "runs_by_state": {STATE_WORDS.get(k, k): v for k, v in sorted(states.items())},
                "last_event": conn.scalar(select(func.max(s.events.c.event_time))),
                "quality_pass_rate": passed / counts["quality_results"]
                if counts["quality_results"]
                else None,
            }

    def list_runs(self, job: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs (of one job, or all), newest first."""
        r = s.runs.c
        query = _run_query().order_by(r.started_at.desc().nulls_last(), r.id.desc()).limit(limit)
        if job:
            query = query.where(r.job_id == self.job_id(job))
        with self.read() as conn:
            return [_run_dict(row) for row in conn.execute(query)]

    def get_run(self, run_uuid: str) -> dict[str, Any]:
        """One run: job, state, times, parent and child runs, code version, error, datasets, quality."""
        r = s.runs.c
        with self.read() as conn:
            row = conn.execute(_run_query().where(r.run_uuid == run_uuid)).one_or_none()
            if row is None:
                raise UnknownAssetError(f"unknown run '{run_uuid}' (see `neurolake runs list`)")
            run = _run_dict(row)
            run["children"] = [
                _run_dict(c)
                for c in conn.execute(
                    _run_query().where(r.parent_run_uuid == run_uuid).order_by(r.started_at)
                )
            ]
            rd, d = s.run_datasets.c, s.datasets.c
            datasets = conn.execute(
                select(rd.role, d.name, rd.version, rd.row_count, rd.size_bytes, rd.file_count)
                .join(s.datasets, d.id == rd.dataset_id)
                .where(rd.run_id == row.id)
                .order_by(rd.role, d.name)
            ).all()
            for role in ("input", "output"):
                run[f"{role}s"] = [
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
            run["quality"] = self._quality_rows(conn, s.quality_results.c.run_id == row.id)
            return run

    def job_runs(self, job_id: int, as_of: datetime | None = None, limit: int = 10) -> list[dict[str, Any]]:
        """The latest runs of one job started before ``as_of``."""
        r = s.runs.c
        query = _run_query().where(r.job_id == job_id).order_by(r.started_at.desc()).limit(limit)
        if as_of is not None:
            query = query.where(r.started_at <= as_of)
        with self.read() as conn:
            return [_run_dict(row) for row in conn.execute(query)]

    def graph(self):
        """Lineage graph queries over this catalog (see :mod:`neurolake_spark.catalog.graph`)."""
        from neurolake_spark.catalog.graph import LineageGraph

        return LineageGraph(self)


def active_edges(as_of: datetime | None):
    """The lineage edges in force at ``as_of`` (now if None)."""
    e = s.lineage_edges.c
    if as_of is None:
        return e.superseded_at.is_(None)
    return and_(e.completed_at <= as_of, or_(e.superseded_at.is_(None), e.superseded_at > as_of))


def _run_query():
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


def _run_dict(row) -> dict[str, Any]:
    duration = (row.ended_at - row.started_at).total_seconds() if row.ended_at and row.started_at else None
    return {
        "run": row.run_uuid,
        "job": row.job,
        "state": STATE_WORDS.get(row.state, row.state.lower()),
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


def _flatten_fields(fields: list[dict], prefix: str = "") -> Iterator[tuple[str, dict]]:
    for spec in fields or []:
        name = f"{prefix}{spec['name']}"
        yield name, spec
        if isinstance(spec.get("fields"), list):
            yield from _flatten_fields(spec["fields"], name + ".")


def _clean_tags(tags: list[str]) -> list[str]:
    clean = [t.strip() for t in tags if t and t.strip()]
    if not clean:
        raise CatalogError("give at least one non-empty tag")
    too_long = [t for t in clean if len(t) > 200]
    if too_long:
        raise CatalogError(f"tag too long ({len(too_long[0])} characters, at most 200)")
    return clean


def _insert_ignore(conn: Connection, table):
    """INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


def _safe_url(url: str) -> str:
    """The URL without its password (for error messages)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<unparsable URL>"


def _engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise CatalogError(f"cannot use catalog URL {_safe_url(url)}: {exc}") from None


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("catalog_write") else "BEGIN")
