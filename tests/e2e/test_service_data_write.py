"""Bulk writes and uploads through a real ``neurolake serve`` on a private warehouse.

The shared nightly warehouse is read-only for tests, so this module serves its own: a fresh
warehouse whose tables the module creates (``silver.orders``, ``silver.customers``), its own
SQLite catalog and keys. The server runs its own local Spark session; the test process reads the
Delta tables with the shared test session.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime

import httpx
import pyarrow as pa
import pytest
from chispa import assert_df_equality

from .conftest import SITE_TENANTS, ServiceSite
from .service import serve, write_service_conf
from .test_service_api import assert_problem

ORDERS = "order_id BIGINT, customer_id BIGINT, order_ts TIMESTAMP, status STRING, updated_at TIMESTAMP"
T1, T2 = datetime(2026, 11, 20, 8), datetime(2026, 11, 21, 8)
FIRST_ORDERS = [
    (1, 10, T1, "placed", T1),
    (2, 11, T1, "test", T1),
    (3, 12, T1, "paid", T1),
    (4, 13, T1, "test", T1),
]


@pytest.fixture(scope="module")
def site(spark, tmp_path_factory):
    """A private warehouse with silver.orders (4 rows) and silver.customers, served."""
    from neurolake_spark import bulk
    from neurolake_spark.catalog.store import CatalogStore
    from neurolake_spark.config import load_settings
    from neurolake_spark.lakehouse import Lakehouse
    from neurolake_spark.service.keys import ROLES, KeyStore

    from ..conftest import settings_for

    folder = tmp_path_factory.mktemp("data-write")
    warehouse = folder / "warehouse"
    lh = Lakehouse(settings_for(warehouse), spark=spark)
    bulk.insert(spark, lh.resolve("silver.orders"), spark.createDataFrame(FIRST_ORDERS, ORDERS))
    customers = spark.createDataFrame([(10, "ana")], "customer_id BIGINT, name STRING")
    bulk.insert(spark, lh.resolve("silver.customers"), customers)
    conf = write_service_conf(
        folder / "serve.yaml",
        warehouse,
        f"sqlite:///{folder / 'catalog.db'}",
        {
            "tenants": SITE_TENANTS,
            "state_dir": str(folder / "state"),
            "rate_limit_enabled": False,
            "max_body_bytes": 65536,
            "bulk_max_bytes": 8192,
            "upload_max_bytes": 16384,
        },
        spark={"shuffle_partitions": 2, "driver_memory": "1g"},
    )
    settings = load_settings(conf)
    store = CatalogStore.from_settings(settings)
    keys = KeyStore(store, settings.service.tenants)
    made = {(r, t): keys.create(f"{r}-{t}", r, t)[1] for r in ROLES for t in SITE_TENANTS}
    store.close()
    with serve(conf, folder) as app:
        yield ServiceSite(conf, folder, made, settings, (lh, []), None), app


@pytest.fixture(scope="module")
def api(site):
    with httpx.Client(base_url=site[1].url, timeout=300) as client:
        yield client


def orders(spark, lh, version: int | None = None):
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(lh.resolve("silver.orders").uri)


def history(spark, lh) -> list:
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, lh.resolve("silver.orders").uri).history().orderBy("version").collect()


def test_bulk_insert_upsert_update_delete_commit_once_each_with_lineage_and_audit(site, api, spark):
    service_site, _ = site
    lh, _ = service_site.nightly
    engineer, auditor = service_site.headers("engineer"), service_site.headers("auditor")

    inserted = api.post(
        "/api/v1/data/bulk/insert",
        headers=engineer,
        json={
            "table": "silver.orders",
            "rows": [
                {"order_id": 5, "customer_id": 14, "order_ts": "2026-11-22T08:00:00", "status": "placed"},
                {"order_id": 6, "customer_id": 15, "order_ts": "2026-11-22T09:00:00Z", "status": "test"},
            ],
        },
    )
    assert inserted.status_code == 200, inserted.text
    insert = inserted.json()
    assert insert["committed"] and insert["rows_in"] == 2 and insert["version"] == 1 and insert["run_id"]

    # upsert as an Arrow IPC stream: order 1 changes, order 7 is new (key: the source's business key)
    batch = pa.table(
        {
            "order_id": pa.array([1, 7], pa.int64()),
            "status": ["paid", "placed"],
            "updated_at": pa.array([T2, T2], pa.timestamp("us")),
        }
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_table(batch)
    upserted = api.post(
        "/api/v1/data/bulk/upsert",
        params={"table": "silver.orders"},
        headers={**engineer, "Content-Type": "application/vnd.apache.arrow.stream"},
        content=sink.getvalue(),
    )
    assert upserted.status_code == 200, upserted.text
    assert upserted.json()["version"] == 2 and upserted.json()["rows_in"] == 2

    updated = api.post(
        "/api/v1/data/bulk/update",
        headers=engineer,
        json={
            "table": "silver.orders",
            "where": [
                {"column": "status", "op": "=", "value": "placed"},
                {"column": "order_id", "op": ">", "value": 4},
            ],
            "set": {"status": "shipped"},
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["rows_matched"] == 2 and updated.json()["version"] == 3

    deleted = api.post(
        "/api/v1/data/bulk/delete",
        headers={**engineer, "Idempotency-Key": "delete-tests-1"},
        json={"table": "silver.orders", "where": {"or": [{"column": "status", "op": "=", "value": "test"}]}},
    )
    assert deleted.status_code == 200, deleted.text
    delete = deleted.json()
    assert delete["rows_matched"] == 3 and delete["rows_total"] == 7 and delete["version"] == 4

    # an upsert replaces whole rows: the columns the stream lacks are null
    expected = spark.createDataFrame(
        [
            (1, None, None, "paid", T2),
            (3, 12, T1, "paid", T1),
            (5, 14, datetime(2026, 11, 22, 8), "shipped", None),
            (7, None, None, "shipped", T2),
        ],
        ORDERS,
    )
    assert_df_equality(orders(spark, lh), expected, ignore_row_order=True, ignore_nullable=True)
    operations = [(row.version, row.operation) for row in history(spark, lh)]
    assert operations == [(0, "WRITE"), (1, "WRITE"), (2, "MERGE"), (3, "UPDATE"), (4, "DELETE")]
    tagged = json.loads(history(spark, lh)[4].userMetadata)
    assert tagged["neurolake_run_id"] == delete["run_id"] and tagged["neurolake_commit"]

    # the retry with the same key answers the first answer and commits nothing
    again = api.post(
        "/api/v1/data/bulk/delete",
        headers={**engineer, "Idempotency-Key": "delete-tests-1"},
        json={"table": "silver.orders", "where": {"or": [{"column": "status", "op": "=", "value": "test"}]}},
    )
    assert again.status_code == 200 and again.json() == delete
    assert again.headers["idempotent-replayed"] == "true"
    assert len(history(spark, lh)) == 5
    reused = api.post(
        "/api/v1/data/bulk/delete",
        headers={**engineer, "Idempotency-Key": "delete-tests-1"},
        json={"table": "silver.orders", "where": [{"column": "order_id", "op": "=", "value": 1}]},
    )
    assert_problem(reused, 422, "invalid-parameter")
    assert len(history(spark, lh)) == 5

    # the catalog has each version with its run, and the lineage graph the job that wrote it
    asset = api.get("/api/v1/catalog/assets/silver.orders", headers=auditor).json()
    runs = {int(v["version"]): v["run"] for v in asset["versions"]}
    assert runs.get(4) == delete["run_id"] and runs.get(1) == insert["run_id"], asset["versions"]
    graph = api.get(
        "/api/v1/catalog/assets/silver.orders/lineage", params={"direction": "up"}, headers=auditor
    ).json()["graph"]
    jobs = {node["id"].split(":")[-1] for node in graph if node["type"] == "JOB"}
    assert {"api_bulk_insert", "api_bulk_upsert", "api_bulk_update", "api_bulk_delete"} <= jobs

    audit = api.get("/api/v1/audit", params={"action": "data.bulk_delete"}, headers=auditor).json()["records"]
    first, replayed = audit[-1], audit[-2]
    assert (
        first["target"] == "silver.orders" and first["status"] == 200 and first["actor"] == "engineer-default"
    )
    assert first["parameters"]["rows_matched"] == 3 and first["parameters"]["run_id"] == delete["run_id"]
    assert replayed["parameters"]["replayed"] is True


def test_dry_run_every_row_and_hostile_conditions_change_nothing(site, api, spark):
    service_site, _ = site
    lh, _ = service_site.nightly
    engineer = service_site.headers("engineer")
    before = history(spark, lh)[-1].version
    snapshot = orders(spark, lh)
    rows = snapshot.count()

    dry = api.post(
        "/api/v1/data/bulk/delete",
        headers=engineer,
        json={
            "table": "silver.orders",
            "where": [{"column": "order_id", "op": "<", "value": 4}],
            "dry_run": True,
        },
    )
    assert dry.status_code == 200, dry.text
    assert (
        dry.json()["committed"] is False
        and dry.json()["rows_matched"] >= 1
        and dry.json()["version"] == before
    )

    dry_insert = api.post(
        "/api/v1/data/bulk/insert",
        headers=engineer,
        json={"table": "silver.orders", "rows": [{"order_id": 99, "status": "x"}], "dry_run": True},
    )
    assert dry_insert.status_code == 200, dry_insert.text
    assert dry_insert.json()["committed"] is False and dry_insert.json()["rows_in"] == 1

    every = api.post(
        "/api/v1/data/bulk/update",
        headers=engineer,
        json={
            "table": "silver.orders",
            "where": [{"column": "order_id", "op": ">", "value": 0}],
            "set": {"status": "x"},
        },
    )
    assert "all_rows" in assert_problem(every, 422, "invalid-parameter")["detail"]

    hostile = [
        [{"column": "status = 'x' OR 1=1 --", "op": "=", "value": "a"}],
        [{"column": "status", "op": "; DROP TABLE", "value": "a"}],
        [{"column": "status", "op": "=", "value": "a", "sql": "1=1"}],
        [{"column": "`status`) OR (1=1", "op": "=", "value": "a"}],
        "status = 'test' OR 1 = 1",
        [{"column": "status", "op": "in", "value": [{"nested": 1}]}],
    ]
    for where in hostile:
        refused = api.post(
            "/api/v1/data/bulk/delete", headers=engineer, json={"table": "silver.orders", "where": where}
        )
        assert refused.status_code == 422, (where, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    update_hostile = api.post(
        "/api/v1/data/bulk/update",
        headers=engineer,
        json={
            "table": "silver.orders",
            "where": [{"column": "order_id", "op": "=", "value": 1}],
            "set": {"status, order_id = 0": "x"},
        },
    )
    assert_problem(update_hostile, 422, "invalid-parameter")
    bad_type = api.post(
        "/api/v1/data/bulk/insert",
        headers=engineer,
        json={"table": "silver.orders", "rows": [{"order_id": "not a number", "status": "x"}]},
    )
    assert "'order_id'" in assert_problem(bad_type, 422, "invalid-parameter")["detail"]
    unknown_column = api.post(
        "/api/v1/data/bulk/insert", headers=engineer, json={"table": "silver.orders", "rows": [{"amount": 1}]}
    )
    assert "'amount'" in assert_problem(unknown_column, 422, "invalid-parameter")["detail"]
    too_big = api.post(
        "/api/v1/data/bulk/insert",
        headers=engineer,
        json={"table": "silver.orders", "rows": [{"order_id": i, "status": "x" * 50} for i in range(200)]},
    )
    assert_problem(too_big, 413, "payload-too-large")

    assert history(spark, lh)[-1].version == before
    assert_df_equality(orders(spark, lh), snapshot, ignore_row_order=True)
    assert orders(spark, lh).count() == rows


def test_roles_tenants_and_locks(site, api, spark):
    from neurolake_spark.locks import run_lock

    service_site, _ = site
    lh, _ = service_site.nightly
    before = history(spark, lh)[-1].version
    body = {"table": "silver.orders", "where": [{"column": "order_id", "op": "=", "value": 3}]}
    for role in ("viewer", "auditor"):
        assert_problem(
            api.post("/api/v1/data/bulk/delete", headers=service_site.headers(role), json=body),
            403,
            "forbidden",
        )
    # finance sees gold.* only: silver.orders answers as an unknown table does
    finance = service_site.headers("engineer", "finance")
    invisible = assert_problem(
        api.post("/api/v1/data/bulk/delete", headers=finance, json=body), 404, "not-found"
    )
    unknown = assert_problem(
        api.post("/api/v1/data/bulk/delete", headers=finance, json={**body, "table": "silver.nothing"}),
        404,
        "not-found",
    )
    assert invisible["detail"].replace("silver.orders", "T") == unknown["detail"].replace(
        "silver.nothing", "T"
    )
    hostile_name = api.post(
        "/api/v1/data/bulk/delete",
        headers=service_site.headers("engineer"),
        json={**body, "table": "../../etc"},
    )
    assert_problem(hostile_name, 422, "invalid-parameter")

    # another command holding the table's lock: 409, nothing written
    with run_lock(
        lh.settings, "a compaction of silver.orders", "test-run", tables=[lh.resolve("silver.orders").path]
    ):
        busy = api.post("/api/v1/data/bulk/delete", headers=service_site.headers("engineer"), json=body)
    problem = assert_problem(busy, 409, "conflict")
    assert "a compaction of silver.orders is running" in problem["detail"] and busy.headers["retry-after"]
    with run_lock(lh.settings, "a nightly for 2026-12-01", "test-nightly", dates=["2026-12-01"]):
        during_nightly = api.post(
            "/api/v1/data/bulk/delete", headers=service_site.headers("engineer"), json=body
        )
    assert "a nightly for 2026-12-01 is running" in assert_problem(during_nightly, 409, "conflict")["detail"]
    assert history(spark, lh)[-1].version == before


UPLOAD_DAY = "2026-11-30"
ORDERS_CSV = (
    b"order_id,customer_id,order_ts,status,updated_at\n"
    b"101,10,2026-11-30T08:00:00Z,placed,2026-11-30T08:00:00Z\n"
    b"102,11,2026-11-30T09:00:00Z,paid,2026-11-30T09:00:00Z\n"
    b"not-a-number,12,2026-11-30T10:00:00Z,placed,2026-11-30T10:00:00Z\n"
    b"103,12,2026-11-30T11:00:00Z,placed,2026-11-30T11:00:00Z\n"
)


def test_upload_then_ingest_lands_in_bronze_with_its_quarantine(site, api, spark):
    from pyspark.sql import functions as F

    service_site, _ = site
    lh, _ = service_site.nightly
    engineer = service_site.headers("engineer")
    params = {"source": "orders", "date": UPLOAD_DAY, "ingest": "true"}
    files = {"file": ("orders-extra.csv", ORDERS_CSV, "text/csv")}

    assert_problem(
        api.post("/api/v1/data/upload", params=params, files=files, headers=service_site.headers("viewer")),
        403,
        "forbidden",
    )
    landed = api.post("/api/v1/data/upload", params=params, files=files, headers=engineer)
    assert landed.status_code == 200, landed.text
    answer = landed.json()
    assert answer["sha256"] == hashlib.sha256(ORDERS_CSV).hexdigest() and answer["bytes"] == len(ORDERS_CSV)
    assert answer["path"] == f"orders/date={UPLOAD_DAY}/orders-extra.csv"
    raw_file = lh.settings.raw_dir / answer["path"]
    assert raw_file.read_bytes() == ORDERS_CSV
    ingest = answer["ingest"]
    assert ingest["status"] == "success" and ingest["rows_read"] == 4 and ingest["rows_quarantined"] == 1

    day = F.col("_batch_date") == F.lit(UPLOAD_DAY).cast("date")
    bronze = spark.read.format("delta").load(lh.resolve("bronze.orders").uri).where(day)
    assert sorted(r.order_id for r in bronze.select("order_id").collect()) == [101, 102, 103]
    assert {r._run_id for r in bronze.select("_run_id").collect()} == {ingest["run_id"]}
    quarantine = spark.read.format("delta").load(lh.resolve("quarantine.ingest").uri).where(day).collect()
    assert len(quarantine) == 1 and quarantine[0].source == "orders"
    assert "not-a-number" in quarantine[0].raw_record

    # never over a landed file, nor outside the landing folder, nor past the limit
    again = api.post("/api/v1/data/upload", params=params, files=files, headers=engineer)
    assert "never replaced" in assert_problem(again, 409, "conflict")["detail"]
    assert raw_file.read_bytes() == ORDERS_CSV
    for name in ("../../escape.csv", ".hidden.csv", "orders.parquet", "a\\b.csv", "x.csv\x00.ncf"):
        refused = api.post(
            "/api/v1/data/upload",
            params=params,
            files={"file": (name, b"a,b\n", "text/csv")},
            headers=engineer,
        )
        assert_problem(refused, 422, "invalid-parameter")
    big = {"file": ("big.csv", b"x" * 20000, "text/csv")}
    assert_problem(
        api.post("/api/v1/data/upload", params=params, files=big, headers=engineer), 413, "payload-too-large"
    )
    unknown = api.post(
        "/api/v1/data/upload", params={**params, "source": "nope"}, files=files, headers=engineer
    )
    assert_problem(unknown, 404, "not-found")
    assert sorted(p.name for p in raw_file.parent.iterdir()) == ["orders-extra.csv"]
    assert not (lh.settings.raw_dir.parent / "escape.csv").exists()

    audit = api.get(
        "/api/v1/audit", params={"action": "data.upload"}, headers=service_site.headers("auditor")
    )
    record = next(r for r in audit.json()["records"] if r["status"] == 200)
    assert record["target"] == answer["path"] and record["parameters"]["sha256"] == answer["sha256"]
    assert (
        record["parameters"]["run_id"] == ingest["run_id"] and record["parameters"]["rows_quarantined"] == 1
    )
