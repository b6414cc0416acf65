"""Reading OpenLineage RunEvents (spec 2-0-2) into plain records the store writes.

Parsing is lenient about facets (what is there is kept, what is missing stays empty)
and strict about what identifies an event: a JSON object with ``run.runId``,
``job.namespace``, ``job.name`` and a valid ``eventTime``; datasets need a namespace
and a name. Anything else is an :class:`InvalidEventError` naming the problem.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from neurolake_spark.catalog.errors import InvalidEventError, InvalidTimeError
from neurolake_spark.catalog.times import parse_time

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
Role = Literal["input", "output"]
ROLES: tuple[Role, ...] = ("input", "output")
CODE_FACETS = ("neurolake_code", "neurolakeCode", "code_version", "codeVersion", "sourceCodeLocation")


@dataclass
class FieldLineage:
    """One input column feeding one output column."""

    output_field: str
    namespace: str
    name: str
    input_field: str
    transformation_type: str | None = None
    transformation_subtype: str | None = None
    description: str | None = None


@dataclass
class Assertion:
    """One data quality assertion from a ``dataQualityAssertions`` facet."""

    expectation: str
    success: bool
    column: str | None = None
    severity: str | None = None
    observed_value: str | None = None
    expected_value: str | None = None
    unexpected_count: int | None = None


@dataclass
class DatasetRecord:
    """What one event says about one input or output dataset."""

    namespace: str
    name: str
    role: Role
    version: str | None = None
    format: str | None = None
    fields: list[dict[str, Any]] | None = None
    row_count: int | None = None
    size_bytes: int | None = None
    file_count: int | None = None
    column_lineage: list[FieldLineage] = field(default_factory=list)
    dataset_dependencies: list[tuple[str, str]] = field(default_factory=list)
    assertions: list[Assertion] = field(default_factory=list)
    quality_metrics: dict[str, Any] | None = None
    owners: list[str] = field(default_factory=list)
    description: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class RunEventRecord:
    """One RunEvent, parsed."""

    identity: str
    run_uuid: str
    event_type: str
    event_time: datetime
    job_namespace: str
    job_name: str
    parent_run_uuid: str | None = None
    nominal_time: datetime | None = None
    code_version: str | None = None
    git_sha: str | None = None
    error_message: str | None = None
    job_description: str | None = None
    run_facets: dict[str, Any] = field(default_factory=dict)
    datasets: list[DatasetRecord] = field(default_factory=list)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEventError(
            f"malformed lineage event: {where} must be a non-empty string, got {value!r:.60}"
        )
    return value


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEventError(
            f"malformed lineage event: {where} must be an object, got {type(value).__name__}"
        )
    return value


def _int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _event_time(value: Any, where: str) -> datetime:
    try:
        return parse_time(_text(value, where), where)
    except InvalidTimeError as exc:
        raise InvalidEventError(f"malformed lineage event: {exc}") from None


def _assertions(facet: dict) -> list[Assertion]:
    found = []
    for item in facet.get("assertions") or []:
        if not isinstance(item, dict) or "assertion" not in item:
            continue
        params = item.get("params")
        if not isinstance(params, dict):
            params = {}
        found.append(
            Assertion(
                expectation=str(item.get("name") or item["assertion"]),
                success=bool(item.get("success")),
                column=item.get("column"),
                severity=item.get("severity"),
                observed_value=_shown(item.get("actual", params.get("observed_value"))),
                expected_value=_shown(item.get("expected")),
                unexpected_count=_int(item.get("unexpectedCount", params.get("unexpected_count"))),
            )
        )
    return found


def _column_lineage(facet: dict) -> tuple[list[FieldLineage], list[tuple[str, str]]]:
    lineage = []
    for output_field, spec in _mapping(facet.get("fields"), "columnLineage.fields").items():
        for source in (spec or {}).get("inputFields") or []:
            if not isinstance(source, dict) or not {"namespace", "name", "field"} <= source.keys():
                continue
            transformations = source.get("transformations") or [{}]
            for transformation in transformations:
                lineage.append(
                    FieldLineage(
                        output_field=output_field,
                        namespace=source["namespace"],
                        name=source["name"],
                        input_field=source["field"],
                        transformation_type=transformation.get("type") or spec.get("transformationType"),
                        transformation_subtype=transformation.get("subtype"),
                        description=transformation.get("description")
                        or spec.get("transformationDescription"),
                    )
                )
    dependencies = [
        (d["namespace"], d["name"])
        for d in facet.get("dataset") or []
        if isinstance(d, dict) and "namespace" in d and "name" in d
    ]
    return lineage, dependencies


def _dataset(raw: Any, role: Role, index: int) -> DatasetRecord:
    where = f"{role}s[{index}]"
    raw = _mapping(raw, where)
    record = DatasetRecord(
        namespace=_text(raw.get("namespace"), f"{where}.namespace"),
        name=_text(raw.get("name"), f"{where}.name"),
        role=role,
    )
    facets = {
        **_mapping(raw.get("facets"), f"{where}.facets"),
        **_mapping(raw.get(f"{role}Facets"), f"{where}.{role}Facets"),
    }
    schema = facets.get("schema") or {}
    if isinstance(schema.get("fields"), list):
        record.fields = [f for f in schema["fields"] if isinstance(f, dict) and "name" in f]
    version = (facets.get("version") or {}).get("datasetVersion")
    record.version = None if version is None else str(version)
    storage = facets.get("storage") or {}
    record.format = storage.get("storageLayer") or storage.get("fileFormat")
    stats = facets.get("outputStatistics") or facets.get("inputStatistics") or {}
    record.row_count = _int(stats.get("rowCount"))
    record.size_bytes = _int(stats.get("size"))
    record.file_count = _int(stats.get("fileCount"))
    record.column_lineage, record.dataset_dependencies = _column_lineage(facets.get("columnLineage") or {})
    record.assertions = _assertions(facets.get("dataQualityAssertions") or {})
    metrics = facets.get("dataQualityMetrics")
    if isinstance(metrics, dict):
        record.quality_metrics = {k: v for k, v in metrics.items() if not k.startswith("_")}
        record.row_count = record.row_count if record.row_count is not None else _int(metrics.get("rowCount"))
    record.owners = [
        o["name"]
        for o in (facets.get("ownership") or {}).get("owners") or []
        if isinstance(o, dict) and o.get("name")
    ]
    record.description = (facets.get("documentation") or {}).get("description")
    record.tags = [
        t["key"] if t.get("value") in (None, "", True, "true") else f"{t['key']}:{t['value']}"
        for t in (facets.get("tags") or {}).get("tags") or []
        if isinstance(t, dict) and t.get("key")
    ]
    return record


def _code_version(run_facets: dict, job_facets: dict) -> tuple[str | None, str | None]:
    for name in CODE_FACETS:
        facet = run_facets.get(name) or job_facets.get(name)
        if isinstance(facet, dict):
            sha = facet.get("git_sha") or facet.get("gitSha") or facet.get("commit")
            version = facet.get("version")
            if version or sha:
                return (None if version is None else str(version)), (None if sha is None else str(sha))
    return None, None


def parse_run_event(event: Any) -> RunEventRecord:
    """Validate and parse one RunEvent dict; raises :class:`InvalidEventError` if malformed."""
    if not isinstance(event, dict):
        raise InvalidEventError(
            f"malformed lineage event: expected a JSON object, got {type(event).__name__}"
        )
    run = _mapping(event.get("run"), "run")
    job = _mapping(event.get("job"), "job")
    if not run or not job:
        raise InvalidEventError(
            "malformed lineage event: a RunEvent needs 'run' and 'job' "
            "(dataset and job events are not stored)"
        )
    event_type = event.get("eventType") or "OTHER"
    if event_type not in EVENT_TYPES:
        raise InvalidEventError(
            f"malformed lineage event: unknown eventType {event_type!r} "
            f"(expected one of {', '.join(EVENT_TYPES)})"
        )
    record = RunEventRecord(
        identity="",
        run_uuid=_text(run.get("runId"), "run.runId"),
        event_type=event_type,
        event_time=_event_time(event.get("eventTime"), "eventTime"),
        job_namespace=_text(job.get("namespace"), "job.namespace"),
        job_name=_text(job.get("name"), "job.name"),
    )
    record.identity = hashlib.sha256(
        json.dumps(
            [
                record.run_uuid,
                record.event_type,
                record.event_time.isoformat(),
                record.job_namespace,
                record.job_name,
            ]
        ).encode()
    ).hexdigest()
    run_facets = _mapping(run.get("facets"), "run.facets")
    job_facets = _mapping(job.get("facets"), "job.facets")
    record.run_facets = {k: v for k, v in run_facets.items() if isinstance(v, dict)}
    parent_run = (run_facets.get("parent") or {}).get("run") or {}
    record.parent_run_uuid = parent_run.get("runId") if isinstance(parent_run, dict) else None
    nominal = (run_facets.get("nominalTime") or {}).get("nominalStartTime")
    if nominal:
        record.nominal_time = _event_time(nominal, "run.facets.nominalTime.nominalStartTime")
    record.code_version, record.git_sha = _code_version(run_facets, job_facets)
    error = run_facets.get("errorMessage") or {}
    record.error_message = error.get("message") if isinstance(error, dict) else None
    record.job_description = (job_facets.get("documentation") or {}).get("description")
    for role in ROLES:
        items = event.get(f"{role}s") or []
        if not isinstance(items, list):
            raise InvalidEventError(f"malformed lineage event: '{role}s' must be a list")
        record.datasets.extend(_dataset(item, role, i) for i, item in enumerate(items))
    return record


def fingerprint(value: Any) -> str:
    """A stable hash of a JSON-able value (schemas and column lineage are stored once per hash)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def flatten_fields(fields: list[dict[str, Any]], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(dotted name, field)`` of every field of a schema facet, nested struct fields included."""
    for spec in fields or []:
        name = f"{prefix}{spec['name']}"
        yield name, spec
        if isinstance(spec.get("fields"), list):
            yield from flatten_fields(spec["fields"], name + ".")
