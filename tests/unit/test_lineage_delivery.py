"""Delivery of lineage events: transports, spool, circuit breaker, replay, corrupt files.

The HTTP backend is a real ``http.server`` on 127.0.0.1 that deduplicates on the
``Idempotency-Key`` header like an OpenLineage receiver should; "down" is first a closed
port, then a server answering 503.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from openlineage.client.event_v2 import RunState

from neurolake_spark.cli import main
from neurolake_spark.config import load_settings
from neurolake_spark.errors import ConfigError
from neurolake_spark.lineage.delivery import LineageEmitter, replay
from neurolake_spark.lineage.events import build_event, event_key, to_dict
from neurolake_spark.lineage.listener import LineageListener
from neurolake_spark.lineage.spark_listener import events_file, ingest_listener_events
from neurolake_spark.lineage.spool import CircuitBreaker, Spool
from neurolake_spark.runs import JobRun
from tests.openlineage_schema import validate_event

ROOT = Path(__file__).resolve().parents[2]


class Receiver(ThreadingHTTPServer):
    """An OpenLineage endpoint: stores each event once per Idempotency-Key, in arrival order."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int):
        super().__init__(("127.0.0.1", port), _Handler)
        self.healthy = True
        self.attempts = 0
        self.events: list[dict] = []
        self.keys: set[str] = set()
        self.headers_seen: list[dict] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        server: Receiver = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.attempts += 1
        server.headers_seen.append(dict(self.headers))
        if self.path != "/api/v1/lineage" or not server.healthy:
            self.send_response(404 if server.healthy else 503)
            self.end_headers()
            return
        key = self.headers["Idempotency-Key"]
        if key not in server.keys:
            server.keys.add(key)
            server.events.append(json.loads(body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_settings(warehouse: Path, transports: list[dict], **lineage):
    overrides = {
        "storage.warehouse": str(warehouse),
        "metrics.enabled": False,
        "lineage.transports": transports,
        **{f"lineage.{k}": v for k, v in lineage.items()},
    }
    return load_settings(ROOT / "conf" / "local.yaml", overrides=overrides, env={})


def run_job(settings, name: str, listener: LineageListener | None = None) -> JobRun:
    with JobRun(
        name, settings, run_date="2026-11-24", listeners=[listener or LineageListener(settings)]
    ) as run:
        run.add_output(f"silver.{name}", version=1, rows=5, bytes=50, files=1, schema=[("id", "bigint")])
    return run


def emitted_order(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["job"]["name"], e["eventType"]) for e in events]


def test_http_down_then_up_delivers_spooled_events_once_in_order(tmp_path):
    port = free_port()
    settings = make_settings(
        tmp_path,
        [{"type": "http", "url": f"http://127.0.0.1:{port}", "timeout": 2}],
        failure_threshold=2,
        cooldown_seconds=0.5,
    )
    began = time.perf_counter()
    run_job(settings, "first")  # nothing listens on the port: refused at once
    run_job(settings, "second")
    assert time.perf_counter() - began < 5, "a dead backend must not stall the job"
    spool = Spool(settings.lineage_spool_dir, LineageEmitter(settings).outboxes[0].transport.transport_id)
    assert len(spool.pending()) == 4

    receiver = Receiver(port)
    try:
        time.sleep(0.6)  # the breaker's cool-down
        report = replay(settings)
        assert (report.delivered, report.pending) == (4, 0)
        assert emitted_order(receiver.events) == [
            ("first", "START"),
            ("first", "COMPLETE"),
            ("second", "START"),
            ("second", "COMPLETE"),
        ]
        for event in receiver.events:
            validate_event(event)
        assert [h["Idempotency-Key"] for h in receiver.headers_seen] == [
            event_key(e) for e in receiver.events
        ]

        assert replay(settings).delivered == 0  # nothing is sent twice
        run_job(settings, "third")  # healthy: straight through
        assert emitted_order(receiver.events)[-2:] == [("third", "START"), ("third", "COMPLETE")]
        assert receiver.attempts == 6 and spool.pending() == []
    finally:
        receiver.close()


def test_circuit_breaker_stops_calling_a_failing_backend_and_is_shared(tmp_path):
    receiver = Receiver(free_port())
    receiver.healthy = False
    try:
        settings = make_settings(
            tmp_path,
            [{"type": "http", "url": f"http://127.0.0.1:{receiver.server_port}"}],
            failure_threshold=2,
            cooldown_seconds=30,
        )
        run_job(settings, "a")
        run_job(settings, "b")
        assert receiver.attempts == 2, "after 2 failures the breaker must be open"
        other_process = LineageListener(
            make_settings(
                tmp_path,
                [{"type": "http", "url": f"http://127.0.0.1:{receiver.server_port}"}],
                failure_threshold=2,
                cooldown_seconds=30,
            )
        )
        run_job(settings, "c", listener=other_process)
        assert receiver.attempts == 2, "the open breaker is shared through the spool folder"
        outbox = other_process.emitter.outboxes[0]
        assert not outbox.breaker.allows() and len(outbox.spool.pending()) == 6

        receiver.healthy = True
        breaker_file = outbox.spool.folder / "breaker.json"
        state = json.loads(breaker_file.read_text())
        breaker_file.write_text(json.dumps({**state, "open_until": time.time() - 1}))  # cool-down over
        run_job(settings, "d")
        assert emitted_order(receiver.events) == [
            (job, kind) for job in "abcd" for kind in ("START", "COMPLETE")
        ]
        assert outbox.spool.pending() == [] and not breaker_file.exists()
    finally:
        receiver.close()


def test_breaker_opens_after_threshold_and_half_opens_after_cooldown(tmp_path):
    breaker = CircuitBreaker(tmp_path, threshold=3, cooldown_seconds=0.2)
    breaker.failed()
    breaker.failed()
    assert breaker.allows() and breaker.failures == 2
    breaker.failed()
    assert not breaker.allows()
    time.sleep(0.25)
    assert breaker.allows()
    breaker.failed()  # the trial call failed: open again
    assert not breaker.allows()
    breaker.succeeded()
    assert breaker.allows() and breaker.failures == 0


def test_http_token_comes_from_the_named_env_var_only(tmp_path, monkeypatch):
    receiver = Receiver(free_port())
    try:
        config = {
            "type": "http",
            "url": f"http://127.0.0.1:{receiver.server_port}",
            "auth_env": "TEST_OL_TOKEN",
        }
        settings = make_settings(tmp_path, [config])
        monkeypatch.delenv("TEST_OL_TOKEN", raising=False)
        run_job(settings, "no_token")
        assert receiver.attempts == 0 and len(receiver.events) == 0  # no default token, kept for later
        monkeypatch.setenv("TEST_OL_TOKEN", "s3cret")
        assert replay(settings).delivered == 2
        assert {h["Authorization"] for h in receiver.headers_seen} == {"Bearer s3cret"}
    finally:
        receiver.close()


def test_file_console_and_composite_transports(tmp_path, capsys):
    events_path = tmp_path / "out" / "events.jsonl"
    settings = make_settings(
        tmp_path,
        [
            {"type": "console"},
            {
                "type": "composite",
                "transports": [
                    {"type": "file", "location": str(events_path)},
                    {"type": "http", "url": f"http://127.0.0.1:{free_port()}", "timeout": 1},
                ],
            },
        ],
    )
    emitter = LineageEmitter(settings)
    assert [o.transport.config.type for o in emitter.outboxes] == ["console", "file", "http"]
    run = run_job(settings, "mixed", LineageListener(settings, emitter))
    lines = [json.loads(line) for line in events_path.read_text().splitlines()]
    assert emitted_order(lines) == [("mixed", "START"), ("mixed", "COMPLETE")]
    assert all(e["run"]["runId"] == run.run_id for e in lines)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == lines
    assert len(emitter.outboxes[2].spool.pending()) == 2  # only the dead backend spooled
    assert emitter.outboxes[1].spool.pending() == []


def test_corrupt_spool_file_is_moved_aside_and_does_not_block(tmp_path):
    events_path = tmp_path / "events.jsonl"
    config = {"type": "file", "location": str(events_path)}
    settings = make_settings(tmp_path, [config])
    outbox = LineageEmitter(settings).outboxes[0]
    good = []
    for name in ("one", "two"):
        with JobRun(name, settings, listeners=[]) as run:
            pass
        good.append(to_dict(build_event(run, RunState.START)))
    outbox.spool.put(good[0])
    broken = outbox.spool.put({"eventType": "START"})
    broken.write_text('{"eventType": "START", "run": {"runId"')  # truncated by a crash
    outbox.spool.put(good[1])

    report = replay(settings)
    assert (report.delivered, report.corrupt, report.pending) == (2, 1, 0)
    delivered = [json.loads(line) for line in events_path.read_text().splitlines()]
    assert [e["job"]["name"] for e in delivered] == ["one", "two"]
    moved = settings.lineage_spool_dir / "corrupt" / f"{outbox.transport.transport_id}-{broken.name}"
    assert moved.exists()
    reason = moved.with_name(moved.name + ".reason.txt").read_text()
    assert "not valid JSON" in reason and len(reason.strip().splitlines()) == 1


def test_replay_command_reports_and_exits_nonzero_while_events_wait(tmp_path, capsys):
    port = free_port()
    overrides = [
        f"storage.warehouse={tmp_path}",
        "metrics.enabled=false",
        f"lineage.transports=[{{type: http, url: 'http://127.0.0.1:{port}', timeout: 1}}]",
    ]
    settings = load_settings(ROOT / "conf" / "local.yaml", overrides=overrides)
    run_job(settings, "late")
    command = [
        "lineage",
        "replay",
        "-c",
        str(ROOT / "conf" / "local.yaml"),
        *[x for o in overrides for x in ("--set", o)],
    ]
    assert main(command) == 1
    assert "2 still waiting" in capsys.readouterr().out

    receiver = Receiver(port)
    try:
        assert main(command) == 0
        assert "replayed 2 event(s); 0 still waiting" in capsys.readouterr().out
        assert emitted_order(receiver.events) == [("late", "START"), ("late", "COMPLETE")]
    finally:
        receiver.close()


def test_replay_reaches_a_backend_that_is_no_longer_configured(tmp_path):
    events_path = tmp_path / "old.jsonl"
    old = make_settings(tmp_path, [{"type": "file", "location": str(events_path)}])
    outbox = LineageEmitter(old).outboxes[0]
    with JobRun("before_switch", old, listeners=[]) as run:
        pass
    outbox.spool.put(to_dict(build_event(run, RunState.START)))
    new = make_settings(tmp_path, [{"type": "console"}])
    assert replay(new).delivered == 1
    assert json.loads(events_path.read_text())["job"]["name"] == "before_switch"


def test_jvm_listener_file_is_ingested_once_with_bad_lines_set_aside(tmp_path):
    delivered_path = tmp_path / "delivered.jsonl"
    settings = make_settings(
        tmp_path, [{"type": "file", "location": str(delivered_path)}], spark_listener=True
    )
    with JobRun("spark_app", settings, listeners=[]) as run:
        pass
    start, complete = (json.dumps(to_dict(build_event(run, s))) for s in (RunState.START, RunState.COMPLETE))
    source = events_file(settings)
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(start + "\n" + "this is not json\n" + complete[:40])  # the JVM is mid-write
    emitter = LineageEmitter(settings)
    assert ingest_listener_events(settings, emitter) == 1
    with open(source, "a") as out:
        out.write(complete[40:] + "\n")
    assert ingest_listener_events(settings, emitter) == 1
    assert ingest_listener_events(settings, emitter) == 0
    assert [json.loads(x)["eventType"] for x in delivered_path.read_text().splitlines()] == [
        "START",
        "COMPLETE",
    ]
    corrupt = settings.lineage_spool_dir / "corrupt" / "spark-listener.jsonl"
    assert corrupt.read_text() == "this is not json\n"


def test_bad_transport_config_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError) as error:
        make_settings(tmp_path, [{"type": "http", "uri": "http://x"}])
    message = str(error.value)
    assert "unknown option(s) uri" in message and "\n" not in message
    with pytest.raises(ConfigError, match="type must be one of"):
        make_settings(tmp_path, [{"type": "kafka"}])
    with pytest.raises(ConfigError, match="timeout must be a positive number"):
        make_settings(tmp_path, [{"type": "http", "url": "http://127.0.0.1:1", "timeout": "soon"}])
    with pytest.raises(ConfigError, match="missing option"):
        make_settings(tmp_path, [{"type": "composite", "transports": [{"type": "file"}]}])


