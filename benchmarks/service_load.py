"""The HTTP service under load on loopback: p50 / p99 and requests/s of four queries, next to
the same library calls in process (what HTTP, auth and JSON add).

    .venv/bin/python benchmarks/service_load.py                        # 10,000 datasets, 1,000,000 events
    .venv/bin/python benchmarks/service_load.py --db /tmp/catbench/catalog.db   # catalog_graph.py's
    .venv/bin/python benchmarks/service_load.py --datasets 200 --events 2000 --requests 50   # a quick try

The catalog is the one ``benchmarks/catalog_graph.py`` generates (generated here when ``--db``
does not exist). A real ``neurolake serve`` (one worker, rate limits and access log off) runs
on 127.0.0.1; each query is sent ``--requests`` times at concurrency 1 and 16 (``--concurrency``)
after a warm-up, every answer must be 200. Queries: asset get, search by name, lineage upstream
at depth 10, the runs list (50 a page). Targets (issue 21): p99 under 50 ms for asset get and
under 150 ms for lineage depth 10 at concurrency 16, no errors.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import catalog_graph  # noqa: E402

from neurolake_spark.catalog import pages  # noqa: E402
from neurolake_spark.catalog.store import CatalogStore  # noqa: E402
from neurolake_spark.config import load_settings  # noqa: E402
from neurolake_spark.service.keys import KeyStore  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def load(
    url: str, headers: dict, request: dict, count: int, concurrency: int
) -> tuple[list[float], int, float]:
    """``count`` copies of ``request``, ``concurrency`` in flight: latencies (ms), errors, seconds."""
    latencies: list[float] = []
    errors = 0
    queue = asyncio.Queue()
    for _ in range(count):
        queue.put_nowait(None)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:
        for _ in range(min(concurrency, 5)):  # warm-up: connections, caches
            await client.request(**request)

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                queue.get_nowait()
                started = time.perf_counter()
                answer = await client.request(**request)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += answer.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - started


@contextmanager
def serving(conf: Path, folder: Path) -> Iterator[str]:
    """A ``neurolake serve`` on ``conf`` at a free loopback port (its log in ``folder``); its URL."""
    port = free_port()
    with open(folder / "serve.log", "wb") as log:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "neurolake"),
                "serve",
                "--conf-file",
                str(conf),
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"the server did not start; see {folder / 'serve.log'}") from None
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)


def in_process(action, count: int) -> list[float]:
    action()
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", help="catalog file (default: a new temporary one); reused if it exists")
    parser.add_argument("--requests", type=int, default=400, help="requests per query and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="service-load-"))
    path = Path(args.db) if args.db else folder / "catalog.db"
    if not path.exists():
        started = time.perf_counter()
        catalog_graph.generate(
            CatalogStore(f"sqlite:///{path}"), args.datasets, args.events, args.layers, args.seed
        )
        print(
            f"generated {args.datasets:,} datasets and {args.events:,} events "
            f"in {time.perf_counter() - started:.0f} s"
        )
    conf = folder / "serve.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "storage": {"warehouse": str(folder / "warehouse")},
                "catalog": {"url": f"sqlite:///{path}"},
                "pipeline": str(ROOT / "conf" / "pipeline.yaml"),
                "service": {
                    "rate_limit_enabled": False,
                    "access_log": False,
                    "state_dir": str(folder / "state"),
                },
            }
        )
    )
    settings = load_settings(conf)
    store = CatalogStore(settings.catalog_url, settings=settings, default_namespace=catalog_graph.NAMESPACE)
    _, token = KeyStore(store, settings.service.tenants).create("service-load", "auditor")
    headers = {"Authorization": f"Bearer {token}"}

    width = args.datasets // args.layers
    target = catalog_graph.name_of(args.layers - 1, 42 % width)
    search_text = target[: len(target) - 1]
    requests = [
        ("asset get", {"method": "GET", "url": f"/api/v1/catalog/assets/{target}"}),
        (
            "search by name",
            {"method": "POST", "url": "/api/v1/catalog/search", "json": {"text": search_text, "by": "name"}},
        ),
        (
            "lineage upstream, depth 10",
            {
                "method": "GET",
                "url": f"/api/v1/catalog/assets/{target}/lineage",
                "params": {"direction": "up", "depth": 10},
            },
        ),
        ("runs list (50)", {"method": "GET", "url": "/api/v1/runs", "params": {"max_results": 50}}),
    ]
    graph = store.graph()
    local = {
        "asset get": lambda: store.get_dataset(target),
        "search by name": lambda: pages.asset_page(store, pages.AssetQuery(text=search_text, by="name")),
        "lineage upstream, depth 10": lambda: graph.lineage(target, "upstream", 10),
        "runs list (50)": lambda: pages.run_page(store, limit=50),
    }

    try:
        with serving(conf, folder) as url:
            print(f"catalog {path} ({path.stat().st_size / 1e6:,.0f} MB); {args.requests} requests per row")
            print(f"\n{'query':<42}{'conc.':>6}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'errors':>8}")
            for label, request in requests:
                for concurrency in args.concurrency:
                    latencies, errors, seconds = asyncio.run(
                        load(url, headers, request, args.requests, concurrency)
                    )
                    print(
                        f"{label:<42}{concurrency:>6}{statistics.median(latencies):>9.1f}"
                        f"{percentile(latencies, 0.99):>9.1f}{len(latencies) / seconds:>9.0f}{errors:>8}"
                    )
                times = in_process(local[label], args.requests)
                print(
                    f"{label + ' (in process)':<42}{1:>6}{statistics.median(times):>9.1f}"
                    f"{percentile(times, 0.99):>9.1f}"
                )
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
