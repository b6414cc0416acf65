"""The openlineage-spark JVM listener: a Delta MERGE reaches the catalog under its JobRun; the kill switch.

The shared test session has no listener, so each test starts a separate Python process
that builds its own session with ``lineage.spark_listener: true`` (the jar comes from
Maven Central once, then from the jars cache), writes a tiny Delta table and, inside a
JobRun, MERGEs into it (enabled) or does nothing more (``spark.openlineage.disabled``),
stops Spark (which flushes the listener) and replays, which ingests the JVM's events file.
"""

import json
import subprocess
import sys
from pathlib import Path

from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.config import load_settings
from tests.openlineage_schema import validate_event

ROOT = Path(__file__).resolve().parents[2]

JOB = """
import json, sys
from pathlib import Path
from delta.tables import DeltaTable
from neurolake_spark.config import load_settings
from neurolake_spark.lineage.delivery import replay
from neurolake_spark.lineage.spark_listener import APPLICATION_RUN_ID
from neurolake_spark.runs import JobRun
from neurolake_spark.session import build_spark

conf, warehouse, disabled = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "disabled"
settings = load_settings(conf, overrides={
    "storage.warehouse": str(warehouse), "metrics.enabled": False, "spark.shuffle_partitions": 1,
    "lineage.spark_listener": True, "spark.conf": {"spark.openlineage.disabled": disabled},
    "lineage.transports": [
        {"type": "catalog"},
        {"type": "file", "location": str(warehouse / "delivered.jsonl")},
    ],
})
spark = build_spark(settings)
listeners = [x.getClass().getName() for x in spark.sparkContext._jsc.sc().listenerBus().listeners()]
target = str(warehouse / "silver" / "accounts")
spark.createDataFrame([(1, "a"), (2, "b")], "id bigint, name string").write.format("delta").save(target)
updates = spark.createDataFrame([(2, "B"), (3, "c")], "id bigint, name string")
with JobRun("merge_accounts", settings) as run:
    if not disabled:
        (DeltaTable.forPath(spark, target).alias("t").merge(updates.alias("s"), "t.id = s.id")
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    version = DeltaTable.forPath(spark, target).history(1).first().version
    run.add_output("silver.accounts", path=target, version=version)
spark.stop()
report = replay(settings)
print(json.dumps({"run_id": run.run_id, "app_run_id": APPLICATION_RUN_ID, "pending": report.pending,
                  "listeners": listeners}))
"""


def run_job(warehouse: Path, mode: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", JOB, str(ROOT / "conf" / "local.yaml"), str(warehouse), mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert "io.openlineage.spark.agent.OpenLineageSparkListener" in outcome["listeners"]
    assert outcome["pending"] == 0
    return outcome


def test_jvm_listener_captures_delta_merge_into_the_catalog_under_its_jobrun(tmp_path):
    warehouse = tmp_path / "warehouse"
    outcome = run_job(warehouse, "enabled")
    settings = load_settings(ROOT / "conf" / "local.yaml", overrides={"storage.warehouse": str(warehouse)})
    namespace = settings.lineage_namespace

    delivered = [json.loads(line) for line in (warehouse / "delivered.jsonl").read_text().splitlines()]
    for event in delivered:
        validate_event(event)
    ours = [e for e in delivered if e["run"]["runId"] == outcome["run_id"]]
    assert [e["eventType"] for e in ours] == ["START", "COMPLETE"]

    jvm = [e for e in delivered if "openlineage" in e["producer"].lower()]
    merges = [e for e in jvm if "merge_into" in e["job"]["name"] and e["eventType"] == "COMPLETE"]
    assert merges, f"no MERGE event from the JVM listener among {[e['job']['name'] for e in delivered]}"
    merge = merges[-1]
    assert (namespace, "silver.accounts") in {(d["namespace"], d["name"]) for d in merge["outputs"]}
    assert (namespace, "silver.accounts") in {(d["namespace"], d["name"]) for d in merge["inputs"]}
    assert merge["run"]["facets"]["parent"]["run"]["runId"] == outcome["run_id"]
    assert merge["run"]["facets"]["parent"]["job"]["name"] == "merge_accounts"
    first_write = next(e for e in jvm if "save_into_data_source" in e["job"]["name"])
    assert first_write["run"]["facets"]["parent"]["run"]["runId"] == outcome["app_run_id"], (
        "ran outside any JobRun"
    )
    assert all(d["name"] == "silver.accounts" for e in jvm for d in e.get("outputs", []))

    jvm_lines = (warehouse / "_lineage_spool" / "_spark_listener" / "events.jsonl").read_text().splitlines()
    assert len(jvm) == len(jvm_lines)

    store = CatalogStore.from_settings(settings)
    try:
        assert store.ingest(merge) is False, "the MERGE event should already be in the catalog"
        assert store.ingest(ours[-1]) is False, "the JobRun's COMPLETE event should already be in the catalog"
        assert merge["run"]["runId"] in {c["run"] for c in store.get_run(outcome["run_id"])["children"]}
        assert [(d.namespace, d.name) for d in store.list_datasets()] == [(namespace, "silver.accounts")]
    finally:
        store.close()


def test_kill_switch_keeps_the_jar_loaded_and_emits_nothing(tmp_path):
    warehouse = tmp_path / "warehouse"
    outcome = run_job(warehouse, "disabled")

    events = warehouse / "_lineage_spool" / "_spark_listener" / "events.jsonl"
    assert not events.exists() or events.read_text() == ""
    delivered = [json.loads(line) for line in (warehouse / "delivered.jsonl").read_text().splitlines()]
    assert [(e["run"]["runId"], e["eventType"]) for e in delivered] == [
        (outcome["run_id"], "START"),
        (outcome["run_id"], "COMPLETE"),
    ]
