"""The pure parts of the service's data writes: rows checked against a table schema, upload
landing (names, limits, never over a file) and idempotency keys in a real SQLite catalog."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql.types import DecimalType, LongType, StringType, StructField, StructType, TimestampType

from neurolake_spark.bulk_requests import arrow_rows, rows_table
from neurolake_spark.config import load_settings
from neurolake_spark.errors import BadInputError
from neurolake_spark.uploads import UploadExistsError, UploadTooLargeError, land_file

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = StructType(
    [
        StructField("order_id", LongType(), nullable=False),
        StructField("status", StringType()),
        StructField("amount", DecimalType(12, 2)),
        StructField("updated_at", TimestampType()),
    ]
)


def test_json_rows_are_read_into_the_table_types():
    table = rows_table(
        [
            {"order_id": 1, "status": "paid", "amount": "12.50", "updated_at": "2026-11-30T10:00:00"},
            {"order_id": 2, "amount": "3", "updated_at": "2026-11-30T12:00:00+02:00"},
        ],
        SCHEMA,
    )
    assert table.column_names == ["order_id", "status", "amount", "updated_at"]
    assert table.column("amount").to_pylist() == [Decimal("12.50"), Decimal("3.00")]
    assert table.column("status").to_pylist() == ["paid", None]
    assert table.column("updated_at").to_pylist() == [
        datetime(2026, 11, 30, 10, tzinfo=UTC),
        datetime(2026, 11, 30, 10, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("rows", "named"),
    [
        ([{"order_id": 1, "amount_x": 1}], "'amount_x' is not in the table"),
        ([{"order_id": "one"}], "column 'order_id'"),
        ([{"order_id": 1.5}], "column 'order_id'"),
        ([{"order_id": 1, "status": 5}, {"order_id": 2, "status": "x"}], "column 'status'"),
        ([{"order_id": 1, "updated_at": "yesterday"}], "column 'updated_at'"),
        ([{"status": "x"}], "column 'order_id' is missing"),
        ([{"order_id": 1, "`status`; DROP": 1}], "is not in the table"),
        ([], "non-empty list"),
    ],
)
def test_bad_rows_are_refused_in_one_line_naming_the_column(rows, named):
    with pytest.raises(BadInputError, match=named) as refused:
        rows_table(rows, SCHEMA)
    assert "\n" not in str(refused.value)


def test_arrow_rows_are_cast_and_checked():
    given = pa.table({"order_id": pa.array([7], pa.int32()), "status": ["x"]})
    table = arrow_rows(given, SCHEMA)
    assert table.schema.field("order_id").type == pa.int64() and table.column("amount").null_count == 1
    with pytest.raises(BadInputError, match="column 'order_id'"):
        arrow_rows(pa.table({"order_id": ["seven"]}), SCHEMA)


@pytest.fixture
def settings(tmp_path):
    return load_settings(ROOT / "conf" / "local.yaml", overrides={"storage.warehouse": str(tmp_path)}, env={})


def test_an_upload_lands_once_with_its_checksum(settings):
    data = b"order_id,status\n1,paid\n"
    landed = land_file(settings, "orders", "2026-11-30", "extra.csv", io.BytesIO(data), max_bytes=1000)
    target = settings.raw_dir / "orders" / "date=2026-11-30" / "extra.csv"
    assert landed.sha256 == hashlib.sha256(data).hexdigest() and target.read_bytes() == data
    with pytest.raises(UploadExistsError):
        land_file(settings, "orders", "2026-11-30", "extra.csv", io.BytesIO(b"other"), max_bytes=1000)
    assert target.read_bytes() == data
    with pytest.raises(UploadTooLargeError):
        land_file(settings, "orders", "2026-11-30", "big.csv", io.BytesIO(b"x" * 1001), max_bytes=1000)
    assert sorted(p.name for p in target.parent.iterdir()) == ["extra.csv"]


@pytest.mark.parametrize(
    "name", ["../x.csv", "a/b.csv", "a\\b.csv", ".hidden.csv", "x.parquet", "x.json", "", "x..csv", "-r.csv"]
)
def test_upload_names_that_are_not_plain_or_of_another_format_are_refused(settings, name):
    with pytest.raises(BadInputError):
        land_file(settings, "orders", "2026-11-30", name, io.BytesIO(b"a\n"), max_bytes=1000)
    assert not (settings.raw_dir / "orders").exists() or not any((settings.raw_dir / "orders").rglob("*.csv"))


def test_idempotency_keys_replay_refuse_and_release(tmp_path):
    from neurolake_spark.catalog.store import CatalogStore
    from neurolake_spark.service.idempotency import IdempotencyStore, fingerprint
    from neurolake_spark.service.problems import Problem

    catalog = CatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    keys = IdempotencyStore(catalog)
    route, body = "/api/v1/data/bulk/delete", b'{"table": "silver.orders"}'
    assert keys.claim("default:ci", "k1", route, fingerprint(route, body)) is None
    with pytest.raises(Problem) as running:
        keys.claim("default:ci", "k1", route, fingerprint(route, body))
    assert running.value.status == 409
    keys.complete("default:ci", "k1", 200, {"version": 4})
    replay = keys.claim("default:ci", "k1", route, fingerprint(route, body))
    assert replay is not None and replay.body == {"version": 4}
    with pytest.raises(Problem) as other:
        keys.claim("default:ci", "k1", route, fingerprint(route, b"{}"))
    assert other.value.status == 422
    assert keys.claim("finance:ci", "k1", route, fingerprint(route, b"{}")) is None  # keys are per caller
    keys.release("finance:ci", "k1")
    assert keys.claim("finance:ci", "k1", route, fingerprint(route, b"{}")) is None
    catalog.close()
