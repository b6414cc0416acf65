"""Prometheus metrics of each run: pushed to a Pushgateway, or a textfile-collector file.

Metrics (label ``job_name`` is the step, e.g. ``silver``):

- ``neurolake_job_duration_seconds`` (gauge): wall time of the last run
- ``neurolake_job_rows_total{direction="in|out|quarantined"}`` (counter)
- ``neurolake_job_runs_total{status="success|failed"}`` (counter)
- ``neurolake_job_bytes_written_total`` (counter)
- ``neurolake_job_last_run_timestamp_seconds`` (gauge)

:func:`metrics_listeners` is the factory the session registers for every ``JobRun``
(:mod:`~neurolake_spark.run_listeners`); it makes a :class:`MetricsListener` when
``metrics.enabled``. Without ``metrics.pushgateway_url`` each job writes
``<metrics dir>/neurolake_<job>.prom`` atomically; counters continue from the values already
in that file, so they only grow. The read-modify-write runs under a file lock
(``.neurolake_<job>.prom.lock``), so runs ending at the same time in several processes lose
no increment.
"""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
    push_to_gateway,
)
from prometheus_client.exposition import basic_auth_handler, default_handler
from prometheus_client.parser import text_string_to_metric_families

from neurolake_spark.atomic_files import file_lock, write_atomic
from neurolake_spark.config import Settings, read_secret
from neurolake_spark.run_model import RunListener
from neurolake_spark.run_status import RunStatus
from neurolake_spark.runs import JobRun

disable_created_metrics()
_SAFE = re.compile(r"[^a-zA-Z0-9_]")


def _previous_counters(path: Path) -> dict[tuple[str, tuple], float]:
    if not path.exists():
        return {}
    values = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


class MetricsListener:
    """A :class:`~neurolake_spark.run_model.RunListener` that records each run's metrics."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def on_start(self, run: JobRun) -> None:
        """Nothing is recorded until the run ends."""

    def on_end(self, run: JobRun) -> None:
        path = self.settings.metrics_textfile_dir / f"neurolake_{_SAFE.sub('_', run.job_name)}.prom"
        if self.settings.metrics.pushgateway_url:
            self._record(run, path)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path.with_name(f".{path.name}.lock")):
            self._record(run, path)

    def _record(self, run: JobRun, path: Path) -> None:
        """Build this run's metrics (counters continued from ``path``) and push or write them."""
        job = run.job_name
        previous = {} if self.settings.metrics.pushgateway_url else _previous_counters(path)
        registry = CollectorRegistry()

        def counter(name: str, doc: str, labelnames: tuple[str, ...]) -> Counter:
            return Counter(name, doc, ("job_name", *labelnames), registry=registry)

        def bump(metric: Counter, amount: float, **labels: str) -> None:
            labels = {"job_name": job, **labels}
            key = (metric._name + "_total", tuple(sorted(labels.items())))
            metric.labels(**labels).inc(previous.get(key, 0.0) + amount)

        duration = Gauge(
            "neurolake_job_duration_seconds", "Wall time of the last run.", ("job_name",), registry=registry
        )
        duration.labels(job_name=job).set(run.duration_seconds)
        last = Gauge(
            "neurolake_job_last_run_timestamp_seconds",
            "End of the last run (unix time).",
            ("job_name", "status"),
            registry=registry,
        )
        last.labels(job_name=job, status=run.status).set(run.ended_at.timestamp())

        rows = counter("neurolake_job_rows_total", "Rows read, written and quarantined.", ("direction",))
        for direction, amount in (
            ("in", run.rows_in),
            ("out", run.rows_out),
            ("quarantined", run.rows_quarantined),
        ):
            bump(rows, amount, direction=direction)
        runs = counter("neurolake_job_runs_total", "Runs by final status.", ("status",))
        for status in (RunStatus.SUCCESS, RunStatus.FAILED):
            bump(runs, 1 if run.status == status else 0, status=status)
        written = counter("neurolake_job_bytes_written_total", "Bytes written to tables.", ())
        bump(written, run.bytes_written)

        if self.settings.metrics.pushgateway_url:
            push_to_gateway(
                self.settings.metrics.pushgateway_url,
                job=f"neurolake_{job}",
                registry=registry,
                handler=self._auth_handler(),
            )
        else:
            write_atomic(path, generate_latest(registry).decode("utf-8"))

    def _auth_handler(self):
        env_var = self.settings.metrics.pushgateway_auth_env
        if not env_var:
            return default_handler
        user, _, password = read_secret(env_var, None, "Pushgateway credentials").partition(":")

        def handler(url, method, timeout, headers, data):
            return basic_auth_handler(url, method, timeout, headers, data, user, password)

        return handler


def metrics_listeners(settings: Settings) -> list[RunListener]:
    """The metrics listener when ``metrics.enabled``, else none."""
    return [MetricsListener(settings)] if settings.metrics.enabled else []
