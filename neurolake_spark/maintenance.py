"""Table health: compaction (OPTIMIZE, optionally Z-ordered), VACUUM, RESTORE.

Each returns the commit it made, found by its tag (``run_id`` and an id of its own, see
:mod:`~neurolake_spark.table_formats`), never the newest commit of the table; operation
``NONE`` when it committed nothing (nothing to compact, nothing to vacuum).

Example::

    maintenance.optimize(lh, "silver.orders", zorder_by=["customer_id"])
    maintenance.vacuum(lh, "silver.orders", retention_hours=168)
    maintenance.restore(lh, "gold.daily_revenue", version=3)
"""

from __future__ import annotations

import time
from functools import partial

from delta.tables import DeltaTable

from neurolake_spark import bulk
from neurolake_spark.concurrency import run_concurrently
from neurolake_spark.errors import PipelineError
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.runs import JobRun
from neurolake_spark.table_formats import CommitTag, tagged_delta_operation
from neurolake_spark.testing_hooks import pause_at

SAFE_RETENTION_HOURS = 168


def optimize(
    lh: Lakehouse,
    name: str,
    where: str | None = None,
    zorder_by: list[str] | None = None,
    run_id: str | None = None,
) -> bulk.TableVersion:
    """Compact small files of a Delta table (only the partitions matching ``where``)."""
    ref = lh.resolve(name)

    def compact() -> None:
        builder = DeltaTable.forPath(lh.spark, ref.uri).optimize()
        if where:
            builder = builder.where(where)
        if zorder_by:
            builder.executeZOrderBy(*zorder_by)
        else:
            builder.executeCompaction()
        pause_at(f"optimize:{name}")

    return tagged_delta_operation(lh.spark, ref, compact, CommitTag(run_id))


def night_filter(lh: Lakehouse, name: str, batch_date: str | None) -> str | None:
    """The predicate of ``batch_date``'s partition when ``name`` is partitioned by batch date."""
    if batch_date and "_batch_date" in lh.resolve(name).definition.partition_by:
        return f"_batch_date = '{batch_date}'"
    return None


def optimize_tables(
    lh: Lakehouse,
    names: list[str],
    batch_date: str | None = None,
    zorder_by: list[str] | None = None,
    run_id: str | None = None,
) -> list[bulk.TableVersion]:
    """Compact the Delta tables ``names`` concurrently (only ``batch_date``'s partition of tables
    partitioned by batch date); the commits they made, in order."""
    return run_concurrently(
        lh.spark,
        [
            partial(
                optimize,
                lh,
                name,
                where=night_filter(lh, name, batch_date),
                zorder_by=zorder_by,
                run_id=run_id,
            )
            for name in names
        ],
        "optimize",
    )


def _younger_than(ref, hours: float) -> bool:
    """Whether the table's oldest commit is younger than ``hours``: then no file can be older."""
    commits = sorted((ref.path / "_delta_log").glob("*.json"))
    return bool(commits) and time.time() - commits[0].stat().st_mtime < hours * 3600


def vacuum(
    lh: Lakehouse,
    name: str,
    retention_hours: int | None = None,
    force: bool = False,
    run_id: str | None = None,
) -> bulk.TableVersion:
    """Delete files no version within ``retention_hours`` needs.

    A retention below 168 hours can break time travel and concurrent readers, so it is
    refused unless ``force`` is set (e.g. to complete an erasure request). A table whose
    first commit is younger than the retention holds no file old enough to delete, so
    the (costly) file listing is skipped.
    """
    hours = lh.settings.maintenance.vacuum_retention_hours if retention_hours is None else retention_hours
    if hours < SAFE_RETENTION_HOURS and not force:
        raise PipelineError(
            f"vacuum {name}: retention {hours}h is below the safe minimum of {SAFE_RETENTION_HOURS}h; "
            "pass force=True (--force) if no reader needs older versions"
        )
    ref = lh.resolve(name)
    tag = CommitTag(run_id)
    if _younger_than(ref, hours):
        return bulk.TableVersion(ref.name, bulk.current_version(lh.spark, ref).version, "NONE")
    check = {"spark.databricks.delta.retentionDurationCheck.enabled": None if not force else "false"}
    return tagged_delta_operation(
        lh.spark, ref, lambda: DeltaTable.forPath(lh.spark, ref.uri).vacuum(float(hours)), tag, check
    )


def restore(
    lh: Lakehouse,
    name: str,
    version: int | None = None,
    timestamp: str | None = None,
    run_id: str | None = None,
) -> bulk.TableVersion:
    """Roll a Delta table back to an earlier version or timestamp (a new commit)."""
    if (version is None) == (timestamp is None):
        raise PipelineError(f"restore {name}: give exactly one of a version or a timestamp")
    ref = lh.resolve(name)

    def roll_back() -> None:
        table = DeltaTable.forPath(lh.spark, ref.uri)
        if version is not None:
            table.restoreToVersion(int(version))
        else:
            table.restoreToTimestamp(timestamp)

    return tagged_delta_operation(lh.spark, ref, roll_back, CommitTag(run_id))


def nightly_maintenance(lh: Lakehouse, batch_date: str, run: JobRun) -> None:
    """Compact what the night wrote and vacuum every table with the configured retention
    (the tables concurrently).

    A table is recorded as an output of the run only when maintenance committed a new version
    (its last one), never another writer's commit.
    """
    settings = lh.settings.maintenance
    refs = {name: lh.resolve(name) for name in lh.tables.names()}
    names = [name for name, ref in refs.items() if ref.format == "delta" and bulk.exists(lh.spark, ref)]
    committed: dict[str, bulk.TableVersion] = {}
    if settings.optimize:
        committed.update(zip(names, optimize_tables(lh, names, batch_date, run_id=run.run_id)))
    if settings.vacuum:
        vacuums = [partial(vacuum, lh, name, run_id=run.run_id) for name in names]
        vacuumed = run_concurrently(lh.spark, vacuums, "vacuum")
        committed.update((n, v) for n, v in zip(names, vacuumed) if v.operation != "NONE")
    for name, version in committed.items():
        if version.operation != "NONE":
            run.add_output(name, format="delta", path=refs[name].uri, version=version.version)
