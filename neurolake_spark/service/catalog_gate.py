"""The service's one way to the catalog database: opened lazily, with timeouts, a circuit
breaker (PostgreSQL) and a trace span per call.

Every router calls ``await gate.run("operation", function, *args)``; ``function`` gets the
:class:`~neurolake_spark.catalog.store.CatalogStore` first and runs in a worker thread. When
the database cannot be reached the call answers 503 ``catalog-unavailable`` within
``service.catalog_timeout_seconds``; with PostgreSQL, ``service.breaker_failures`` failures in
a row open the lineage delivery's :class:`~neurolake_spark.lineage.spool.CircuitBreaker` (its
state is a file under ``service.state_dir``, shared by every worker), and calls then fail at
once until ``service.breaker_cooldown_seconds`` have passed.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from opentelemetry import trace
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from neurolake_spark.catalog.errors import CatalogError
from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.config import Settings
from neurolake_spark.lineage.spool import CircuitBreaker
from neurolake_spark.service.problems import Problem

log = logging.getLogger(__name__)
T = TypeVar("T")


class CatalogUnavailable(Exception):
    """The database did not answer (connection refused, timeout, server gone)."""


def service_state_dir(settings: Settings) -> Path:
    """Shared state of the service (the breaker): ``service.state_dir`` or ``<warehouse>/_service``."""
    return settings.service.state_dir or settings.warehouse / "_service"


def catalog_url_with_timeouts(url: str, timeout_seconds: float) -> str:
    """``url`` with a connect timeout and a statement timeout when it is PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    query = dict(parsed.query)
    query.setdefault("connect_timeout", str(max(1, math.ceil(timeout_seconds))))
    query.setdefault("options", f"-c statement_timeout={int(timeout_seconds * 1000)}")
    return parsed.set(query=query).render_as_string(hide_password=False)


class CatalogGate:
    """Lazy, guarded access to the catalog; see the module docstring."""

    def __init__(self, settings: Settings, tracer_provider=None):
        self.settings = settings
        self.timeout = settings.service.catalog_timeout_seconds
        self.url = settings.catalog_url
        self.postgres = make_url(self.url).get_backend_name() == "postgresql"
        self.breaker = (
            CircuitBreaker(
                service_state_dir(settings) / "catalog_breaker",
                settings.service.breaker_failures,
                settings.service.breaker_cooldown_seconds,
            )
            if self.postgres
            else None
        )
        self._store: CatalogStore | None = None
        self._open_lock = threading.Lock()
        self.write_lock = threading.Lock()  # the store's id caches are not shared safely by two writers
        self.tracer = trace.get_tracer("neurolake.catalog", tracer_provider=tracer_provider)

    def store(self) -> CatalogStore:
        """The store, opened (and migrated) on first use; raises CatalogUnavailable."""
        if self._store is None:
            with self._open_lock:
                if self._store is None:
                    if self.url.startswith("sqlite:///"):
                        Path(self.url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
                    try:
                        store = CatalogStore(
                            catalog_url_with_timeouts(self.url, self.timeout),
                            settings=self.settings,
                            default_namespace=self.settings.lineage_namespace,
                        )
                        store.sync_definitions()
                    except (CatalogError, SQLAlchemyError) as exc:
                        raise CatalogUnavailable(type(exc).__name__) from None
                    self._store = store
        return self._store

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function(store, ...)`` here (in this thread), through the breaker."""
        if self.breaker is not None and not self.breaker.allows():
            raise CatalogUnavailable("circuit breaker open")
        try:
            result = function(self.store(), *args, **kwargs)
        except CatalogUnavailable:
            self._failed()
            raise
        except (DBAPIError, PoolTimeoutError) as exc:
            if isinstance(exc, DBAPIError) and not _is_outage(exc):
                raise
            self._failed()
            raise CatalogUnavailable(type(exc).__name__) from None
        if self.breaker is not None:
            self.breaker.succeeded()
        return result

    async def run(self, operation: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``call`` in a worker thread with a trace span, answering 503 problems on an outage."""
        with self.tracer.start_as_current_span(f"catalog.{operation}") as span:
            try:
                with anyio.fail_after(self.timeout + 1):
                    return await anyio.to_thread.run_sync(
                        lambda: self.call(function, *args, **kwargs), abandon_on_cancel=True
                    )
            except (CatalogUnavailable, TimeoutError) as exc:
                span.set_attribute("error.type", type(exc).__name__)
                if isinstance(exc, TimeoutError):
                    self._failed()
                raise self.unavailable() from None

    def unavailable(self) -> Problem:
        retry = math.ceil(self.settings.service.breaker_cooldown_seconds) if self.breaker else 5
        return Problem(
            "catalog-unavailable",
            "the catalog database does not answer; try again later (GET /ready shows the checks)",
            headers={"Retry-After": str(max(retry, 1))},
        )

    def breaker_open(self) -> bool:
        """True while the circuit breaker refuses calls (never for SQLite)."""
        return self.breaker is not None and not self.breaker.allows()

    def _failed(self) -> None:
        if self.breaker is not None:
            self.breaker.failed()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _is_outage(exc: DBAPIError) -> bool:
    """True for errors that mean the database is gone or too slow, not that a query was wrong."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return "statement timeout" in str(exc.orig).lower() or "canceling statement" in str(exc.orig).lower()
