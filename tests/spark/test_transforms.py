"""Pure transformations on tiny frames."""

import datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from neurolake_spark.transforms import (
    CORRUPT_COLUMN,
    customer_ltv,
    daily_revenue,
    latest_per_key,
    split_malformed,
    to_silver,
)

TS = dt.datetime


def test_latest_per_key_keeps_newest_and_collapses_duplicates(spark):
    df = spark.createDataFrame(
        [
            (1, "placed", TS(2026, 1, 1)),
            (1, "placed", TS(2026, 1, 1)),
            (1, "shipped", TS(2026, 1, 3)),
            (2, "paid", TS(2026, 1, 2)),
            (2, "paid", TS(2026, 1, 2)),
        ],
        "id INT, status STRING, updated_at TIMESTAMP",
    )
    expected = spark.createDataFrame(
        [(1, "shipped", TS(2026, 1, 3)), (2, "paid", TS(2026, 1, 2))],
        "id INT, status STRING, updated_at TIMESTAMP",
    )
    assert_df_equality(latest_per_key(df, ["id"], "updated_at"), expected, ignore_row_order=True)


def test_to_silver_drops_ingest_columns_and_rows_without_key(spark):
    bronze = spark.createDataFrame(
        [
            (1, "a", TS(2026, 1, 1), "o:1", dt.date(2026, 1, 1), "f.csv", TS(2026, 1, 1), "r1"),
            (None, "b", TS(2026, 1, 1), "o:1", dt.date(2026, 1, 1), "f.csv", TS(2026, 1, 1), "r1"),
        ],
        "id INT, v STRING, updated_at TIMESTAMP, _batch_id STRING, _batch_date DATE, _source_file STRING, "
        "_ingested_at TIMESTAMP, _run_id STRING",
    )
    expected = spark.createDataFrame(
        [(1, "a", TS(2026, 1, 1), dt.date(2026, 1, 1))],
        "id INT, v STRING, updated_at TIMESTAMP, _last_batch_date DATE",
    )
    assert_df_equality(to_silver(bronze, ["id"], "updated_at"), expected)


def test_split_malformed(spark):
    parsed = spark.createDataFrame(
        [(1, None, "a.csv"), (None, "1,x,y", "a.csv")],
        f"id INT, {CORRUPT_COLUMN} STRING, _source_file STRING",
    )
    good, bad = split_malformed(parsed, ["id"])
    assert_df_equality(good, spark.createDataFrame([(1, "a.csv")], "id INT, _source_file STRING"))
    assert [(r.raw_record, r._source_file) for r in bad.collect()] == [("1,x,y", "a.csv")]
    assert "does not match the source schema" in bad.first().reason


def _sales_frames(spark):
    orders = spark.createDataFrame(
        [
            (10, 1, TS(2026, 1, 1, 9), "paid"),
            (11, 2, TS(2026, 1, 1, 10), "cancelled"),
            (12, 1, TS(2026, 1, 2, 8), "shipped"),
            (13, None, TS(2026, 1, 2, 9), "paid"),
        ],
        "order_id BIGINT, customer_id BIGINT, order_ts TIMESTAMP, status STRING",
    )
    items = spark.createDataFrame(
        [
            (10, 1, 100, 2, Decimal("5.00")),
            (10, 2, 101, 1, Decimal("3.50")),
            (11, 1, 100, 1, Decimal("5.00")),
            (12, 1, 101, -1, Decimal("3.50")),
            (12, 2, 100, 3, Decimal("5.00")),
            (13, 1, 100, 1, Decimal("5.00")),
        ],
        "order_id BIGINT, line_no INT, product_id BIGINT, quantity INT, unit_price DECIMAL(10,2)",
    )
    products = spark.createDataFrame([(100, "books"), (101, "toys")], "product_id BIGINT, category STRING")
    customers = spark.createDataFrame([(1, "DE"), (2, "FR")], "customer_id BIGINT, country STRING")
    return orders, items, products, customers


def test_daily_revenue_excludes_cancelled_orders_bad_lines_and_unknown_customers(spark):
    result = daily_revenue(*_sales_frames(spark))
    expected = spark.createDataFrame(
        [
            (dt.date(2026, 1, 1), "DE", "books", 1, 2, Decimal("10.00")),
            (dt.date(2026, 1, 1), "DE", "toys", 1, 1, Decimal("3.50")),
            (dt.date(2026, 1, 2), "DE", "books", 1, 3, Decimal("15.00")),
        ],
        "order_date DATE, country STRING, category STRING, orders BIGINT, units BIGINT, "
        "revenue DECIMAL(18,2)",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_customer_ltv(spark):
    orders, items, _, customers = _sales_frames(spark)
    row = customer_ltv(orders, items, customers).collect()
    assert [
        (r.customer_id, r.orders, r.lifetime_value, r.first_order_date, r.last_order_date, r.country)
        for r in row
    ] == [(1, 2, Decimal("28.50"), dt.date(2026, 1, 1), dt.date(2026, 1, 2), "DE")]
