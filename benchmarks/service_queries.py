"""Statements through the HTTP service: statements/s of a small aggregate on silver.orders at
concurrency 1 and 8 next to the same ``spark.sql`` in process, and the time to first row and
rows/s of a 1M-row result read in chunks, JSON and Arrow.

    .venv/bin/python benchmarks/service_queries.py                          # a new warehouse, scale 0.05
    .venv/bin/python benchmarks/service_queries.py --warehouse ../warehouse # the quickstart's
    .venv/bin/python benchmarks/service_queries.py --requests 10 --rows 100000   # a quick try

Without ``--warehouse`` a generated day goes through the nightly pipeline first. A real
``neurolake serve`` (one worker, rate limits and access log off, ``statement_concurrency`` 8)
runs on 127.0.0.1 on that warehouse and its catalog, with its own local Spark; the in-process
figures use this process's Spark on the same table. Target (issue 22): a statement costs at most
1.2x the in-process ``spark.sql`` plus 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyarrow as pa
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from service_load import in_process, load, percentile, serving  # noqa: E402

from neurolake_spark.catalog.store import CatalogStore  # noqa: E402
from neurolake_spark.config import load_settings  # noqa: E402
from neurolake_spark.service.keys import KeyStore  # noqa: E402

AGGREGATE = "SELECT status, count(*) AS orders FROM silver.orders GROUP BY status"
ARROW = "application/vnd.apache.arrow.stream"


def lakehouse(warehouse: str | None, scale: float, day: str):
    """The Lakehouse of ``warehouse``, or of a new one filled by one nightly run."""
    from neurolake_spark.lakehouse import Lakehouse

    if warehouse:
        return Lakehouse.open(ROOT / "conf" / "local.yaml", overrides={"storage.warehouse": warehouse})
    from neurolake_spark.demo_data import generate_day
    from neurolake_spark.pipeline import run_nightly

    folder = Path(tempfile.mkdtemp(prefix="service-queries-"))
    lh = Lakehouse.open(ROOT / "conf" / "local.yaml", overrides={"storage.warehouse": str(folder)})
    started = time.perf_counter()
    generate_day(lh.settings.raw_dir, day, scale=scale, seed=lh.settings.generator.seed)
    run_nightly(lh, day)
    print(f"nightly of {day} at scale {scale} in {time.perf_counter() - started:.0f} s ({folder})")
    return lh


def poll(client: httpx.Client, statement_id: str) -> dict:
    while True:
        body = client.get(f"/api/v1/queries/{statement_id}").json()
        if body["status"]["state"] not in ("PENDING", "RUNNING"):
            return body
        time.sleep(0.02)


def read_result(client: httpx.Client, statement: str, arrow: bool) -> tuple[float, float, int]:
    """(seconds to the first row, seconds in all, rows) of ``statement`` read chunk by chunk."""
    started = time.perf_counter()
    body = client.post("/api/v1/queries", json={"statement": statement, "wait_timeout": "0s"}).json()
    body = poll(client, body["statement_id"])
    if body["status"]["state"] != "SUCCEEDED":
        raise SystemExit(f"the statement ended {body['status']}")
    first = None
    rows = 0
    for chunk in body["manifest"]["chunks"]:
        url = f"/api/v1/queries/{body['statement_id']}/result/chunks/{chunk['chunk_index']}"
        if arrow:
            answer = client.get(url, headers={"Accept": ARROW})
            rows += pa.ipc.open_stream(answer.content).read_all().num_rows
        else:
            rows += len(client.get(url).json()["data_array"])
        first = first or time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", help="an existing warehouse with its catalog (default: a new one)")
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--day", default="2026-11-24")
    parser.add_argument("--requests", type=int, default=100, help="statements per concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large result")
    args = parser.parse_args(argv)

    lh = lakehouse(args.warehouse, args.scale, args.day)
    folder = Path(tempfile.mkdtemp(prefix="service-queries-serve-"))
    conf = folder / "serve.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "storage": {"warehouse": str(lh.settings.warehouse)},
                "catalog": {"url": lh.settings.catalog_url},
                "pipeline": str(lh.settings.pipeline),
                "service": {
                    "rate_limit_enabled": False,
                    "access_log": False,
                    "state_dir": str(folder / "state"),
                    "statement_concurrency": max(args.concurrency),
                    "statement_queue": 4 * max(args.concurrency),
                },
            }
        )
    )
    settings = load_settings(conf)
    store = CatalogStore.from_settings(settings)
    _, token = KeyStore(store, settings.service.tenants).create("service-queries", "engineer")
    store.close()
    headers = {"Authorization": f"Bearer {token}"}

    spark = lh.spark
    lh.table("silver.orders").createOrReplaceTempView("orders_in_process")
    local = AGGREGATE.replace("silver.orders", "orders_in_process")

    with serving(conf, folder) as url:
        with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
            started = time.perf_counter()
            warm = client.post("/api/v1/queries", json={"statement": AGGREGATE, "wait_timeout": "50s"}).json()
            print(f"first statement (starts the service's Spark): {time.perf_counter() - started:.1f} s")
            assert warm["status"]["state"] == "SUCCEEDED", warm

        request = {
            "method": "POST",
            "url": "/api/v1/queries",
            "json": {"statement": AGGREGATE, "wait_timeout": "50s"},
        }
        print(
            f"\n{'small aggregate on silver.orders':<36}{'conc.':>6}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'stmt/s':>9}{'errors':>8}"
        )
        for concurrency in args.concurrency:
            latencies, errors, seconds = asyncio.run(load(url, headers, request, args.requests, concurrency))
            print(
                f"{'through the service':<36}{concurrency:>6}{statistics.median(latencies):>9.1f}"
                f"{percentile(latencies, 0.99):>9.1f}{len(latencies) / seconds:>9.1f}{errors:>8}"
            )
        times = in_process(lambda: spark.sql(local).collect(), args.requests)
        print(
            f"{'spark.sql in process':<36}{1:>6}{statistics.median(times):>9.1f}"
            f"{percentile(times, 0.99):>9.1f}{1000 * len(times) / sum(times):>9.1f}{0:>8}"
        )

        large = f"SELECT id, id * 2 AS twice, CAST(id AS STRING) AS text FROM range({args.rows})"
        print(f"\n{f'{args.rows:,}-row result in chunks':<36}{'first row s':>12}{'total s':>9}{'rows/s':>12}")
        with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
            for label, arrow in (("JSON", False), ("Arrow IPC", True)):
                first, total, rows = read_result(client, large, arrow)
                assert rows == args.rows, (label, rows)
                print(f"{label:<36}{first:>12.2f}{total:>9.2f}{rows / total:>12,.0f}")
        started = time.perf_counter()
        rows = sum(1 for _ in spark.sql(large).toLocalIterator())
        seconds = time.perf_counter() - started
        print(f"{'toLocalIterator in process':<36}{'':>12}{seconds:>9.2f}{rows / seconds:>12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