def test_healthy_run_with_empty_spool_stays_fast(tmp_path):
    settings = make_settings(tmp_path, [{"type": "file", "location": str(tmp_path / "e.jsonl")}])
    listener = LineageListener(settings)
    run_job(settings, "warmup", listener)
    began = time.perf_counter()
    for index in range(20):
        run_job(settings, f"job{index}", listener)
    per_run = (time.perf_counter() - began) / 20
    assert per_run < 0.25, f"lineage costs {per_run * 1000:.0f} ms per run"


def test_spark_listener_switch_and_kill_switch(tmp_path):
    from neurolake_spark.lineage.spark_listener import LISTENER_CLASS, listener_conf
    from neurolake_spark.session import jvm_coordinates

    on = make_settings(tmp_path, [{"type": "catalog"}], spark_listener=True)
    assert on.lineage.spark_listener_package in jvm_coordinates(on)
    conf = listener_conf(on)
    assert conf["spark.extraListeners"] == LISTENER_CLASS
    assert conf["spark.openlineage.transport.type"] == "file"
    assert Path(conf["spark.openlineage.transport.location"]) == events_file(on)

    conf_file = tmp_path / "listener.yaml"
    conf_file.write_text(
        json.dumps(
            {
                "storage": {"warehouse": str(tmp_path)},
                "pipeline": str(ROOT / "conf" / "pipeline.yaml"),
                "lineage": {"spark_listener": True},
            }
        )
    )
    assert load_settings(conf_file, env={}).lineage.spark_listener is True
    killed = load_settings(conf_file, env={"NEUROLAKE__LINEAGE__SPARK_LISTENER": "false"})
    assert killed.lineage.spark_listener is False
    assert on.lineage.spark_listener_package not in jvm_coordinates(killed)
