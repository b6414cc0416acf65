"""The web console in a real headless Chromium against the shared ``neurolake serve`` on a nightly's catalog.

Each test signs in through the sign-in form with a key of the role it needs. Every page gets a
screenshot in the ``screenshots`` folder (printed at the start) and an accessibility check with
axe-core (vendored in ``tests/e2e/vendor/axe-core``, MPL-2.0) that must report no serious or
critical violation.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from neurolake_spark.catalog.render import drawable
from neurolake_spark.catalog.store import CatalogStore

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
ROOT_TABLE = "gold.daily_revenue"
# The lineage test adds a job reading this table (a tenant seeing only gold.* must not see it: other
# modules share the server and check what that tenant sees).
LINEAGE_TABLE = "silver.orders"
NEW_OUTPUT = "report.orders_by_status"


@pytest.fixture
def browser_for(chromium, served, service_site):
    """``browser_for(role, tenant)``: a signed-in page (its own cookies); closed after the test."""
    contexts = []

    def open_page(role: str | None, tenant: str = "default", bypass_csp: bool = False):
        context = chromium.new_context(
            base_url=served.url, viewport={"width": 1400, "height": 900}, bypass_csp=bypass_csp
        )
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        if role is not None:
            sign_in(page, service_site.keys[(role, tenant)])
        return page

    yield open_page
    for context in contexts:
        context.close()


def sign_in(page, key: str, next_page: str = "/catalog") -> None:
    page.goto(f"/signin?next={next_page}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{next_page}")


def shoot(page, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations (the page's context must bypass the CSP to inject it)."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def _node_ids(page) -> set[str]:
    return set(page.eval_on_selector_all("#canvas .node", "nodes => nodes.map(n => n.dataset.id)"))


def _expected_nodes(service_site, table: str, as_of=None) -> set[str]:
    """What the library's lineage graph holds around ``table``, 3 job steps each way, as the CLI draws it."""
    store = CatalogStore.from_settings(service_site.settings)
    try:
        return set(drawable(store.graph().lineage(table, "both", 3, as_of)).nodes)
    finally:
        store.close()


def test_sign_in_and_out_with_a_session_cookie(browser_for, service_site, screenshots):
    page = browser_for(None)
    page.goto("/catalog")
    assert "/signin" in page.url  # not signed in: sent to the sign-in form
    shoot(page, screenshots, "signin")
    page.get_by_label("API key").fill("nlk_not_a_real_key")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "That key or token was not accepted."
    page.get_by_label("API key").fill(service_site.keys[("auditor", "default")])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/catalog")
    cookie = next(c for c in page.context.cookies() if c["name"] == "neurolake_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "auditor-default" in page.locator(".who").inner_text()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin?signed_out=1")
    assert "You are signed out" in page.inner_text("main")
    page.goto("/runs")
    assert "/signin" in page.url  # the session ended on the server too
    assert page.errors == []


def test_search_and_open_a_table_and_a_missing_one(browser_for, screenshots):
    page = browser_for("viewer")
    csp = page.goto("/catalog").headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp and "unsafe-inline" not in csp
    shoot(page, screenshots, "catalog")
    page.get_by_label("Search", exact=True).fill("revenue")
    page.get_by_label("In", exact=True).select_option("name")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.data tbody tr")
    assert rows.count() >= 1
    assert all("revenue" in name for name in page.locator("table.data tbody th a").all_inner_texts())
    page.get_by_role("link", name=ROOT_TABLE, exact=True).click()
    page.wait_for_url(re.compile(rf"/tables/{ROOT_TABLE}(\?|$)"))
    assert page.locator("h1").inner_text() == ROOT_TABLE
    assert page.locator("section[aria-labelledby=schema-title] tbody tr").count() > 1
    assert page.locator("section[aria-labelledby=versions-title] tbody tr").count() >= 2  # two nights
    assert page.locator("svg.chart polyline").count() == 1
    shoot(page, screenshots, "table")
    response = page.goto("/tables/gold.daily_revenu")
    assert response.status == 404
    assert "unknown table 'gold.daily_revenu'" in page.get_by_role("alert").inner_text()
    page.get_by_role("link", name=ROOT_TABLE).click()  # the suggestion
    page.wait_for_url(re.compile(rf"/tables/{ROOT_TABLE}$"))
    page.goto("/catalog?q=no-such-thing-anywhere")
    assert "No table matches your search" in page.inner_text("main")
    assert page.errors == []


