"""Files shared between processes: metrics counters lose no increment, reports are never half-written."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from neurolake_spark.config import load_settings
from neurolake_spark.quality.gate import GateReport

ROOT = Path(__file__).resolve().parents[2]
PROCESSES, RUNS_EACH = 8, 25


@pytest.fixture
def settings(tmp_path):
    return load_settings(ROOT / "conf" / "local.yaml", overrides={"storage.warehouse": str(tmp_path)}, env={})


def _bump(settings, start) -> None:
    from neurolake_spark.metrics import MetricsListener
    from neurolake_spark.runs import JobRun

    listener = MetricsListener(settings)
    start.wait()
    for _ in range(RUNS_EACH):
        with JobRun("bulk_fixes", settings, listeners=[listener]) as run:
            run.add_input("raw.fixes", rows=1)


def test_concurrent_runs_lose_no_counter_increment(settings):
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [context.Process(target=_bump, args=(settings, start)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    text = (settings.metrics_textfile_dir / "neurolake_bulk_fixes.prom").read_text()
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    job = ("job_name", "bulk_fixes")
    assert values[("neurolake_job_runs_total", (job, ("status", "success")))] == PROCESSES * RUNS_EACH
    assert values[("neurolake_job_rows_total", (("direction", "in"), job))] == PROCESSES * RUNS_EACH
    assert not [p.name for p in settings.metrics_textfile_dir.iterdir() if p.name.endswith(".tmp")]


def _report(rows: int) -> GateReport:
    return GateReport(
        "silver.orders",
        "run-1",
        "2026-11-24",
        rows_in=rows,
        results=[
            {"expectation": f"rule_{i}", "success": True, "observed_value": "x" * 40} for i in range(rows)
        ],
    )


def _rewrite_reports(directory: Path, start, rounds: int) -> None:
    start.wait()
    for i in range(rounds):
        _report(4000 if i % 2 else 3).write(directory)


def test_a_reader_never_sees_a_half_written_report(tmp_path):
    path = _report(3).write(tmp_path)
    context = multiprocessing.get_context("fork")
    start = context.Event()
    writer = context.Process(target=_rewrite_reports, args=(tmp_path, start, 150))
    writer.start()
    start.set()
    reads, partial = 0, 0
    while writer.is_alive() or reads == 0:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            partial += 1
        else:
            assert report["rows_in"] in (3, 4000) and len(report["results"]) == report["rows_in"]
        reads += 1
    writer.join(timeout=60)
    assert writer.exitcode == 0
    assert partial == 0, f"{partial} of {reads} reads saw a partial report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["silver.orders.json"]
