"""Delivering events: straight to each backend, or through its spool when it is down.

Example::

    emitter = LineageEmitter(settings)
    emitter.emit(event_dict)          # never raises: what cannot be sent is spooled
    report = replay(settings)         # what ``neurolake lineage replay`` runs

Per backend (an :class:`Outbox`): events waiting in the spool go first, oldest first,
so a backend receives events in the order they were emitted; an event is sent directly
only when nothing waits and the circuit breaker is closed. A file leaves the spool only
after the backend took the event, so a crash can only cause a re-delivery, which the
receiver deduplicates by the event's identity (exactly once at the receiver).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from neurolake_spark.config import Settings
from neurolake_spark.lineage.events import event_key
from neurolake_spark.lineage.spark_listener import ingest_listener_events
from neurolake_spark.lineage.spool import CircuitBreaker, Spool
from neurolake_spark.lineage.transport_config import parse_transport
from neurolake_spark.lineage.transports import DeliveryError, Transport, build_transport, build_transports
from neurolake_spark.redaction import mask_credentials

log = logging.getLogger(__name__)


@dataclass
class FlushResult:
    """What one drain of a backend's queue did."""

    transport_id: str
    delivered: int = 0
    pending: int = 0
    corrupt: int = 0
    error: str | None = None


class Outbox:
    """One backend with its spool queue and circuit breaker."""

    def __init__(self, transport: Transport, settings: Settings):
        self.transport = transport
        self.spool = Spool(settings.lineage_spool_dir, transport.transport_id, transport.config.options())
        self.breaker = CircuitBreaker(
            self.spool.folder, settings.lineage.failure_threshold, settings.lineage.cooldown_seconds
        )

    def deliver(self, event: dict[str, Any], key: str) -> bool:
        """Send ``event`` (after anything spooled) or spool it; True if the backend took it now."""
        if self.spool.has_pending():
            self.flush()
        if self.spool.has_pending() or not self.breaker.allows():
            self.spool.put(event)
            return False
        try:
            self._send(event, key)
        except DeliveryError as exc:
            if exc.retry:
                self.spool.put(event)
                log.warning("lineage: %s failed, event spooled: %s", self.transport.transport_id, exc)
            else:
                self.spool.reject(self.spool.put(event), str(exc))
            return False
        return True

    def _send(self, event: dict[str, Any], key: str) -> None:
        try:
            self.transport.send(event, key)
        except DeliveryError as exc:
            if exc.retry:
                self.breaker.failed()
            raise
        except Exception as exc:  # e.g. a missing auth secret: fixable, so the event is kept for later
            self.breaker.failed()
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        self.breaker.succeeded()

    def flush(self, force: bool = False) -> FlushResult:
        """Deliver waiting events oldest first; stop at the first failure to keep the order.

        ``force`` tries the backend even while its circuit breaker is open.
        """
        result = FlushResult(self.transport.transport_id)
        with self.spool.draining() as acquired:
            if acquired:
                for path in self.spool.pending():
                    event = self.spool.read(path)
                    if event is None:
                        result.corrupt += 1
                        continue
                    if not (force or self.breaker.allows()):
                        result.error = "circuit breaker open"
                        break
                    try:
                        self._send(event, event_key(event))
                    except DeliveryError as exc:
                        if exc.retry:
                            result.error = str(exc)
                            break
                        self.spool.reject(path, str(exc))
                        result.corrupt += 1
                        continue
                    path.unlink()
                    result.delivered += 1
            else:
                result.error = "another process is replaying this queue"
        result.pending = len(self.spool.pending())
        return result


class LineageEmitter:
    """Sends every event to every configured backend; never raises (see the module doc)."""

    def __init__(self, settings: Settings, transports: list[Transport] | None = None):
        self.settings = settings
        self.outboxes = [
            Outbox(t, settings) for t in (build_transports(settings) if transports is None else transports)
        ]

    def emit(self, event: dict[str, Any]) -> None:
        key = event_key(event)
        for outbox in self.outboxes:
            try:
                outbox.deliver(event, key)
            except Exception as exc:  # delivery must never fail a data job
                log.warning(
                    "lineage: %s could not deliver or spool an event: %s",
                    outbox.transport.transport_id,
                    mask_credentials(exc),
                )


@dataclass
class ReplayReport:
    """What :func:`replay` did, per backend."""

    results: list[FlushResult] = field(default_factory=list)
    spark_listener_events: int = 0

    @property
    def delivered(self) -> int:
        return sum(r.delivered for r in self.results)

    @property
    def pending(self) -> int:
        return sum(r.pending for r in self.results)

    @property
    def corrupt(self) -> int:
        return sum(r.corrupt for r in self.results)


def _orphan_outboxes(settings: Settings, known: set[str]) -> list[Outbox | FlushResult]:
    """Queues of backends no longer configured, rebuilt from their ``transport.json``."""
    root = settings.lineage_spool_dir
    found: list[Outbox | FlushResult] = []
    for config_file in sorted(root.glob("*/transport.json")) if root.is_dir() else []:
        queue = config_file.parent.name
        if queue in known:
            continue
        try:
            config = parse_transport(json.loads(config_file.read_text(encoding="utf-8")), "the transport")
            transport = build_transport(config, settings)
        except (ValueError, KeyError, TypeError) as exc:
            pending = len(Spool(root, queue).pending())
            found.append(FlushResult(queue, pending=pending, error=f"unusable {config_file}: {exc}"))
            continue
        transport.transport_id = queue
        found.append(Outbox(transport, settings))
    return found


def replay(settings: Settings, emitter: LineageEmitter | None = None, force: bool = False) -> ReplayReport:
    """Deliver everything spooled, oldest first, to the backend it was meant for.

    Also ingests the events the ``openlineage-spark`` JVM listener wrote, when it is on.
    ``force`` tries each backend once even while its circuit breaker is open (what the
    ``neurolake lineage replay`` command does).
    """
    emitter = emitter or LineageEmitter(settings)
    report = ReplayReport()
    if settings.lineage.spark_listener:
        report.spark_listener_events = ingest_listener_events(settings, emitter)
    known = {o.transport.transport_id for o in emitter.outboxes}
    for outbox in emitter.outboxes + _orphan_outboxes(settings, known):
        report.results.append(outbox if isinstance(outbox, FlushResult) else outbox.flush(force))
    return report
