"""The NeuroLake nightly chain as an Airflow 3 DAG: one ``spark-submit jobs/<step>.py`` per step.

    ingest -> silver (quality gate + curate) -> gold -> bulk_fixes -> compact -> vacuum -> backup

A run covers one day: the run starting at midnight UTC processes the day that just ended,
passed to every job as ``--date {{ ds }}``. Each step is idempotent for its date, so retries and
catch-up backfills are safe. Every
table the pipeline writes is an ``Asset`` outlet of the step that writes it, so other DAGs
can ``schedule=[Asset("neurolake://tables/gold.daily_revenue")]``.

Nothing about the environment is in this file; it comes from Airflow at run time:

- connection ``neurolake_spark`` (type spark): the master, e.g. ``spark://spark-master:7077``
  or ``local[2]`` (``AIRFLOW_CONN_NEUROLAKE_SPARK='{"conn_type": "spark", "host": "local[2]"}'``);
  ``spark-submit`` must be on the worker's PATH.
- variables: ``neurolake_jobs_dir`` (the repository's ``jobs/`` folder),
  ``neurolake_conf_file`` (settings file), ``neurolake_jars`` (the output of ``neurolake jars``),
  ``neurolake_backup_dir`` (where nightly backups go), and optionally ``neurolake_py_files``
  (the project wheel, for executors without the project installed) and
  ``neurolake_spark_conf`` (JSON object of extra ``--conf`` settings).
- secrets (PII salt, tokenization key, catalog URL with its password, Pushgateway
  credentials) stay in the worker's environment or files, as the settings name them;
  the DAG never sees them.

The table list is read from the pipeline definition, ``$NEUROLAKE_PIPELINE`` or the
repository's ``conf/pipeline.yaml`` next to this folder. See docs/airflow.md.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset
from airflow.timetables.interval import CronDataIntervalTimetable

DAG_ID = "neurolake_nightly"
SPARK_CONN_ID = "neurolake_spark"
PIPELINE_FILE = Path(
    os.environ.get("NEUROLAKE_PIPELINE", Path(__file__).resolve().parents[1] / "conf" / "pipeline.yaml")
)

# task id, job file, layers of the tables it writes (its Asset outlets), extra job arguments
STEPS = [
    ("ingest", "ingest.py", ("bronze", "quarantine.ingest"), []),
    ("silver", "silver.py", ("silver", "quarantine.quality"), []),
    ("gold", "gold.py", ("gold",), []),
    ("bulk_fixes", "bulk_fixes.py", (), []),
    ("compact", "compact.py", (), []),
    ("vacuum", "vacuum.py", (), []),
    (
        "backup",
        "backup.py",
        (),
        [
            "--to",
            "{{ var.value.neurolake_backup_dir }}/{{ ds }}/"
            "{{ run_id | replace(':', '') | replace('+', '') }}-try{{ ti.try_number }}",
        ],
    ),
]


def table_asset(name: str) -> Asset:
    """The Asset of one lakehouse table, e.g. ``neurolake://tables/silver.orders``."""
    return Asset(name=f"neurolake.{name}", uri=f"neurolake://tables/{name}")


def pipeline_tables(path: Path = PIPELINE_FILE) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return sorted(yaml.safe_load(handle)["tables"])


def outlets_of(patterns: tuple[str, ...], tables: list[str]) -> list[Asset]:
    """Assets of the tables matching a layer (``silver``) or a full name (``quarantine.ingest``)."""
    return [table_asset(t) for t in tables if t in patterns or t.split(".", 1)[0] in patterns]


default_args = {
    "owner": "data-eng",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}

with DAG(
    dag_id=DAG_ID,
    description="NeuroLake nightly: ingest, gate + silver, gold, bulk fixes, compact, vacuum, backup",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=True,
    max_active_runs=1,
    default_args=default_args,
    render_template_as_native_obj=True,
    tags=["neurolake"],
    doc_md=__doc__,
) as dag:
    tables = pipeline_tables()
    previous = None
    for task_id, job_file, writes, extra_args in STEPS:
        task = SparkSubmitOperator(
            task_id=task_id,
            conn_id=SPARK_CONN_ID,
            application="{{ var.value.neurolake_jobs_dir }}/" + job_file,
            application_args=[
                "--conf-file",
                "{{ var.value.neurolake_conf_file }}",
                "--date",
                "{{ ds }}",
                *extra_args,
            ],
            jars="{{ var.value.neurolake_jars }}",
            py_files="{{ var.value.get('neurolake_py_files', '') }}",
            conf="{{ var.json.get('neurolake_spark_conf', {}) }}",
            name=f"neurolake-{task_id}-{{{{ ds }}}}",
            outlets=outlets_of(writes, tables),
        )
        if previous is not None:
            previous >> task
        previous = task
