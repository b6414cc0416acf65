"""The compose topology without Docker: a Spark master and TWO workers on 127.0.0.1, and the
catalog on a real PostgreSQL (a private cluster from the Debian packages, started here).

The nightly steps are submitted as on a real cluster (``spark-submit --master spark://...
--jars "$(neurolake jars)" --py-files <wheel> jobs/<step>.py``); the test checks the
tables, that executors ran on both workers, and that the runs reached the PostgreSQL catalog.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.cluster import LOCAL_CONF, VENV_BIN, cluster_logs, free_port, spark_submit, start_standalone

DAY = "2026-11-24"
STEPS = ("ingest", "silver", "gold")
POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))

pytestmark = pytest.mark.skipif(not POSTGRES_BIN, reason="PostgreSQL is not installed (apt-get install -y postgresql)")


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the 'postgres' user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def private_postgres() -> Iterator[str]:
    """initdb + pg_ctl start on a free port in a temp folder; yield a SQLAlchemy URL with a password."""
    pytest.importorskip("psycopg", reason="psycopg is needed for a PostgreSQL catalog: pip install 'psycopg[binary]'")
    bin_dir = POSTGRES_BIN[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="neurolake-pg-"))
    data, port, password = folder / "data", free_port(), secrets.token_hex(12)
    (folder / "pw").write_text(password)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "pw", "postgres")
    run = lambda *cmd: subprocess.run(_as_postgres([str(bin_dir / cmd[0]), *cmd[1:]]), capture_output=True,
                                      text=True, timeout=120)
    done = run("initdb", "-D", str(data), "-U", "neurolake", "--auth=scram-sha-256", f"--pwfile={folder / 'pw'}")
    assert done.returncode == 0, done.stderr
    done = run("pg_ctl", "-D", str(data), "-l", str(folder / "postgres.log"), "-w",
               "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start")
    assert done.returncode == 0, done.stderr + (folder / "postgres.log").read_text()
    try:
        yield f"postgresql+psycopg://neurolake:{password}@127.0.0.1:{port}/postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def catalog_url() -> Iterator[str]:
    with private_postgres() as url:
        yield url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("cluster")
    with start_standalone(folder, workers=2) as master:
        yield master, folder


def test_nightly_steps_on_two_workers_with_a_postgresql_catalog(cluster, catalog_url, tmp_path, make_lakehouse, project_wheel):
    master, cluster_dir = cluster
    warehouse = tmp_path / "warehouse"
    env = {
        "NEUROLAKE__STORAGE__WAREHOUSE": str(warehouse),
        "NEUROLAKE__CATALOG__URL": catalog_url,
        "NEUROLAKE__SPARK__SHUFFLE_PARTITIONS": "2",
    }
    full_env = {**os.environ, **env}
    generated = subprocess.run([str(VENV_BIN / "neurolake"), "generate", "--conf-file", str(LOCAL_CONF), "--date", DAY,
                                "--scale", "0.02"], env=full_env, capture_output=True, text=True, timeout=300)
    assert generated.returncode == 0, generated.stderr

    for step in STEPS:
        started = time.monotonic()
        done = spark_submit(master, f"jobs/{step}.py", ["--conf-file", str(LOCAL_CONF), "--date", DAY], env,
                            py_files=[project_wheel], conf={"spark.executor.memory": "768m",
                                                    "spark.databricks.delta.snapshotPartitions": "2"})
        assert done.returncode == 0, f"{step}:\n{done.stderr[-6000:]}\n{cluster_logs(cluster_dir)}"
        assert f"{step} {DAY}: success" in done.stdout
        print(f"{step} on the cluster: {time.monotonic() - started:.0f}s")

    executor_dirs = {p.parent.parent.name for p in cluster_dir.glob("work*/app-*/*") if p.is_dir()}
    assert executor_dirs == {"work1", "work2"}, "executors did not run on both workers"

    lh = make_lakehouse(warehouse)
    raw = lh.spark.read.option("header", "true").csv(str(warehouse / "raw" / "orders" / f"date={DAY}")).count()
    landed = lh.table("bronze.orders").count() + lh.table("quarantine.ingest").where("source = 'orders'").count()
    assert landed == raw
    assert lh.table("silver.orders").count() > 0 and lh.table("gold.daily_revenue").count() > 0
    assert not (warehouse / "catalog.db").exists(), "the runs went to SQLite, not PostgreSQL"

    listed = subprocess.run([str(VENV_BIN / "neurolake"), "runs", "list", "--conf-file", str(LOCAL_CONF),
                             "--format", "json", "--limit", "50"], env=full_env, capture_output=True, text=True,
                            timeout=300)
    assert listed.returncode == 0, listed.stderr
    states = {run["job"].rsplit(".", 1)[-1]: run["state"] for run in json.loads(listed.stdout)}
    for step in STEPS:
        assert states.get(step) == "completed", f"no completed {step} run in the PostgreSQL catalog: {states}"
