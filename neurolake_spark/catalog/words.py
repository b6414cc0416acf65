"""The catalog's facts in the words auditors read: UTC times, run states, column transformations.

The catalog's queries answer with datetimes and :class:`~neurolake_spark.run_status.RunStatus`
values; the drawings (:mod:`.render`) and the CLI (:mod:`neurolake_spark.cli.display`) say
them with these words, so a run reads ``completed`` and a time ``2026-11-24 02:13:05 UTC``
in every report.

Example::

    format_time(datetime(2026, 11, 24, 2, 13, 5))       # '2026-11-24 02:13:05 UTC'
    STATE_WORDS[RunStatus.SUCCESS]                      # 'completed'
    describe_transformation("DIRECT AGGREGATION")       # 'aggregated from'
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from neurolake_spark.catalog.records import ColumnSource
from neurolake_spark.run_status import RunStatus

STATE_WORDS = {
    RunStatus.PENDING: "pending",
    RunStatus.RUNNING: "running",
    RunStatus.SUCCESS: "completed",
    RunStatus.FAILED: "failed",
    RunStatus.ABORTED: "aborted",
    RunStatus.UNKNOWN: "unknown",
}
TRANSFORMATION_WORDS = {
    "DIRECT IDENTITY": "copied as is",
    "DIRECT TRANSFORMATION": "computed from",
    "DIRECT AGGREGATION": "aggregated from",
    "DIRECT MASKED": "masked copy of",
    "INDIRECT FILTER": "filters the rows (indirect)",
    "INDIRECT JOIN": "used to join (indirect)",
    "INDIRECT GROUP_BY": "groups the rows (indirect)",
    "INDIRECT SORT": "orders the rows (indirect)",
    "INDIRECT WINDOW": "window over the rows (indirect)",
    "INDIRECT CONDITIONAL": "decides a condition (indirect)",
}


def format_time(moment: datetime | None) -> str:
    """A stored time as ``2026-11-24 02:13:05 UTC`` (what auditors read); ``""`` for None."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_transformation(text: str | None) -> str:
    """``"DIRECT AGGREGATION"`` -> ``"aggregated from"`` (plain words for auditors)."""
    if not text:
        return "derived from"
    return TRANSFORMATION_WORDS.get(text, text.lower().replace("_", " "))


def describe_source(source: ColumnSource) -> str:
    """How an input column feeds an output column, from its transformation type and subtype."""
    return describe_transformation(" ".join(t for t in (source["type"], source["subtype"]) if t))


def in_words(value: Any, time_format: Callable[[datetime], Any] = format_time) -> Any:
    """``value`` (dicts, lists, tuples of them) with run states in words and times by ``time_format``."""
    if isinstance(value, RunStatus):
        return STATE_WORDS[value]
    if isinstance(value, datetime):
        return time_format(value)
    if isinstance(value, dict):
        return {in_words(k, time_format): in_words(v, time_format) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [in_words(v, time_format) for v in value]
    return value
