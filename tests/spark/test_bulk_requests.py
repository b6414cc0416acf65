"""Bulk writes from requests (``neurolake_spark.bulk_requests``) give the same table on NCF as on
Delta, each write one commit tagged with its run; dry runs and every-row conditions change nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from chispa import assert_df_equality

from neurolake_spark import bulk
from neurolake_spark.bulk_guard import EveryRowError
from neurolake_spark.bulk_requests import change_rows, rows_table, table_schema, write_rows
from neurolake_spark.conditions import assignments_from_json, condition_from_json

PIPELINE = """
sources: {}
tables:
  silver.orders_delta: {format: delta}
  silver.orders_ncf: {format: ncf}
"""
T0 = dt.datetime(2026, 11, 1)


@pytest.fixture
def lh(make_lakehouse, spark, tmp_path):
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    made = make_lakehouse(tmp_path / "warehouse")
    lakehouse = type(made)(
        made.settings.model_copy(update={"pipeline": tmp_path / "pipeline.yaml"}), spark=spark
    )
    first = spark.createDataFrame(
        [(i, "new", T0) for i in range(6)], "order_id BIGINT, status STRING, updated_at TIMESTAMP"
    )
    for name in ("silver.orders_delta", "silver.orders_ncf"):
        bulk.insert(spark, lakehouse.resolve(name), first)
    return lakehouse


def requests_on(lh, name: str) -> list[str]:
    """The same requests, in order; returns the run ids of the commits."""
    schema = table_schema(lh, name)
    rows = rows_table([{"order_id": 10, "status": "new", "updated_at": "2026-11-02T00:00:00"}], schema)
    runs = [write_rows(lh, "insert", name, rows).run_id]
    changed = rows_table([{"order_id": 1, "status": "paid", "updated_at": "2026-11-03T00:00:00Z"}], schema)
    runs.append(write_rows(lh, "upsert", name, changed, keys=["order_id"]).run_id)
    where = condition_from_json([{"column": "order_id", "op": "in", "value": [2, 3]}])
    runs.append(change_rows(lh, "update", name, where, assignments_from_json({"status": "void"})).run_id)
    gone = condition_from_json({"or": [{"column": "status", "op": "=", "value": "void"}]})
    dry = change_rows(lh, "delete", name, gone, dry_run=True)
    assert (dry.committed, dry.rows_matched, dry.rows_total, dry.run_id) == (False, 2, 7, None)
    deleted = change_rows(lh, "delete", name, gone)
    assert deleted.committed and deleted.rows_matched == 2
    runs.append(deleted.run_id)
    with pytest.raises(EveryRowError, match="all_rows"):
        change_rows(lh, "delete", name, condition_from_json([{"column": "order_id", "op": ">=", "value": 0}]))
    return runs


def test_requests_give_the_same_table_on_ncf_as_on_delta(lh, spark):
    runs = {name: requests_on(lh, name) for name in ("silver.orders_delta", "silver.orders_ncf")}
    delta = lh.table("silver.orders_delta")
    assert_df_equality(lh.table("silver.orders_ncf"), delta, ignore_row_order=True, ignore_nullable=True)
    assert sorted((r.order_id, r.status) for r in delta.collect()) == [
        (0, "new"),
        (1, "paid"),
        (4, "new"),
        (5, "new"),
        (10, "new"),
    ]
    from delta.tables import DeltaTable

    tags = [
        row.userMetadata
        for row in DeltaTable.forPath(spark, lh.resolve("silver.orders_delta").uri)
        .history()
        .orderBy("version")
        .collect()
    ]
    assert [json.loads(tag)["neurolake_run_id"] for tag in tags[1:]] == runs["silver.orders_delta"]
    from ncf_datasource.table import NCFTable

    ncf_runs = [
        h["parameters"].get("neurolake_run_id")
        for h in NCFTable(lh.resolve("silver.orders_ncf").path).history()
    ]
    assert list(reversed(ncf_runs))[1:] == runs["silver.orders_ncf"]
