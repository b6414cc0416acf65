from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from neurolake_spark.config import load_settings
from neurolake_spark.metrics import MetricsListener
from neurolake_spark.runs import JobRun

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path):
    return load_settings(ROOT / "conf" / "local.yaml", overrides={"storage.warehouse": str(tmp_path)}, env={})


def samples(path: Path) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


class Recorder:
    def __init__(self):
        self.events = []

    def on_start(self, run):
        self.events.append(("start", run.status))

    def on_end(self, run):
        self.events.append(("end", run.status))


class Broken:
    def on_start(self, run):
        raise RuntimeError("listener down")

    def on_end(self, run):
        raise RuntimeError("listener down")


def test_success_records_status_times_and_datasets(settings):
    recorder = Recorder()
    with JobRun("ingest", settings, run_date="2026-11-24", listeners=[recorder, Broken()]) as run:
        run.add_input("raw.orders", rows=10)
        run.add_output("bronze.orders", version=3, rows=8, bytes=100)
        run.rows_quarantined = 2
    assert run.status == "success" and run.error is None
    assert run.ended_at >= run.started_at and run.duration_seconds >= 0
    assert (run.rows_in, run.rows_out, run.bytes_written) == (10, 8, 100)
    assert recorder.events == [("start", "running"), ("end", "success")]


def test_failure_is_recorded_and_raised(settings):
    with pytest.raises(ValueError, match="boom"), JobRun("silver", settings, listeners=[]) as run:
        raise ValueError("boom")
    assert run.status == "failed"
    assert isinstance(run.error, ValueError) and "boom" in run.error_stack


def test_child_runs_share_date_and_listeners(settings):
    recorder = Recorder()
    parent = JobRun("nightly", settings, run_date="2026-11-24", listeners=[recorder])
    child = parent.child("gold")
    assert child.parent is parent and child.run_date == "2026-11-24" and child.listeners == [recorder]
    assert child.run_id != parent.run_id


def test_metrics_textfile_counters_accumulate(settings):
    listener = MetricsListener(settings)
    with JobRun("ingest", settings, listeners=[listener]) as run:
        run.add_input("raw.orders", rows=10)
        run.add_output("bronze.orders", rows=7, bytes=1234)
        run.rows_quarantined = 3
    with pytest.raises(RuntimeError), JobRun("ingest", settings, listeners=[listener]) as run:
        run.add_input("raw.orders", rows=5)
        raise RuntimeError("x")

    values = samples(settings.metrics_textfile_dir / "neurolake_ingest.prom")
    job = ("job_name", "ingest")
    assert values[("neurolake_job_rows_total", (("direction", "in"), job))] == 15
    assert values[("neurolake_job_rows_total", (("direction", "out"), job))] == 7
    assert values[("neurolake_job_rows_total", (("direction", "quarantined"), job))] == 3
    assert values[("neurolake_job_runs_total", (job, ("status", "success")))] == 1
    assert values[("neurolake_job_runs_total", (job, ("status", "failed")))] == 1
    assert values[("neurolake_job_bytes_written_total", (job,))] == 1234
    assert values[("neurolake_job_duration_seconds", (job,))] >= 0
    assert not any(name.endswith("_created") for name, _ in values)


def test_metrics_go_to_a_pushgateway_when_configured(settings, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self):
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"])).decode()))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings.metrics.pushgateway_url = f"http://127.0.0.1:{server.server_port}"
        with JobRun("gold", settings, listeners=[MetricsListener(settings)]) as run:
            run.add_output("gold.daily_revenue", rows=4)
    finally:
        server.shutdown()
    assert received and received[0][0] == "/metrics/job/neurolake_gold"
    assert 'neurolake_job_rows_total{direction="out",job_name="gold"} 4.0' in received[0][1]
    assert not (settings.metrics_textfile_dir / "neurolake_gold.prom").exists()
