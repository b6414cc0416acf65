"""Values given as text (a command line, a settings file, a job's arguments), parsed one way for all.

Example::

    >>> parse_date("2026-11-24")
    datetime.date(2026, 11, 24)
"""

from __future__ import annotations

from datetime import date

from neurolake_spark.errors import PipelineError


def parse_date(text: str) -> date:
    """Parse ``YYYY-MM-DD`` or raise a one-line PipelineError."""
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise PipelineError(f"bad date '{text}': expected YYYY-MM-DD, e.g. 2026-11-24") from None
