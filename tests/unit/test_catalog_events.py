"""A builder of OpenLineage RunEvents for catalog tests, and tests of event parsing.

The builder makes events with the real OpenLineage client's typed models (so they have
the spec's shape and facet schema URLs) plus the custom ``neurolake_code`` run facet:

    events = run_events("silver", start=T0, end=T1,
                        inputs=[ds("bronze.orders", version=3)],
                        outputs=[ds("silver.orders", version=7, fields=[("order_id", "bigint")],
                                    lineage={"order_id": [("bronze.orders", "order_id")]})])
    for e in events: store.ingest(e)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    dataset_version_dataset,
    error_message_run,
    nominal_time_run,
    output_statistics_output_dataset,
    parent_run,
    schema_dataset,
)
from openlineage.client.serde import Serde

from neurolake_spark.catalog.errors import CatalogError, InvalidEventError
from neurolake_spark.catalog.events import parse_run_event
from neurolake_spark.catalog.times import parse_time
from tests.openlineage_schema import validate_event

NAMESPACE = "file:///warehouse"
PRODUCER = "https://github.com/neurolake/neurolake-spark/tests"
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def ds(name, version=None, fields=None, lineage=None, rows=None, assertions=None, namespace=NAMESPACE):
    """A dataset spec for :func:`run_events`.

    ``fields``: ``[(column, type)]``; ``lineage``: ``{column: [(dataset, column[, type, subtype])]}``;
    ``assertions``: ``[(expectation, success, column, observed, unexpected_count, severity)]``.
    """
    return {
        "name": name,
        "version": version,
        "fields": fields,
        "lineage": lineage,
        "rows": rows,
        "assertions": assertions,
        "namespace": namespace,
    }


def _facets(spec, role):
    facets, role_facets = {}, {}
    if spec["fields"] is not None:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in spec["fields"]]
        )
    if spec["version"] is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=str(spec["version"])
        )
    if spec["lineage"]:
        fields = {}
        for column, sources in spec["lineage"].items():
            inputs = []
            for source in sources:
                dataset, field, kind, subtype = (*source, "DIRECT", "IDENTITY")[:4]
                inputs.append(
                    column_lineage_dataset.InputField(
                        namespace=spec["namespace"],
                        name=dataset,
                        field=field,
                        transformations=[column_lineage_dataset.Transformation(type=kind, subtype=subtype)],
                    )
                )
            fields[column] = column_lineage_dataset.Fields(inputFields=inputs)
        facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields)
    if role == "output" and spec["rows"] is not None:
        role_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=spec["rows"], size=spec["rows"] * 10, fileCount=1
        )
    if role == "input" and spec["assertions"]:
        role_facets["dataQualityAssertions"] = (
            data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=[
                    data_quality_assertions_dataset.Assertion(
                        assertion=name,
                        success=success,
                        column=column,
                        severity=severity,
                        actual=None if observed is None else str(observed),
                        params={} if unexpected is None else {"unexpected_count": unexpected},
                    )
                    for name, success, column, observed, unexpected, severity in spec["assertions"]
                ]
            )
        )
        role_facets["dataQualityMetrics"] = (
            data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
                columnMetrics={}, rowCount=spec["rows"]
            )
        )
    return facets, role_facets


def run_events(
    job,
    run_id=None,
    *,
    start,
    end=None,
    inputs=(),
    outputs=(),
    parent=None,
    nominal=None,
    state="COMPLETE",
    code=("0.1.0", "0123456789abcdef"),
    error=None,
    job_namespace="neurolake",
):
    """[START, end-state] events of one run as JSON dicts (``end`` defaults to start + 1 minute)."""
    run_id = run_id or str(uuid.uuid4())
    end = end or start + timedelta(minutes=1)
    run_facets = {}
    if parent:
        run_facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent[1]), job=parent_run.Job(namespace=job_namespace, name=parent[0])
        )
    if nominal:
        run_facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=f"{nominal}T00:00:00Z"
        )
    events = []
    for event_type, moment in (("START", start), (state, end)):
        facets = dict(run_facets)
        if event_type == "FAIL" and error:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python"
            )
        ins = [
            InputDataset(
                namespace=d["namespace"],
                name=d["name"],
                facets=_facets(d, "input")[0],
                inputFacets=_facets(d, "input")[1],
            )
            for d in inputs
        ]
        outs = [
            OutputDataset(
                namespace=d["namespace"],
                name=d["name"],
                facets=_facets(d, "output")[0],
                outputFacets=_facets(d, "output")[1] if event_type != "START" else {},
            )
            for d in outputs
        ]
        event = Serde.to_dict(
            RunEvent(
                eventType=RunState[event_type],
                eventTime=moment.isoformat().replace("+00:00", "Z"),
                run=Run(runId=run_id, facets=facets),
                job=Job(namespace=job_namespace, name=job),
                inputs=ins,
                outputs=outs,
                producer=PRODUCER,
            )
        )
        if code:
            event["run"].setdefault("facets", {})["neurolake_code"] = {
                "_producer": PRODUCER,
                "_schemaURL": "https://neurolake.dev/spec/facets/NeurolakeCodeRunFacet.json",
                "version": code[0],
                "git_sha": code[1],
            }
        events.append(event)
    return events


ORDER_FIELDS = [
    ("order_id", "bigint"),
    ("customer_id", "bigint"),
    ("amount", "decimal(10,2)"),
    ("status", "string"),
]
CUSTOMER_FIELDS = [("customer_id", "bigint"), ("country", "string")]
PRODUCT_FIELDS = [("product_id", "bigint"), ("category", "string")]
REVENUE_FIELDS = [("order_date", "date"), ("country", "string"), ("revenue", "decimal(12,2)")]


def nightly_events(day, start, with_products=False, fail_gold=False, versions=0):
    """Events of a small nightly run for ``day``: raw -> bronze -> silver -> gold, then maintenance.

    ``versions`` offsets every Delta version (day 2 writes the next versions); ``with_products``
    adds the products source, which gold then reads too (a new edge); ``fail_gold`` makes gold fail.
    Returns ``(events, run_ids)`` with run ids by job name.
    """
    sources = {"orders": ORDER_FIELDS, "customers": CUSTOMER_FIELDS}
    if with_products:
        sources["products"] = PRODUCT_FIELDS
    ids = {job: str(uuid.uuid4()) for job in ("nightly", "ingest", "silver", "gold", "maintenance")}
    parent = ("nightly", ids["nightly"])
    step = timedelta(minutes=2)
    ident = lambda fields, table: {c: [(table, c)] for c, _ in fields}  # noqa: E731
    events = []
    events += run_events(
        "ingest",
        ids["ingest"],
        start=start + step,
        parent=parent,
        nominal=day,
        inputs=[ds(f"raw.{s}", fields=f, rows=100) for s, f in sources.items()],
        outputs=[
            ds(f"bronze.{s}", version=versions, rows=99, fields=f, lineage=ident(f, f"raw.{s}"))
            for s, f in sources.items()
        ]
        + [ds("quarantine.ingest", version=versions, rows=len(sources), fields=[("raw", "string")])],
    )
    events += run_events(
        "silver",
        ids["silver"],
        start=start + 2 * step,
        parent=parent,
        nominal=day,
        inputs=[
            ds(
                f"bronze.{s}",
                version=versions,
                fields=f,
                assertions=[
                    ("expect_column_values_to_not_be_null", True, f[0][0], 0, 0, "critical"),
                    (
                        "expect_column_values_to_be_unique",
                        s != "orders",
                        f[0][0],
                        "1 duplicate" if s == "orders" else "0 duplicates",
                        1 if s == "orders" else 0,
                        "warning",
                    ),
                ],
            )
            for s, f in sources.items()
        ],
        outputs=[
            ds(f"silver.{s}", version=versions, rows=90, fields=f, lineage=ident(f, f"bronze.{s}"))
            for s, f in sources.items()
        ],
    )
    gold_inputs = ["silver.orders", "silver.customers"] + (["silver.products"] if with_products else [])
    lineage = {
        "order_date": [("silver.orders", "order_id", "DIRECT", "TRANSFORMATION")],
        "country": [("silver.customers", "country")],
        "revenue": [
            ("silver.orders", "amount", "DIRECT", "AGGREGATION"),
            ("silver.orders", "status", "INDIRECT", "FILTER"),
        ],
    }
    if with_products:
        lineage["revenue"].append(("silver.products", "category", "INDIRECT", "GROUP_BY"))
    events += run_events(
        "gold",
        ids["gold"],
        start=start + 3 * step,
        parent=parent,
        nominal=day,
        state="FAIL" if fail_gold else "COMPLETE",
        error="silver.orders is empty" if fail_gold else None,
        inputs=[ds(name, version=versions) for name in gold_inputs],
        outputs=[ds("gold.daily_revenue", version=versions, rows=12, fields=REVENUE_FIELDS, lineage=lineage)],
    )
    events += run_events(
        "maintenance",
        ids["maintenance"],
        start=start + 4 * step,
        parent=parent,
        nominal=day,
        outputs=[ds("silver.orders", version=versions + 1)],
    )
    events += run_events("nightly", ids["nightly"], start=start, end=start + 6 * step, nominal=day)
    return events, ids


def test_built_events_are_valid_openlineage_events():
    events = run_events(
        "silver",
        start=T0,
        nominal="2026-11-23",
        parent=("nightly", str(uuid.uuid4())),
        inputs=[
            ds(
                "bronze.orders",
                version=3,
                fields=[("order_id", "bigint")],
                assertions=[("expect_column_values_to_not_be_null", True, "order_id", 0, 0, "critical")],
            )
        ],
        outputs=[
            ds(
                "silver.orders",
                version=7,
                rows=10,
                fields=[("order_id", "bigint")],
                lineage={"order_id": [("bronze.orders", "order_id")]},
            )
        ],
    )
    for event in events + nightly_events("2026-11-24", T0, with_products=True, fail_gold=True)[0]:
        validate_event(event)


def test_parse_reads_identity_facets_and_datasets():
    parent = str(uuid.uuid4())
    start, end = run_events(
        "silver",
        start=T0,
        nominal="2026-11-23",
        parent=("nightly", parent),
        inputs=[
            ds(
                "bronze.orders",
                version=3,
                assertions=[("expect_column_values_to_be_unique", False, "order_id", "0.5%", 12, "warning")],
            )
        ],
        outputs=[
            ds(
                "silver.orders",
                version=7,
                rows=10,
                fields=[("order_id", "bigint"), ("status", "string")],
                lineage={"status": [("bronze.orders", "status", "DIRECT", "TRANSFORMATION")]},
            )
        ],
    )
    record = parse_run_event(end)
    assert (record.event_type, record.job_namespace, record.job_name) == ("COMPLETE", "neurolake", "silver")
    assert record.event_time == datetime(2026, 11, 23, 2, 1)
    assert record.parent_run_uuid == parent
    assert record.nominal_time == datetime(2026, 11, 23)
    assert (record.code_version, record.git_sha) == ("0.1.0", "0123456789abcdef")
    bronze, silver = record.datasets
    assert (bronze.role, bronze.version) == ("input", "3")
    assertion = bronze.assertions[0]
    assert (assertion.success, assertion.observed_value, assertion.unexpected_count, assertion.severity) == (
        False,
        "0.5%",
        12,
        "warning",
    )
    assert (silver.role, silver.version, silver.row_count) == ("output", "7", 10)
    assert [f["name"] for f in silver.fields] == ["order_id", "status"]
    lineage = silver.column_lineage[0]
    assert (lineage.output_field, lineage.name, lineage.input_field, lineage.transformation_subtype) == (
        "status",
        "bronze.orders",
        "status",
        "TRANSFORMATION",
    )
    assert parse_run_event(start).identity != record.identity


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda e: e.pop("run"), "needs 'run' and 'job'"),
        (lambda e: e["run"].pop("runId"), "run.runId"),
        (lambda e: e.update(eventTime="yesterday"), "eventTime"),
        (lambda e: e.update(eventType="DONE"), "unknown eventType"),
        (lambda e: e.update(outputs=[{"name": "x"}]), r"outputs\[0\]\.namespace"),
        (lambda e: e.update(inputs="bronze.orders"), "'inputs' must be a list"),
    ],
)
def test_malformed_events_are_one_line_errors(mutate, message):
    event = run_events("ingest", start=T0)[0]
    mutate(event)
    with pytest.raises(InvalidEventError, match=message) as info:
        parse_run_event(event)
    assert "\n" not in str(info.value)


def test_non_object_event_is_rejected():
    with pytest.raises(InvalidEventError, match="expected a JSON object"):
        parse_run_event(["not", "an", "event"])


def test_parse_time_dates_zones_and_garbage():
    assert parse_time("2026-11-24") == datetime(2026, 11, 24, 23, 59, 59, 999999)
    assert parse_time("2026-11-24", end_of_day=False) == datetime(2026, 11, 24)
    assert parse_time("2026-11-24T08:00+01:00") == datetime(2026, 11, 24, 7, 0)
    assert parse_time("2026-11-24 08:00:05Z") == datetime(2026, 11, 24, 8, 0, 5)
    with pytest.raises(CatalogError, match="is not a time"):
        parse_time("last tuesday", "--as-of")
