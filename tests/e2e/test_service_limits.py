"""Rate limits (burst, 429, recovery) and graceful shutdown on SIGTERM, each on its own small
``neurolake serve`` over the session's catalog copy (the shared server has limits too high to hit)."""

from __future__ import annotations

import json
import re
import signal
import socket
import time

import httpx
import pytest

from .service import serve, write_service_conf
from .test_service_api import assert_problem

ADDRESS_BURST, ADDRESS_RATE = 15, 3


@pytest.fixture(scope="module")
def limited(service_site):
    conf = write_service_conf(
        service_site.folder / "limited.yaml",
        service_site.settings.warehouse,
        service_site.settings.catalog_url,
        {
            "tenants": {"default": {"tables": ["*"]}, "finance": {"tables": ["gold.*"]}},
            "state_dir": str(service_site.folder / "state"),
            "rate_limit_per_key": {"burst": 5, "per_second": 2},
            "rate_limit_per_address": {"burst": ADDRESS_BURST, "per_second": ADDRESS_RATE},
            "ready_max_spooled_events": 2,
        },
        lineage={"transports": [{"type": "catalog"}], "spool_dir": str(service_site.folder / "spool")},
    )
    with serve(conf, service_site.folder) as app:
        yield app


def test_key_bucket_allows_a_burst_then_429_then_recovers(limited, service_site):
    viewer = service_site.headers("viewer")
    url = f"{limited.url}/api/v1/catalog/tags"
    answers = [httpx.get(url, headers=viewer) for _ in range(8)]
    statuses = [a.status_code for a in answers]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses, statuses
    ok = answers[0].headers
    assert ok["x-ratelimit-limit"] == "5" and int(ok["x-ratelimit-remaining"]) <= 4
    refused = next(a for a in answers if a.status_code == 429)
    body = assert_problem(refused, 429, "rate-limited")
    assert "credential" in body["detail"]
    retry = int(refused.headers["retry-after"])
    assert (
        retry >= 1
        and refused.headers["x-ratelimit-remaining"] == "0"
        and int(refused.headers["x-ratelimit-reset"]) >= 1
    )
    other_key = httpx.get(url, headers=service_site.headers("auditor"))
    assert other_key.status_code == 200  # each key has its own bucket
    for _ in range(20):
        assert httpx.get(f"{limited.url}/health").status_code == 200  # probes are exempt
    time.sleep(retry + 0.5)
    assert httpx.get(url, headers=viewer).status_code == 200


def test_address_bucket_limits_requests_without_a_key(limited):
    url = f"{limited.url}/api/v1/catalog/assets"
    time.sleep(ADDRESS_BURST / ADDRESS_RATE)  # the other test's requests came from this address too
    answers = [httpx.get(url) for _ in range(2 * ADDRESS_BURST)]
    assert answers[0].status_code == 401 and any(a.status_code == 429 for a in answers)
    refused = [a for a in answers if a.status_code == 429][-1]
    assert "address" in assert_problem(refused, 429, "rate-limited")["detail"]
    time.sleep(int(refused.headers["retry-after"]) + 0.5)
    assert httpx.get(url).status_code == 401


def test_sigterm_lets_the_request_in_flight_finish(service_site):
    conf = write_service_conf(
        service_site.folder / "shutdown.yaml",
        service_site.settings.warehouse,
        service_site.settings.catalog_url,
        {
            "state_dir": str(service_site.folder / "state"),
            "shutdown_grace_seconds": 20,
            "tracing_exporter": "console",
        },
    )
    with serve(conf, service_site.folder) as app:
        body = b'{"text": "orders"}'
        host, port = "127.0.0.1", int(app.url.rsplit(":", 1)[1])
        key = service_site.keys[("viewer", "default")]
        with socket.create_connection((host, port), timeout=30) as conn:
            conn.sendall(
                (
                    f"POST /api/v1/catalog/search HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body[:5]
            )
            time.sleep(1.0)  # the request is in flight: headers read, body half sent
            app.process.send_signal(signal.SIGTERM)
            time.sleep(1.5)
            assert app.process.poll() is None, "the server stopped before the request in flight finished"
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{app.url}/health", timeout=5)  # no new connections once shutting down
            conn.sendall(body[5:])
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        assert b'"assets"' in answer
        assert app.process.wait(timeout=30) == 0
    # The console exporter wrote the spans at shutdown: the request's and its catalog calls', one trace.
    log = app.log.read_text()
    access = [json.loads(line) for line in log.splitlines() if '"neurolake.access"' in line]
    search = next(e for e in access if e["path"] == "/api/v1/catalog/search")
    spans = [json.loads(block) for block in re.findall(r"^\{\n.*?^\}$", log, re.M | re.S)]
    mine = [s for s in spans if s["context"]["trace_id"] == f"0x{search['trace_id']}"]
    names = {s["name"] for s in mine}
    assert {"POST /api/v1/catalog/search", "catalog.assets.page", "catalog.auth"} <= names, names
    request = next(s for s in mine if s["name"] == "POST /api/v1/catalog/search")
    assert request["attributes"]["neurolake.request_id"] == search["request_id"]


def test_ready_fails_while_too_many_lineage_events_wait(limited, service_site):
    queue = service_site.folder / "spool" / "http-0123456789"
    queue.mkdir(parents=True)
    assert httpx.get(f"{limited.url}/ready").status_code == 200
    for number in range(1, 4):
        (queue / f"{number:012d}.event.json").write_text("{}")
    ready = httpx.get(f"{limited.url}/ready")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert (
        checks["lineage_spool"]["status"] == "failed"
        and "neurolake lineage replay" in checks["lineage_spool"]["detail"]
    )
    assert checks["catalog"]["status"] == "ok" and checks["warehouse"]["status"] == "ok"
    for path in queue.iterdir():
        path.unlink()
    assert httpx.get(f"{limited.url}/ready").status_code == 200
