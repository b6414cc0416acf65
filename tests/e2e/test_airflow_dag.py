"""The nightly DAG under real Airflow 3 (its own venv, .venv-airflow, built by scripts/airflow_venv.sh).

Airflow code runs in ``.venv-airflow/bin/python`` subprocesses; this module (the project
venv's pytest) writes their small driver scripts, runs them and checks their JSON output
and the Delta tables the DAG wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.cluster import ROOT, VENV_BIN, submit_jars

AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
DAG_ID = "neurolake_nightly"
DAY = "2026-11-24"
CHAIN = ["ingest", "silver", "gold", "bulk_fixes", "compact", "vacuum", "backup"]

pytestmark = pytest.mark.skipif(
    not AIRFLOW_PYTHON.exists(), reason="no .venv-airflow: build it with scripts/airflow_venv.sh"
)

DAGBAG_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get(sys.argv[2])
print("RESULT " + json.dumps({
    "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dag": None if dag is None else {
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
        "tasks": {t.task_id: {
            "operator": type(t).__name__,
            "downstream": sorted(t.downstream_task_ids),
            "retries": t.retries,
            "exponential": t.retry_exponential_backoff,
            "outlets": [a.uri for a in t.outlets],
            "application": t.application,
            "args": t.application_args,
        } for t in dag.tasks},
    },
}))
"""

RUN_SCRIPT = """
import json, sys
from datetime import datetime, timezone
from airflow.dag_processing.dagbag import DagBag

dag = DagBag(dag_folder=sys.argv[1]).dags[sys.argv[2]]
day = datetime.fromisoformat(sys.argv[3]).replace(tzinfo=timezone.utc)
run = dag.test(logical_date=day)
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print("RESULT " + json.dumps({"run_state": str(run.state), "tasks": states}))
"""


def airflow_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "airflow_dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        }
    )
    env.update(extra or {})
    return env


