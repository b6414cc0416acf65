"""Table health: compaction (OPTIMIZE, optionally Z-ordered), VACUUM, RESTORE.

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
from neurolake_spark.session import temporary_conf
from neurolake_spark.testing_hooks import pause_at

SAFE_RETENTION_HOURS = 168


def optimize(
    lh: Lakehouse, name: str, where: str | None = None, zorder_by: list[str] | None = None
) -> bulk.TableVersion:
    """Compact small files of a Delta table (only the partitions matching ``where``)."""
    ref = lh.resolve(name)
    builder = DeltaTable.forPath(lh.spark, ref.uri).optimize()
    if where:
        builder = builder.where(where)
    if zorder_by:
        builder.executeZOrderBy(*zorder_by)
    else:
        builder.executeCompaction()
    pause_at(f"optimize:{name}")
    return bulk.current_version(lh.spark, ref)


def night_filter(lh: Lakehouse, name: str, batch_date: str | None) -> str | None:
    """The predicate of ``batch_date``'s partition when ``name`` is partitioned by batch date."""
    if batch_date and "_batch_date" in lh.resolve(name).definition.partition_by:
        return f"_batch_date = '{batch_date}'"
    return None


def optimize_tables(
    lh: Lakehouse, names: list[str], batch_date: str | None = None, zorder_by: list[str] | None = None
) -> list[bulk.TableVersion]:
    """Compact the Delta tables ``names`` concurrently (only ``batch_date``'s partition of tables
    partitioned by batch date); their new versions, in order."""
    return run_concurrently(
        lh.spark,
        [
            partial(optimize, lh, name, where=night_filter(lh, name, batch_date), zorder_by=zorder_by)
            for name in names
        ],
        "optimize",
    )


def _retention_check(lh: Lakehouse, enabled: bool):
    return temporary_conf(
        lh.spark, {"spark.databricks.delta.retentionDurationCheck.enabled": None if enabled else "false"}
    )


def _younger_than(ref, hours: float) -> bool:
    """Whether the table's oldest commit is younger than ``hours``: then no file can be older."""
    commits = sorted((ref.path / "_delta_log").glob("*.json"))
    return bool(commits) and time.time() - commits[0].stat().st_mtime < hours * 3600


def vacuum(
    lh: Lakehouse, name: str, retention_hours: int | None = None, force: bool = False
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
    if not _younger_than(ref, hours):
        with _retention_check(lh, enabled=not force):
            DeltaTable.forPath(lh.spark, ref.uri).vacuum(float(hours))
    return bulk.current_version(lh.spark, ref)


def restore(
    lh: Lakehouse, name: str, version: int | None = None, timestamp: str | None = None
) -> bulk.TableVersion:
    """Roll a Delta table back to an earlier version or timestamp (a new commit)."""
    if (version is None) == (timestamp is None):
        raise PipelineError(f"restore {name}: give exactly one of a version or a timestamp")
    ref = lh.resolve(name)
    table = DeltaTable.forPath(lh.spark, ref.uri)
    if version is not None:
        table.restoreToVersion(int(version))
    else:
        table.restoreToTimestamp(timestamp)
    return bulk.current_version(lh.spark, ref)


def nightly_maintenance(lh: Lakehouse, batch_date: str, run: JobRun) -> None:
    """Compact what the night wrote and vacuum every table with the configured retention
    (the tables concurrently).

    A table is recorded as an output of the run only when maintenance committed a new version.
    """
    settings = lh.settings.maintenance
    refs = {name: lh.resolve(name) for name in lh.tables.names()}
    names = [name for name, ref in refs.items() if ref.format == "delta" and bulk.exists(lh.spark, ref)]
    before = [bulk.current_version(lh.spark, refs[name]) for name in names]
    after = before
    if settings.optimize:
        after = optimize_tables(lh, names, batch_date)
    if settings.vacuum:
        after = run_concurrently(lh.spark, [partial(vacuum, lh, name) for name in names], "vacuum")
    for name, old, new in zip(names, before, after):
        if new.version != old.version:
            run.add_output(name, format="delta", path=refs[name].uri, version=new.version)
