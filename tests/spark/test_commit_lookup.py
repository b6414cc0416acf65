"""An operation reports its own commit, found by its tag, never another writer's.

Between an operation's write and the moment it looks up the version it committed, a second,
real writer (a thread appending through Delta or the ``ncf`` source) commits to the same
table. The hook point is the lookup of the project's own code (``delta_commit_of`` for Delta,
``NCFFormat._result`` for NCF): the test wraps it so the concurrent commit lands first, then
the lookup runs unchanged. The version reported, and recorded in lineage, must be the
caller's commit, tagged with its run id, not the newest one.
"""

from __future__ import annotations

import json
import threading

import pytest
from pyspark.sql import functions as F

from ncf_datasource.table import NCFTable
from neurolake_spark import bulk, maintenance, table_formats
from neurolake_spark.pipeline_config import TableDefinition
from neurolake_spark.tables import TableRef

SCHEMA = "id BIGINT, status STRING"
OTHER = "other-writer"


def frame(spark, rows):
    return spark.createDataFrame(rows, SCHEMA)


def run_id_of(ref: TableRef, version: int) -> str | None:
    """The run id the commit of ``version`` records (Delta ``userMetadata``, NCF parameters)."""
    if ref.format == "ncf":
        return NCFTable(ref.path).log.read(version)["parameters"].get("neurolake_run_id")
    log = ref.path / "_delta_log" / f"{version:020d}.json"
    for line in log.read_text().splitlines():
        info = json.loads(line).get("commitInfo")
        if info is not None:
            return json.loads(info.get("userMetadata") or "{}").get("neurolake_run_id")
    return None


@pytest.fixture
def concurrent_writer(spark, monkeypatch):
    """Make a second writer (a thread) commit to the table right before each version lookup."""
    landed: list[int] = []

    def other_writer(ref: TableRef) -> None:
        if threading.current_thread().name == OTHER:
            return  # the other writer's own lookup: no third writer

        def append() -> None:
            landed.append(
                bulk.insert(spark, ref, frame(spark, [(900 + len(landed), "other")]), "other").version
            )

        thread = threading.Thread(target=append, name=OTHER)
        thread.start()
        thread.join()

    lookup = table_formats.delta_commit_of

    def delta_lookup(ref, tag, after):
        other_writer(ref)
        return lookup(ref, tag, after)

    result = table_formats.NCFFormat._result

    def ncf_result(self, ref, version):
        other_writer(ref)
        return result(self, ref, version)

    monkeypatch.setattr(table_formats, "delta_commit_of", delta_lookup)
    monkeypatch.setattr(table_formats.NCFFormat, "_result", ncf_result)
    return landed


OPERATIONS = {
    "insert": lambda spark, ref: bulk.insert(spark, ref, frame(spark, [(5, "new")]), run_id="mine"),
    "overwrite_where": lambda spark, ref: bulk.overwrite_where(
        spark, ref, frame(spark, [(2, "replaced")]), "id = 2", run_id="mine"
    ),
    "upsert": lambda spark, ref: bulk.upsert(
        spark, ref, frame(spark, [(3, "merged")]), ["id"], run_id="mine"
    ),
    "update": lambda spark, ref: bulk.update(
        spark, ref, F.col("id") == 1, {"status": F.lit("updated")}, run_id="mine"
    ),
    "delete": lambda spark, ref: bulk.delete(spark, ref, F.col("id") == 4, run_id="mine"),
    "erase_keys": lambda spark, ref: bulk.erase_keys(spark, ref, "id", [3], run_id="mine"),
}


@pytest.mark.parametrize("fmt", ["delta", "ncf"])
def test_every_bulk_operation_reports_its_own_commit_not_a_concurrent_writers(
    spark, tmp_path, concurrent_writer, fmt
):
    ref = TableRef("silver.orders", tmp_path / fmt, TableDefinition(format=fmt))
    table_formats.table_format(ref).insert(
        spark, ref, frame(spark, [(i, "placed") for i in range(1, 5)]), table_formats.CommitTag("setup")
    )
    for name, operation in OPERATIONS.items():
        mine = operation(spark, ref)
        other = concurrent_writer[-1]
        assert other > mine.version, f"{name}: the other writer committed after the operation"
        assert mine.operation != "NONE" and run_id_of(ref, mine.version) == "mine", name
        assert run_id_of(ref, other) == "other", name
    assert bulk.current_version(spark, ref).version == concurrent_writer[-1]


def test_maintenance_reports_its_own_commit_not_a_concurrent_writers(
    spark, tmp_path, make_lakehouse, concurrent_writer
):
    lh = make_lakehouse(tmp_path)
    ref = lh.resolve("silver.orders")
    for i in range(3):  # three small files to compact
        bulk.insert(lh.spark, ref, frame(lh.spark, [(i, "placed")]))
    compacted = maintenance.optimize(lh, "silver.orders", run_id="mine")
    assert compacted.operation == "OPTIMIZE" and run_id_of(ref, compacted.version) == "mine"
    assert concurrent_writer[-1] > compacted.version
    restored = maintenance.restore(lh, "silver.orders", version=0, run_id="mine")
    assert restored.operation == "RESTORE" and run_id_of(ref, restored.version) == "mine"
    assert concurrent_writer[-1] > restored.version
