"""OpenLineage ``RunEvent``s built from a :class:`~neurolake_spark.runs.JobRun`.

Example::

    from openlineage.client.event_v2 import RunState
    event = build_event(run, RunState.COMPLETE)   # typed openlineage-python model
    payload = to_dict(event)                       # the JSON dict transports deliver

What an event holds:

- job ``neurolake``/``run.job_name`` with a ``jobType`` facet (BATCH, SPARK, JOB);
- run ``run.run_id`` with ``parent`` (and ``root``) when the run has a parent,
  ``nominalTime`` (the run date), ``processing_engine`` (Spark's version),
  ``neurolake_code`` (see :class:`CodeVersionRunFacet`) and, on FAIL or ABORT, ``errorMessage``;
- on COMPLETE / FAIL, inputs and outputs named ``settings.lineage_namespace`` + logical
  table name, with ``schema``, ``dataSource``, ``storage``, ``version`` (the table
  version), ``columnLineage`` and ``outputStatistics``; quality results become
  ``dataQualityAssertions`` and ``dataQualityMetrics`` input facets on the validated
  dataset (added as an input when the run did not list it as one).

An event's identity is runId + eventType + eventTime + job (:func:`event_key`): the
receivers deduplicate on it, so a re-delivered event is stored once.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import attr
import pyspark
from openlineage.client import __version__ as client_version
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    dataset_version_dataset,
    datasource_dataset,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
    storage_dataset,
)
from openlineage.client.serde import Serde

from neurolake_spark.lineage import LineageEventError
from neurolake_spark.run_model import JOB_NAMESPACE, Dataset, QualityResult
from neurolake_spark.runs import JobRun
from neurolake_spark.version import __version__

CODE_VERSION_ENV = "NEUROLAKE_CODE_VERSION"
FILE_FORMATS = {"delta": "parquet"}


@cache
def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the checkout this package runs from (None outside git)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def producer() -> str:
    """The ``producer`` URI of every event and facet this package emits."""
    return f"urn:neurolake-spark:{__version__}"


@attr.define
class CodeVersionRunFacet(RunFacet):
    """Run facet ``neurolake_code``: which code produced the run.

    ``version`` is ``$NEUROLAKE_CODE_VERSION`` when set, else the project version;
    ``gitSha`` is the commit of the checkout the code runs from (not looked up when the
    env var pins the version).
    """

    version: str
    projectVersion: str
    gitSha: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return "urn:neurolake-spark:facets:CodeVersionRunFacet:1-0-0"


def code_version_facet() -> CodeVersionRunFacet:
    """The code version facet of this process (git is asked once, at the first event)."""
    pinned = os.environ.get(CODE_VERSION_ENV)
    return CodeVersionRunFacet(
        version=pinned or __version__,
        projectVersion=__version__,
        gitSha=None if pinned else git_commit(),
        producer=producer(),
    )


def _is_uri(text: str) -> bool:
    return bool(urlparse(text).scheme) and " " not in text


def _dataset_facets(dataset: Dataset, namespace: str, with_lineage: bool) -> dict[str, Any]:
    made_by = producer()
    facets: dict[str, Any] = {
        "dataSource": datasource_dataset.DatasourceDatasetFacet(
            name=namespace, uri=namespace if _is_uri(namespace) else None, producer=made_by
        ),
        "storage": storage_dataset.StorageDatasetFacet(
            storageLayer=dataset.format,
            fileFormat=FILE_FORMATS.get(dataset.format, dataset.format),
            producer=made_by,
        ),
    }
    if dataset.schema:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name=column, type=kind, ordinal_position=position)
                for position, (column, kind) in enumerate(dataset.schema, start=1)
            ],
            producer=made_by,
        )
    if dataset.version is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=str(dataset.version), producer=made_by
        )
    if with_lineage and dataset.column_lineage:
        facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(
            fields={
                column: column_lineage_dataset.Fields(
                    inputFields=[
                        column_lineage_dataset.InputField(
                            namespace=namespace,
                            name=source.dataset,
                            field=source.column,
                            transformations=[
                                column_lineage_dataset.Transformation(
                                    type=source.kind, subtype=source.subtype
                                )
                            ],
                        )
                        for source in sources
                    ]
                )
                for column, sources in dataset.column_lineage.items()
            },
            producer=made_by,
        )
    return facets


def _is_null_check(expectation: str) -> bool:
    """Whether a rule counts nulls: GX's ``expect_column_values_to_not_be_null`` or a ``*not_null*`` rule."""
    name = expectation.lower()
    return "not_null" in name or "not_be_null" in name


def _quality_facets(results: list[QualityResult]) -> dict[str, Any]:
    made_by = producer()
    assertions = [
        data_quality_assertions_dataset.Assertion(
            assertion=result.expectation,
            success=result.success,
            column=result.column,
            severity=result.severity,
            actual=None if result.observed_value is None else str(result.observed_value),
            params={
                key: value
                for key, value in (
                    ("action", result.action),
                    ("unexpected_count", result.unexpected_count),
                    ("element_count", result.element_count),
                )
                if value is not None
            },
        )
        for result in results
    ]
    counts = [r.element_count for r in results if r.element_count is not None]
    column_metrics = {
        result.column: data_quality_metrics_input_dataset.ColumnMetrics(nullCount=result.unexpected_count)
        for result in results
        if result.column and result.unexpected_count is not None and _is_null_check(result.expectation)
    }
    return {
        "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=assertions, producer=made_by
        ),
        "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            columnMetrics=column_metrics, rowCount=max(counts) if counts else None, producer=made_by
        ),
    }


