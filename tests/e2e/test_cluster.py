"""The nightly job on a real standalone cluster: the compose topology without Docker.

A master and TWO workers on 127.0.0.1, and the catalog on a real PostgreSQL (a private
server from the Debian packages, started here). The nightly chain is submitted as on a
real cluster (``spark-submit --master spark://... --jars "$(neurolake jars)" --py-files
<wheel> jobs/nightly.py --conf-file conf/cluster.yaml``); the test checks the tables, that
executors ran on both workers, and that the nightly run and each step's run reached the
PostgreSQL catalog. (The Airflow DAG test submits each step's own job.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator

import pytest
from pyspark.sql import functions as F

from neurolake_spark.demo_data import generate_day, read_manifest

from .cluster import ROOT, VENV_BIN, cluster_logs, spark_submit, start_standalone
from .postgres import needs_postgres, private_postgres

DAY = "2026-11-24"
CLUSTER_CONF = ROOT / "conf" / "cluster.yaml"
STEPS = ("ingest", "silver", "gold", "maintenance")

pytestmark = needs_postgres


@pytest.fixture(scope="module")
def catalog_url() -> Iterator[str]:
    with private_postgres() as url:
        yield url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    with start_standalone(folder, workers=2) as master:
        yield master, folder


def test_the_nightly_job_on_two_workers_with_a_postgresql_catalog(
    cluster, catalog_url, tmp_path, make_lakehouse, project_wheel
):
    master, cluster_dir = cluster
    warehouse = tmp_path / "warehouse"
    env = {
        "NEUROLAKE__STORAGE__WAREHOUSE": str(warehouse),
        "NEUROLAKE__CATALOG__URL": catalog_url,
        "NEUROLAKE__SPARK__SHUFFLE_PARTITIONS": "2",
        "NEUROLAKE__MAINTENANCE__VACUUM": "false",
    }
    lh = make_lakehouse(warehouse)
    generate_day(lh.settings.raw_dir, DAY, scale=0.01, seed=lh.settings.generator.seed)

    done = spark_submit(
        master,
        "jobs/nightly.py",
        ["--conf-file", str(CLUSTER_CONF), "--date", DAY],
        env,
        py_files=[project_wheel],
        conf={"spark.executor.memory": "768m", "spark.databricks.delta.snapshotPartitions": "2"},
    )
    assert done.returncode == 0, f"nightly failed:\n{done.stderr[-6000:]}\n{cluster_logs(cluster_dir)}"
    assert f"NeuroLake nightly {DAY}: success" in done.stdout, done.stdout
    for step in STEPS:
        assert re.search(rf"step {step} +success", done.stdout), done.stdout

    executor_dirs = {p.parent.parent.name for p in cluster_dir.glob("work*/app-*/*") if p.is_dir()}
    assert executor_dirs == {"work1", "work2"}, "executors did not run on both workers"

    manifest = read_manifest(lh.settings.raw_dir, DAY)
    bronze = lh.table("bronze.orders").count()
    held = lh.table("quarantine.ingest").where("source = 'orders'").count()
    assert bronze + held == manifest.rows["orders"]
    assert (
        lh.table("silver.orders").count() == lh.table("silver.orders").select("order_id").distinct().count()
    )
    assert lh.table("gold.daily_revenue").where(F.col("order_date") == DAY).count() > 0
    assert (warehouse / "_metrics" / "neurolake_gold.prom").exists()
    assert not (warehouse / "catalog.db").exists(), "the runs went to SQLite, not PostgreSQL"

    listed = subprocess.run(
        [
            str(VENV_BIN / "neurolake"),
            "runs",
            "list",
            "--conf-file",
            str(CLUSTER_CONF),
            "--format",
            "json",
            "--limit",
            "50",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr
    states = {run["job"].rsplit(".", 1)[-1]: run["state"] for run in json.loads(listed.stdout)}
    for step in ("nightly", *STEPS):
        assert states.get(step) == "completed", f"no completed {step} run in the PostgreSQL catalog: {states}"
