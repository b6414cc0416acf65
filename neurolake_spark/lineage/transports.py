"""Backends that receive OpenLineage events, chosen by ``lineage.transports``.

Example (``conf/*.yaml``)::

    lineage:
      transports:
        - type: catalog                     # the project's catalog store
        - type: http                        # any OpenLineage backend, e.g. Marquez
          url: http://marquez:5000
          endpoint: api/v1/lineage          # the default
          timeout: 5                        # seconds, the default
          auth_env: MARQUEZ_TOKEN           # bearer token from this env var (optional)
        - type: file
          location: ../lineage/events.jsonl # JSON lines, appended
        - type: console                     # one JSON line per event on stdout

``composite`` groups several (``transports: [...]``); it is flattened, so each backend
gets its own spool and circuit breaker. Each type's options and their defaults are its
config class in :mod:`~neurolake_spark.lineage.transport_config`; each class here sends
with one of them. A transport's :meth:`~Transport.send` raises :class:`DeliveryError`
when the backend did not take the event.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from neurolake_spark.catalog.errors import InvalidEventError
from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.config import Settings, read_secret
from neurolake_spark.errors import NeuroLakeError
from neurolake_spark.lineage import LineageEventError
from neurolake_spark.lineage.transport_config import (
    CatalogTransportConfig,
    ConsoleTransportConfig,
    FileTransportConfig,
    HttpTransportConfig,
    TransportConfig,
    leaf_transports,
)
from neurolake_spark.redaction import mask_credentials

IDEMPOTENCY_HEADER = "Idempotency-Key"


class DeliveryError(NeuroLakeError):
    """A backend did not take an event; ``retry`` is False when resending cannot help.

    The message has every URL's credentials masked: it is logged, kept in flush results
    and printed by ``neurolake lineage replay``.
    """

    def __init__(self, message: str, retry: bool = True):
        super().__init__(mask_credentials(message))
        self.retry = retry


class Transport(Protocol):
    """One backend. ``transport_id`` names its spool queue and circuit breaker."""

    transport_id: str
    config: TransportConfig

    def send(self, event: dict[str, Any], key: str) -> None:
        """Deliver ``event`` whose identity is ``key``; raise :class:`DeliveryError` if not taken."""


def transport_id(config: TransportConfig) -> str:
    """A stable id for a transport config: its ``name``, else ``<type>-<hash of the options given>``."""
    if config.name:
        return config.name
    digest = hashlib.sha256(json.dumps(config.options(), sort_keys=True, default=str).encode()).hexdigest()
    return f"{config.type}-{digest[:10]}"


C = TypeVar("C", bound=TransportConfig)


class _Base(Generic[C]):
    def __init__(self, config: C, settings: Settings):
        self.config = config
        self.settings = settings
        self.transport_id = transport_id(config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.transport_id})"


class ConsoleTransport(_Base[ConsoleTransportConfig]):
    """Prints each event as one JSON line on stdout."""

    def send(self, event: dict[str, Any], key: str) -> None:
        print(json.dumps(event, sort_keys=True), file=sys.stdout, flush=True)


class FileTransport(_Base[FileTransportConfig]):
    """Appends each event as one JSON line to ``location`` (relative to the settings file)."""

    @property
    def path(self) -> Path:
        location = Path(self.config.location).expanduser()
        base = Path(self.settings.source_file).parent if self.settings.source_file else Path.cwd()
        return location if location.is_absolute() else (base / location).resolve()

    def send(self, event: dict[str, Any], key: str) -> None:
        line = json.dumps(event, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(line)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise DeliveryError(f"cannot append to {self.path}: {exc.strerror}") from None


class HttpTransport(_Base[HttpTransportConfig]):
    """POSTs each event to ``url``/``endpoint`` with an ``Idempotency-Key`` header.

    The receiver may get an event twice (a reply lost after it stored the event); it
    deduplicates on the key, which is the event's identity.
    """

    @property
    def endpoint_url(self) -> str:
        endpoint = self.config.endpoint.lstrip("/")
        return f"{self.config.url.rstrip('/')}/{endpoint}"

    def _headers(self, key: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key}
        env_var, file = self.config.auth_env, self.config.auth_file
        if env_var or file:
            token = read_secret(
                env_var, Path(file) if file else None, f"lineage http transport {self.transport_id} token"
            )
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def send(self, event: dict[str, Any], key: str) -> None:
        request = urllib.request.Request(
            self.endpoint_url, data=json.dumps(event).encode(), headers=self._headers(key), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            rejected = exc.code in (400, 413, 422)
            raise DeliveryError(f"{self.endpoint_url} answered HTTP {exc.code}", retry=not rejected) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"{self.endpoint_url} unreachable: {reason}") from None


class CatalogTransport(_Base[CatalogTransportConfig]):
    """Stores each event in the catalog (:class:`neurolake_spark.catalog.store.CatalogStore`).

    The store deduplicates by event identity, so a re-delivered event is stored once.
    """

    def __init__(self, config: CatalogTransportConfig, settings: Settings):
        super().__init__(config, settings)
        self._store: CatalogStore | None = None

    def send(self, event: dict[str, Any], key: str) -> None:
        try:
            if self._store is None:
                self._store = CatalogStore.from_settings(self.settings)
            self._store.ingest(event)
        except (InvalidEventError, LineageEventError) as exc:
            raise DeliveryError(f"catalog rejected the event: {exc}", retry=False) from None
        except Exception as exc:  # the store's driver errors (locked, unreachable...) are retried later
            raise DeliveryError(f"catalog {self.settings.catalog_url}: {type(exc).__name__}: {exc}") from None


TRANSPORT_TYPES: dict[type[TransportConfig], type[Transport]] = {
    ConsoleTransportConfig: ConsoleTransport,
    FileTransportConfig: FileTransport,
    HttpTransportConfig: HttpTransport,
    CatalogTransportConfig: CatalogTransport,
}
"""The class that sends with each (non-composite) config class."""


def build_transport(config: TransportConfig, settings: Settings) -> Transport:
    """The transport of one (non-composite) config."""
    return TRANSPORT_TYPES[type(config)](config, settings)


def build_transports(settings: Settings) -> list[Transport]:
    """Every backend ``settings.lineage.transports`` names (composites flattened)."""
    return [build_transport(config, settings) for config in leaf_transports(settings.lineage.transports)]
