"""``JobRun``: the one context every pipeline step runs inside.

Example::

    with JobRun("silver", settings, parent=nightly_run, run_date="2026-11-24") as run:
        run.add_input("bronze.orders", version=3, rows=100_000)
        ...
        run.add_output("silver.orders", version=7, rows=99_000, bytes_written=1_234_567, files=4)

A run records its id (UUID), job name, start and end, status (``success`` or ``failed``
with the error), its inputs and outputs (logical table, version, counts, schema, column
lineage) and quality results. Listeners (metrics, lineage) are told when it starts and
when it ends; a listener that fails is logged and never fails the job.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from neurolake_spark.config import Settings

log = logging.getLogger(__name__)

JOB_NAMESPACE = "neurolake"


@dataclass
class ColumnSource:
    """One input column that feeds an output column."""

    dataset: str
    column: str
    kind: str = "DIRECT"
    subtype: str = "IDENTITY"


@dataclass
class Dataset:
    """A table a run read or wrote, at a version, with what is known about it."""

    name: str
    format: str = "delta"
    path: str | None = None
    version: int | None = None
    rows: int | None = None
    bytes: int | None = None
    files: int | None = None
    schema: list[tuple[str, str]] | None = None
    column_lineage: dict[str, list[ColumnSource]] = field(default_factory=dict)


@dataclass
class QualityResult:
    """One expectation's outcome on one dataset, as the quality gates report it."""

    dataset: str
    expectation: str
    success: bool
    severity: str = "critical"
    action: str = "block"
    column: str | None = None
    observed_value: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None


def schema_of(struct) -> list[tuple[str, str]]:
    """A Spark ``StructType`` as ``[(column, type)]`` for a :class:`Dataset`."""
    return [(f.name, f.dataType.simpleString()) for f in struct.fields]


class RunListener(Protocol):
    """Told about a run's life; implemented by metrics and lineage."""

    def on_start(self, run: JobRun) -> None: ...

    def on_end(self, run: JobRun) -> None: ...


class JobRun:
    """Context manager around one job step; see the module docstring."""

    def __init__(
        self,
        job_name: str,
        settings: Settings,
        *,
        parent: JobRun | None = None,
        run_date: str | None = None,
        listeners: list[RunListener] | None = None,
        run_id: str | None = None,
    ):
        self.job_name = job_name
        self.settings = settings
        self.parent = parent
        self.run_date = run_date or (parent.run_date if parent else None)
        self.run_id = run_id or str(uuid.uuid4())
        self.listeners = (
            list(listeners)
            if listeners is not None
            else (parent.listeners if parent else build_listeners(settings))
        )
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.status = "pending"
        self.error: BaseException | None = None
        self.error_stack: str | None = None
        self.inputs: list[Dataset] = []
        self.outputs: list[Dataset] = []
        self.quality: list[QualityResult] = []
        self.rows_quarantined = 0
        self.facts: dict[str, Any] = {}
        self._clock: float | None = None

    @property
    def duration_seconds(self) -> float:
        if self._clock is None:
            return 0.0
        end = self._end_clock if self.ended_at else time.perf_counter()
        return end - self._clock

    @property
    def rows_in(self) -> int:
        return sum(d.rows or 0 for d in self.inputs)

    @property
    def rows_out(self) -> int:
        return sum(d.rows or 0 for d in self.outputs)

    @property
    def bytes_written(self) -> int:
        return sum(d.bytes or 0 for d in self.outputs)

    def child(self, job_name: str) -> JobRun:
        """A run of a sub-step whose parent is this run."""
        return JobRun(job_name, self.settings, parent=self)

    def add_input(self, name: str, **details: Any) -> Dataset:
        dataset = Dataset(name=name, **details)
        self.inputs.append(dataset)
        return dataset

    def add_output(self, name: str, **details: Any) -> Dataset:
        dataset = Dataset(name=name, **details)
        self.outputs.append(dataset)
        return dataset

    def record_quality(self, results: list[QualityResult]) -> None:
        self.quality.extend(results)

    def __enter__(self) -> JobRun:
        self.started_at = datetime.now(UTC)
        self._clock = time.perf_counter()
        self.status = "running"
        self._notify("on_start")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._end_clock = time.perf_counter()
        self.ended_at = datetime.now(UTC)
        if exc is None:
            self.status = "success"
        else:
            self.status = "failed"
            self.error = exc
            self.error_stack = "".join(traceback.format_exception(exc_type, exc, tb))
        self._notify("on_end")
        return False

    def _notify(self, event: str) -> None:
        for listener in self.listeners:
            try:
                getattr(listener, event)(self)
            except Exception as exc:  # a listener must never fail the data job
                log.warning("%s.%s failed for run %s: %s", type(listener).__name__, event, self.run_id, exc)


def build_listeners(settings: Settings) -> list[RunListener]:
    """The listeners the settings turn on: Prometheus metrics, OpenLineage events and, with the
    JVM listener, the run windows its events are linked by."""
    listeners: list[RunListener] = []
    if settings.metrics.enabled:
        from neurolake_spark.metrics import MetricsListener

        listeners.append(MetricsListener(settings))
    if settings.lineage.enabled:
        from neurolake_spark.lineage.listener import LineageListener

        if settings.lineage.spark_listener:  # first, so a run's window is recorded before its end ingests
            from neurolake_spark.lineage.spark_listener import RunWindowRecorder

            listeners.append(RunWindowRecorder(settings))
        listeners.append(LineageListener(settings))
    return listeners
