"""Statements (``/api/v1/queries``) and data reads (``/api/v1/data``) against a real
``neurolake serve`` on the nightly warehouse: the statement life cycle, chunks in JSON and Arrow,
refusals leaving every table unchanged, parameters, tenants, PII and previews with versions."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from tests.spark.test_service_readonly import HOSTILE

from .service import serve

ARROW = "application/vnd.apache.arrow.stream"
LONG = "SELECT sum(hash(id)) FROM range(0, 100000000000, 1, 4)"


@pytest.fixture(scope="module")
def api(served):
    with httpx.Client(base_url=served.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def engineer(service_site):
    return service_site.headers("engineer")


def submit(api, headers, statement, **body):
    answer = api.post(
        "/api/v1/queries", json={"statement": statement, "wait_timeout": "50s", **body}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_final(api, headers, statement_id, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = api.get(f"/api/v1/queries/{statement_id}", headers=headers).json()
        if body["status"]["state"] not in ("PENDING", "RUNNING"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"statement {statement_id} did not finish")


def table_versions(warehouse: Path) -> dict[str, list[str]]:
    """Every commit file of every table (Delta and NCF logs)."""
    return {
        str(log.relative_to(warehouse)): sorted(p.name for p in log.iterdir())
        for log in warehouse.rglob("*")
        if log.is_dir() and log.name in ("_delta_log", "_ncf_log")
    }


def test_a_statement_answers_within_its_wait_timeout(api, engineer, service_site):
    lh, _ = service_site.nightly
    body = submit(
        api, engineer, "SELECT status, count(*) AS n FROM silver.orders GROUP BY status ORDER BY status"
    )
    assert body["status"] == {"state": "SUCCEEDED", "error": None}
    manifest = body["manifest"]
    assert [c["name"] for c in manifest["schema"]["columns"]] == ["status", "n"]
    expected = lh.table("silver.orders").groupBy("status").count().orderBy("status").collect()
    assert body["result"]["data_array"] == [[r["status"], r["count"]] for r in expected]
    assert manifest["total_row_count"] == len(expected) and not manifest["truncated"]


def test_async_then_poll_and_100k_rows_in_json_and_arrow_chunks(api, engineer):
    first = submit(
        api, engineer, "SELECT id, CAST(id AS STRING) AS text FROM range(100000)", wait_timeout="0s"
    )
    assert first["status"]["state"] in ("PENDING", "RUNNING", "SUCCEEDED")
    body = wait_final(api, engineer, first["statement_id"])
    manifest = body["manifest"]
    assert body["status"]["state"] == "SUCCEEDED" and manifest["total_row_count"] == 100_000
    assert manifest["total_chunk_count"] > 1
    seen = []
    for chunk in manifest["chunks"]:
        url = f"/api/v1/queries/{first['statement_id']}/result/chunks/{chunk['chunk_index']}"
        rows = api.get(url, headers=engineer).json()["data_array"]
        assert len(rows) == chunk["row_count"]
        seen.extend(r[0] for r in rows)
    assert seen == list(range(100_000))
    last = manifest["chunks"][-1]
    url = f"/api/v1/queries/{first['statement_id']}/result/chunks/{last['chunk_index']}"
    arrow = api.get(url, headers={**engineer, "Accept": ARROW})
    assert arrow.status_code == 200 and arrow.headers["content-type"] == ARROW
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.column_names == ["id", "text"] and table.column("text")[-1].as_py() == "99999"
    missing = api.get(f"/api/v1/queries/{first['statement_id']}/result/chunks/999", headers=engineer)
    assert missing.status_code == 404


def test_cancel_and_timeout_cancel(api, engineer):
    running = submit(api, engineer, LONG, wait_timeout="0s")
    deadline = time.monotonic() + 60
    while (
        api.get(f"/api/v1/queries/{running['statement_id']}", headers=engineer).json()["status"]["state"]
        == "PENDING"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cancelled = api.post(f"/api/v1/queries/{running['statement_id']}/cancel", headers=engineer)
    assert cancelled.status_code == 200 and cancelled.json()["status"]["state"] == "CANCELED"
    timed_out = submit(api, engineer, LONG, wait_timeout="5s", on_wait_timeout="CANCEL")
    assert timed_out["status"]["state"] == "CANCELED"
    again = api.delete(f"/api/v1/queries/{timed_out['statement_id']}/cancel", headers=engineer)
    assert again.json()["status"]["state"] == "CANCELED"
    after = submit(api, engineer, "SELECT count(*) FROM silver.orders")
    assert after["status"]["state"] == "SUCCEEDED", "the engine is free again after the cancels"


def test_hostile_statements_are_refused_and_no_table_changes(api, service_site):
    lh, _ = service_site.nightly
    before = table_versions(lh.settings.warehouse)
    engineer = service_site.headers("admin")
    for text, reason in HOSTILE:
        answer = api.post("/api/v1/queries", json={"statement": text}, headers=engineer)
        assert answer.status_code == 422, (text, answer.text)
        body = answer.json()
        assert body["type"] == "urn:neurolake:problem:statement-refused", (text, body)
        assert reason.lower() in body["detail"].lower(), (text, body["detail"])
    assert table_versions(lh.settings.warehouse) == before


def test_parameters_are_bound_with_quotes_intact(api, engineer):
    tricky = 'O\'Brien "quoted"; DROP TABLE silver.orders; --'
    body = submit(
        api,
        engineer,
        "SELECT :text AS text, :n * 2 AS n, count(*) AS c FROM silver.orders WHERE status <> :text",
        parameters=[
            {"name": "text", "value": tricky, "type": "STRING"},
            {"name": "n", "value": "21", "type": "INT"},
        ],
    )
    assert body["status"]["state"] == "SUCCEEDED", body
    assert body["result"]["data_array"][0][:2] == [tricky, 42]
    wrong = api.post(
        "/api/v1/queries",
        json={"statement": "SELECT :n", "parameters": [{"name": "n", "value": "x", "type": "INT"}]},
        headers=engineer,
    )
    assert wrong.status_code == 422 and "not a INT" in wrong.json()["detail"]


def test_tenants_see_only_their_tables(api, service_site):
    finance = service_site.headers("engineer", "finance")
    hidden = api.post("/api/v1/queries", json={"statement": "SELECT * FROM silver.orders"}, headers=finance)
    unknown = api.post("/api/v1/queries", json={"statement": "SELECT * FROM gold.nope"}, headers=finance)
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["detail"] == "unknown table 'silver.orders'"
    assert submit(api, finance, "SELECT count(*) FROM gold.daily_revenue")["status"]["state"] == "SUCCEEDED"
    lh, _ = service_site.nightly
    gold = sorted(n for n in lh.settings.pipeline_definition().tables if n.startswith("gold."))
    tables = api.get("/api/v1/data/tables", headers=finance).json()["tables"]
    assert sorted(t["name"] for t in tables) == gold
    assert api.get("/api/v1/data/tables/silver.orders/preview", headers=finance).status_code == 404
    shown = submit(api, finance, "SHOW TABLES")["result"]["data_array"]
    assert shown == [n.split(".") for n in gold]


def test_pii_is_masked_without_the_grant(api, service_site):
    from neurolake_spark.catalog.store import CatalogStore
    from neurolake_spark.service.keys import KeyStore

    store = CatalogStore.from_settings(service_site.settings)
    _, token = KeyStore(store, service_site.settings.service.tenants).create(
        "pii-reader", "engineer", grants=["pii"]
    )
    store.close()
    statement = "SELECT email FROM bronze.customers WHERE email IS NOT NULL LIMIT 20"
    masked = submit(api, service_site.headers("admin"), statement)["result"]["data_array"]
    assert masked and {r[0] for r in masked} == {"[REDACTED]"}
    granted = {"Authorization": f"Bearer {token}"}
    shown = submit(api, granted, statement)["result"]["data_array"]
    assert all("@" in r[0] for r in shown)
    columns = {"limit": 3, "columns": "email"}
    url = "/api/v1/data/tables/bronze.customers/preview"
    preview = api.get(url, params=columns, headers=service_site.headers("engineer")).json()
    assert preview["masked_columns"] == ["email"]
    assert {row[0] for row in preview["rows"]} <= {"[REDACTED]", None}
    clear = api.get(url, params=columns, headers=granted).json()
    assert clear["masked_columns"] == [] and all("@" in row[0] for row in clear["rows"] if row[0])


def test_data_routes_schemas_tables_history_and_preview_with_version(api, engineer):
    schemas = {s["name"] for s in api.get("/api/v1/data/schemas", headers=engineer).json()["schemas"]}
    assert {"bronze", "silver", "gold"} <= schemas
    columns = api.get("/api/v1/data/tables/silver.orders/schema", headers=engineer).json()["columns"]
    assert "order_id" in [c["name"] for c in columns]
    history = api.get("/api/v1/data/tables/silver.orders/history", headers=engineer).json()["history"]
    assert history[-1]["version"] == 0 and history[0]["version"] >= 1
    latest = api.get("/api/v1/data/tables/silver.orders/preview?limit=5", headers=engineer).json()
    assert latest["version"] == history[0]["version"] and len(latest["rows"]) == 5 and latest["truncated"]
    first = api.get(
        "/api/v1/data/tables/silver.orders/preview",
        params={"version": 0, "columns": "order_id,status"},
        headers=engineer,
    ).json()
    assert first["version"] == 0 and [c["name"] for c in first["schema"]] == ["order_id", "status"]
    capped = api.get("/api/v1/data/tables/silver.orders/preview?limit=100000", headers=engineer).json()
    assert len(capped["rows"]) <= 1000
    too_new = api.get("/api/v1/data/tables/silver.orders/preview?version=9999", headers=engineer)
    assert too_new.status_code == 422


def test_explain_and_history(api, engineer):
    explained = api.post(
        "/api/v1/queries/explain",
        json={"statement": "SELECT * FROM silver.orders WHERE status = 'x'"},
        headers=engineer,
    )
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert (
        "Scan" in body["plan"]
        and "/tmp/" not in body["plan"]
        and body["tables"][0]["name"] == "silver.orders"
    )
    assert body["tables"][0]["version"] >= 0
    scan = body["scans"][0]
    assert scan["table"] == "silver.orders" and 0 <= scan["files_read"] <= scan["files_total"]
    ran = submit(api, engineer, "SELECT count(*) FROM silver.orders")
    history = api.get("/api/v1/queries/history", headers=engineer).json()["statements"]
    assert history[0]["statement_id"] == ran["statement_id"] and history[0]["rows"] == 1
    assert history and {h["state"] for h in history} >= {"SUCCEEDED"}
    assert all(h["statement"] for h in history)


def test_a_full_tenant_queue_answers_429_and_frees_up_after_cancel(api, service_site):
    finance = service_site.headers("engineer", "finance")  # one statement at once, one waiting
    long = {"statement": "SELECT count(*) FROM range(100000000000) a", "wait_timeout": "0s"}
    running = api.post("/api/v1/queries", json=long, headers=finance).json()["statement_id"]
    waiting = api.post("/api/v1/queries", json=long, headers=finance).json()["statement_id"]
    full = api.post("/api/v1/queries", json=long, headers=finance)
    assert full.status_code == 429 and full.headers["Retry-After"] == "1", full.text
    assert "finance" in full.json()["detail"]
    other = submit(api, service_site.headers("engineer"), "SELECT 1 AS one")
    assert other["status"]["state"] == "SUCCEEDED"  # another tenant is not held up
    for statement in (waiting, running):
        canceled = api.post(f"/api/v1/queries/{statement}/cancel", headers=finance)
        assert canceled.json()["status"]["state"] == "CANCELED", canceled.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        again = api.post("/api/v1/queries", json={"statement": "SELECT 2 AS two"}, headers=finance)
        if again.status_code != 429:
            break
        time.sleep(0.2)
    assert again.status_code == 200 and again.json()["result"]["data_array"] == [[2]], again.text


def _spark_jvms(parent: int) -> list[int]:
    """The pids of the Spark JVMs ``parent`` launched (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"java" in command and b"SparkSubmit" in command:
            found.append(int(stat.parent.name))
    return found


def test_a_dead_spark_jvm_is_replaced_and_statements_run_again(service_site, tmp_path):
    engineer = service_site.headers("engineer")
    with serve(service_site.conf, tmp_path) as app, httpx.Client(base_url=app.url, timeout=120) as api:
        assert submit(api, engineer, "SELECT 1 AS one")["result"]["data_array"] == [[1]]
        assert api.get("/ready").json()["checks"]["spark"]["status"] == "ok"
        (jvm,) = _spark_jvms(app.process.pid)
        os.kill(jvm, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{jvm}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        after = submit(api, engineer, "SELECT count(*) AS n FROM silver.orders")
        assert after["status"]["state"] == "SUCCEEDED", after
        assert _spark_jvms(app.process.pid) not in ([], [jvm])
        assert api.get("/ready").json()["checks"]["spark"]["status"] == "ok"
        assert "starting a new one" in app.logs(200)
