"""Pure ``DataFrame -> DataFrame`` transformations of the pipeline (tested on tiny frames)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

CORRUPT_COLUMN = "_corrupt_record"
INGEST_COLUMNS = ["_batch_id", "_batch_date", "_source_file", "_ingested_at", "_run_id"]


def with_ingest_metadata(df: DataFrame, source: str, batch_date: str, run_id: str) -> DataFrame:
    """Add bronze's ingestion columns: batch id, batch date, source file, ingest time, run id.

    ``df`` must carry ``_source_file`` (the raw file each row came from).
    """
    return (
        df.withColumn("_batch_id", F.lit(f"{source}:{batch_date}"))
        .withColumn("_batch_date", F.lit(batch_date).cast("date"))
        .withColumn("_ingested_at", F.current_timestamp())
        .withColumn("_run_id", F.lit(run_id))
    )


def split_malformed(parsed: DataFrame, data_columns: list[str]) -> tuple[DataFrame, DataFrame]:
    """Split a permissively parsed frame into (well-formed rows, malformed rows).

    Malformed rows keep only the raw record, the source file and the reason.
    """
    good = parsed.where(F.col(CORRUPT_COLUMN).isNull()).select(*data_columns, "_source_file")
    bad = parsed.where(F.col(CORRUPT_COLUMN).isNotNull()).select(
        F.col(CORRUPT_COLUMN).alias("raw_record"),
        "_source_file",
        F.lit(f"record does not match the source schema ({len(data_columns)} typed fields)").alias("reason"),
    )
    return good, bad


def latest_per_key(df: DataFrame, keys: list[str], order_by: str) -> DataFrame:
    """Keep one row per key: the one with the greatest ``order_by`` (exact duplicates collapse)."""
    window = Window.partitionBy(*keys).orderBy(
        F.col(order_by).desc_nulls_last(), *[F.col(c) for c in df.columns]
    )
    return df.withColumn("_rank", F.row_number().over(window)).where("_rank = 1").drop("_rank")


def to_silver(bronze_batch: DataFrame, keys: list[str], order_by: str) -> DataFrame:
    """Bronze rows of one batch -> silver rows: ingestion columns dropped, latest per key."""
    data = bronze_batch.drop(*[c for c in INGEST_COLUMNS if c != "_batch_date"]).withColumnRenamed(
        "_batch_date", "_last_batch_date"
    )
    return latest_per_key(data.where(_keys_present(keys)), keys, order_by)


def _keys_present(keys: list[str]) -> Column:
    condition = F.lit(True)
    for key in keys:
        condition = condition & F.col(key).isNotNull()
    return condition


def _valid_sales(orders: DataFrame, items: DataFrame) -> DataFrame:
    return (
        orders.where((F.col("status") != "cancelled") & F.col("customer_id").isNotNull())
        .select("order_id", "customer_id", F.to_date("order_ts").alias("order_date"))
        .join(items.where((F.col("quantity") > 0) & (F.col("unit_price") >= 0)), "order_id")
        .withColumn("line_revenue", (F.col("quantity") * F.col("unit_price")).cast("decimal(18,2)"))
    )


def daily_revenue(
    orders: DataFrame, items: DataFrame, products: DataFrame, customers: DataFrame
) -> DataFrame:
    """Revenue per order date, customer country and product category (cancelled excluded)."""
    return (
        _valid_sales(orders, items)
        .join(products.select("product_id", "category"), "product_id", "left")
        .join(customers.select("customer_id", "country"), "customer_id", "left")
        .fillna({"category": "unknown", "country": "unknown"})
        .groupBy("order_date", "country", "category")
        .agg(
            F.countDistinct("order_id").alias("orders"),
            F.sum("quantity").cast("bigint").alias("units"),
            F.sum("line_revenue").cast("decimal(18,2)").alias("revenue"),
        )
    )


def customer_ltv(orders: DataFrame, items: DataFrame, customers: DataFrame) -> DataFrame:
    """Lifetime value per customer: orders, revenue, first and last order date."""
    return (
        _valid_sales(orders, items)
        .groupBy("customer_id")
        .agg(
            F.countDistinct("order_id").alias("orders"),
            F.sum("line_revenue").cast("decimal(18,2)").alias("lifetime_value"),
            F.min("order_date").alias("first_order_date"),
            F.max("order_date").alias("last_order_date"),
        )
        .join(customers.select("customer_id", "country"), "customer_id", "left")
    )