def _post_event(served, service_site, job: str, inputs: list[str], outputs: list[str]) -> None:
    namespace = httpx.get(
        f"{served.url}/api/v1/catalog/assets/{inputs[0]}", headers=service_site.headers("viewer")
    ).json()["namespace"]
    run_id = str(uuid.uuid4())
    for state in ("START", "COMPLETE"):
        event = {
            "eventType": state,
            "eventTime": datetime.now(UTC).isoformat(),
            "producer": "https://example.invalid/console-e2e",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": run_id},
            "job": {"namespace": "console-e2e", "name": job},
            "inputs": [{"namespace": namespace, "name": n} for n in inputs],
            "outputs": [{"namespace": namespace, "name": n} for n in outputs],
        }
        posted = httpx.post(
            f"{served.url}/api/v1/lineage", json=event, headers=service_site.headers("engineer")
        )
        assert posted.status_code == 201, posted.text


def test_lineage_draws_every_node_as_of_a_time_and_marks_a_diff(
    browser_for, served, service_site, screenshots
):
    page = browser_for("auditor")
    page.goto(f"/lineage/{ROOT_TABLE}")
    page.wait_for_selector("body[data-ready=true]")
    assert _node_ids(page) == _expected_nodes(service_site, ROOT_TABLE)
    shoot(page, screenshots, "lineage")  # the README's picture (docs/images/console-lineage.png)
    before = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    _post_event(served, service_site, "console_report", [LINEAGE_TABLE], [NEW_OUTPUT])
    page.goto(f"/lineage/{LINEAGE_TABLE}")
    page.wait_for_selector("body[data-ready=true]")
    now_nodes = _node_ids(page)
    assert now_nodes == _expected_nodes(service_site, LINEAGE_TABLE)
    assert NEW_OUTPUT in page.locator("#canvas .node title").all_text_contents()
    page.wait_for_selector("#node-details h2")
    assert page.locator("#node-details h2").inner_text() == LINEAGE_TABLE  # the root's details
    shoot(page, screenshots, "lineage-silver")

    stamp = before.strftime("%Y-%m-%dT%H:%M:%S")
    page.get_by_label("As of (UTC)").fill(stamp)
    page.get_by_role("button", name="Draw").click()
    page.wait_for_selector("body[data-ready=true]")
    then_nodes = _node_ids(page)
    assert then_nodes == _expected_nodes(service_site, LINEAGE_TABLE, before.replace(tzinfo=None))
    assert then_nodes < now_nodes and NEW_OUTPUT not in page.inner_text("#canvas")
    assert f"as_of={stamp.replace(':', '%3A')}" in page.url
    shoot(page, screenshots, "lineage-as-of")

    page.get_by_label("As of (UTC)").fill("")
    page.get_by_label("Compare with (UTC)").fill(stamp)
    page.get_by_role("button", name="Draw").click()
    page.wait_for_selector("body[data-ready=true]")
    added = page.locator("#canvas path.edge.added")
    assert added.count() == 2  # silver.orders -> the new job -> its output
    assert all("console_report" in t for t in added.locator("title").all_text_contents())
    assert page.locator("#canvas path.edge.removed").count() == 0
    assert "2 link(s) added, 0 removed" in page.inner_text("#graph-summary")
    shoot(page, screenshots, "lineage-diff")

    page.get_by_role("button", name="Zoom in").click()
    job = page.locator("#canvas .node.job").first
    job.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#node-details h2:has-text('Job')")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export SVG").click()
    assert download.value.suggested_filename.endswith(".svg")
    svg = Path(download.value.path()).read_text()
    assert svg.startswith("<svg") and "edge added" in svg and "<style>" in svg
    with page.expect_download() as report:
        page.get_by_role("link", name="Export HTML report").click()
    html = Path(report.value.path()).read_text()
    assert 'id="lineage-data"' in html and NEW_OUTPUT in html
    assert page.errors == []


def test_lineage_page_without_javascript_shows_the_drawing(chromium, served, service_site):
    context = chromium.new_context(base_url=served.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, service_site.keys[("auditor", "default")], f"/lineage/{ROOT_TABLE}")
        assert _node_ids(page) == _expected_nodes(service_site, ROOT_TABLE)
        assert page.locator("#node-details h2").inner_text() == ROOT_TABLE
        page.get_by_role("link", name="+1 step upstream").click()
        assert "up=4" in page.url and page.get_by_label("Steps upstream").input_value() == "4"
    finally:
        context.close()


