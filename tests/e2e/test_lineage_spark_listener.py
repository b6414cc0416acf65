"""The openlineage-spark JVM listener captures a Delta MERGE and its events reach the catalog.

The shared test session has no listener, so a separate Python process builds its own
session with ``lineage.spark_listener: true`` (the jar comes from Maven Central once,
then from the jars cache), runs a MERGE inside a JobRun, stops Spark (which flushes the
listener) and replays, which ingests the JVM's events file.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

JOB = """
import json, sys
from pathlib import Path
from delta.tables import DeltaTable
from neurolake_spark.config import load_settings
from neurolake_spark.lineage.delivery import replay
from neurolake_spark.runs import JobRun
from neurolake_spark.session import build_spark

conf, warehouse = sys.argv[1], Path(sys.argv[2])
settings = load_settings(conf, overrides={
    "storage.warehouse": str(warehouse), "metrics.enabled": False, "spark.shuffle_partitions": 1,
    "lineage.spark_listener": True,
    "lineage.transports": [{"type": "catalog"}, {"type": "file", "location": str(warehouse / "delivered.jsonl")}],
})
spark = build_spark(settings)
assert "OpenLineageSparkListener" in spark.conf.get("spark.extraListeners")
target = str(warehouse / "silver" / "accounts")
spark.createDataFrame([(1, "a"), (2, "b")], "id bigint, name string").write.format("delta").save(target)
updates = spark.createDataFrame([(2, "B"), (3, "c")], "id bigint, name string")
with JobRun("merge_accounts", settings) as run:
    (DeltaTable.forPath(spark, target).alias("t").merge(updates.alias("s"), "t.id = s.id")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
spark.stop()
report = replay(settings)
print(json.dumps({"run_id": run.run_id, "pending": report.pending}))
"""


def test_jvm_listener_captures_delta_merge_into_the_catalog(tmp_path):
    warehouse = tmp_path / "warehouse"
    result = subprocess.run(
        [sys.executable, "-c", JOB, str(ROOT / "conf" / "local.yaml"), str(warehouse)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["pending"] == 0

    delivered = [json.loads(line) for line in (warehouse / "delivered.jsonl").read_text().splitlines()]
    ours = [e for e in delivered if e["run"]["runId"] == outcome["run_id"]]
    assert [e["eventType"] for e in ours] == ["START", "COMPLETE"]

    target = str(warehouse / "silver" / "accounts")
    merges = [
        e for e in delivered
        if "merge_into" in e["job"]["name"] and e["eventType"] == "COMPLETE" and "openlineage" in e["producer"].lower()
    ]
    assert merges, f"no MERGE event from the JVM listener among {[e['job']['name'] for e in delivered]}"
    merge = merges[-1]
    assert target in {d["name"] for d in merge["outputs"]}
    assert target in {d["name"] for d in merge["inputs"]}

    jvm_lines = (warehouse / "_lineage_spool" / "_spark_listener" / "events.jsonl").read_text().splitlines()
    assert len([e for e in delivered if e["run"]["runId"] != outcome["run_id"]]) == len(jvm_lines)

    from neurolake_spark.catalog.store import CatalogStore
    from neurolake_spark.config import load_settings

    settings = load_settings(ROOT / "conf" / "local.yaml", overrides={"storage.warehouse": str(warehouse)})
    store = CatalogStore.from_settings(settings)
    try:
        assert store.ingest(merge) is False, "the MERGE event should already be in the catalog"
        assert store.ingest(ours[-1]) is False, "the JobRun's COMPLETE event should already be in the catalog"
    finally:
        store.close()
