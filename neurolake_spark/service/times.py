"""Times at the service's edge: requests may give any offset, the catalog stores naive UTC,
and answers always carry an explicit UTC offset (RFC 3339, as the OpenAPI ``date-time`` format needs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator


def naive_utc(moment: datetime | None) -> datetime | None:
    """A request time as the catalog compares times: naive UTC (a time without offset is UTC)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def aware_utc(moment: datetime) -> datetime:
    """A stored (naive UTC) time with its UTC offset."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def with_utc(value: Any) -> Any:
    """``value`` with every datetime inside (dicts, lists) given its UTC offset."""
    if isinstance(value, datetime):
        return aware_utc(value)
    if isinstance(value, dict):
        return {k: with_utc(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [with_utc(v) for v in value]
    return value


UtcTime = Annotated[datetime, AfterValidator(aware_utc)]
"""A response field's time: serialized with its UTC offset."""