def run_airflow_python(script: str, args: list[str], env: dict[str, str], tmp: Path, timeout: float):
    path = tmp / "driver.py"
    path.write_text(textwrap.dedent(script))
    done = subprocess.run(
        [str(AIRFLOW_PYTHON), str(path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (
        f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    )
    return json.loads(lines[-1][len("RESULT ") :]), done


def test_dagbag_imports_the_nightly_dag_with_its_chain_retries_and_assets(tmp_path):
    result, _ = run_airflow_python(
        DAGBAG_SCRIPT, [str(ROOT / "airflow_dags"), DAG_ID], airflow_env(tmp_path), tmp_path, timeout=300
    )
    assert result["errors"] == {}
    dag = result["dag"]
    assert dag is not None and dag["max_active_runs"] == 1 and dag["catchup"] is True
    tasks = dag["tasks"]
    assert set(tasks) == set(CHAIN)
    for upstream, downstream in zip(CHAIN, CHAIN[1:]):
        assert tasks[upstream]["downstream"] == [downstream]
    assert tasks[CHAIN[-1]]["downstream"] == []
    for name, task in tasks.items():
        assert task["operator"] == "SparkSubmitOperator"
        assert task["retries"] >= 1 and task["exponential"] is True
        job = Path(task["application"].split("}}/", 1)[1])
        assert (ROOT / "jobs" / job).is_file(), f"{name}: jobs/{job} does not exist"
        assert "{{ ds }}" in task["args"][task["args"].index("--date") + 1]
    from neurolake_spark.config import load_settings

    declared = set(load_settings(ROOT / "conf" / "local.yaml").pipeline_definition().tables)
    outlets = [uri for task in tasks.values() for uri in task["outlets"]]
    assert sorted(outlets) == sorted(f"neurolake://tables/{t}" for t in declared)
    assert {u.rsplit("/", 1)[1] for u in tasks["gold"]["outlets"]} == {
        t for t in declared if t.startswith("gold.")
    }


def test_the_dag_runs_one_night_end_to_end_under_airflow(tmp_path, spark):
    warehouse = tmp_path / "warehouse"
    conf_file = ROOT / "conf" / "local.yaml"
    settings_env = {
        "NEUROLAKE__STORAGE__WAREHOUSE": str(warehouse),
        "NEUROLAKE__SPARK__SHUFFLE_PARTITIONS": "2",
    }
    generated = subprocess.run(
        [
            str(VENV_BIN / "neurolake"),
            "generate",
            "--conf-file",
            str(conf_file),
            "--date",
            DAY,
            "--scale",
            "0.02",
        ],
        env={**os.environ, **settings_env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generated.returncode == 0, generated.stderr
    fixes = warehouse / "raw" / "fixes" / f"date={DAY}"
    fixes.mkdir(parents=True)
    (fixes / "001-cancel.json").write_text(
        json.dumps(
            {
                "op": "update",
                "table": "silver.orders",
                "where": "order_id % 97 = 0",
                "set": {"status": "'cancelled'"},
            }
        )
    )

    home = tmp_path / "airflow"
    home.mkdir()
    env = airflow_env(
        home,
        {
            **settings_env,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            "PYSPARK_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "AIRFLOW_CONN_NEUROLAKE_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]"}),
            "AIRFLOW_VAR_NEUROLAKE_JOBS_DIR": str(ROOT / "jobs"),
            "AIRFLOW_VAR_NEUROLAKE_CONF_FILE": str(conf_file),
            "AIRFLOW_VAR_NEUROLAKE_JARS": submit_jars(),
            "AIRFLOW_VAR_NEUROLAKE_BACKUP_DIR": str(tmp_path / "backups"),
            "AIRFLOW_VAR_NEUROLAKE_SPARK_CONF": json.dumps(
                {
                    "spark.driver.memory": "1g",
                    "spark.ui.enabled": "false",
                    "spark.driver.host": "127.0.0.1",
                    "spark.driver.bindAddress": "127.0.0.1",
                    "spark.default.parallelism": "2",
                }
            ),
        },
    )
    migrated = subprocess.run(
        [str(AIRFLOW_PYTHON.parent / "airflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert migrated.returncode == 0, migrated.stderr[-4000:]

    result, done = run_airflow_python(
        RUN_SCRIPT, [str(ROOT / "airflow_dags"), DAG_ID, DAY], env, tmp_path, timeout=3600
    )
    assert result["tasks"] == {task: "success" for task in CHAIN}, done.stdout[-8000:]
    assert result["run_state"] == "success"

    from neurolake_spark.lakehouse import Lakehouse

    lh = Lakehouse.open(conf_file, overrides={"storage.warehouse": str(warehouse)}, spark=spark)
    raw_orders = spark.read.option("header", "true").csv(str(warehouse / "raw" / "orders" / f"date={DAY}"))
    assert (
        lh.table("bronze.orders").count() + lh.table("quarantine.ingest").where("source = 'orders'").count()
        == raw_orders.count()
    )
    orders = lh.table("silver.orders")
    assert orders.count() > 0 and orders.where("order_id % 97 = 0 AND status <> 'cancelled'").count() == 0
    assert lh.table("gold.daily_revenue").count() > 0

    def operations(table):
        history = spark.sql(f"DESCRIBE HISTORY delta.`{lh.resolve(table).uri}`")
        return {r["operation"] for r in history.select("operation").collect()}

    assert "UPDATE" in operations("silver.orders")
    # the compact task: ingest leaves the night's orders in several files, compaction in one
    assert "OPTIMIZE" in operations("bronze.orders") and len(lh.table("bronze.orders").inputFiles()) == 1
    backups = list((tmp_path / "backups" / DAY).iterdir())
    assert len(backups) == 1
    from neurolake_spark import backup

    manifest = backup.verify_backup(backups[0], os.environ["NEUROLAKE_BACKUP_KEY"])
    assert manifest["tables"]["silver.orders"]["rows"] == orders.count()
