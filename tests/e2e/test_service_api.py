"""The real ``neurolake serve`` on a catalog filled by a real nightly: every route, roles, tenants,
sessions and CSRF, headers, bad input, the audit log and OpenLineage intake from the real client.

One server serves the whole session (the ``served`` fixture); tests that change the catalog
(tags, keys, events) use names no other test reads.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from .service import neurolake

PROBLEM = "application/problem+json"
LEAKS = ("Traceback", "/work/", "/tmp/", "SELECT ", "sqlalchemy", "nlk_", 'File "')

# The route x role table: the least role each route needs (None: anonymous). The test below
# fails when the OpenAPI document has a route this table does not list, or the other way round.
ROUTE_ROLES = {
    ("GET", "/health"): None,
    ("GET", "/live"): None,
    ("GET", "/ready"): None,
    ("GET", "/metrics"): None,
    ("GET", "/api/v1/catalog/assets"): "viewer",
    ("POST", "/api/v1/catalog/search"): "viewer",
    ("GET", "/api/v1/catalog/assets/{name}"): "viewer",
    ("GET", "/api/v1/catalog/tags"): "viewer",
    ("GET", "/api/v1/catalog/stats"): "viewer",
    ("POST", "/api/v1/session"): "viewer",
    ("DELETE", "/api/v1/session"): "viewer",
    ("GET", "/api/v1/catalog/assets/{name}/lineage"): "auditor",
    ("GET", "/api/v1/catalog/assets/{name}/lineage/diff"): "auditor",
    ("GET", "/api/v1/runs"): "auditor",
    ("GET", "/api/v1/runs/{run_id}"): "auditor",
    ("GET", "/api/v1/quality/results"): "auditor",
    ("GET", "/api/v1/audit"): "auditor",
    ("PUT", "/api/v1/catalog/assets/{name}/tags/{tag}"): "engineer",
    ("DELETE", "/api/v1/catalog/assets/{name}/tags/{tag}"): "engineer",
    ("POST", "/api/v1/lineage"): "engineer",
    ("POST", "/api/v1/data/bulk/insert"): "engineer",
    ("POST", "/api/v1/data/bulk/upsert"): "engineer",
    ("POST", "/api/v1/data/bulk/update"): "engineer",
    ("POST", "/api/v1/data/bulk/delete"): "engineer",
    ("POST", "/api/v1/data/upload"): "engineer",
    ("GET", "/api/v1/keys"): "admin",
    ("POST", "/api/v1/keys"): "admin",
    ("DELETE", "/api/v1/keys/{key_id}"): "admin",
    ("POST", "/api/v1/queries"): "engineer",
    ("POST", "/api/v1/queries/explain"): "engineer",
    ("GET", "/api/v1/queries/history"): "engineer",
    ("GET", "/api/v1/queries/{statement_id}"): "engineer",
    ("GET", "/api/v1/queries/{statement_id}/result/chunks/{chunk_index}"): "engineer",
    ("POST", "/api/v1/queries/{statement_id}/cancel"): "engineer",
    ("DELETE", "/api/v1/queries/{statement_id}/cancel"): "engineer",
    ("GET", "/api/v1/data/schemas"): "viewer",
    ("GET", "/api/v1/data/tables"): "viewer",
    ("GET", "/api/v1/data/tables/{name}/schema"): "viewer",
    ("GET", "/api/v1/data/tables/{name}/history"): "viewer",
    ("GET", "/api/v1/data/tables/{name}/preview"): "viewer",
}
ROLES = ("viewer", "auditor", "engineer", "admin")


@pytest.fixture(scope="module")
def api(served):
    with httpx.Client(base_url=served.url, timeout=30) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"] == f"urn:neurolake:problem:{slug}" and body["status"] == status
    assert body["title"] and body["detail"] and body["request_id"] == response.headers["x-request-id"]
    for leak in LEAKS:
        assert leak not in response.text, (leak, response.text)
    return body


def test_probes_and_metrics(api, service_site):
    assert api.get("/health").json() == {"status": "ok"}
    assert api.get("/live").json() == {"status": "ok"}
    ready = api.get("/ready")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    always = {"catalog", "warehouse", "lineage_spool"}  # and spark once a statement has started it
    assert always <= set(checks) <= always | {"spark"}
    assert all(c["status"] == "ok" and c["latency_ms"] >= 0 for c in checks.values())
    api.get("/api/v1/catalog/assets", headers=service_site.headers("viewer"))
    text = api.get("/metrics").text
    assert 'neurolake_http_requests_total{method="GET",route="/api/v1/catalog/assets",status="200"}' in text
    assert "neurolake_http_request_duration_seconds_bucket" in text
    assert "neurolake_http_requests_in_flight" in text
    assert 'neurolake_job_runs_total{job_name="silver",status="success"}' in text  # the pipeline's own


def test_assets_list_filters_and_pages(api, service_site):
    viewer = service_site.headers("viewer")
    everything, token = [], None
    while True:
        page = api.get(
            "/api/v1/catalog/assets", params={"max_results": 4, "page_token": token}, headers=viewer
        )
        assert page.status_code == 200, page.text
        everything += [a["name"] for a in page.json()["assets"]]
        token = page.json()["next_page_token"]
        if token is None:
            break
    assert everything == sorted(everything) and len(everything) == len(set(everything))
    assert {"silver.orders", "gold.daily_revenue", "bronze.orders", "raw.orders"} <= set(everything)
    gold = api.get("/api/v1/catalog/assets", params={"layer": "gold"}, headers=viewer).json()["assets"]
    assert {a["name"] for a in gold} == {n for n in everything if n.startswith("gold.")}
    raw = api.get("/api/v1/catalog/assets", params={"tag": "raw"}, headers=viewer).json()["assets"]
    assert raw and all("raw" in a["tags"] for a in raw)
    owned = api.get("/api/v1/catalog/assets", params={"owner": "analytics"}, headers=viewer).json()["assets"]
    assert owned and all("analytics" in a["owner"] for a in owned)
    found = api.post("/api/v1/catalog/search", json={"text": "customer_id", "by": "column"}, headers=viewer)
    assert "silver.orders" in {a["name"] for a in found.json()["assets"]}


def test_asset_detail_versions_and_quality(api, service_site):
    detail = api.get("/api/v1/catalog/assets/silver.orders", headers=service_site.headers("viewer"))
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["layer"] == "silver" and body["owner"] and body["description"]
    assert {"order_id", "customer_id"} <= {c["name"] for c in body["columns"]}
    assert body["versions_count"] >= 2 and body["versions"][0]["run"] and body["rows"] is not None
    assert body["quality_checks"] > 0 and body["quality"]
    assert all(c["tags"] == [] for c in body["columns"])

    # PII columns carry their class and the policy conf/pii.yaml applies (silver: its bronze's)
    for table in ("bronze.customers", "silver.customers"):
        answer = api.get(f"/api/v1/catalog/assets/{table}", headers=service_site.headers("viewer"))
        tags = {c["name"]: c["tags"] for c in answer.json()["columns"]}
        assert tags["email"] == ["pii:email", "policy:hash"]
        assert tags["name"] == ["pii:person_name", "policy:tokenize"]
        assert tags["customer_id"] == [] and tags["country"] == []


def test_lineage_graph_in_marquez_shape_and_as_of(api, service_site):
    auditor = service_site.headers("auditor")
    response = api.get(
        "/api/v1/catalog/assets/gold.daily_revenue/lineage", params={"direction": "up"}, headers=auditor
    )
    assert response.status_code == 200, response.text
    body = response.json()
    nodes = {n["id"]: n for n in body["graph"]}
    assert (
        body["root"] in nodes
        and body["root"].startswith("dataset:")
        and body["root"].endswith(":gold.daily_revenue")
    )
    names = {n["data"]["name"] for n in nodes.values() if n["type"] == "DATASET"}
    assert {"silver.orders", "bronze.orders", "raw.orders"} <= names
    assert any(i.startswith("job:") and i.endswith(":silver") for i in nodes)
    for node in nodes.values():
        for edge in node["outEdges"]:
            assert edge["origin"] == node["id"] and edge in nodes[edge["destination"]]["inEdges"]
    assert body["truncated"] is False
    capped = api.get(
        "/api/v1/catalog/assets/gold.daily_revenue/lineage", params={"max_nodes": 3}, headers=auditor
    ).json()
    assert capped["truncated"] is True and len(capped["graph"]) == 3
    columns = api.get(
        "/api/v1/catalog/assets/gold.daily_revenue/lineage",
        params={"column": "revenue", "direction": "up"},
        headers=auditor,
    ).json()
    assert columns["root"].endswith(":gold.daily_revenue:revenue")
    assert all(n["type"] == "DATASET_FIELD" for n in columns["graph"]) and len(columns["graph"]) > 1
    # As of the end of the first night: the versions the second night wrote are not there yet.
    (_, results) = service_site.nightly
    first_end = results[0].run.ended_at.astimezone(UTC).isoformat()
    then = api.get(
        "/api/v1/catalog/assets/silver.orders/lineage", params={"as_of": first_end}, headers=auditor
    ).json()
    now = api.get("/api/v1/catalog/assets/silver.orders/lineage", headers=auditor).json()
    version = lambda g: next(n["data"]["version"] for n in g["graph"] if n["id"] == g["root"])  # noqa: E731
    assert version(then) != version(now)
    diff = api.get(
        "/api/v1/catalog/assets/silver.orders/lineage/diff",
        params={"from": first_end, "to": datetime.now(UTC).isoformat()},
        headers=auditor,
    ).json()
    assert any(v["dataset"] == "silver.orders" for v in diff["new_versions"])


def test_tags_stats_runs_quality_and_audit(api, service_site):
    engineer, auditor = service_site.headers("engineer"), service_site.headers("auditor")
    added = api.put("/api/v1/catalog/assets/gold.daily_revenue/tags/e2e-finance", headers=engineer)
    assert added.status_code == 200 and "e2e-finance" in added.json()["tags"]
    tags = api.get("/api/v1/catalog/tags", headers=engineer).json()["tags"]
    assert {"tag": "e2e-finance", "assets": 1} in tags
    removed = api.delete("/api/v1/catalog/assets/gold.daily_revenue/tags/e2e-finance", headers=engineer)
    assert removed.status_code == 200 and "e2e-finance" not in removed.json()["tags"]
    assert_problem(
        api.delete("/api/v1/catalog/assets/gold.daily_revenue/tags/e2e-finance", headers=engineer),
        404,
        "not-found",
    )

    stats = api.get("/api/v1/catalog/stats", headers=engineer).json()
    assert stats["assets_per_layer"]["silver"] >= 5 and sum(stats["runs_per_day"].values()) > 0
    assert set(stats["quarantined_rows_per_night"]) == {"2026-11-23", "2026-11-24"}

    runs = api.get("/api/v1/runs", params={"job": "silver"}, headers=auditor).json()["runs"]
    assert len(runs) == 2 and all(r["job"] == "silver" and r["state"] == "success" for r in runs)
    detail = api.get(f"/api/v1/runs/{runs[0]['run']}", headers=auditor).json()
    assert detail["inputs"] and detail["outputs"] and detail["parent"] and detail["metrics"]["rows_out"] > 0
    nightly = api.get(f"/api/v1/runs/{detail['parent']}", headers=auditor).json()
    assert runs[0]["run"] in {c["run"] for c in nightly["children"]}
    # other tests may add failed runs to the shared nightly's catalog: the filter must return exactly those
    every_run = api.get("/api/v1/runs", params={"max_results": 500}, headers=auditor).json()["runs"]
    failed = api.get("/api/v1/runs", params={"status": "failed", "max_results": 500}, headers=auditor).json()
    assert {r["run"] for r in failed["runs"]} == {r["run"] for r in every_run if r["state"] == "failed"}
    assert any(r["state"] == "success" for r in every_run), "the filter is not checked on an empty catalog"

    quality = api.get(
        "/api/v1/quality/results", params={"date": "2026-11-24", "table": "silver.orders"}, headers=auditor
    )
    assert quality.status_code == 200, quality.text
    results = quality.json()["results"]
    assert results and all(r["dataset"] == "silver.orders" and r["run_date"] == "2026-11-24" for r in results)

    audit = api.get("/api/v1/audit", params={"action": "tag.add"}, headers=auditor).json()["records"]
    record = next(
        r for r in audit if r["target"] == "gold.daily_revenue" and r["parameters"]["tag"] == "e2e-finance"
    )
    assert record["actor"] == "engineer-default" and record["status"] == 200 and record["role"] == "engineer"
    assert len(record["trace_id"]) == 32 and record["request_id"] and record["method"] == "PUT"


def _request_for(api, method: str, path: str, run_id: str) -> tuple[str, str, dict]:
    values = {
        "name": "gold.daily_revenue",
        "tag": "role-table",
        "run_id": run_id,
        "key_id": "0000000000000000",
        "statement_id": "0" * 32,
        "chunk_index": 0,
    }
    url = path.format(**values)
    kwargs: dict = {}
    if path.endswith("/diff"):
        kwargs["params"] = {"from": "2026-01-01", "to": "2030-01-01"}
    if path == "/api/v1/catalog/search":
        kwargs["json"] = {"text": "orders"}
    if path == "/api/v1/keys" and method == "POST":
        kwargs["json"] = {"name": "role-table", "role": "viewer"}
    if path == "/api/v1/lineage":
        kwargs["json"] = {"not": "an event"}
    if path in ("/api/v1/queries", "/api/v1/queries/explain"):
        kwargs["json"] = (
            {"statement": "VALUES (1)", "wait_timeout": "0s"}
            if path.endswith("queries")
            else {"statement": "VALUES (1)"}
        )
    return method, url, kwargs


def test_route_role_table_is_enforced_on_every_route(api, service_site):
    spec = api.get("/api/v1/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert routes == set(ROUTE_ROLES), routes ^ set(ROUTE_ROLES)
    run_id = api.get("/api/v1/runs", headers=service_site.headers("auditor")).json()["runs"][0]["run"]
    for (method, path), least in sorted(ROUTE_ROLES.items()):
        method, url, kwargs = _request_for(api, method, path, run_id)
        anonymous = httpx.request(method, api.base_url.join(url), timeout=30, **kwargs)
        if least is None:
            assert anonymous.status_code == 200, (path, anonymous.text)
            continue
        assert_problem(anonymous, 401, "unauthenticated")
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        for role in ROLES:
            answer = httpx.request(
                method, api.base_url.join(url), headers=service_site.headers(role), timeout=30, **kwargs
            )
            if ROLES.index(role) < ROLES.index(least):
                assert_problem(answer, 403, "forbidden")
            else:
                assert answer.status_code not in (401, 403) and answer.status_code < 500, (
                    method,
                    path,
                    role,
                    answer.text,
                )
    refused = api.get(
        "/api/v1/audit",
        params={"action": "auth.forbidden", "max_results": 500},
        headers=service_site.headers("admin"),
    )
    needed = {(r["actor"], r["route"], r["parameters"]["required_role"]) for r in refused.json()["records"]}
    assert ("viewer-default", "/api/v1/keys", "admin") in needed
    assert ("engineer-default", "/api/v1/catalog/assets/{name}/tags/{tag}", "engineer") not in needed


def test_tenants_see_only_their_tables(api, service_site):
    finance = service_site.headers("admin", "finance")
    names = {a["name"] for a in api.get("/api/v1/catalog/assets", headers=finance).json()["assets"]}
    assert names == {"gold.daily_revenue", "gold.customer_ltv"}
    hidden = api.get("/api/v1/catalog/assets/silver.orders", headers=finance)
    missing = api.get("/api/v1/catalog/assets/silver.nothing", headers=finance)
    for answer in (hidden, missing):
        body = assert_problem(answer, 404, "not-found")
        assert "silver.orders" not in body["suggestions"]
    assert hidden.json()["detail"] == "unknown table 'silver.orders'"
    close = assert_problem(
        api.get("/api/v1/catalog/assets/gold.daily_revenu", headers=finance), 404, "not-found"
    )
    assert close["suggestions"] == ["gold.daily_revenue"]
    for route in ("/lineage", "/tags/x"):
        method = "PUT" if route.startswith("/tags") else "GET"
        assert_problem(
            api.request(method, f"/api/v1/catalog/assets/silver.orders{route}", headers=finance),
            404,
            "not-found",
        )
    graph = api.get("/api/v1/catalog/assets/gold.daily_revenue/lineage", headers=finance).json()["graph"]
    datasets = {n["data"]["name"] for n in graph if n["type"] == "DATASET"}
    assert "gold.daily_revenue" in datasets and datasets <= {"gold.daily_revenue", "gold.customer_ltv"}
    assert not any("silver" in json.dumps(n) for n in graph if n["type"] == "DATASET")
    found = api.post("/api/v1/catalog/search", json={"text": "orders"}, headers=finance).json()["assets"]
    assert all(a["name"].startswith("gold.") for a in found)
    runs = api.get("/api/v1/runs", headers=finance).json()["runs"]
    assert runs and {r["job"] for r in runs} == {"gold"}
    ingest_run = api.get(
        "/api/v1/runs", params={"job": "ingest"}, headers=service_site.headers("auditor")
    ).json()["runs"][0]
    assert_problem(api.get(f"/api/v1/runs/{ingest_run['run']}", headers=finance), 404, "not-found")
    gold_run = api.get(f"/api/v1/runs/{runs[0]['run']}", headers=finance).json()
    assert all(i["dataset"].startswith("gold.") for i in gold_run["inputs"] + gold_run["outputs"])
    quality = api.get("/api/v1/quality/results", headers=finance).json()["results"]
    assert all(r["dataset"].startswith("gold.") for r in quality)
    stats = api.get("/api/v1/catalog/stats", headers=finance).json()
    assert set(stats["assets_per_layer"]) == {"gold"} and stats["runs_per_day"] is None
    audit = api.get("/api/v1/audit", headers=finance).json()["records"]
    assert all(r["tenant"] == "finance" for r in audit)
    event = _event("finance-job", inputs=["silver.orders"], outputs=["gold.finance_extract"])
    assert_problem(
        api.post("/api/v1/lineage", json=event, headers=service_site.headers("engineer", "finance")),
        403,
        "forbidden",
    )


def test_security_headers_request_ids_hosts_cors_and_gzip(api, service_site):
    viewer = service_site.headers("viewer")
    for answer in (
        api.get("/api/v1/catalog/assets", headers=viewer),
        api.get("/api/v1/nope"),
        api.get("/health"),
    ):
        headers = answer.headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer" and "camera=()" in headers["permissions-policy"]
        assert "server" not in headers and "strict-transport-security" not in headers  # not behind TLS here
    assert api.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    hostile = api.get("/health", headers={"X-Request-ID": 'x" onerror=1 <script>'}).headers["x-request-id"]
    assert len(hostile) == 32 and hostile.isalnum()
    assert_problem(api.get("/health", headers={"Host": "evil.example"}), 400, "untrusted-host")
    preflight = api.options(
        "/api/v1/catalog/assets",
        headers={"Origin": "http://console.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers["access-control-allow-origin"] == "http://console.example"
    other = api.get("/api/v1/catalog/assets", headers={**viewer, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    big = httpx.get(f"{api.base_url}/api/v1/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip" and big.json()["openapi"].startswith("3.")


def test_docs_are_self_hosted(api):
    page = api.get("/docs")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text and "<script>" not in page.text
    for asset in (
        "/static/swagger-ui/swagger-ui-bundle.js",
        "/static/swagger-ui/swagger-ui.css",
        "/static/docs-init.js",
    ):
        assert api.get(asset).status_code == 200, asset
    assert api.get("/static/docs-init.js").text.count("/api/v1/openapi.json") == 1


def test_bad_input_gets_a_problem_never_a_crash(api, service_site):
    viewer, engineer = service_site.headers("viewer"), service_site.headers("engineer")
    assert_problem(
        api.post(
            "/api/v1/catalog/search",
            content=b"{not json",
            headers={**viewer, "Content-Type": "application/json"},
        ),
        400,
        "malformed-json",
    )
    assert_problem(
        api.post("/api/v1/catalog/search", json={"text": ""}, headers=viewer), 422, "invalid-parameter"
    )
    assert_problem(
        api.post("/api/v1/lineage", content=b"x" * 70000, headers=engineer), 413, "payload-too-large"
    )

    def chunks():
        for _ in range(100):
            yield b"x" * 1000

    streamed = api.post("/api/v1/lineage", content=chunks(), headers=engineer)  # no Content-Length
    assert_problem(streamed, 413, "payload-too-large")
    for name in (
        "../../etc/passwd",
        "silver.orders'; DROP TABLE datasets;--",
        "%25",
        "a" * 900,
        "é/∂/\u202e",
    ):
        answer = api.get(f"/api/v1/catalog/assets/{name}", headers=viewer)
        assert_problem(answer, 404, "not-found")
    assert_problem(api.get("/api/v1/catalog/assets/" + "a" * 1001, headers=viewer), 422, "invalid-parameter")
    for name in ("bad%01name", "x%00y"):
        assert_problem(api.get(f"/api/v1/catalog/assets/{name}", headers=viewer), 422, "invalid-parameter")
    near = assert_problem(api.get("/api/v1/catalog/assets/silver.ordres", headers=viewer), 404, "not-found")
    assert "did you mean silver.orders" in near["detail"] and "silver.orders" in near["suggestions"]
    for text in ("'", '"', "%", "100%", "o'rders", "%' OR '1'='1", "\\"):
        found = api.post("/api/v1/catalog/search", json={"text": text}, headers=viewer)
        assert found.status_code == 200 and found.json()["assets"] == [], text
    underscore = api.post("/api/v1/catalog/search", json={"text": "_", "by": "name"}, headers=viewer).json()
    names = [a["name"] for a in underscore["assets"]]
    assert "silver.order_items" in names and all("_" in n for n in names)  # "_" is no wildcard
    assert_problem(
        api.get("/api/v1/catalog/assets", params={"page_token": "forged!"}, headers=viewer),
        422,
        "invalid-parameter",
    )
    assert_problem(
        api.get("/api/v1/catalog/assets", params={"max_results": 0}, headers=viewer), 422, "invalid-parameter"
    )
    assert_problem(
        api.get("/api/v1/runs/not-a-run", headers=service_site.headers("auditor")), 404, "not-found"
    )
    auditor = service_site.headers("auditor")
    late = api.get("/api/v1/runs", params={"since": "2999-01-01"}, headers=auditor)
    assert late.status_code == 200 and late.json()["runs"] == []
    for params in ({"as_of": "yesterday"}, {"as_of": "2026-13-45"}):
        bad_time = api.get("/api/v1/catalog/assets/silver.orders/lineage", params=params, headers=auditor)
        assert "as_of" in assert_problem(bad_time, 422, "invalid-parameter")["detail"]
    lineage = "/api/v1/catalog/assets/silver.orders/lineage"
    before_any = api.get(lineage, params={"as_of": "2000-01-01"}, headers=auditor).json()
    assert [n["id"] for n in before_any["graph"]] == [before_any["root"]]
    (_, results) = service_site.nightly
    day = results[-1].run.ended_at.astimezone(UTC).date().isoformat()
    that_day = api.get(lineage, params={"as_of": day}, headers=auditor).json()
    assert len(that_day["graph"]) > 1  # a date alone means the end of that day, as in the CLI
    assert_problem(
        api.get(
            "/api/v1/catalog/assets/silver.orders/lineage",
            params={"depth": 0},
            headers=viewer | service_site.headers("auditor"),
        ),
        422,
        "invalid-parameter",
    )
    assert_problem(
        api.get("/api/v1/catalog/assets", headers={"Authorization": "Basic dXNlcjpwYXNz"}),
        401,
        "unauthenticated",
    )
    fake = "nlk_0123456789abcdef_" + "A" * 43
    assert_problem(
        api.get("/api/v1/catalog/assets", headers={"Authorization": f"Bearer {fake}"}), 401, "unauthenticated"
    )
    assert_problem(api.patch("/api/v1/catalog/assets", headers=viewer), 405, "method-not-allowed")
    event = _event("bad-job")
    event["run"]["runId"] = "not-a-uuid"
    invalid = assert_problem(api.post("/api/v1/lineage", json=event, headers=engineer), 422, "invalid-event")
    assert invalid["errors"][0]["location"] == "run/runId"
    failures = api.get(
        "/api/v1/audit", params={"action": "auth.failure"}, headers=service_site.headers("auditor")
    ).json()
    assert failures["records"] and all(fake not in json.dumps(r) for r in failures["records"])


def test_sessions_need_the_csrf_token_for_writes(api, service_site):
    opened = httpx.post(f"{api.base_url}/api/v1/session", headers=service_site.headers("engineer"))
    assert opened.status_code == 200, opened.text
    cookie_header = opened.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookie_header if c.startswith("neurolake_session="))
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie.replace("Strict", "strict")
    csrf = opened.json()["csrf_token"]
    with httpx.Client(base_url=api.base_url, cookies=opened.cookies, timeout=30) as browser:
        assert browser.get("/api/v1/catalog/assets/gold.daily_revenue").status_code == 200
        path = "/api/v1/catalog/assets/gold.daily_revenue/tags/e2e-session"
        assert_problem(browser.put(path), 403, "csrf-failed")
        assert_problem(browser.put(path, headers={"X-CSRF-Token": "wrong"}), 403, "csrf-failed")
        assert browser.put(path, headers={"X-CSRF-Token": csrf}).status_code == 200
        assert browser.delete(path, headers={"X-CSRF-Token": csrf}).status_code == 200
        assert browser.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    with httpx.Client(base_url=api.base_url, cookies=opened.cookies, timeout=30) as stale:  # the old cookie
        assert_problem(stale.get("/api/v1/catalog/assets"), 401, "unauthenticated")
    # A bearer request needs no CSRF token: it carries no ambient credential.
    assert api.put(path, headers=service_site.headers("engineer")).status_code == 200
    assert api.delete(path, headers=service_site.headers("engineer")).status_code == 200
    csrf_refusals = api.get(
        "/api/v1/audit", params={"action": "auth.csrf_failure"}, headers=service_site.headers("auditor")
    )
    assert len(csrf_refusals.json()["records"]) >= 2


def test_keys_from_the_cli_and_the_api(api, service_site):
    created = neurolake(
        service_site.conf, "keys", "create", "--name", "e2e-cli", "--role", "auditor", "--expires-days", "2"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("nlk_") and "store it now" in created.stdout
    mine = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/runs", headers=mine).status_code == 200
    listed = neurolake(service_site.conf, "keys", "list")
    assert "e2e-cli" in listed.stdout and token not in listed.stdout and "auditor" in listed.stdout
    assert neurolake(service_site.conf, "keys", "revoke", "e2e-cli").returncode == 0
    assert_problem(api.get("/api/v1/runs", headers=mine), 401, "unauthenticated")
    bad = neurolake(
        service_site.conf, "keys", "create", "--name", "x", "--role", "viewer", "--tenant", "nope"
    )
    assert bad.returncode == 2 and bad.stderr.startswith("neurolake: error: unknown tenant 'nope'")
    broken = service_site.folder / "broken-oidc.yaml"
    broken.write_text(service_site.conf.read_text().replace("jwks.json", "missing-jwks.json"))
    refused = neurolake(broken, "serve", "--port", "1")
    assert refused.returncode == 2 and refused.stderr.startswith("neurolake: error: service.oidc.jwks_file")
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    audit = neurolake(service_site.conf, "audit", "list", "--action", "key.revoke")
    assert audit.returncode == 0 and "key.revoke" in audit.stdout and "cli:" in audit.stdout

    admin = service_site.headers("admin")
    made = api.post("/api/v1/keys", json={"name": "e2e-api", "role": "viewer"}, headers=admin)
    assert made.status_code == 201 and made.json()["token"].startswith("nlk_")
    listing = api.get("/api/v1/keys", headers=admin)
    assert "token" not in listing.text and made.json()["token"] not in listing.text
    assert api.delete(f"/api/v1/keys/{made.json()['key_id']}", headers=admin).json()["active"] is False
    records = api.get("/api/v1/audit", params={"action": "key.create"}, headers=admin).json()["records"]
    assert any(r["target"] == made.json()["key_id"] for r in records)
    assert made.json()["token"] not in json.dumps(records)


def _event(job: str, inputs=(), outputs=(), event_type="COMPLETE", run_id=None) -> dict:
    namespace = "file:///e2e"
    dataset = lambda name: {"namespace": namespace, "name": name, "facets": {}}  # noqa: E731
    return {
        "eventType": event_type,
        "eventTime": datetime.now(UTC).isoformat(),
        "producer": "https://example.invalid/e2e",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id or str(uuid.uuid4())},
        "job": {"namespace": "e2e", "name": job},
        "inputs": [dataset(n) for n in inputs],
        "outputs": [dataset(n) for n in outputs],
    }


def test_openlineage_http_transport_events_reach_the_lineage_graph(api, service_site):
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

    transport = HttpTransport(
        HttpConfig(
            url=str(api.base_url),
            endpoint="api/v1/lineage",
            auth=ApiKeyTokenProvider({"apiKey": service_site.keys[("engineer", "default")]}),
        )
    )
    client = OpenLineageClient(transport=transport)
    run = Run(runId=str(uuid.uuid4()))
    job = Job(namespace="partner", name="partner_extract")
    inputs = [InputDataset(namespace="file:///partner", name="partner.orders_feed")]
    outputs = [OutputDataset(namespace="file:///partner", name="partner.extract")]
    events = [
        RunEvent(
            eventType=state,
            eventTime=datetime.now(UTC).isoformat(),
            run=run,
            job=job,
            producer="https://example.invalid/partner",
            inputs=inputs,
            outputs=outputs,
        )
        for state in (RunState.START, RunState.COMPLETE)
    ]
    for event in events:
        client.emit(event)
    graph = api.get(
        "/api/v1/catalog/assets/partner.extract/lineage",
        params={"direction": "up"},
        headers=service_site.headers("auditor"),
    )
    assert graph.status_code == 200, graph.text
    ids = {n["id"] for n in graph.json()["graph"]}
    assert {"dataset:file:///partner:partner.orders_feed", "job:partner:partner_extract"} <= ids
    from openlineage.client.serde import Serde

    again = api.post(
        "/api/v1/lineage",
        content=Serde.to_json(events[1]),
        headers={**service_site.headers("engineer"), "Content-Type": "application/json"},
    )
    assert again.status_code == 200 and again.json()["stored"] is False

    def audited() -> int:
        records = api.get(
            "/api/v1/audit", params={"action": "lineage.ingest"}, headers=service_site.headers("auditor")
        ).json()["records"]
        return sum(r["parameters"]["run_id"] == run.runId for r in records)

    # the audit record is written once the answer has been sent: wait for the last one (bounded)
    deadline = time.monotonic() + 30
    while audited() < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert audited() == 3


def _jwt(key, **claims) -> str:
    import jwt

    now = int(datetime.now(UTC).timestamp())
    body = {
        "iss": "https://issuer.example.invalid",
        "aud": "neurolake",
        "sub": "alice@example.invalid",
        "exp": now + 300,
        "iat": now,
        "neurolake_role": "auditor",
        "neurolake_tenant": "finance",
        **claims,
    }
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None}, key, algorithm="RS256", headers={"kid": "e2e"}
    )


def test_oidc_tokens_carry_role_and_tenant(api, service_site):
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = service_site.signing_key
    good = {"Authorization": f"Bearer {_jwt(key)}"}
    runs = api.get("/api/v1/runs", headers=good)
    assert runs.status_code == 200 and {r["job"] for r in runs.json()["runs"]} == {"gold"}  # tenant finance
    assert_problem(api.get("/api/v1/keys", headers=good), 403, "forbidden")  # role auditor
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for token in (
        _jwt(key, aud="someone-else"),
        _jwt(key, iss="https://other.example.invalid"),
        _jwt(key, exp=int(datetime.now(UTC).timestamp()) - 3600),
        _jwt(key, neurolake_role="root"),
        _jwt(key, neurolake_tenant="nope"),
        _jwt(key, sub=None),
        _jwt(stranger),
        _jwt(key)[:-4] + "AAAA",
    ):
        assert_problem(
            api.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}"}), 401, "unauthenticated"
        )
    unsigned = _jwt(key).split(".")
    import base64

    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"e2e"}').rstrip(b"=").decode()
    assert_problem(
        api.get("/api/v1/runs", headers={"Authorization": f"Bearer {header}.{unsigned[1]}."}),
        401,
        "unauthenticated",
    )
    refused = api.get(
        "/api/v1/audit", params={"action": "auth.failure"}, headers=service_site.headers("auditor")
    ).json()
    assert any("JWT" in (r["parameters"] or {}).get("reason", "") for r in refused["records"])
