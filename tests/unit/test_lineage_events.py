"""RunEvents built from JobRuns: facets, parents, failures, quality; all valid per the spec."""

from pathlib import Path

import pytest
from jsonschema import ValidationError
from openlineage.client.event_v2 import RunState

from neurolake_spark.config import load_settings
from neurolake_spark.lineage import LineageEventError
from neurolake_spark.lineage.events import build_event, event_key, git_commit, parse_event, to_dict
from neurolake_spark.run_model import ColumnSource, QualityResult
from neurolake_spark.runs import JobRun
from tests.openlineage_schema import SPEC_DIR, validate_event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path):
    return load_settings(ROOT / "conf" / "local.yaml", overrides={"storage.warehouse": str(tmp_path)}, env={})


def finished_silver_run(settings, fail: bool = False):
    """A nightly parent with a silver step that read bronze, wrote silver and ran gates."""
    with JobRun("nightly", settings, run_date="2026-11-24", listeners=[]) as nightly:
        try:
            with nightly.child("silver") as run:
                run.listeners = []
                run.add_input(
                    "bronze.orders", version=3, schema=[("order_id", "bigint"), ("status", "string")]
                )
                run.add_output(
                    "silver.orders",
                    version=7,
                    rows=990,
                    bytes=12_345,
                    files=2,
                    schema=[("order_id", "bigint"), ("status", "string")],
                    column_lineage={
                        "order_id": [ColumnSource("bronze.orders", "order_id")],
                        "status": [ColumnSource("bronze.orders", "status", "INDIRECT", "FILTER")],
                    },
                )
                run.record_quality(
                    [
                        QualityResult(
                            "bronze.orders",
                            "expect_column_values_to_not_be_null",
                            True,
                            column="order_id",
                            unexpected_count=0,
                            element_count=1000,
                        ),
                        QualityResult(
                            "bronze.orders",
                            "status_not_null",
                            False,
                            column="status",
                            unexpected_count=4,
                            element_count=1000,
                        ),
                        QualityResult(
                            "bronze.orders",
                            "order_id_unique",
                            True,
                            column="order_id",
                            unexpected_count=0,
                            element_count=1000,
                        ),
                        QualityResult(
                            "staging.orders_batch",
                            "expect_table_row_count_to_be_between",
                            False,
                            severity="warning",
                            action="warn",
                            observed_value=3,
                            element_count=3,
                        ),
                    ]
                )
                if fail:
                    raise RuntimeError("MERGE failed: concurrent update")
        except RuntimeError:
            pass
    return nightly, run


def test_spec_folder_is_beside_the_repository():
    assert (SPEC_DIR / "OpenLineage.json").is_file(), f"OpenLineage spec missing at {SPEC_DIR}"


def test_start_and_complete_events_are_valid_and_complete(settings):
    nightly, run = finished_silver_run(settings)
    start = to_dict(build_event(run, RunState.START))
    complete = to_dict(build_event(run, RunState.COMPLETE))
    for event in (start, complete):
        validate_event(event)
        assert event["job"] == {"namespace": "neurolake", "name": "silver", "facets": event["job"]["facets"]}
        assert event["job"]["facets"]["jobType"]["processingType"] == "BATCH"
        assert event["run"]["runId"] == run.run_id
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == nightly.run_id and parent["job"]["name"] == "nightly"
        assert parent["root"]["run"]["runId"] == nightly.run_id
        assert event["run"]["facets"]["nominalTime"]["nominalStartTime"] == "2026-11-24T00:00:00Z"
    assert start["eventType"] == "START" and start["inputs"] == [] and start["outputs"] == []
    assert start["eventTime"] == run.started_at.isoformat()
    assert complete["eventTime"] == run.ended_at.isoformat()

    namespace = settings.lineage_namespace
    (output,) = complete["outputs"]
    assert (output["namespace"], output["name"]) == (namespace, "silver.orders")
    assert output["facets"]["version"]["datasetVersion"] == "7"
    assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["order_id", "status"]
    assert output["outputFacets"]["outputStatistics"] == {
        **{k: v for k, v in output["outputFacets"]["outputStatistics"].items() if k.startswith("_")},
        "rowCount": 990,
        "size": 12_345,
        "fileCount": 2,
    }
    status_sources = output["facets"]["columnLineage"]["fields"]["status"]["inputFields"]
    assert status_sources == [
        {
            "namespace": namespace,
            "name": "bronze.orders",
            "field": "status",
            "transformations": [{"type": "INDIRECT", "subtype": "FILTER"}],
        }
    ]


