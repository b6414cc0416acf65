"""The one vocabulary of a run's state, and its single mapping to OpenLineage event types.

A :class:`~neurolake_spark.runs.JobRun` moves ``pending -> running -> success | failed``;
the catalog reads states from OpenLineage events, where a producer may also report an
aborted run or one it cannot name. Words shown to people (``completed`` for a run that
succeeded, say) belong to whoever displays them, not here.

Example::

    RunStatus.SUCCESS.openlineage        # 'COMPLETE'
    RunStatus.from_openlineage("FAIL")   # RunStatus.FAILED
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run's state; the value is what metrics labels and run summaries print."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    ABORTED = "aborted"
    UNKNOWN = "unknown"

    @property
    def openlineage(self) -> str:
        """The OpenLineage ``eventType`` that reports this state."""
        return _TO_OPENLINEAGE[self]

    @property
    def terminal(self) -> bool:
        """True when the run has ended (no later state replaces it)."""
        return self in (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.ABORTED)

    @classmethod
    def from_openlineage(cls, event_type: str) -> RunStatus:
        """The state an OpenLineage ``eventType`` reports (``UNKNOWN`` for ``OTHER`` or anything new)."""
        return _FROM_OPENLINEAGE.get(event_type.upper(), cls.UNKNOWN)


_TO_OPENLINEAGE = {
    RunStatus.PENDING: "OTHER",
    RunStatus.RUNNING: "RUNNING",
    RunStatus.SUCCESS: "COMPLETE",
    RunStatus.FAILED: "FAIL",
    RunStatus.ABORTED: "ABORT",
    RunStatus.UNKNOWN: "OTHER",
}
_FROM_OPENLINEAGE = {
    "START": RunStatus.RUNNING,
    "RUNNING": RunStatus.RUNNING,
    "COMPLETE": RunStatus.SUCCESS,
    "FAIL": RunStatus.FAILED,
    "ABORT": RunStatus.ABORTED,
}
