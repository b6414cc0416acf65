"""Lineage graph queries on a large generated catalog (SQLite): median answer times.

    .venv/bin/python benchmarks/catalog_graph.py                       # 10,000 datasets, 1,000,000 events
    .venv/bin/python benchmarks/catalog_graph.py --datasets 1000 --events 100000 --db /tmp/small.db

The catalog is generated with bulk inserts straight into the store's tables (not
through ``ingest``): ``layers`` layers of tables; each table after the first layer is
written by its own job, whose runs read two tables of the layer before (the same one
and a "neighbour") with column lineage for three columns. Runs are spread over a year;
each run has a START and a COMPLETE event, so ``events / 2`` runs in all. Then each
query runs ``--repeat`` times after a warm-up; the median wall-clock and CPU (this
process) milliseconds are printed — on a busy machine the CPU figure is the steadier one.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurolake_spark.catalog import schema as s
from neurolake_spark.catalog.store import CatalogStore

NAMESPACE = "file:///warehouse"
START = datetime(2026, 1, 1)
YEAR = timedelta(days=365)
BATCH = 50_000


def name_of(layer: int, index: int) -> str:
    return f"l{layer}.t{index:05d}"


def neighbour(index: int, width: int) -> int:
    return (index * 7 + 3) % width


def bulk_insert(conn, table, rows: list[dict]) -> None:
    """executemany straight on the SQLite driver (times in the store's own text format)."""
    if not rows:
        return
    columns = list(rows[0])
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conn.exec_driver_sql(
        sql,
        [
            tuple(
                v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
                for v in (row[c] for c in columns)
            )
            for row in rows
        ],
    )


def generate(store: CatalogStore, datasets: int, events: int, layers: int, seed: int) -> None:
    """Fill an empty catalog with ``datasets`` tables and ``events`` run events."""
    rng = random.Random(seed)
    width = datasets // layers
    written = [(layer, i) for layer in range(1, layers) for i in range(width)]
    runs_total = events // 2
    with store.write() as conn:
        bulk_insert(conn, s.namespaces, [{"id": 1, "name": NAMESPACE}, {"id": 2, "name": "neurolake"}])
        ids = {}
        rows = []
        for layer in range(layers):
            for i in range(width):
                ids[layer, i] = len(ids) + 1
                rows.append(
                    {
                        "id": ids[layer, i],
                        "namespace_id": 1,
                        "name": name_of(layer, i),
                        "format": "delta",
                        "owner": f"team-{i % 17}",
                        "description": f"table {i} of layer {layer}",
                        "created_at": START,
                        "updated_at": START,
                    }
                )
        bulk_insert(conn, s.datasets, rows)
        bulk_insert(
            conn,
            s.dataset_columns,
            [{"dataset_id": d, "name": f"c{c}", "type": "bigint"} for d in ids.values() for c in range(3)],
        )
        bulk_insert(
            conn,
            s.jobs,
            [
                {
                    "id": n + 1,
                    "namespace_id": 2,
                    "name": f"build_{name_of(*key)}",
                    "created_at": START,
                    "updated_at": START,
                }
                for n, key in enumerate(written)
            ],
        )
        job_of = {key: n + 1 for n, key in enumerate(written)}
        bulk_insert(
            conn,
            s.column_lineage_sets,
            [{"id": job_of[key], "fingerprint": f"bench-{job_of[key]}"} for key in written],
        )
        fields = []
        for layer, i in written:
            same, other = ids[layer - 1, i], ids[layer - 1, neighbour(i, width)]
            set_id = job_of[layer, i]
            fields += [
                {
                    "set_id": set_id,
                    "output_field": "c0",
                    "input_dataset_id": same,
                    "input_field": "c0",
                    "transformation_type": "DIRECT",
                    "transformation_subtype": "IDENTITY",
                },
                {
                    "set_id": set_id,
                    "output_field": "c1",
                    "input_dataset_id": other,
                    "input_field": "c1",
                    "transformation_type": "DIRECT",
                    "transformation_subtype": "AGGREGATION",
                },
                {
                    "set_id": set_id,
                    "output_field": "c2",
                    "input_dataset_id": same,
                    "input_field": "c2",
                    "transformation_type": "DIRECT",
                    "transformation_subtype": "TRANSFORMATION",
                },
                {
                    "set_id": set_id,
                    "output_field": "c2",
                    "input_dataset_id": other,
                    "input_field": "c0",
                    "transformation_type": "INDIRECT",
                    "transformation_subtype": "FILTER",
                },
            ]
        bulk_insert(conn, s.column_lineage_fields, fields)

        times = sorted(START + YEAR * rng.random() for _ in range(runs_total))
        owners = [written[rng.randrange(len(written))] for _ in range(runs_total)]
        version_of: dict[int, int] = {}
        run_rows, event_rows, dataset_rows, edge_rows = [], [], [], []

        def flush(final: bool = False) -> None:
            if len(run_rows) >= BATCH or final:
                for table, rows_ in (
                    (s.runs, run_rows),
                    (s.events, event_rows),
                    (s.run_datasets, dataset_rows),
                    (s.lineage_edges, edge_rows),
                ):
                    bulk_insert(conn, table, rows_)
                    rows_.clear()

        for run_id, (ended, key) in enumerate(zip(times, owners), start=1):
            layer, i = key
            out, same, other = ids[key], ids[layer - 1, i], ids[layer - 1, neighbour(i, width)]
            run_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            started = ended - timedelta(seconds=30)
            version_of[out] = version_of.get(out, -1) + 1
            run_rows.append(
                {
                    "id": run_id,
                    "run_uuid": run_uuid,
                    "job_id": job_of[key],
                    "state": "COMPLETE",
                    "nominal_time": ended.replace(hour=0, minute=0, second=0, microsecond=0),
                    "started_at": started,
                    "ended_at": ended,
                    "code_version": "0.1.0",
                    "updated_at": ended,
                }
            )
            for event_type, moment in (("START", started), ("COMPLETE", ended)):
                payload = {
                    "eventType": event_type,
                    "eventTime": moment.isoformat() + "Z",
                    "run": {"runId": run_uuid},
                    "job": {"namespace": "neurolake", "name": f"build_{name_of(*key)}"},
                    "outputs": [{"namespace": NAMESPACE, "name": name_of(*key)}],
                }
                event_rows.append(
                    {
                        "identity": uuid.uuid4().hex + uuid.uuid4().hex,
                        "run_uuid": run_uuid,
                        "event_type": event_type,
                        "event_time": moment,
                        "job_namespace": "neurolake",
                        "job_name": f"build_{name_of(*key)}",
                        "received_at": moment,
                        "payload": json.dumps(payload, separators=(",", ":")),
                    }
                )
            versions = {d: str(version_of.get(d, 0)) for d in (same, other)}
            dataset_rows += [
                {
                    "run_id": run_id,
                    "dataset_id": out,
                    "role": "output",
                    "version": str(version_of[out]),
                    "row_count": 1000,
                    "column_lineage_id": job_of[key],
                },
                *(
                    {
                        "run_id": run_id,
                        "dataset_id": d,
                        "role": "input",
                        "version": versions[d],
                        "row_count": None,
                        "column_lineage_id": None,
                    }
                    for d in {same, other}
                ),
            ]
            edge_rows.extend(
                {
                    "run_id": run_id,
                    "job_id": job_of[key],
                    "input_dataset_id": d,
                    "input_version": versions[d],
                    "output_dataset_id": out,
                    "output_version": str(version_of[out]),
                    "completed_at": ended,
                    "superseded_at": None,
                }
                for d in {same, other}
            )
            flush()
        flush(final=True)
        conn.exec_driver_sql(  # each edge is superseded by the next run of its job writing the same output
            "UPDATE lineage_edges SET superseded_at = (SELECT MIN(later.completed_at)"
            " FROM lineage_edges later WHERE later.job_id = lineage_edges.job_id"
            " AND later.output_dataset_id = lineage_edges.output_dataset_id"
            " AND later.completed_at > lineage_edges.completed_at)"
        )
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")


def median_ms(action, repeat: int) -> tuple[float, float, object]:
    """Median wall-clock and CPU milliseconds of ``action`` (after one warm-up call), and its result."""
    result = action()
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = action()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", help="catalog file (default: a new temporary one); reused if it exists")
    args = parser.parse_args(argv)

    path = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="catalog-bench-")) / "catalog.db"
    fresh = not path.exists()
    store = CatalogStore(f"sqlite:///{path}")
    if fresh:
        started = time.perf_counter()
        generate(store, args.datasets, args.events, args.layers, args.seed)
        print(
            f"generated {args.datasets:,} datasets and {args.events:,} events "
            f"in {time.perf_counter() - started:.0f} s "
            f"({path.stat().st_size / 1e6:,.0f} MB at {path})"
        )
    stats = store.stats()
    edges = store.engine.connect().exec_driver_sql("SELECT COUNT(*) FROM lineage_edges").scalar()
    print(
        f"catalog: {stats['datasets']:,} datasets, {stats['jobs']:,} jobs, {stats['runs']:,} runs, "
        f"{stats['events']:,} events, {edges:,} lineage edges"
    )

    width = args.datasets // args.layers
    last, first, middle = args.layers - 1, 0, args.layers // 2
    mid_year = START + YEAR / 2
    graph = store.graph()
    queries = [
        ("upstream, depth 3, now", lambda: graph.upstream(name_of(last, 42), depth=3)),
        (
            "upstream, depth 3, as of mid-year",
            lambda: graph.upstream(name_of(last, 42), depth=3, as_of=mid_year),
        ),
        ("upstream, all layers, now", lambda: graph.upstream(name_of(last, 42), depth=args.layers)),
        ("downstream, depth 3, now", lambda: graph.downstream(name_of(first, 42), depth=3)),
        (
            "both directions, depth 2, as of mid-year",
            lambda: graph.lineage(name_of(middle, 42), "both", depth=2, as_of=mid_year),
        ),
        ("column lineage upstream, depth 5", lambda: graph.column_lineage(name_of(last, 42), "c2", depth=5)),
        ("path across 3 layers", lambda: graph.path(name_of(last - 3, 42 % width), name_of(last, 42))),
        (
            "diff between two times, depth 2",
            lambda: graph.diff(name_of(last, 42), START + YEAR / 4, mid_year, depth=2),
        ),
    ]
    print(f"\n{'query':<44}{'median ms':>10}{'cpu ms':>8}{'nodes':>8}{'edges':>8}")
    for label, action in queries:
        ms, cpu_ms, result = median_ms(action, args.repeat)
        nodes = len(getattr(result, "nodes", {}) or {})
        edge_count = len(getattr(result, "edges", []) or getattr(result, "added_edges", []) or [])
        print(f"{label:<44}{ms:>10.1f}{cpu_ms:>8.1f}{nodes:>8}{edge_count:>8}")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
