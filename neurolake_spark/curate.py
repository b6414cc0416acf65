"""Bronze -> silver (typed, deduplicated, MERGE by business key) and silver -> gold.

Silver applies a day's bronze batch with a MERGE that only replaces a row by a newer
one (``order_by``), so late-arriving updates win and re-running an old date changes
nothing. Gold tables are rebuilt from silver in one atomic overwrite each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from neurolake_spark import bulk
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.run_model import ColumnSource, schema_of
from neurolake_spark.runs import JobRun
from neurolake_spark.transforms import customer_ltv, daily_revenue, to_silver

StepGate = Callable[[Lakehouse, dict[str, DataFrame], JobRun], Iterable[tuple[str, DataFrame]]]
"""Sees all of a step's batches before any is written: ``(lh, batches by name, run) -> (name, batch) pairs``.

Quality gates plug in here: when called, a gate checks every batch and raises to block the
whole step (nothing is written); otherwise it hands back each batch to write, in order, and
may write quarantine rows before handing one back and free its cache once the next one is
asked for. The default passes the batches through unchanged."""


def _pass_through(
    lh: Lakehouse, batches: dict[str, DataFrame], run: JobRun
) -> Iterable[tuple[str, DataFrame]]:
    return batches.items()


def build_silver(lh: Lakehouse, batch_date: str, run: JobRun, before_merge: StepGate = _pass_through) -> None:
    """MERGE every source's bronze batch of ``batch_date`` into its silver table.

    ``before_merge`` sees all the sources' batches before the first MERGE. A batch reads a
    pinned bronze version through deterministic steps (a gate only caches, filters and masks
    it), so each MERGE reads it as a stable source, without Delta's copy of it to disk."""
    definition = lh.settings.pipeline_definition()
    bronze_columns, silver_batches = {}, {}
    for name, source in definition.sources.items():
        bronze_ref = lh.resolve(source.bronze)
        bronze_version = bulk.current_version(lh.spark, bronze_ref)
        batch = lh.table(source.bronze, version=bronze_version.version).where(
            F.col("_batch_date") == F.lit(batch_date).cast("date")
        )
        run.add_input(
            source.bronze,
            format="delta",
            path=bronze_ref.uri,
            version=bronze_version.version,
            schema=schema_of(batch.schema),
        )
        bronze_columns[name] = set(batch.columns)
        silver_batches[name] = to_silver(batch, source.key, source.order_by)
    for name, silver_batch in before_merge(lh, silver_batches, run):
        source = definition.sources[name]
        silver_ref = lh.resolve(source.silver)
        version = bulk.upsert(
            lh.spark,
            silver_ref,
            silver_batch,
            source.key,
            newer_than=source.order_by,
            run_id=run.run_id,
            stable_source=True,
        )
        run.add_output(
            source.silver,
            format="delta",
            path=silver_ref.uri,
            version=version.version,
            rows=version.metric("numSourceRows", "numOutputRows"),
            bytes=version.bytes_written,
            files=version.files_written,
            schema=schema_of(silver_batch.schema),
            column_lineage={
                c: [ColumnSource(source.bronze, c)] for c in silver_batch.columns if c in bronze_columns[name]
            },
        )


GOLD_LINEAGE = {
    "gold.daily_revenue": {
        "order_date": [("silver.orders", "order_ts", "DIRECT", "TRANSFORMATION")],
        "country": [("silver.customers", "country", "DIRECT", "IDENTITY")],
        "category": [("silver.products", "category", "DIRECT", "IDENTITY")],
        "orders": [("silver.orders", "order_id", "DIRECT", "AGGREGATION")],
        "units": [("silver.order_items", "quantity", "DIRECT", "AGGREGATION")],
        "revenue": [
            ("silver.order_items", "quantity", "DIRECT", "AGGREGATION"),
            ("silver.order_items", "unit_price", "DIRECT", "AGGREGATION"),
            ("silver.orders", "status", "INDIRECT", "FILTER"),
        ],
    },
    "gold.customer_ltv": {
        "customer_id": [("silver.orders", "customer_id", "DIRECT", "IDENTITY")],
        "orders": [("silver.orders", "order_id", "DIRECT", "AGGREGATION")],
        "lifetime_value": [
            ("silver.order_items", "quantity", "DIRECT", "AGGREGATION"),
            ("silver.order_items", "unit_price", "DIRECT", "AGGREGATION"),
            ("silver.orders", "status", "INDIRECT", "FILTER"),
        ],
        "first_order_date": [("silver.orders", "order_ts", "DIRECT", "AGGREGATION")],
        "last_order_date": [("silver.orders", "order_ts", "DIRECT", "AGGREGATION")],
        "country": [("silver.customers", "country", "DIRECT", "IDENTITY")],
    },
}


def build_gold(lh: Lakehouse, run: JobRun, before_write: StepGate = _pass_through) -> None:
    """Rebuild ``gold.daily_revenue`` and ``gold.customer_ltv`` from the current silver tables.

    ``before_write`` sees both gold frames before the first is written."""
    frames = {}
    for name in ("silver.orders", "silver.order_items", "silver.products", "silver.customers"):
        ref = lh.resolve(name)
        version = bulk.current_version(lh.spark, ref)
        frames[name] = lh.table(name, version=version.version)
        run.add_input(
            name, format="delta", path=ref.uri, version=version.version, schema=schema_of(frames[name].schema)
        )
    outputs = {
        "gold.daily_revenue": daily_revenue(
            frames["silver.orders"],
            frames["silver.order_items"],
            frames["silver.products"],
            frames["silver.customers"],
        ),
        "gold.customer_ltv": customer_ltv(
            frames["silver.orders"], frames["silver.order_items"], frames["silver.customers"]
        ),
    }
    for name, frame in before_write(lh, outputs, run):
        ref = lh.resolve(name)
        version = bulk.overwrite(lh.spark, ref, frame, run_id=run.run_id)
        run.add_output(
            name,
            format="delta",
            path=ref.uri,
            version=version.version,
            rows=version.rows_written,
            bytes=version.bytes_written,
            files=version.files_written,
            schema=schema_of(frame.schema),
            column_lineage={
                column: [ColumnSource(*source) for source in sources]
                for column, sources in GOLD_LINEAGE[name].items()
            },
        )
