"""The JVM listener's events adopted at ingestion: linked to the JobRun that ran, warehouse paths renamed.

No Spark here: the events are trimmed copies of what openlineage-spark 1.53.0 writes
(a Delta MERGE), fed through the events file, the ingestion and the real SQLite catalog.
"""

import copy
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.config import load_settings
from neurolake_spark.lineage.delivery import LineageEmitter
from neurolake_spark.lineage.listener import LineageListener
from neurolake_spark.lineage.spark_listener import (
    APPLICATION_RUN_ID,
    WINDOW_RETENTION,
    RunWindowRecorder,
    events_file,
    ingest_listener_events,
    windows_file,
)
from neurolake_spark.run_listeners import run_listeners
from neurolake_spark.runs import JobRun
from neurolake_spark.session import register_run_listeners
from tests.openlineage_schema import validate_event

ROOT = Path(__file__).resolve().parents[2]
JVM_PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.53.0/integration/spark"


def jvm_dataset(path: str) -> dict:
    return {
        "namespace": "file",
        "name": path,
        "facets": {
            "dataSource": {
                "_producer": JVM_PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet",
                "name": "file",
                "uri": "file",
            },
            "schema": {
                "_producer": JVM_PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
                "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}],
            },
        },
    }


def jvm_event(when: datetime, app: str, target: str, source: str, event_type: str = "COMPLETE") -> dict:
    """An action event as openlineage-spark writes it: its parent is the Spark application run."""
    application = {"run": {"runId": app}, "job": {"namespace": "neurolake", "name": "neurolake"}}
    output = jvm_dataset(target)
    output["facets"]["columnLineage"] = {
        "_producer": JVM_PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
        "fields": {"id": {"inputFields": [{"namespace": "file", "name": source, "field": "id"}]}},
    }
    return {
        "eventTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "producer": JVM_PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "eventType": event_type,
        "run": {
            "runId": str(uuid.uuid4()),
            "facets": {
                "parent": {
                    "_producer": JVM_PRODUCER,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
                    **application,
                    "root": copy.deepcopy(application),
                },
                "processing_engine": {
                    "_producer": JVM_PRODUCER,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
                    "version": "4.2.0",
                    "name": "spark",
                    "openlineageAdapterVersion": "1.53.0",
                },
            },
        },
        "job": {"namespace": "neurolake", "name": "neurolake.execute_merge_into_command", "facets": {}},
        "inputs": [jvm_dataset(source)],
        "outputs": [output],
    }


@pytest.fixture
def settings(tmp_path):
    register_run_listeners()  # as the session and Lakehouse do: a JobRun gets the settings' listeners
    return load_settings(
        ROOT / "conf" / "local.yaml",
        env={},
        overrides={
            "storage.warehouse": str(tmp_path / "warehouse"),
            "metrics.enabled": False,
            "lineage.spark_listener": True,
            "lineage.transports": [
                {"type": "catalog"},
                {"type": "file", "location": str(tmp_path / "delivered.jsonl")},
            ],
        },
    )


def write_jvm_events(settings, *events: dict) -> None:
    path = events_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as out:
        out.writelines(json.dumps(e) + "\n" for e in events)


def delivered(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "delivered.jsonl").read_text().splitlines()]


def test_jvm_events_get_the_innermost_running_jobrun_as_parent_even_when_flushed_late(settings, tmp_path):
    warehouse = settings.warehouse
    target, source = str(warehouse / "silver" / "orders"), str(warehouse / "bronze" / "orders")
    with JobRun("nightly", settings) as nightly:  # the listeners the settings turn on
        between_steps = datetime.now(UTC)
        time.sleep(0.01)  # the JVM writes milliseconds
        with nightly.child("silver") as silver:
            in_silver = datetime.now(UTC)
    later = nightly.ended_at + timedelta(seconds=5)
    other_app = str(uuid.uuid4())
    with open(windows_file(settings), "a") as out:
        out.write("not a window\n")
    # All lines arrive after both runs ended, as when the JVM flushes late and replay ingests.
    write_jvm_events(
        settings,
        jvm_event(in_silver, APPLICATION_RUN_ID, target, source, "START"),
        jvm_event(in_silver, APPLICATION_RUN_ID, target, source),
        jvm_event(between_steps, APPLICATION_RUN_ID, target, source),
        jvm_event(later, APPLICATION_RUN_ID, target, source),
        jvm_event(in_silver, other_app, target, source),
    )
    assert ingest_listener_events(settings, LineageEmitter(settings)) == 5

    events = [e for e in delivered(tmp_path) if e["producer"] == JVM_PRODUCER]
    for event in events:
        validate_event(event)
    parents = [e["run"]["facets"]["parent"] for e in events]
    assert [p["run"]["runId"] for p in parents] == [
        silver.run_id,
        silver.run_id,
        nightly.run_id,
        APPLICATION_RUN_ID,
        other_app,
    ]
    assert (parents[0]["job"]["namespace"], parents[0]["job"]["name"]) == ("neurolake", "silver")
    root = parents[0]["root"]
    assert (root["run"]["runId"], root["job"]["namespace"], root["job"]["name"]) == (
        nightly.run_id,
        "neurolake",
        "nightly",
    )

    store = CatalogStore.from_settings(settings)
    try:
        children = store.get_run(silver.run_id)["children"]
    finally:
        store.close()
    assert {c["run"] for c in children} == {events[0]["run"]["runId"], events[1]["run"]["runId"]}
    assert {c["job"] for c in children} == {"neurolake.execute_merge_into_command"}


