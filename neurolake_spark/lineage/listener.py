"""``LineageListener``: the :class:`~neurolake_spark.run_model.RunListener` that emits OpenLineage events.

:func:`lineage_listeners` is the factory the session registers for every ``JobRun``
(:mod:`~neurolake_spark.run_listeners`): with ``lineage.enabled`` it makes a
``LineageListener``, preceded, with the JVM listener on, by the recorder of run windows. At
a run's start the listener emits START (delivering first whatever an earlier run spooled);
at its end the event of the run's final state (COMPLETE or FAIL, see
:class:`~neurolake_spark.run_status.RunStatus`), then, when the JVM listener is on, the
events it wrote meanwhile.
"""

from __future__ import annotations

from openlineage.client.event_v2 import RunState

from neurolake_spark.config import Settings
from neurolake_spark.lineage.delivery import LineageEmitter
from neurolake_spark.lineage.events import build_event, to_dict
from neurolake_spark.lineage.spark_listener import RunWindowRecorder, ingest_listener_events
from neurolake_spark.run_model import RunListener
from neurolake_spark.run_status import RunStatus
from neurolake_spark.runs import JobRun


class LineageListener:
    """Emits a run's START and COMPLETE / FAIL events through the configured transports."""

    def __init__(self, settings: Settings, emitter: LineageEmitter | None = None):
        self.settings = settings
        self.emitter = emitter or LineageEmitter(settings)

    def on_start(self, run: JobRun) -> None:
        self.emitter.emit(to_dict(build_event(run, RunState.START)))

    def on_end(self, run: JobRun) -> None:
        self.emitter.emit(to_dict(build_event(run, RunState(RunStatus(run.status).openlineage))))
        if self.settings.lineage.spark_listener:
            ingest_listener_events(self.settings, self.emitter)


def lineage_listeners(settings: Settings) -> list[RunListener]:
    """The lineage listeners the settings turn on: none, or the run window recorder (with the
    JVM listener; first, so a run's window is recorded before its end ingests) and the
    :class:`LineageListener`."""
    if not settings.lineage.enabled:
        return []
    recorder: list[RunListener] = [RunWindowRecorder(settings)] if settings.lineage.spark_listener else []
    return [*recorder, LineageListener(settings)]
