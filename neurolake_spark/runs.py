"""``JobRun``: the one context every pipeline step runs inside.

Example::

    with JobRun("silver", settings, parent=nightly_run, run_date="2026-11-24") as run:
        run.add_input("bronze.orders", version=3, rows=100_000)
        ...
        run.add_output("silver.orders", version=7, rows=99_000, bytes_written=1_234_567, files=4)

A run records its id (UUID), job name, start and end, status (a
:class:`~neurolake_spark.run_status.RunStatus`: ``success`` or ``failed`` with the error),
its inputs and outputs (logical table, version, counts, schema, column lineage; see
:mod:`~neurolake_spark.run_model`) and quality results. Listeners (metrics, lineage) are
told when it starts and when it ends; a listener that fails is logged and never fails the
job. A run given no listeners takes its parent's, or else those the registered factories
make of its settings (:data:`~neurolake_spark.run_listeners.run_listeners`).
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

from neurolake_spark.config import Settings
from neurolake_spark.run_listeners import run_listeners
from neurolake_spark.run_model import Dataset, QualityResult, RunListener
from neurolake_spark.run_status import RunStatus

log = logging.getLogger(__name__)


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
            else (parent.listeners if parent else run_listeners.build(settings))
        )
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.status = RunStatus.PENDING
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
        self.status = RunStatus.RUNNING
        self._notify("on_start")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._end_clock = time.perf_counter()
        self.ended_at = datetime.now(UTC)
        if exc is None:
            self.status = RunStatus.SUCCESS
        else:
            self.status = RunStatus.FAILED
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
