"""Streaming ingestion into bronze: exactly once across runs and replayed micro-batches."""

from __future__ import annotations

import os

from pyspark.sql import functions as F

from neurolake_spark.demo_data import generate_day
from neurolake_spark.ingest import read_raw
from neurolake_spark.stream_ingest import checkpoint_dir, stream_source
from neurolake_spark.transforms import CORRUPT_COLUMN

DAYS = ("2026-11-23", "2026-11-24")


def expected_counts(lh, day):
    source = lh.settings.pipeline_definition().sources["orders"]
    parsed = read_raw(lh, "orders", source, day).cache()
    row = parsed.agg(F.count(F.lit(1)).alias("read"), F.count(CORRUPT_COLUMN).alias("bad")).first()
    parsed.unpersist()
    return row["read"], row["bad"]


def bronze_count(lh, day):
    return lh.table("bronze.orders").where(F.col("_batch_date") == day).count()


def test_stream_ingest_lands_each_file_exactly_once(make_lakehouse, tmp_path):
    lh = make_lakehouse(tmp_path)
    generate_day(lh.settings.raw_dir, DAYS[0], scale=0.005, seed=7)
    (lh.settings.raw_dir / "orders" / f"date={DAYS[0]}" / "part-late.csv").write_text(
        "order_id,customer_id,order_ts,status,updated_at\n"
        "999001,5,2026-11-23 10:00:00,paid,2026-11-23 10:00:00\n"
        "999002,not-a-number,2026-11-23 10:00:00,paid,2026-11-23 10:00:00\n"
    )
    with lh.run("stream_ingest") as run:
        first = stream_source(lh, "orders", run, available_now=True)
    read, bad = expected_counts(lh, DAYS[0])
    assert (first.read, first.quarantined) == (read, bad) and bad > 0
    assert bronze_count(lh, DAYS[0]) == read - bad
    assert lh.table("quarantine.ingest").where("source = 'orders'").count() == bad
    assert run.outputs[0].name == "bronze.orders" and run.outputs[0].rows == read - bad

    generate_day(lh.settings.raw_dir, DAYS[1], scale=0.005, seed=8)
    # A crash after the Delta commits but before the checkpoint's commit replays the last batch.
    commits = checkpoint_dir(lh, "orders") / "commits"
    with lh.run("stream_ingest") as run:
        second = stream_source(lh, "orders", run, available_now=True)
    read2, bad2 = expected_counts(lh, DAYS[1])
    assert (second.read, second.quarantined) == (read2, bad2)
    last = max(int(n) for n in os.listdir(commits) if n.isdigit())
    for name in (str(last), f".{last}.crc"):
        (commits / name).unlink(missing_ok=True)
    with lh.run("stream_ingest") as run:
        stream_source(lh, "orders", run, available_now=True)
    assert bronze_count(lh, DAYS[0]) == read - bad
    assert bronze_count(lh, DAYS[1]) == read2 - bad2
    assert lh.table("quarantine.ingest").where("source = 'orders'").count() == bad + bad2
