"""The catalog's database: engine, SQLite and PostgreSQL differences, transactions, migrations.

Example::

    db = CatalogDatabase("sqlite:///warehouse/catalog.db")   # migrated to the latest schema
    with db.read() as conn:                                   # one consistent snapshot
        conn.scalar(select(func.count()).select_from(schema.datasets))
    with db.write() as conn:                                  # holds the write lock from its start
        conn.execute(insert_ignore(conn, schema.namespaces).values(name="file"))

Several processes may write one SQLite file: it runs in WAL mode with a busy timeout,
and each write transaction takes the write lock at its start (``BEGIN IMMEDIATE``; on
PostgreSQL a transaction-scoped advisory lock), so concurrent writers queue instead of
failing half-way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import Connection, Engine, Row, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from neurolake_spark.catalog import schema
from neurolake_spark.catalog.errors import CatalogError
from neurolake_spark.redaction import mask_credentials

BUSY_TIMEOUT_SECONDS = 30
WRITE_LOCK_KEY = 4242  # the PostgreSQL advisory lock every catalog writer takes
SQLITE_PREFIX = "sqlite:///"

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"  # a result row of any columns


class CatalogDatabase:
    """One catalog database at ``url`` (SQLAlchemy URL), migrated to the latest schema on open."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _engine(url)
        try:
            with self.read() as conn:
                behind = schema.current_version(conn) < schema.LATEST_VERSION
            if behind:
                with self.write() as conn:
                    schema.migrate(conn)
        except OperationalError as exc:
            raise CatalogError(mask_credentials(f"cannot open the catalog at {url}: {exc.orig}")) from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that holds the write lock from its start (short, please)."""
        with self.engine.connect() as conn:
            conn.execution_options(catalog_write=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (one consistent snapshot)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for any other database)."""
    return Path(url[len(SQLITE_PREFIX) :]) if url.startswith(SQLITE_PREFIX) else None


def insert_ignore(conn: Connection, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in ``conn``'s dialect (SQLite or PostgreSQL)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise CatalogError(mask_credentials(f"cannot use catalog URL {url}: {exc}")) from None


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("catalog_write") else "BEGIN")
