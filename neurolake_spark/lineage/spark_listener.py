"""The optional ``openlineage-spark`` JVM listener and the ingestion of what it writes.

With ``lineage.spark_listener: true`` the session gets ``openlineage-spark``
(``lineage.spark_listener_package``) and :func:`listener_conf`: the listener sees every
Spark action (reads, writes, Delta MERGE...) and appends its own OpenLineage events, one
JSON line each, to :func:`events_file` in the spool folder. :func:`ingest_listener_events`
sends the lines added since the last call through the configured transports (the
catalog by default); ``JobRun`` calls it at the end of every run, and so does
``neurolake lineage replay``. Before sending, each event is adopted (:func:`adopt`):

**Linked to the JobRun that was running.** openlineage-spark 1.53.0 reads
``spark.openlineage.parentRunId`` / ``parentJobName`` / ``parentJobNamespace`` once, from
the SparkConf, when the listener starts (``ArgumentParser.parse(SparkConf)`` into one
``EventEmitter``); it reads no SparkContext local property nor runtime
(``spark.conf.set``) value per job, and it makes every action's event a child of the Spark
application run, that parent becoming only the root. One session hosts many JobRuns
(the nightly chain runs all its steps in one), so the link is made at ingestion instead:
:class:`RunWindowRecorder` (one of :func:`~neurolake_spark.lineage.listener.lineage_listeners`)
appends each run's window (start, then end) with its ``parent`` facet to :func:`windows_file`;
an action event of this process's Spark application (its ``parent`` run is
:data:`APPLICATION_RUN_ID`, pinned through ``spark.openlineage.applicationRunId``) whose
``eventTime`` falls in a window gets that run as its ``parent`` (the innermost run when
windows nest). The windows
are durable (for :data:`WINDOW_RETENTION` after the run ended), so events the JVM flushes
after the run ended, ingested by a later run or by replay in another process, are linked
all the same; matching on the application run keeps concurrent jobs sharing the spool
apart. The Spark application's own START / COMPLETE events span many runs and stay unlinked.

**Datasets named like ours.** The JVM names a dataset by its storage path (namespace
``file``, name ``/abs/warehouse/silver/orders``); a path under the warehouse at
``<layer>/<table>`` (or inside it) becomes our identity, ``settings.lineage_namespace`` +
``layer.table``, with our ``dataSource`` facet and the path kept as a ``symlinks``
identifier, so both land on the same catalog dataset. Other paths keep their names; a
``dataSource`` ``uri`` that is not a URI (the JVM writes ``file``) is dropped so the event
stays valid per the OpenLineage schema.

Kill switches: ``NEUROLAKE__LINEAGE__SPARK_LISTENER=false`` (the session is built without
the listener), or ``spark.openlineage.disabled=true`` in ``spark.conf`` (the jar is
loaded but emits nothing).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openlineage.client.facet_v2 import datasource_dataset, symlinks_dataset
from openlineage.client.serde import Serde

from neurolake_spark.atomic_files import file_lock, write_atomic
from neurolake_spark.config import Settings
from neurolake_spark.lineage import LineageEventError
from neurolake_spark.lineage.events import _is_uri, parent_facet, parse_event, producer
from neurolake_spark.lineage.spool import CORRUPT_DIR
from neurolake_spark.pipeline_config import TABLE_NAME
from neurolake_spark.run_model import JOB_NAMESPACE
from neurolake_spark.runs import JobRun

if TYPE_CHECKING:  # for annotations only: delivery imports this module
    from neurolake_spark.lineage.delivery import LineageEmitter

log = logging.getLogger(__name__)

LISTENER_CLASS = "io.openlineage.spark.agent.OpenLineageSparkListener"
APPLICATION_RUN_ID = str(uuid.uuid4())
"""The OpenLineage run id of this process's Spark application (one per Python process)."""
WINDOW_RETENTION = timedelta(days=7)
"""How long a run's window is kept for linking events the JVM flushed late (or replay)."""


def events_file(settings: Settings) -> Path:
    """Where the JVM listener appends its events."""
    return settings.lineage_spool_dir / "_spark_listener" / "events.jsonl"


def windows_file(settings: Settings) -> Path:
    """Where :class:`RunWindowRecorder` appends the runs' windows."""
    return events_file(settings).with_name("runs.jsonl")


def listener_conf(settings: Settings) -> dict[str, str]:
    """Spark settings that turn on the JVM listener with a file transport."""
    path = events_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "spark.extraListeners": LISTENER_CLASS,
        "spark.openlineage.namespace": JOB_NAMESPACE,
        "spark.openlineage.applicationRunId": APPLICATION_RUN_ID,
        "spark.openlineage.transport.type": "file",
        "spark.openlineage.transport.location": str(path),
    }


class RunWindowRecorder:
    """A ``RunListener`` that records when each run started and ended, for :func:`adopt`."""

    def __init__(self, settings: Settings):
        self.path = windows_file(settings)

    def on_start(self, run: JobRun) -> None:
        self._append(run, None)

    def on_end(self, run: JobRun) -> None:
        self._append(run, run.ended_at)

    def _append(self, run: JobRun, end: datetime | None) -> None:
        record = {
            "app": APPLICATION_RUN_ID,
            "start": run.started_at.isoformat(),
            "end": end.isoformat() if end else None,
            "parent": Serde.to_dict(parent_facet(run)),
        }
        with file_lock(_windows_lock(self.path)), open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")