def test_quality_results_become_input_facets_of_the_validated_dataset(settings):
    _, run = finished_silver_run(settings)
    event = to_dict(build_event(run, RunState.COMPLETE))
    validate_event(event)
    inputs = {d["name"]: d for d in event["inputs"]}
    assert set(inputs) == {"bronze.orders", "staging.orders_batch"}
    bronze = inputs["bronze.orders"]["inputFacets"]
    assert (
        bronze["dataQualityAssertions"]["assertions"][0]["assertion"] == "expect_column_values_to_not_be_null"
    )
    assert bronze["dataQualityAssertions"]["assertions"][0]["success"] is True
    assert bronze["dataQualityMetrics"]["rowCount"] == 1000
    assert [a["assertion"] for a in bronze["dataQualityAssertions"]["assertions"]] == [
        "expect_column_values_to_not_be_null",
        "status_not_null",
        "order_id_unique",
    ]
    metrics = bronze["dataQualityMetrics"]["columnMetrics"]
    assert {column: m["nullCount"] for column, m in metrics.items()} == {"order_id": 0, "status": 4}
    staged = inputs["staging.orders_batch"]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert staged[0]["success"] is False and staged[0]["actual"] == "3" and staged[0]["severity"] == "warning"


def test_fail_event_carries_the_error(settings):
    _, run = finished_silver_run(settings, fail=True)
    assert run.status == "failed"
    event = to_dict(build_event(run, RunState.FAIL))
    validate_event(event)
    error = event["run"]["facets"]["errorMessage"]
    assert error["message"] == "MERGE failed: concurrent update"
    assert error["programmingLanguage"] == "PYTHON"
    assert "RuntimeError" in error["stackTrace"]


def test_code_version_from_git_or_env(settings, monkeypatch):
    _, run = finished_silver_run(settings)
    monkeypatch.delenv("NEUROLAKE_CODE_VERSION", raising=False)
    facet = to_dict(build_event(run, RunState.START))["run"]["facets"]["neurolake_code"]
    assert facet["projectVersion"] and facet["version"] == facet["projectVersion"]
    assert facet.get("gitSha") == git_commit()
    monkeypatch.setenv("NEUROLAKE_CODE_VERSION", "release-2026.11.24")
    facet = to_dict(build_event(run, RunState.START))["run"]["facets"]["neurolake_code"]
    assert facet["version"] == "release-2026.11.24" and "gitSha" not in facet


def test_engine_facet_names_spark_version(settings):
    import pyspark

    _, run = finished_silver_run(settings)
    engine = to_dict(build_event(run, RunState.START))["run"]["facets"]["processing_engine"]
    assert (engine["name"], engine["version"]) == ("spark", pyspark.__version__)


def test_validator_rejects_broken_events(settings):
    _, run = finished_silver_run(settings)
    event = to_dict(build_event(run, RunState.COMPLETE))
    bad_type = {**event, "eventType": "FINISHED"}
    with pytest.raises(ValidationError):
        validate_event(bad_type)
    bad_run_id = {**event, "run": {**event["run"], "runId": "not-a-uuid"}}
    with pytest.raises(ValidationError):
        validate_event(bad_run_id)
    output = dict(event["outputs"][0])
    output["facets"] = {**output["facets"], "version": {**output["facets"]["version"], "datasetVersion": 7}}
    with pytest.raises(ValidationError):
        validate_event({**event, "outputs": [output]})
    misplaced = dict(event["outputs"][0])
    assertions = event["inputs"][0]["inputFacets"]["dataQualityAssertions"]
    misplaced["facets"] = {**misplaced["facets"], "dataQualityAssertions": assertions}
    with pytest.raises(AssertionError, match="cannot be in facets"):
        validate_event({**event, "outputs": [misplaced]})


def test_event_identity_and_malformed_events(settings):
    _, run = finished_silver_run(settings)
    start = to_dict(build_event(run, RunState.START))
    assert event_key(start) == event_key(dict(start))
    assert event_key(start) != event_key(to_dict(build_event(run, RunState.COMPLETE)))
    with pytest.raises(LineageEventError, match=r"^spool/1\.json: not valid JSON"):
        parse_event("{not json", "spool/1.json")
    with pytest.raises(LineageEventError, match="missing 'run'"):
        parse_event('{"eventType": "START"}', "x")
    with pytest.raises(LineageEventError, match="must be a JSON object"):
        parse_event("[1, 2]", "x")
