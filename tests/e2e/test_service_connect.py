"""Spark Connect mode: a real Spark Connect server started from the pyspark install (its
``spark-connect`` jar ships in ``pyspark/jars``), a ``neurolake serve`` with
``service.spark_remote`` on it, and the statement tests run through it: a result, chunks,
refusals (parsed in a local JVM, never sent to the server), parameters with quotes (bound through
a one-row view: Spark Connect 4.2 with Delta's SQL extension binds no markers) and a cancel whose
Spark jobs stop (the server's own status API, ``/api/v1/applications/.../jobs``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow as pa
import pyspark
import pytest

from neurolake_spark import jars
from neurolake_spark.session import DELTA_CONF, jvm_coordinates

from .cluster import free_port
from .conftest import SITE_TENANTS
from .service import serve, write_service_conf
from .test_service_queries import ARROW, HOSTILE

CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Spark Connect server exited:\n{log.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"the Spark Connect server did not listen within {seconds} s")


@dataclass(frozen=True)
class ConnectServer:
    url: str
    ui: str

    def running_jobs(self) -> list[int]:
        """The ids of the server's running Spark jobs, from Spark's status REST API."""
        application = httpx.get(f"{self.ui}/api/v1/applications", timeout=10).json()[0]["id"]
        jobs = httpx.get(f"{self.ui}/api/v1/applications/{application}/jobs?status=running", timeout=10)
        return [job["jobId"] for job in jobs.json()]


@pytest.fixture(scope="module")
def connect_server(service_site, tmp_path_factory):
    settings = service_site.settings
    folder = tmp_path_factory.mktemp("connect")
    port, ui_port = free_port(), free_port()
    delta_jars = jars.resolve_all(jvm_coordinates(settings), settings.jvm.jars_dir)
    conf = {
        **DELTA_CONF,
        "spark.connect.grpc.binding.port": str(port),
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.ui.port": str(ui_port),
        "spark.sql.shuffle.partitions": "2",
        "spark.driver.memory": "1g",
    }
    command = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--master", "local[2]"]
    command += ["--class", CONNECT_SERVER, "--jars", ",".join(str(p) for p in delta_jars)]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    command.append("spark-internal")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    log = folder / "connect.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_for_port(port, process, log)
        yield ConnectServer(f"sc://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def connect_api(service_site, connect_server, tmp_path_factory):
    lh, _ = service_site.nightly
    folder = tmp_path_factory.mktemp("serve-connect")
    conf = write_service_conf(
        folder / "serve.yaml",
        lh.settings.warehouse,
        service_site.settings.catalog_url,
        {
            "spark_remote": connect_server.url,
            "tenants": SITE_TENANTS,
            "state_dir": str(folder / "state"),
            "rate_limit_enabled": False,
        },
    )
    with serve(conf, folder) as app, httpx.Client(base_url=app.url, timeout=180) as client:
        client.headers.update(service_site.headers("engineer"))
        yield client


def post(api, statement, **body):
    answer = api.post("/api/v1/queries", json={"statement": statement, "wait_timeout": "50s", **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_statements_run_on_spark_connect(connect_api, service_site):
    lh, _ = service_site.nightly
    body = post(
        connect_api, "SELECT status, count(*) AS n FROM silver.orders GROUP BY status ORDER BY status"
    )
    assert body["status"]["state"] == "SUCCEEDED", body
    expected = lh.table("silver.orders").groupBy("status").count().orderBy("status").collect()
    assert body["result"]["data_array"] == [[r["status"], r["count"]] for r in expected]
    large = post(connect_api, "SELECT id FROM range(25000)")
    assert large["manifest"]["total_row_count"] == 25_000 and large["manifest"]["total_chunk_count"] == 3
    chunk = connect_api.get(
        f"/api/v1/queries/{large['statement_id']}/result/chunks/2", headers={"Accept": ARROW}
    )
    table = pa.ipc.open_stream(chunk.content).read_all()
    assert table.column("id").to_pylist() == list(range(20_000, 25_000))


def test_pii_and_tenants_on_spark_connect(connect_api, service_site):
    statement = "SELECT email FROM bronze.customers WHERE email IS NOT NULL LIMIT 5"
    masked = post(connect_api, statement)["result"]["data_array"]
    assert masked and {r[0] for r in masked} == {"[REDACTED]"}
    finance = service_site.headers("engineer", "finance")
    hidden = connect_api.post("/api/v1/queries", json={"statement": statement}, headers=finance)
    assert hidden.status_code == 404, hidden.text


def test_refusals_on_spark_connect(connect_api):
    for text, reason in HOSTILE[:15]:
        answer = connect_api.post("/api/v1/queries", json={"statement": text})
        assert answer.status_code == 422 and reason.lower() in answer.json()["detail"].lower(), text
    assert post(connect_api, "VALUES (1)")["status"]["state"] == "SUCCEEDED"


def test_parameters_with_quotes_are_bound_on_spark_connect(connect_api, service_site):
    tricky = 'O\'Brien "x"; DROP TABLE silver.orders --'
    parameters = [{"name": "v", "value": tricky}, {"name": "n", "value": 41, "type": "INT"}]
    body = post(connect_api, "SELECT :v AS v, :n + 1 AS n", parameters=parameters)
    assert body["result"]["data_array"] == [[tricky, 42]], body
    lh, _ = service_site.nightly
    orders = lh.table("silver.orders")
    status = orders.first()["status"]
    expected = orders.where(orders["status"] == status).count()
    counted = post(
        connect_api,
        "SELECT count(*) AS n FROM silver.orders WHERE status = :s AND :s = status",
        parameters=[{"name": "s", "value": status}],
    )
    assert counted["result"]["data_array"] == [[expected]], counted
    missing = connect_api.post("/api/v1/queries", json={"statement": "SELECT :nothing"})
    assert missing.status_code == 422 and "nothing" in missing.json()["detail"]


def test_a_wait_timeout_with_cancel_on_spark_connect_cancels(connect_api, connect_server):
    body = post(
        connect_api, "SELECT count(*) FROM range(100000000000) a", wait_timeout="2s", on_wait_timeout="CANCEL"
    )
    assert body["status"]["state"] == "CANCELED", body
    deadline = time.monotonic() + 30
    while connect_server.running_jobs() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert connect_server.running_jobs() == []


def test_cancel_on_spark_connect_stops_the_spark_jobs(connect_api, connect_server):
    body = post(connect_api, "SELECT count(*) FROM range(100000000000) a", wait_timeout="0s")
    statement = body["statement_id"]
    deadline = time.monotonic() + 120
    while not connect_server.running_jobs() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert connect_server.running_jobs(), "the long statement never started a Spark job"
    canceled = connect_api.post(f"/api/v1/queries/{statement}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"]["state"] == "CANCELED", canceled.text
    deadline = time.monotonic() + 30
    while connect_server.running_jobs() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert connect_server.running_jobs() == []
