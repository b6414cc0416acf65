"""Sources of typed files (Parquet): the ingest step lands them in bronze as the declared schema."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from neurolake_spark.pipeline import run_ingest

DAY = "2026-11-23"
ROOT_CONF = "conf/pipeline.yaml"


@pytest.fixture
def parquet_orders(make_lakehouse, tmp_path):
    """A lakehouse whose orders source declares Parquet files."""
    definition = yaml.safe_load((Path(__file__).parents[2] / ROOT_CONF).read_text())
    definition["sources"]["orders"]["format"] = "parquet"
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(definition))
    return make_lakehouse(tmp_path / "warehouse", pipeline=str(pipeline))


def test_a_parquet_source_lands_its_rows_as_the_declared_schema(parquet_orders, spark):
    lh = parquet_orders
    landing = lh.settings.raw_dir / "orders" / f"date={DAY}"
    landing.mkdir(parents=True)
    at = datetime(2026, 11, 23, 10, 0)
    # no updated_at column: it reads as null
    rows = pa.table(
        {
            "order_id": pa.array([1, 2, 3], pa.int64()),
            "customer_id": pa.array([10, None, 12], pa.int64()),
            "order_ts": pa.array([at, at, at], pa.timestamp("us", tz="UTC")),
            "status": ["paid", "placed", "paid"],
        }
    )
    pq.write_table(rows, landing / "part-0.parquet")

    run = run_ingest(lh, DAY, ["orders"])

    bronze = lh.table("bronze.orders").where(F.col("_batch_date") == DAY)
    assert bronze.schema["customer_id"].dataType.simpleString() == "bigint"
    expected = spark.createDataFrame(
        [(1, 10, "paid"), (2, None, "placed"), (3, 12, "paid")],
        "order_id BIGINT, customer_id BIGINT, status STRING",
    )
    assertDataFrameEqual(bronze.select("order_id", "customer_id", "status"), expected)
    assert bronze.where(F.col("updated_at").isNotNull()).count() == 0
    assert bronze.where(F.col("_source_file").endswith("part-0.parquet")).count() == 3
    assert run.outputs[0].name == "bronze.orders" and run.outputs[0].rows == 3