def test_a_form_without_its_csrf_token_is_refused(browser_for, served, service_site):
    page = browser_for("engineer")
    page.goto(f"/tables/{ROOT_TABLE}")
    forged = page.request.post(
        f"/tables/{ROOT_TABLE}/tags", form={"tag": "forged"}, max_redirects=0, fail_on_status_code=False
    )
    assert forged.status == 403 and "security token" in forged.text()
    page.get_by_label("New tag").fill("console-e2e")
    page.get_by_role("button", name="Add tag").click()
    page.wait_for_selector(".tags .tag:text-is('console-e2e')")
    page.get_by_role("button", name="Remove tag console-e2e").click()
    page.wait_for_load_state()
    assert "console-e2e" not in page.locator("#tags").inner_text()
    assert "forged" not in page.locator("#tags").inner_text()
    audit = httpx.get(
        f"{served.url}/api/v1/audit",
        params={"action": "auth.csrf_failure"},
        headers=service_site.headers("admin"),
    ).json()["records"]
    assert any(r["route"] == "/tables/{name}/tags" for r in audit)
    tagged = httpx.get(
        f"{served.url}/api/v1/audit", params={"action": "tag.add"}, headers=service_site.headers("admin")
    ).json()["records"]
    assert any(r["target"] == ROOT_TABLE and r["parameters"]["tag"] == "console-e2e" for r in tagged)


def test_a_viewer_sees_neither_the_query_page_nor_another_tenants_table(browser_for):
    page = browser_for("viewer")
    assert page.get_by_role("link", name="Query").count() == 0
    response = page.goto("/query")
    assert response.status == 403 and "needs the engineer role" in page.get_by_role("alert").inner_text()
    finance = browser_for("viewer", "finance")
    response = finance.goto("/tables/silver.orders")
    assert response.status == 404  # another tenant's table answers as one that does not exist
    assert all(name.startswith("gold.") for name in finance.locator(".suggestions a").all_inner_texts())
    assert finance.goto(f"/tables/{ROOT_TABLE}").status == 200
    finance.goto("/catalog")
    names = finance.locator("table.data tbody th a").all_inner_texts()
    assert names and all(name.startswith("gold.") for name in names)


def test_runs_quality_and_audit_pages(browser_for, screenshots):
    page = browser_for("admin")
    page.goto("/runs")
    assert page.locator("table.data tbody tr").count() > 0
    shoot(page, screenshots, "runs")
    page.goto("/runs?job=nightly")
    page.locator("table.data tbody th a").first.click()
    page.wait_for_selector("h1:has-text('Run of nightly')")
    assert page.locator("svg.timeline g.bar").count() >= 4  # ingest, silver, gold, maintenance
    shoot(page, screenshots, "run")
    page.goto("/quality")
    assert page.locator("section.quality-group").count() > 0
    shoot(page, screenshots, "quality")
    page.goto("/audit?action=session.open")
    actions = page.locator("table.data tbody th").all_inner_texts()
    assert actions and set(actions) == {"session.open"}
    shoot(page, screenshots, "audit")
    assert page.errors == []


def test_query_runs_and_a_long_one_is_cancelled(browser_for, served, screenshots):
    page = browser_for("engineer")
    page.goto("/query")
    shoot(page, screenshots, "query")
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("body[data-query-state=SUCCEEDED]", timeout=120_000)
    assert page.locator("#result table tbody tr").count() > 0
    page.goto("/tables/silver.orders")
    page.wait_for_selector("#preview table tbody tr, #preview .empty, #preview .error", timeout=120_000)
    assert page.locator("#preview table tbody tr").count() > 0, page.locator("#preview").inner_text()
    page.goto("/query")
    page.get_by_label("Statement").fill(
        "SELECT count(*) FROM silver.orders a CROSS JOIN silver.orders b CROSS JOIN silver.orders c"
    )
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("body[data-query-state=RUNNING]", timeout=60_000)
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector("body[data-query-state=CANCELED]", timeout=60_000)
    assert "Canceled" in page.locator("#query-state").inner_text()


PAGES = [
    (None, "/signin"),
    ("admin", "/catalog"),
    ("admin", f"/tables/{ROOT_TABLE}"),
    ("admin", f"/lineage/{ROOT_TABLE}"),
    ("admin", "/lineage"),
    ("admin", "/runs"),
    ("admin", "/quality"),
    ("admin", "/audit"),
    ("admin", "/query"),
    ("admin", "/tables/gold.nope"),
]


def test_no_serious_accessibility_violations_on_any_page(browser_for):
    signed_in = browser_for("admin", bypass_csp=True)
    anonymous = browser_for(None, bypass_csp=True)
    for role, path in PAGES:
        page = signed_in if role else anonymous
        page.goto(path)
        if path.startswith("/lineage/"):
            page.wait_for_selector("#node-details h2")
        assert serious_violations(page) == [], path
    signed_in.goto("/runs")
    run = signed_in.locator("table.data tbody th a").first.get_attribute("href")
    signed_in.goto(run)
    assert serious_violations(signed_in) == [], run
