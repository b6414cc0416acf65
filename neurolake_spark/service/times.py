"""Times at the service's edge: requests give a date or a time with any offset (read as the CLI
reads them), the catalog stores naive UTC, and answers always carry an explicit UTC offset
(RFC 3339, as the OpenAPI ``date-time`` format needs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator

from neurolake_spark.catalog.errors import CatalogError
from neurolake_spark.catalog.times import parse_time
from neurolake_spark.service.problems import Problem

TIME_HELP = "YYYY-MM-DD or an ISO 8601 time; UTC unless it has an offset"
TimeQuery = Annotated[str | None, Query(max_length=64, description=TIME_HELP)]


def request_time(value: str | None, name: str, end_of_day: bool = True) -> datetime | None:
    """A time parameter as the catalog compares times (naive UTC), read the way the CLI reads
    ``--as-of``: a date alone is the end of that day (the start with ``end_of_day=False``)."""
    if value is None:
        return None
    try:
        return parse_time(value, name, end_of_day=end_of_day)
    except CatalogError as exc:
        raise Problem("invalid-parameter", str(exc)) from None


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
