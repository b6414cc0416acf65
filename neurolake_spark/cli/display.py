"""How the auditor commands print the catalog's answers: text tables, JSON, and errors in CLI words.

The catalog answers with plain records (:mod:`neurolake_spark.catalog.records`) and
structured errors (:mod:`neurolake_spark.catalog.errors`); this module turns them into
what ``neurolake lineage|catalog|runs|quality`` print. Run states and times are worded
by :mod:`neurolake_spark.catalog.words`, as in the HTML drawings.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from neurolake_spark.catalog.errors import (
    TIME_FORMATS,
    AmbiguousDatasetError,
    CatalogError,
    CatalogNotFoundError,
    InvalidTimeError,
    UnknownDatasetError,
    UnknownRunError,
)
from neurolake_spark.catalog.records import DatasetSummary, QualityResult
from neurolake_spark.catalog.words import in_words

# The command-line option that gives each time parameter of the catalog's queries.
TIME_OPTIONS = {"as_of": "--as-of", "before": "--from", "after": "--to", "run_date": "--date"}

SUMMARY_HEADERS = ["table", "format", "owner", "tags", "versions", "last written", "quality passed"]
QUALITY_HEADERS = [
    "dataset",
    "expectation",
    "column",
    "success",
    "observed value",
    "unexpected",
    "severity",
    "run date",
    "run",
]


def _iso_utc(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def to_json(value: Any) -> str:
    """Records (dataclasses, dicts, lists) as indented JSON: times in ISO 8601 UTC, run states in words."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    return json.dumps(in_words(value, _iso_utc), indent=2, default=str)


def text_table(headers: list[str], rows: list[list[Any]]) -> str:
    """Rows as aligned plain-text columns (times in UTC words, empty cells as ``-``)."""
    cells = [[("-" if v is None or v == "" else str(in_words(v))) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def summary_rows(datasets: list[DatasetSummary]) -> list[list[Any]]:
    """Datasets as :data:`SUMMARY_HEADERS` rows (``catalog list`` and ``catalog search``)."""
    return [
        [
            d.name,
            d.format,
            d.owner,
            ", ".join(d.tags),
            d.versions,
            d.last_updated,
            "" if d.quality_pass_rate is None else f"{d.quality_pass_rate:.0%} of {d.quality_checks}",
        ]
        for d in datasets
    ]


def quality_rows(results: list[QualityResult]) -> list[list[Any]]:
    """Quality results as :data:`QUALITY_HEADERS` rows (``quality report``, ``catalog show``...)."""
    return [
        [
            q["dataset"],
            q["expectation"],
            q["column"],
            "passed" if q["success"] else "FAILED",
            q["observed_value"],
            q["unexpected_count"],
            q["severity"],
            q["run_date"],
            q["run"],
        ]
        for q in results
    ]


def cli_message(error: CatalogError) -> str:
    """``error`` in the words of the CLI: its options, and the command that lists what exists."""
    if isinstance(error, InvalidTimeError):
        return (
            f"{TIME_OPTIONS.get(error.field, error.field)} {error.value!r} is not a time: use {TIME_FORMATS}"
        )
    if isinstance(error, CatalogNotFoundError):
        return f"no catalog at {error.path} yet: run the pipeline (neurolake nightly) first"
    if isinstance(error, UnknownDatasetError) and not error.suggestions:
        return f"{error} (see `neurolake catalog list`)"
    if isinstance(error, UnknownRunError):
        return f"{error} (see `neurolake runs list`)"
    if isinstance(error, AmbiguousDatasetError):
        return f"{error}; choose one with --set lineage.namespace=NAMESPACE"
    return str(error)


class CommandError(CatalogError):
    """A catalog error as the CLI words it (exits as every catalog error does)."""


def in_cli_words(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``handler`` with the catalog's errors re-raised as :class:`CommandError` in CLI words."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CatalogError as exc:
            raise CommandError(cli_message(exc)) from None

    return run
