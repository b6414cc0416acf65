"""What the catalog's queries answer: datasets, versions, runs, quality results and counts.

Plain data (dataclasses and typed dicts) with times as naive UTC datetimes and run states
as :class:`~neurolake_spark.run_status.RunStatus`; the CLI and the drawings put them into
words (:mod:`.words`), an HTTP API can serialise them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from neurolake_spark.run_status import RunStatus


@dataclass
class DatasetSummary:
    """A dataset as lists and search results show it."""

    id: int
    name: str
    namespace: str
    format: str | None
    owner: str | None
    description: str | None
    tags: list[str]
    versions: int
    last_updated: datetime | None
    quality_checks: int
    quality_passed: int

    @property
    def quality_pass_rate(self) -> float | None:
        return self.quality_passed / self.quality_checks if self.quality_checks else None


class ColumnInfo(TypedDict):
    """One column of a dataset's current schema (nested fields by dotted name)."""

    name: str
    type: str | None
    description: str | None


class SchemaVersion(TypedDict):
    """One distinct schema a dataset had, from the first run that wrote it."""

    schema_id: int
    first_seen: datetime
    first_run: str | None
    fields: list[dict[str, Any]]


class InputVersion(TypedDict):
    """An input dataset (and its version) a dataset version was built from."""

    dataset: str
    version: str | None


class DatasetVersion(TypedDict):
    """A version a completed run wrote, with what it was built from."""

    version: str | None
    run: str
    job: str
    completed: datetime | None
    run_date: str | None
    code_version: str | None
    rows: int | None
    bytes: int | None
    files: int | None
    inputs: list[InputVersion]


class ColumnSource(TypedDict):
    """One input column feeding an output column."""

    dataset: str
    column: str
    type: str | None
    subtype: str | None


class QualityResult(TypedDict):
    """One data quality check on one dataset in one run."""

    dataset: str
    version: str | None
    expectation: str
    column: str | None
    success: bool
    severity: str | None
    observed_value: str | None
    expected_value: str | None
    unexpected_count: int | None
    run_date: str | None
    recorded: datetime
    run: str
    job: str


@dataclass
class DatasetDetail:
    """Everything the catalog knows about one dataset (as of a time): what ``catalog show`` prints."""

    summary: DatasetSummary
    columns: list[ColumnInfo]
    schema_versions: list[SchemaVersion]
    versions: list[DatasetVersion]
    quality: list[QualityResult]
    column_lineage: dict[str, list[ColumnSource]]
    writers: list[str] = field(default_factory=list)
    readers: list[str] = field(default_factory=list)


class RunInfo(TypedDict):
    """One run as run lists show it."""

    run: str
    job: str
    state: RunStatus
    run_date: str | None
    started: datetime | None
    ended: datetime | None
    duration_seconds: float | None
    parent: str | None
    code_version: str | None
    error: str | None


class RunDataset(TypedDict):
    """A dataset a run read or wrote, at which version, with its statistics."""

    dataset: str
    version: str | None
    rows: int | None
    bytes: int | None
    files: int | None


class RunDetail(RunInfo):
    """One run in full: its steps (child runs), inputs, outputs and quality results."""

    children: list[RunInfo]
    inputs: list[RunDataset]
    outputs: list[RunDataset]
    quality: list[QualityResult]


class CatalogStats(TypedDict):
    """Counts of everything, runs by state, the last event time and the quality pass rate."""

    namespaces: int
    datasets: int
    jobs: int
    runs: int
    events: int
    quality_results: int
    dataset_versions: int
    runs_by_state: dict[RunStatus, int]
    last_event: datetime | None
    quality_pass_rate: float | None
