"""The catalog's tables (SQLAlchemy Core) and its versioned migrations.

Raw events are kept as received (``events``); everything else is a queryable model
derived from them: ``namespaces``, ``datasets`` (+ ``dataset_tags``, ``schema_versions``,
``dataset_columns``), ``jobs``, ``runs``, ``run_datasets`` (what each run read and wrote,
at which version, with statistics and column lineage), ``column_lineage_sets`` /
``column_lineage_fields`` (column lineage, stored once per distinct mapping),
``quality_results`` and ``lineage_edges``.

``lineage_edges`` is the derived graph: one row per (input dataset version -> run ->
output dataset version) of a completed run, with the run's completion time and the time
a later run of the same job superseded it for that output. The graph "as of T" is the
set of edges with ``completed_at <= T < superseded_at`` (or never superseded).

All times are naive UTC ``DateTime`` values, so SQLite and PostgreSQL compare them alike.

Migrations are ordered functions recorded in ``schema_migrations``; :func:`migrate`
applies the missing ones inside one write transaction, so concurrent processes opening
a new catalog apply each migration once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    inspect,
    select,
    text,
)

metadata = MetaData()

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("identity", String(64), nullable=False, unique=True),
    Column("run_uuid", String(64), nullable=False, index=True),
    Column("event_type", String(16), nullable=False),
    Column("event_time", DateTime, nullable=False),
    Column("job_namespace", String(500), nullable=False),
    Column("job_name", String(500), nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("payload", Text, nullable=False),
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(1000), nullable=False, unique=True),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("namespace_id", ForeignKey("namespaces.id"), nullable=False),
    Column("name", String(1000), nullable=False, index=True),
    Column("format", String(50)),
    Column("description", Text),
    Column("owner", String(200)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("current_schema_id", Integer),
    UniqueConstraint("namespace_id", "name"),
)

dataset_tags = Table(
    "dataset_tags",
    metadata,
    Column("dataset_id", ForeignKey("datasets.id"), primary_key=True),
    Column("tag", String(200), primary_key=True),
    Column("source", String(20), nullable=False),
    Index("ix_dataset_tags_tag", "tag"),
)

schema_versions = Table(
    "schema_versions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("dataset_id", ForeignKey("datasets.id"), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("fields", Text, nullable=False),
    Column("first_seen_at", DateTime, nullable=False),
    Column("first_run_uuid", String(64)),
    UniqueConstraint("dataset_id", "fingerprint"),
)

dataset_columns = Table(
    "dataset_columns",
    metadata,
    Column("dataset_id", ForeignKey("datasets.id"), primary_key=True),
    Column("name", String(500), primary_key=True),
    Column("type", String(200)),
    Column("description", Text),
    Index("ix_dataset_columns_name", "name"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("namespace_id", ForeignKey("namespaces.id"), nullable=False),
    Column("name", String(1000), nullable=False, index=True),
    Column("description", Text),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("namespace_id", "name"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("run_uuid", String(64), nullable=False, unique=True),
    Column("job_id", ForeignKey("jobs.id"), nullable=False),
    Column("parent_run_uuid", String(64), index=True),
    Column("state", String(16), nullable=False),
    Column("nominal_time", DateTime),
    Column("started_at", DateTime),
    Column("ended_at", DateTime),
    Column("code_version", String(200)),
    Column("git_sha", String(64)),
    Column("error_message", Text),
    Column("facets", Text),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_runs_job_started", "job_id", "started_at"),
    Index("ix_runs_ended", "ended_at"),
)

column_lineage_sets = Table(
    "column_lineage_sets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
)

column_lineage_fields = Table(
    "column_lineage_fields",
    metadata,
    Column("set_id", ForeignKey("column_lineage_sets.id"), nullable=False),
    Column("output_field", String(500), nullable=False),
    Column("input_dataset_id", ForeignKey("datasets.id"), nullable=False),
    Column("input_field", String(500), nullable=False),
    Column("transformation_type", String(20)),
    Column("transformation_subtype", String(50)),
    Column("description", Text),
    Index("ix_column_lineage_fields_set", "set_id", "output_field"),
)

run_datasets = Table(
    "run_datasets",
    metadata,
    Column("run_id", ForeignKey("runs.id"), primary_key=True),
    Column("dataset_id", ForeignKey("datasets.id"), primary_key=True),
    Column("role", String(6), primary_key=True),  # input | output
    Column("version", String(100)),
    Column("schema_id", Integer),
    Column("row_count", BigInteger),
    Column("size_bytes", BigInteger),
    Column("file_count", BigInteger),
    Column("column_lineage_id", Integer),
    Column("quality_metrics", Text),
    Index("ix_run_datasets_dataset", "dataset_id", "role"),
)

quality_results = Table(
    "quality_results",
    metadata,
    Column("id", Id, primary_key=True),
    Column("run_id", ForeignKey("runs.id"), nullable=False, index=True),
    Column("dataset_id", ForeignKey("datasets.id"), nullable=False),
    Column("dataset_version", String(100)),
    Column("expectation", String(500), nullable=False),
    Column("column_name", String(500)),
    Column("success", Boolean, nullable=False),
    Column("severity", String(50)),
    Column("observed_value", Text),
    Column("expected_value", Text),
    Column("unexpected_count", BigInteger),
    Column("run_date", String(10), index=True),
    Column("recorded_at", DateTime, nullable=False),
    Index("ix_quality_results_dataset", "dataset_id", "recorded_at"),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", Id, primary_key=True),
    Column("run_id", Integer, nullable=False, index=True),
    Column("job_id", Integer, nullable=False),
    Column("input_dataset_id", Integer),
    Column("input_version", String(100)),
    Column("output_dataset_id", Integer),
    Column("output_version", String(100)),
    Column("completed_at", DateTime, nullable=False),
    Column("superseded_at", DateTime),
    Index("ix_lineage_edges_output", "output_dataset_id", "completed_at"),
    Index("ix_lineage_edges_input", "input_dataset_id", "completed_at"),
    Index("ix_lineage_edges_job", "job_id", "output_dataset_id", "completed_at"),
)


def _initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=[t for t in metadata.sorted_tables if t is not schema_migrations])


# The service's tables (``neurolake serve``): API keys stored as salted hashes, console
# sessions, and the audit log. Their own MetaData, so migration 1 keeps creating exactly the
# tables it always created.
service_metadata = MetaData()

api_keys = Table(
    "api_keys",
    service_metadata,
    Column("id", Id, primary_key=True),
    Column("key_id", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("tenant", String(100), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(200)),
    Column("expires_at", DateTime),
    Column("revoked_at", DateTime),
    Column("last_used_at", DateTime),
    Column("grants", String(200)),
)

service_sessions = Table(
    "service_sessions",
    service_metadata,
    Column("id", Id, primary_key=True),
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("csrf_hash", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("key_id", String(32)),
    Column("role", String(20), nullable=False),
    Column("tenant", String(100), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
    Column("grants", String(200)),
)

audit_log = Table(
    "audit_log",
    service_metadata,
    Column("id", Id, primary_key=True),
    Column("recorded_at", DateTime, nullable=False, index=True),
    Column("action", String(100), nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("key_id", String(32)),
    Column("role", String(20)),
    Column("tenant", String(100), index=True),
    Column("method", String(10)),
    Column("route", String(300)),
    Column("target", String(1000)),
    Column("parameters", Text),
    Column("status", Integer),
    Column("client", String(100)),
    Column("request_id", String(64)),
    Column("trace_id", String(32)),
)


idempotency_keys = Table(
    "idempotency_keys",
    service_metadata,
    Column("id", Id, primary_key=True),
    Column("scope", String(300), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("route", String(300), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("completed_at", DateTime),
    Column("status", Integer),
    Column("response", Text),
    UniqueConstraint("scope", "idempotency_key", name="uq_idempotency_scope_key"),
)


def _service_tables(conn: Connection) -> None:
    service_metadata.create_all(conn, tables=[api_keys, service_sessions, audit_log])


def _idempotency_keys(conn: Connection) -> None:
    idempotency_keys.create(conn)


runs_by_start = Index("ix_runs_started", runs.c.started_at, runs.c.id)
"""Run lists newest first (``ORDER BY started_at DESC, id DESC``) read it instead of sorting every run."""


def _runs_by_start(conn: Connection) -> None:
    runs_by_start.create(conn, checkfirst=True)  # a new catalog has it from migration 1


# Statements run through ``POST /api/v1/queries`` (the caller's history), and grants on keys
# and sessions (``pii``: see PII columns unmasked).
statement_history = Table(
    "statement_history",
    service_metadata,
    Column("id", Id, primary_key=True),
    Column("statement_id", String(64), nullable=False, unique=True),
    Column("subject", String(200), nullable=False, index=True),
    Column("key_id", String(32)),
    Column("tenant", String(100), nullable=False, index=True),
    Column("statement", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("error", Text),
    Column("submitted_at", DateTime, nullable=False, index=True),
    Column("started_at", DateTime),
    Column("ended_at", DateTime),
    Column("duration_ms", Integer),
    Column("rows", Integer),
    Column("bytes", Integer),
    Column("tables", Text),
)
GRANTS_COLUMN = "grants"


def _statements_and_grants(conn: Connection) -> None:
    statement_history.create(conn, checkfirst=True)
    for table in (api_keys.name, service_sessions.name):
        if GRANTS_COLUMN not in {c["name"] for c in inspect(conn).get_columns(table)}:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {GRANTS_COLUMN} VARCHAR(200)"))


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "events, assets, runs, column lineage, quality results and the lineage edge table", _initial),
    (2, "service: API keys, console sessions and the audit log", _service_tables),
    (3, "service: idempotency keys of bulk writes and their first answers", _idempotency_keys),
    (4, "an index of runs by start time for run lists", _runs_by_start),
    (5, "service: statement history; grants on API keys and sessions", _statements_and_grants),
]
"""Ordered ``(version, description, function)``; append new ones, never edit applied ones."""

LATEST_VERSION = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    """The newest migration applied to ``conn``'s database (0 for an empty database)."""
    if not inspect(conn).has_table(schema_migrations.name):
        return 0
    return conn.scalar(select(func.max(schema_migrations.c.version))) or 0


def migrate(conn: Connection) -> list[int]:
    """Apply the migrations ``conn``'s database lacks; returns the versions applied.

    Call it inside a write transaction (the store takes the SQLite write lock or a
    PostgreSQL advisory lock first), so two processes never apply one twice.
    """
    schema_migrations.create(conn, checkfirst=True)
    done = set(conn.scalars(select(schema_migrations.c.version)))
    applied = []
    for version, description, apply in MIGRATIONS:
        if version in done:
            continue
        apply(conn)
        conn.execute(
            schema_migrations.insert().values(
                version=version,
                description=description,
                applied_at=datetime.now(UTC).replace(tzinfo=None),
            )
        )
        applied.append(version)
    return applied
