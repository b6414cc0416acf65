"""``neurolake lineage show --format html`` opened in a real headless Chromium.

The catalog is built from test events (no Spark); the page must work offline: after its
script ran, ``<body data-ready="true">`` is set, every node of the graph is in the DOM
and the details panel shows the table that was asked about.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from neurolake_spark.catalog.render import drawable
from neurolake_spark.catalog.store import CatalogStore

from ..conftest import LOCAL_CONF
from ..unit.test_catalog_events import nightly_events

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DAYS = [
    ("2026-11-23", datetime(2026, 11, 23, 2, tzinfo=UTC), False),
    ("2026-11-24", datetime(2026, 11, 24, 2, tzinfo=UTC), True),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("warehouse")
    store = CatalogStore(f"sqlite:///{folder / 'catalog.db'}")
    for number, (day, start, products) in enumerate(DAYS):
        for event in nightly_events(day, start, with_products=products, versions=2 * number)[0]:
            store.ingest(event)
    store.close()
    return folder


def neurolake(warehouse: Path, *argv: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter; fails the test if it started a SparkContext."""
    code = (
        "import sys; from neurolake_spark.cli import main; code = main(sys.argv[1:]); "
        "from pyspark import SparkContext; "
        "assert SparkContext._active_spark_context is None, 'Spark started'; "
        "sys.exit(code)"
    )
    command, sub, *rest = argv
    return subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            command,
            sub,
            "--conf-file",
            str(LOCAL_CONF),
            "--set",
            f"storage.warehouse={warehouse}",
            *rest,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def dump_dom(page: Path, profile: Path) -> str:
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize(
    "extra, query, root_title, absent",
    [
        ((), lambda g: g.lineage("gold.daily_revenue"), "gold.daily_revenue", None),
        (
            ("--as-of", "2026-11-23"),
            lambda g: g.lineage("gold.daily_revenue", as_of="2026-11-23"),
            "gold.daily_revenue",
            "silver.products",
        ),
        (
            ("--column", "revenue"),
            lambda g: g.column_lineage("gold.daily_revenue", "revenue"),
            "gold.daily_revenue.revenue",
            None,
        ),
    ],
)
def test_html_page_draws_the_graph_in_chromium(warehouse, tmp_path, extra, query, root_title, absent):
    page = tmp_path / "lineage.html"
    done = neurolake(
        warehouse, "lineage", "show", "gold.daily_revenue", "--format", "html", "-o", str(page), *extra
    )
    assert done.returncode == 0, done.stderr
    store = CatalogStore(f"sqlite:///{warehouse / 'catalog.db'}")
    expected = set(drawable(query(store.graph())).nodes)
    store.close()
    dom = dump_dom(page, tmp_path / "profile")
    assert re.search(r'<body[^>]*data-ready="true"', dom), "the page's script did not finish"
    drawn = set(re.findall(r'<g class="node[^"]*" data-id="([^"]+)"', dom))
    assert drawn == expected
    assert re.search(rf'<body[^>]*data-nodes="{len(expected)}"', dom)
    assert f"<h2>{root_title}</h2>" in dom
    if absent:
        assert absent not in dom


def test_read_only_commands_do_not_start_spark_and_fail_in_one_line(warehouse):
    done = neurolake(warehouse, "catalog", "show", "gold.daily_revenue")
    assert done.returncode == 0 and "gold.daily_revenue" in done.stdout, done.stderr
    bad = neurolake(warehouse, "lineage", "show", "gold.nope", "--format", "svg")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "unknown table 'gold.nope'" in bad.stderr
