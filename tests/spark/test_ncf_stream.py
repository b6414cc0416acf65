"""Structured Streaming from an NCF table into NCF and Delta, with a restart in the middle."""

from __future__ import annotations

import os
from dataclasses import replace

import pyarrow as pa
import pytest
from chispa import assert_df_equality

from ncf_datasource.spark.options import NCFOptions
from ncf_datasource.spark.stream import NCFStreamWriter
from ncf_datasource.table import NCFTable

SCHEMA = pa.schema([("id", pa.int64()), ("batch", pa.int64())])


def append(table: NCFTable, batch: int, n: int = 3) -> None:
    table.append(pa.table({"id": [batch * 100 + i for i in range(n)], "batch": [batch] * n}, schema=SCHEMA))


def start(spark, source, sink_format, sink, checkpoint, **trigger):
    stream = spark.readStream.format("ncf").option("maxFilesPerTrigger", 1).load(str(source))
    return (
        stream.writeStream.format(sink_format)
        .option("checkpointLocation", str(checkpoint))
        .trigger(**trigger)
        .start(str(sink))
    )


def test_stream_into_ncf_and_delta_exactly_once_across_a_restart(spark, tmp_path):
    source = NCFTable.create(tmp_path / "source", SCHEMA)
    for b in range(3):
        append(source, b)
    for fmt in ("ncf", "delta"):
        first = start(
            spark, source.path, fmt, tmp_path / f"sink_{fmt}", tmp_path / f"chk_{fmt}", availableNow=True
        )
        first.awaitTermination(300)
        assert first.exception() is None
        # A crash after the sink's commit but before the checkpoint's: the restart replays the batch.
        commits = tmp_path / f"chk_{fmt}" / "commits"
        last = max(int(n) for n in os.listdir(commits) if n.isdigit())
        for name in (str(last), f".{last}.crc"):
            (commits / name).unlink(missing_ok=True)
    for b in range(3, 5):
        append(source, b)
    source.compact(target_file_mb=1)  # compaction adds no rows to the stream
    for fmt in ("ncf", "delta"):
        again = start(
            spark, source.path, fmt, tmp_path / f"sink_{fmt}", tmp_path / f"chk_{fmt}", availableNow=True
        )
        again.awaitTermination(300)
        assert again.exception() is None
        sink = spark.read.format(fmt).load(str(tmp_path / f"sink_{fmt}"))
        expected = spark.read.format("ncf").load(str(source.path))
        assert_df_equality(sink, expected, ignore_row_order=True, ignore_nullable=True)
    batches = [h for h in NCFTable(tmp_path / "sink_ncf").history() if h["operation"] == "STREAMING UPDATE"]
    assert len(batches) == 5  # maxFilesPerTrigger=1: one micro-batch per source commit


def test_a_replayed_micro_batch_is_not_committed_twice(spark, tmp_path):
    sink = tmp_path / "sink"
    writer = NCFStreamWriter(
        str(sink),
        spark.range(1).schema,
        False,
        NCFOptions.parse({"checkpointLocation": str(tmp_path / "chk")}),
    )
    batches = [pa.RecordBatch.from_pydict({"id": [1, 2]})]
    writer.commit([writer.write(iter(batches))], 0)
    replayed = writer.write(iter(batches))
    writer.commit([replayed], 0)
    table = NCFTable(sink)
    assert table.version == 0 and table.read().num_rows == 2
    assert not (sink / replayed.files[0]["path"]).exists()
    writer.commit([writer.write(iter(batches))], 1)
    assert table.read().num_rows == 4 and table.snapshot().txns == {str(tmp_path / "chk"): 1}


def test_a_new_query_reads_the_current_table_then_new_commits(spark, tmp_path):
    source = NCFTable.create(tmp_path / "source", SCHEMA)
    append(source, 0)
    source.delete(("id", "=", 1))
    append(source, 1)
    query = start(spark, source.path, "ncf", tmp_path / "sink", tmp_path / "chk", availableNow=True)
    query.awaitTermination(300)
    assert query.exception() is None
    append(source, 2)
    again = start(spark, source.path, "ncf", tmp_path / "sink", tmp_path / "chk", availableNow=True)
    again.awaitTermination(300)
    assert again.exception() is None
    assert sorted(r["id"] for r in spark.read.format("ncf").load(str(tmp_path / "sink")).collect()) == [
        0,
        2,
        100,
        101,
        102,
        200,
        201,
        202,
    ]


def test_a_source_commit_that_deletes_rows_stops_the_stream_unless_skipped(spark, tmp_path):
    source = NCFTable.create(tmp_path / "source", SCHEMA)
    append(source, 0)
    source.delete(("id", "=", 1))
    append(source, 1)

    def replay(checkpoint, sink, **options):
        reader = spark.readStream.format("ncf").option("startingVersion", 0)
        for key, value in options.items():
            reader = reader.option(key, value)
        return (
            reader.load(str(source.path))
            .writeStream.format("ncf")
            .option("checkpointLocation", str(tmp_path / checkpoint))
            .trigger(availableNow=True)
            .start(str(tmp_path / sink))
        )

    with pytest.raises(Exception, match="skipChangeCommits"):
        replay("chk", "sink").awaitTermination(300)
    replay("chk2", "sink2", skipChangeCommits="true").awaitTermination(300)
    assert sorted(r["id"] for r in spark.read.format("ncf").load(str(tmp_path / "sink2")).collect()) == [
        0,
        1,
        2,
        100,
        101,
        102,
    ]


def test_a_bad_starting_version_is_a_clear_error(spark, tmp_path):
    source = NCFTable.create(tmp_path / "source", SCHEMA)
    append(source, 0)
    reader = spark.readStream.format("ncf").option("startingVersion", "yesterday")
    with pytest.raises(Exception, match="startingVersion must be a version number or 'latest'"):
        reader.load(str(source.path))  # at once: the source parses its options when it is created


def test_a_commit_naming_a_file_outside_the_table_stops_the_stream_without_reading_it(spark, tmp_path):
    """A commit made after the query started whose ``add`` path climbs out of the table (here
    into a neighbour table's file) is a corrupt table, not a micro-batch of the neighbour's rows."""
    source = NCFTable.create(tmp_path / "source", SCHEMA)
    append(source, 0)
    neighbour = NCFTable.create(tmp_path / "neighbour", SCHEMA)
    append(neighbour, 7)
    query = (
        spark.readStream.format("ncf")
        .load(str(source.path))
        .writeStream.format("memory")
        .queryName("escape_probe")
        .option("checkpointLocation", str(tmp_path / "chk"))
        .start()
    )
    try:
        query.processAllAvailable()
        (outside,) = neighbour.snapshot().files.values()
        tx = source.begin("APPEND")
        tx.add(replace(outside, path=f"../neighbour/{outside.path}"))
        tx.commit()
        with pytest.raises(Exception, match="corrupt table"):
            query.processAllAvailable()
        assert sorted(r["batch"] for r in spark.table("escape_probe").collect()) == [0, 0, 0]
    finally:
        query.stop()
