"""Durable local queues of undelivered events, and circuit breakers, in the spool folder.

Layout of ``settings.lineage_spool_dir``::

    <transport id>/                  one queue per backend
        transport.json               the backend's config, so replay reaches the same one
                                     (URL credentials masked: give them by auth_env/auth_file)
        000000000001.event.json      one event per file, written atomically, in order
        sequence                     the last sequence number (updated under a file lock)
        breaker.json                 the circuit breaker's state, shared by all processes
    corrupt/                         unreadable or rejected events, moved aside with a .reason.txt

Everything is plain files with ``flock`` locks, so separate processes (a job, the
``neurolake lineage replay`` command) share queues and breakers safely.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neurolake_spark.atomic_files import file_lock, write_atomic
from neurolake_spark.lineage import LineageEventError
from neurolake_spark.lineage.events import parse_event
from neurolake_spark.redaction import mask_credentials

log = logging.getLogger(__name__)

EVENT_SUFFIX = ".event.json"
CORRUPT_DIR = "corrupt"


def move_aside(path: Path, spool_root: Path, reason: str, prefix: str = "") -> Path:
    """Move ``path`` into ``<spool>/corrupt/`` with a ``.reason.txt`` beside it; return the new path."""
    target_dir = spool_root / CORRUPT_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{prefix}{path.name}"
    os.replace(path, target)
    reason = mask_credentials(reason)
    target.with_name(target.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
    log.warning("lineage: %s (moved to %s)", reason, target)
    return target


class Spool:
    """The FIFO queue of one backend: ``put`` appends, ``pending`` lists oldest first.

    Example::

        spool = Spool(settings.lineage_spool_dir, "http-1a2b3c4d5e", {"type": "http", ...})
        spool.put(event)
        for path in spool.pending():
            event = spool.read(path)      # None when the file was corrupt (moved aside)
    """

    def __init__(self, spool_root: Path, transport_id: str, config: dict[str, Any] | None = None):
        self.root = Path(spool_root)
        self.transport_id = transport_id
        self.folder = self.root / transport_id
        self.config = config

    def has_pending(self) -> bool:
        """True when at least one event waits (lists the queue folder, reads nothing)."""
        try:
            with os.scandir(self.folder) as entries:
                return any(entry.name.endswith(EVENT_SUFFIX) for entry in entries)
        except FileNotFoundError:
            return False

    def pending(self) -> list[Path]:
        """Waiting event files, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"*{EVENT_SUFFIX}"))

    def put(self, event: dict[str, Any]) -> Path:
        """Append ``event`` durably behind every event already waiting."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.config is not None and not (self.folder / "transport.json").exists():
            config = json.dumps(self.config, sort_keys=True, indent=2)
            write_atomic(self.folder / "transport.json", mask_credentials(config))
        counter = self.folder / "sequence"
        with file_lock(self.folder / ".sequence.lock"):
            text = counter.read_text().strip() if counter.exists() else ""
            waiting = self.pending()
            last_waiting = int(waiting[-1].name[: -len(EVENT_SUFFIX)]) if waiting else 0
            number = max(int(text) if text.isdigit() else 0, last_waiting) + 1
            path = self.folder / f"{number:012d}{EVENT_SUFFIX}"
            write_atomic(path, json.dumps(event, sort_keys=True))
            write_atomic(counter, str(number))
        return path

    def read(self, path: Path) -> dict[str, Any] | None:
        """The event in ``path``; a corrupt file is moved to ``corrupt/`` and None returned."""
        try:
            return parse_event(path.read_text(encoding="utf-8"), str(path))
        except UnicodeDecodeError:
            self.reject(path, f"{path}: not UTF-8 text")
        except LineageEventError as exc:
            self.reject(path, str(exc))
        return None

    def reject(self, path: Path, reason: str) -> Path:
        """Move an event file out of the queue so it no longer blocks the events behind it."""
        return move_aside(path, self.root, reason, prefix=f"{self.transport_id}-")

    @contextmanager
    def draining(self) -> Iterator[bool]:
        """Exclusive right to deliver this queue; yields False if another process drains it."""
        with file_lock(self.folder / ".drain.lock", blocking=False) as acquired:
            yield acquired


class CircuitBreaker:
    """Stops calling a backend after ``threshold`` failures in a row, for ``cooldown`` seconds.

    Its state is ``<queue>/breaker.json``, so every process sees the same breaker. After
    the cool-down one call is let through: success closes the breaker, failure opens it
    again for another cool-down.
    """

    def __init__(self, folder: Path, threshold: int, cooldown_seconds: float):
        self.path = Path(folder) / "breaker.json"
        self.threshold = threshold
        self.cooldown_seconds = cooldown_seconds

    def _state(self) -> dict[str, float]:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            return {"failures": int(state["failures"]), "open_until": float(state["open_until"])}
        except FileNotFoundError:
            return {"failures": 0, "open_until": 0.0}
        except (ValueError, KeyError, TypeError):
            log.warning("lineage: unreadable circuit breaker state %s, starting closed", self.path)
            return {"failures": 0, "open_until": 0.0}

    def allows(self) -> bool:
        """False while the breaker is open (the backend is presumed down)."""
        return time.time() >= self._state()["open_until"]

    @property
    def failures(self) -> int:
        return int(self._state()["failures"])

    def failed(self) -> None:
        with file_lock(self.path.with_name(".breaker.lock")):
            failures = self._state()["failures"] + 1
            open_until = time.time() + self.cooldown_seconds if failures >= self.threshold else 0.0
            write_atomic(self.path, json.dumps({"failures": failures, "open_until": open_until}))

    def succeeded(self) -> None:
        if self.path.exists():
            with file_lock(self.path.with_name(".breaker.lock")):
                self.path.unlink(missing_ok=True)
