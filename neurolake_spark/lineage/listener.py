"""``LineageListener``: the :class:`~neurolake_spark.runs.RunListener` that emits OpenLineage events.

``JobRun`` gets one from ``build_listeners`` when ``lineage.enabled`` is true. At a run's
start it emits START (delivering first whatever an earlier run spooled); at its end
COMPLETE or FAIL, then, when the JVM listener is on, the events it wrote meanwhile.
"""

from __future__ import annotations

from openlineage.client.event_v2 import RunState

from neurolake_spark.config import Settings
from neurolake_spark.lineage.delivery import LineageEmitter
from neurolake_spark.lineage.events import build_event, to_dict


class LineageListener:
    """Emits a run's START and COMPLETE / FAIL events through the configured transports."""

    def __init__(self, settings: Settings, emitter: LineageEmitter | None = None):
        self.settings = settings
        self.emitter = emitter or LineageEmitter(settings)

    def on_start(self, run) -> None:
        self.emitter.emit(to_dict(build_event(run, RunState.START)))

    def on_end(self, run) -> None:
        state = RunState.COMPLETE if run.status == "success" else RunState.FAIL
        self.emitter.emit(to_dict(build_event(run, state)))
        if self.settings.lineage.spark_listener:
            from neurolake_spark.lineage.spark_listener import ingest_listener_events

            ingest_listener_events(self.settings, self.emitter)