def test_warehouse_paths_become_our_tables_on_the_same_catalog_dataset(settings, tmp_path):
    warehouse = settings.warehouse
    with JobRun("curate", settings) as run:  # the listeners the settings turn on
        run.add_input("bronze.orders", version=2)
        run.add_output("silver.orders", version=3, rows=2)
        write_jvm_events(
            settings,
            jvm_event(
                datetime.now(UTC),
                APPLICATION_RUN_ID,
                str(warehouse / "silver" / "orders"),
                str(warehouse / "bronze" / "orders"),
            ),
        )

    jvm = next(e for e in delivered(tmp_path) if e["producer"] == JVM_PRODUCER)
    validate_event(jvm)
    namespace = settings.lineage_namespace
    assert [(d["namespace"], d["name"]) for d in jvm["inputs"]] == [(namespace, "bronze.orders")]
    output = jvm["outputs"][0]
    assert (output["namespace"], output["name"]) == (namespace, "silver.orders")
    assert output["facets"]["symlinks"]["identifiers"] == [
        {"namespace": "file", "name": str(warehouse / "silver" / "orders"), "type": "LOCATION"}
    ]
    assert output["facets"]["dataSource"]["uri"] == namespace
    assert output["facets"]["schema"]["fields"][0] == {"name": "id", "type": "long"}
    assert output["facets"]["columnLineage"]["fields"]["id"]["inputFields"] == [
        {"namespace": namespace, "name": "bronze.orders", "field": "id"}
    ]
    assert jvm["run"]["facets"]["parent"]["run"]["runId"] == run.run_id

    store = CatalogStore.from_settings(settings)
    try:
        names = sorted((d.namespace, d.name) for d in store.list_datasets())
        ours = store.get_run(run.run_id)
        theirs = store.get_run(jvm["run"]["runId"])
    finally:
        store.close()
    assert names == [(namespace, "bronze.orders"), (namespace, "silver.orders")]
    assert (
        [d["dataset"] for d in ours["outputs"]]
        == [d["dataset"] for d in theirs["outputs"]]
        == ["silver.orders"]
    )


@pytest.mark.parametrize("where", ["outside", "warehouse_root", "layer_only", "spark_catalog"])
def test_paths_that_are_not_warehouse_tables_keep_their_names(settings, tmp_path, where):
    warehouse = settings.warehouse
    path = str(
        {
            "outside": tmp_path / "elsewhere" / "silver" / "orders",
            "warehouse_root": warehouse,
            "layer_only": warehouse / "silver",
            "spark_catalog": warehouse / "_spark_catalog" / "orders",
        }[where]
    )
    write_jvm_events(settings, jvm_event(datetime.now(UTC), APPLICATION_RUN_ID, path, path))
    assert ingest_listener_events(settings, LineageEmitter(settings)) == 1

    event = delivered(tmp_path)[0]
    validate_event(event)
    for dataset in [*event["inputs"], *event["outputs"]]:
        assert (dataset["namespace"], dataset["name"]) == ("file", path)
        assert dataset["facets"]["dataSource"] == {
            "_producer": JVM_PRODUCER,
            "_schemaURL": dataset["facets"]["dataSource"]["_schemaURL"],
            "name": "file",
        }
        assert "symlinks" not in dataset["facets"]
    assert event["outputs"][0]["facets"]["columnLineage"]["fields"]["id"]["inputFields"][0]["name"] == path


def test_window_recorder_runs_before_the_lineage_listener_only_with_the_jvm_listener(settings):
    assert [type(x) for x in run_listeners.build(settings)] == [RunWindowRecorder, LineageListener]
    off = settings.model_copy(
        update={"lineage": settings.lineage.model_copy(update={"spark_listener": False})}
    )
    assert [type(x) for x in run_listeners.build(off)] == [LineageListener]


def test_windows_older_than_the_retention_are_dropped_and_each_run_keeps_one_line(settings, tmp_path):
    with JobRun("nightly", settings) as recent:
        in_recent = datetime.now(UTC)
    old_start = in_recent - WINDOW_RETENTION - timedelta(days=1)
    old_run = str(uuid.uuid4())
    recorded = json.loads(windows_file(settings).read_text().splitlines()[-1])
    recorded.update(start=old_start.isoformat(), end=(old_start + timedelta(minutes=5)).isoformat())
    recorded["parent"]["run"]["runId"] = old_run
    with open(windows_file(settings), "a") as out:
        out.write(json.dumps(recorded) + "\n")
    target, source = (
        str(settings.warehouse / "silver" / "orders"),
        str(settings.warehouse / "bronze" / "orders"),
    )
    write_jvm_events(
        settings,
        jvm_event(in_recent, APPLICATION_RUN_ID, target, source),
        jvm_event(old_start + timedelta(minutes=1), APPLICATION_RUN_ID, target, source),
    )
    assert ingest_listener_events(settings, LineageEmitter(settings)) == 2

    events = [e for e in delivered(tmp_path) if e["producer"] == JVM_PRODUCER]
    assert [e["run"]["facets"]["parent"]["run"]["runId"] for e in events] == [
        recent.run_id,
        APPLICATION_RUN_ID,
    ]
    kept = [json.loads(line) for line in windows_file(settings).read_text().splitlines()]
    assert [(w["parent"]["run"]["runId"], w["end"] is not None) for w in kept] == [(recent.run_id, True)]
