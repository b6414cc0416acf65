"""The console's lineage page on a 500-node graph, in a real Chromium against its own ``neurolake serve``.

The catalog is built from OpenLineage events (no Spark): 166 sources, each turned into an
intermediate table by its own job, all read by one job that writes ``big.report``, which makes
166 + 166 + 166 + 1 + 1 = 500 boxes. The page must draw all of them, and stay usable: zoom, a
click's details and a redraw as of another time each answer (bounds are generous, no timing is
compared).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.config import load_settings
from neurolake_spark.service.keys import KeyStore

from ..unit.test_catalog_events import ds, run_events
from .service import serve, write_service_conf
from .test_console import sign_in

SOURCES = 166
START = datetime(2026, 11, 24, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def large_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console-large")
    catalog = folder / "catalog.db"
    store = CatalogStore(f"sqlite:///{catalog}")
    for i in range(SOURCES):
        for event in run_events(
            f"prepare_{i}",
            start=START + timedelta(seconds=i),
            inputs=[ds(f"big.source_{i}")],
            outputs=[ds(f"big.part_{i}", version=0, rows=10)],
        ):
            store.ingest(event)
    for event in run_events(
        "report",
        start=START + timedelta(hours=1),
        inputs=[ds(f"big.part_{i}", version=0) for i in range(SOURCES)],
        outputs=[ds("big.report", version=0, rows=SOURCES)],
    ):
        store.ingest(event)
    store.close()
    (folder / "warehouse").mkdir()
    conf = write_service_conf(
        folder / "serve.yaml",
        folder / "warehouse",
        f"sqlite:///{catalog}",
        {"state_dir": str(folder / "state"), "graph_node_limit": 500, "rate_limit_enabled": False},
    )
    settings = load_settings(conf)
    keys = CatalogStore.from_settings(settings)
    token = KeyStore(keys, settings.service.tenants).create("large-auditor", "auditor", "default")[1]
    keys.close()
    with serve(conf, folder) as app:
        yield app, token


def test_lineage_page_stays_responsive_on_500_nodes(chromium, large_site, screenshots):
    app, token = large_site
    context = chromium.new_context(base_url=app.url, viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        started = time.monotonic()
        sign_in(page, token, "/lineage/big.report")
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        assert page.locator("#canvas .node").count() == 500
        assert time.monotonic() - started < 60  # generous: a hang or a runaway layout fails, not a slow box
        page.screenshot(path=str(screenshots / "lineage-500.png"))
        for _ in range(3):
            page.get_by_role("button", name="Zoom in").click()
        page.locator("#canvas .node.dataset").nth(10).focus()  # by keyboard: it may be outside the view
        page.keyboard.press("Enter")
        page.wait_for_selector("#node-details h2 a:has-text('big.')", timeout=30_000)
        page.get_by_label("As of (UTC)").fill("2026-11-24T02:30:00")  # before the report job ran
        page.get_by_role("button", name="Draw").click()
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        assert page.locator("#canvas .node").count() == 1  # only big.report itself, not yet built
        assert errors == []
    finally:
        context.close()
