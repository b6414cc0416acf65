"""The nightly steps as spark-submit jobs on a real standalone master and worker (127.0.0.1)."""

from pathlib import Path

import pytest
from pyspark.sql import functions as F

from neurolake_spark.demo_data import generate_day, read_manifest

from .cluster import ROOT, cluster_logs, spark_submit, start_standalone

DAY = "2026-11-24"
CLUSTER_CONF = ROOT / "conf" / "cluster.yaml"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    with start_standalone(folder, workers=1, cores=2, memory="2g") as master:
        yield master, folder


def test_nightly_steps_on_the_cluster(cluster, tmp_path, make_lakehouse, project_wheel):
    master, logs = cluster
    warehouse = tmp_path / "warehouse"
    env = {"NEUROLAKE__STORAGE__WAREHOUSE": str(warehouse), "NEUROLAKE__MAINTENANCE__VACUUM": "false"}
    lh = make_lakehouse(warehouse)
    generate_day(lh.settings.raw_dir, DAY, scale=0.01, seed=lh.settings.generator.seed)

    for step in ("ingest", "silver", "gold", "maintenance"):
        done = spark_submit(master, f"jobs/{step}.py", ["--conf-file", str(CLUSTER_CONF), "--date", DAY],
                            env, py_files=[project_wheel])
        assert done.returncode == 0, f"{step} failed:\n{done.stderr[-3000:]}\n{cluster_logs(logs)}"
        assert f"{step} {DAY}: success" in done.stdout

    manifest = read_manifest(lh.settings.raw_dir, DAY)
    bronze = lh.table("bronze.orders").count()
    held = lh.table("quarantine.ingest").where("source = 'orders'").count()
    assert bronze + held == manifest.rows["orders"]
    assert lh.table("silver.orders").count() == lh.table("silver.orders").select("order_id").distinct().count()
    assert lh.table("gold.daily_revenue").where(F.col("order_date") == DAY).count() > 0
    assert (warehouse / "_metrics" / "neurolake_gold.prom").exists()
    assert Path(warehouse / "catalog.db").exists()