def _datasets(run: JobRun, namespace: str) -> tuple[list[InputDataset], list[OutputDataset]]:
    inputs = [
        InputDataset(
            namespace=namespace, name=d.name, facets=_dataset_facets(d, namespace, with_lineage=False)
        )
        for d in run.inputs
    ]
    outputs = [
        OutputDataset(
            namespace=namespace,
            name=d.name,
            facets=_dataset_facets(d, namespace, with_lineage=True),
            outputFacets={
                "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=d.rows, size=d.bytes, fileCount=d.files, producer=producer()
                )
            }
            if d.rows is not None
            else {},
        )
        for d in run.outputs
    ]
    validated: dict[str, list[QualityResult]] = {}
    for result in run.quality:
        validated.setdefault(result.dataset, []).append(result)
    for name, results in validated.items():
        target = next((d for d in inputs if d.name == name), None)
        if target is None:
            target = InputDataset(namespace=namespace, name=name, facets={})
            inputs.append(target)
        target.inputFacets = {**(target.inputFacets or {}), **_quality_facets(results)}
    return inputs, outputs


def parent_facet(parent: JobRun) -> parent_run.ParentRunFacet:
    """A ``parent`` run facet naming ``parent`` (and the root of its run tree) as the parent run."""
    root = parent
    while root.parent is not None:
        root = root.parent
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent.run_id),
        job=parent_run.Job(namespace=JOB_NAMESPACE, name=parent.job_name),
        root=parent_run.Root(
            run=parent_run.RootRun(runId=root.run_id),
            job=parent_run.RootJob(namespace=JOB_NAMESPACE, name=root.job_name),
        ),
        producer=producer(),
    )


def _run_facets(run: JobRun, state: RunState) -> dict[str, Any]:
    made_by = producer()
    facets: dict[str, Any] = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=pyspark.__version__,
            name="spark",
            openlineageAdapterVersion=client_version,
            producer=made_by,
        ),
        "neurolake_code": code_version_facet(),
    }
    if run.parent is not None:
        facets["parent"] = parent_facet(run.parent)
    if run.run_date:
        day = date.fromisoformat(run.run_date)
        facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=f"{day.isoformat()}T00:00:00Z",
            nominalEndTime=f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
            producer=made_by,
        )
    if state in (RunState.FAIL, RunState.ABORT) and run.error is not None:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=str(run.error) or type(run.error).__name__,
            programmingLanguage="PYTHON",
            stackTrace=run.error_stack,
            producer=made_by,
        )
    return facets


def build_event(run: JobRun, state: RunState) -> RunEvent:
    """The ``RunEvent`` of ``run`` for ``state`` (START, COMPLETE, FAIL or ABORT)."""
    namespace = run.settings.lineage_namespace
    started = state == RunState.START
    event_time = run.started_at if started else run.ended_at
    if event_time is None:
        raise LineageEventError(
            f"run {run.run_id} ({run.job_name}) has no {'start' if started else 'end'} time yet"
        )
    inputs, outputs = ([], []) if started else _datasets(run, namespace)
    return RunEvent(
        eventType=state,
        eventTime=event_time.isoformat(),
        run=Run(runId=run.run_id, facets=_run_facets(run, state)),
        job=Job(
            namespace=JOB_NAMESPACE,
            name=run.job_name,
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="SPARK", jobType="JOB", producer=producer()
                )
            },
        ),
        inputs=inputs,
        outputs=outputs,
        producer=producer(),
    )


def to_dict(event: RunEvent) -> dict[str, Any]:
    """The event as the JSON dict of the OpenLineage spec (nulls dropped)."""
    return Serde.to_dict(event)


def event_key(event: dict[str, Any]) -> str:
    """The event's identity (runId, eventType, eventTime, job) as a hex digest.

    Raises :class:`LineageEventError` when the event lacks one of them.
    """
    try:
        parts = [
            event["run"]["runId"],
            event["eventType"],
            event["eventTime"],
            event["job"]["namespace"],
            event["job"]["name"],
        ]
    except (KeyError, TypeError) as exc:
        raise LineageEventError(f"not an OpenLineage RunEvent: missing {exc}") from None
    if not all(isinstance(part, str) and part for part in parts):
        raise LineageEventError(
            "not an OpenLineage RunEvent: runId, eventType, eventTime and job must be strings"
        )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def parse_event(text: str, origin: str) -> dict[str, Any]:
    """Parse one event's JSON text; ``origin`` (file, line) names it in the one-line error."""
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise LineageEventError(f"{origin}: not valid JSON ({exc.args[0] if exc.args else exc})") from None
    if not isinstance(event, dict):
        raise LineageEventError(f"{origin}: an event must be a JSON object, not {type(event).__name__}")
    try:
        event_key(event)
    except LineageEventError as exc:
        raise LineageEventError(f"{origin}: {exc}") from None
    return event
