"""ABORT events for runs whose process died before ending them.

A process killed mid-run (SIGKILL, OOM killer, a lost host) sent its runs' START events and
never their end: lineage would show them running forever. The runs a lock holder has open
are listed in its lock record (:class:`~neurolake_spark.locks.OpenRun`); the command that
takes over a dead holder's lock calls :func:`report_abandoned` for them
(:func:`~neurolake_spark.locks.run_lock`), which sends, through the configured transports,
one OpenLineage ABORT event per run, children before their parent, with an ``errorMessage``
saying whose lock was taken over and by which run::

    report_abandoned(settings, [OpenRun(nightly_id, "nightly", None, "2026-11-24"),
                                OpenRun(step_id, "silver", nightly_id, "2026-11-24")],
                     "abandoned: its process (pid 4242 on host x, ...) is gone ...")

The catalog then shows each of them ``aborted``, ended when the takeover noticed it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from neurolake_spark.config import Settings
from neurolake_spark.errors import NeuroLakeError
from neurolake_spark.lineage.listener import LineageListener
from neurolake_spark.run_status import RunStatus
from neurolake_spark.runs import JobRun

if TYPE_CHECKING:  # for annotations only: locks imports this module
    from neurolake_spark.locks import OpenRun

log = logging.getLogger(__name__)


class AbandonedRun(NeuroLakeError):
    """Why a run ended without its process ending it (the ABORT event's error message)."""


def report_abandoned(settings: Settings, runs: Sequence[OpenRun], reason: str) -> list[JobRun]:
    """Send an ABORT event for each of ``runs`` (children first); return them as ended runs.

    A run is linked to its parent when the parent is among ``runs`` (parents come first in a
    lock record). Nothing is sent with lineage off. Like every run listener, a failure is
    logged and never fails the command that took the lock over (an undeliverable event is
    spooled as usual)."""
    ended = datetime.now(UTC)
    made: dict[str, JobRun] = {}
    for entry in runs:
        run = JobRun(
            entry.job,
            settings,
            parent=made.get(entry.parent) if entry.parent else None,
            run_date=entry.run_date,
            listeners=[],
            run_id=entry.run_id,
        )
        run.status, run.ended_at, run.error = RunStatus.ABORTED, ended, AbandonedRun(reason)
        made[entry.run_id] = run
    aborted = list(made.values())
    for run in reversed(aborted):
        log.warning("run %s (%s) was %s", run.run_id, run.job_name, reason)
    if not settings.lineage.enabled:
        return aborted
    listener = LineageListener(settings)
    for run in reversed(aborted):
        try:
            listener.on_end(run)
        except Exception as exc:  # a listener must never fail the command
            log.warning("could not report run %s as aborted: %s", run.run_id, exc)
    return aborted