@dataclass(frozen=True)
class RunWindow:
    """One run's time window in one Spark application, and the ``parent`` facet naming the run."""

    app: str
    start: datetime
    end: datetime | None
    parent: dict[str, Any]

    def holds(self, app: str, moment: datetime) -> bool:
        # The JVM writes milliseconds: compare from the start's millisecond.
        start = self.start.replace(microsecond=self.start.microsecond // 1000 * 1000)
        return app == self.app and start <= moment and (self.end is None or moment <= self.end)


def _windows_lock(path: Path) -> Path:
    return path.with_name(".runs.lock")


def _parse_window(line: str) -> RunWindow | None:
    try:
        record = json.loads(line)
        return RunWindow(
            app=record["app"],
            start=datetime.fromisoformat(record["start"]),
            end=datetime.fromisoformat(record["end"]) if record["end"] else None,
            parent=record["parent"],
        )
    except (ValueError, KeyError, TypeError):
        return None


def load_windows(settings: Settings, now: datetime | None = None) -> list[RunWindow]:
    """The recorded windows, one per run (its end once recorded), and keep the file small.

    Windows that ended (or, never ended, started) more than :data:`WINDOW_RETENTION`
    before ``now`` are dropped from the file, as are unreadable lines and the start
    records of ended runs; the file is rewritten only when something was dropped.
    """
    path = windows_file(settings)
    if not path.exists():
        return []
    horizon = (now or datetime.now(UTC)) - WINDOW_RETENTION
    with file_lock(_windows_lock(path)):
        lines = path.read_text(encoding="utf-8").splitlines()
        latest: dict[str, tuple[RunWindow, str]] = {}
        for line in lines:
            window = _parse_window(line)
            if window is not None:
                latest[window.parent["run"]["runId"]] = (window, line)
        kept = [(w, line) for w, line in latest.values() if (w.end or w.start) >= horizon]
        if len(kept) < len(lines):
            write_atomic(path, "".join(line + "\n" for _, line in kept))
    return [w for w, _ in kept]


def link_to_run(event: dict[str, Any], windows: list[RunWindow]) -> None:
    """Point an action event of a recorded Spark application at the innermost run it ran in."""
    facets = event["run"].get("facets") or {}
    app = ((facets.get("parent") or {}).get("run") or {}).get("runId")
    try:
        moment = datetime.fromisoformat(event["eventTime"])
    except ValueError:
        return
    holding = [w for w in windows if app and moment.tzinfo and w.holds(app, moment)]
    if holding:
        event["run"]["facets"] = {**facets, "parent": max(holding, key=lambda w: w.start).parent}


def table_name(namespace: str, name: str, warehouse: Path) -> str | None:
    """``layer.table`` for a storage path under ``warehouse/<layer>/<table>``, else None."""
    if namespace.split(":", 1)[0] != "file":
        return None
    try:
        parts = Path(name).resolve().relative_to(warehouse.resolve()).parts
    except (ValueError, OSError):
        return None
    candidate = ".".join(parts[:2])
    return candidate if len(parts) >= 2 and TABLE_NAME.match(candidate) else None


def _rename_dataset(dataset: dict[str, Any], settings: Settings) -> None:
    facets = dataset.setdefault("facets", {})
    table = table_name(dataset.get("namespace", ""), dataset.get("name", ""), settings.warehouse)
    source = facets.get("dataSource")
    if table is None:
        if isinstance(source, dict) and "uri" in source and not _is_uri(str(source["uri"])):
            facets["dataSource"] = {k: v for k, v in source.items() if k != "uri"}
        return
    namespace = settings.lineage_namespace
    symlinks = facets.get("symlinks") or Serde.to_dict(
        symlinks_dataset.SymlinksDatasetFacet(identifiers=[], producer=producer())
    )
    location = {"namespace": dataset["namespace"], "name": dataset["name"], "type": "LOCATION"}
    symlinks["identifiers"] = [*(symlinks.get("identifiers") or []), location]
    facets["symlinks"] = symlinks
    facets["dataSource"] = Serde.to_dict(
        datasource_dataset.DatasourceDatasetFacet(
            name=namespace, uri=namespace if _is_uri(namespace) else None, producer=producer()
        )
    )
    dataset["namespace"], dataset["name"] = namespace, table


def _rename_column_sources(dataset: dict[str, Any], settings: Settings) -> None:
    lineage = (dataset.get("facets") or {}).get("columnLineage") or {}
    sources = [s for f in (lineage.get("fields") or {}).values() for s in f.get("inputFields", [])]
    for source in [*sources, *(lineage.get("dataset") or [])]:
        table = table_name(source.get("namespace", ""), source.get("name", ""), settings.warehouse)
        if table is not None:
            source["namespace"], source["name"] = settings.lineage_namespace, table


def map_datasets(event: dict[str, Any], settings: Settings) -> None:
    """Rename the event's warehouse paths (datasets and column lineage sources) to logical tables."""
    for dataset in [*(event.get("inputs") or []), *(event.get("outputs") or [])]:
        _rename_column_sources(dataset, settings)
        _rename_dataset(dataset, settings)


def adopt(event: dict[str, Any], settings: Settings, windows: list[RunWindow]) -> dict[str, Any]:
    """The JVM's event linked to its JobRun (:func:`link_to_run`) with our dataset names."""
    link_to_run(event, windows)
    map_datasets(event, settings)
    return event


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
    """Emit the JVM listener's events written since the last call, adopted; return how many.

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
        windows = load_windows(settings) if complete.strip() else []
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
            emitter.emit(adopt(event, settings, windows))
            emitted += 1
        write_atomic(
            state_file,
            json.dumps(
                {
                    "inode": position["inode"],
                    "offset": position["offset"] + len(complete),
                    "line": position["line"] + complete.count(b"\n"),
                }
            ),
        )
    return emitted
