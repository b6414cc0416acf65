"""The optional ``openlineage-spark`` JVM listener and the ingestion of what it writes.

With ``lineage.spark_listener: true`` the session gets ``openlineage-spark``
(``lineage.spark_listener_package``) and :func:`listener_conf`: the listener sees every
Spark action (reads, writes, Delta MERGE...) and appends its own OpenLineage events, one
JSON line each, to :func:`events_file` in the spool folder. :func:`ingest_listener_events`
sends the lines added since the last call through the configured transports (the
catalog by default); ``JobRun`` calls it at the end of every run, and so does
``neurolake lineage replay``.

Kill switches: ``NEUROLAKE__LINEAGE__SPARK_LISTENER=false`` (the session is built without
the listener), or ``spark.openlineage.disabled=true`` in ``spark.conf`` (the jar is
loaded but emits nothing).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from neurolake_spark.config import Settings
from neurolake_spark.lineage import LineageEventError
from neurolake_spark.lineage.delivery import LineageEmitter
from neurolake_spark.lineage.events import parse_event
from neurolake_spark.lineage.spool import CORRUPT_DIR, file_lock, write_atomic
from neurolake_spark.runs import JOB_NAMESPACE

log = logging.getLogger(__name__)

LISTENER_CLASS = "io.openlineage.spark.agent.OpenLineageSparkListener"


def events_file(settings: Settings) -> Path:
    """Where the JVM listener appends its events."""
    return settings.lineage_spool_dir / "_spark_listener" / "events.jsonl"


def listener_conf(settings: Settings) -> dict[str, str]:
    """Spark settings that turn on the JVM listener with a file transport."""
    path = events_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "spark.extraListeners": LISTENER_CLASS,
        "spark.openlineage.namespace": JOB_NAMESPACE,
        "spark.openlineage.transport.type": "file",
        "spark.openlineage.transport.location": str(path),
    }


def _read_position(state_file: Path, events: Path) -> dict[str, int]:
    start = {"inode": os.stat(events).st_ino, "offset": 0, "line": 0}
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        position = {key: int(state[key]) for key in start}
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return start
    rotated = position["inode"] != start["inode"] or position["offset"] > os.stat(events).st_size
    return start if rotated else position


def ingest_listener_events(settings: Settings, emitter: LineageEmitter) -> int:
    """Emit the JVM listener's events written since the last call; return how many.

    A line that is not an event is appended to ``<spool>/corrupt/spark-listener.jsonl``
    with a one-line warning naming ``file:line``; the lines after it are still ingested.
    """
    events = events_file(settings)
    if not events.exists():
        return 0
    state_file = events.with_name("position.json")
    emitted = 0
    with file_lock(events.with_name(".ingest.lock"), blocking=False) as acquired:
        if not acquired:
            return 0
        position = _read_position(state_file, events)
        with open(events, "rb") as source:
            source.seek(position["offset"])
            data = source.read()
        complete = data[: data.rfind(b"\n") + 1]
        for number, raw in enumerate(complete.splitlines(), start=position["line"] + 1):
            if not raw.strip():
                continue
            try:
                event = parse_event(raw.decode("utf-8", errors="replace"), f"{events}:{number}")
            except LineageEventError as exc:
                corrupt = settings.lineage_spool_dir / CORRUPT_DIR / "spark-listener.jsonl"
                corrupt.parent.mkdir(parents=True, exist_ok=True)
                with open(corrupt, "ab") as out:
                    out.write(raw + b"\n")
                log.warning("lineage: skipped a malformed Spark listener event: %s", exc)
                continue
            emitter.emit(event)
            emitted += 1
        write_atomic(state_file, json.dumps({
            "inode": position["inode"],
            "offset": position["offset"] + len(complete),
            "line": position["line"] + complete.count(b"\n"),
        }))
    return emitted
