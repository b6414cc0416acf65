"""Times in the catalog: naive UTC everywhere, and one parser for what people and events give.

Example::

    parse_time("2026-11-24")                  # 2026-11-24 23:59:59.999999 (the end of that day)
    parse_time("2026-11-24", end_of_day=False)  # 2026-11-24 00:00:00
    parse_time("2026-11-24T08:00+01:00")      # 2026-11-24 07:00:00
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from neurolake_spark.catalog.errors import InvalidTimeError


def utc_now() -> datetime:
    """The current time as naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc(moment: datetime) -> datetime:
    """A naive UTC datetime (how the catalog stores every time)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def parse_time(value: datetime | str, field: str = "time", end_of_day: bool = True) -> datetime:
    """Parse an ISO 8601 time or date into naive UTC; a date alone means the end of that day.

    A time without a zone is UTC. A bad value raises :class:`InvalidTimeError` naming
    ``field`` (the parameter it was given for).
    """
    if isinstance(value, datetime):
        return to_utc(value)
    text = str(value).strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time.max if end_of_day else time.min)
        return to_utc(datetime.fromisoformat(text.replace(" ", "T", 1)))
    except ValueError:
        raise InvalidTimeError(field, text) from None


def optional_time(value: datetime | str | None, field: str) -> datetime | None:
    """:func:`parse_time` for an optional ``as_of``-like parameter (None stays None: now)."""
    return None if value is None else parse_time(value, field)
