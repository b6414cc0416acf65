"""SIGKILL at a moment the run itself announces, then a rerun of the same date (issue 20, item 8).

Each scenario copies a snapshot of one uninterrupted baseline warehouse (the generator's two
days at scale 0.02, built once for the module), starts a real ``neurolake`` process in its own
session with the test-only hook :mod:`neurolake_spark.testing_hooks` naming a stop point,
waits for the marker the process writes there, and SIGKILLs every process of the session
(driver, JVM, Python workers). It checks the moment it killed in (files written and not
committed, some commits made and others not), then reruns the same date as an operator or
Airflow would, with the ``neurolake`` CLI in this process, and checks:

- every table, quarantine tables included, holds exactly the rows (values and multiplicity)
  of the uninterrupted baseline at the same point of the night, except the columns that say
  when and by which run a row was landed or quarantined (:data:`RUN_COLUMNS`);
- lineage says what happened: before the rerun the catalog shows the killed runs running
  (their START events arrived, their ends never will); the rerun takes the dead process's
  lock over and reports them aborted; no run is left running; the rerun's runs succeeded and
  name the same inputs and outputs as the baseline's.

The scenarios: the first night (tables created) killed while ingest commits ``bronze.orders``
(``neurolake nightly``); the second night's silver job (``neurolake step silver``, as the
Airflow DAG runs it) killed while writing ``quarantine.quality``, and the retry killed in turn
while it MERGEs ``silver.orders``, before a third run ends the date; its maintenance job after
``bronze.orders`` was compacted while the others compact; its backup job while copying
``silver.orders`` (the half-copied folder must never pass for a backup). Reruns of a step
compare with the baseline's snapshot after that step.

Cost: the baseline is two nights run in this process, then each scenario one ``neurolake``
process per kill up to its stop point (its JVM start is most of that) and one rerun in this
process. The baseline is about a third of the file's time (figures in docs/security.md,
section 8).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame

from neurolake_spark.backup import BackupError, restore
from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.cli import main
from neurolake_spark.demo_data import generate_day
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.locks import LockRegistry, OpenRun, date_lock_name, table_lock_name
from neurolake_spark.run_status import RunStatus
from neurolake_spark.testing_hooks import MARKER, PAUSE_AT_ENV, PAUSE_DIR_ENV
from tests.conftest import LOCAL_CONF, SCALE, settings_for

ROOT = Path(__file__).resolve().parents[2]
DAY1, DAY2 = "2026-11-23", "2026-11-24"
NAMESPACE = "neurolake-crash-test"
STEPS = ("ingest", "silver", "gold", "maintenance")
RUN_COLUMNS = {
    # A rerun lands the same raw rows again: at another time, under its own run id.
    "bronze": ("_ingested_at", "_run_id"),
    "quarantine.ingest": ("_ingested_at", "_run_id"),
    # A rerun quarantines the same rows again: at another time, under its own run id.
    "quarantine.quality": ("_quarantined_at", "run_id"),
}
KILL_TIMEOUT = 1200.0


@dataclass
class Baseline:
    """The raw files both days share and snapshots of the uninterrupted warehouse: ``day1``,
    then ``day2-<step>`` after each step of the second night (``day2-maintenance`` is the end)."""

    root: Path
    raw: Path
    snapshots: dict[str, Path]

    def copy(self, snapshot: str, name: str) -> Path:
        target = self.root / name
        shutil.copytree(self.snapshots[snapshot], target)
        return target


def options(warehouse: Path, raw: Path) -> list[str]:
    """The same settings for the baseline, the killed process and the rerun: one raw folder (so
    ``_source_file`` agrees) and one lineage namespace, whatever the warehouse's path."""
    return [
        "--conf-file",
        str(LOCAL_CONF),
        "--set",
        f"storage.warehouse={warehouse}",
        "--set",
        f"storage.raw={raw}",
        "--set",
        f"lineage.namespace={NAMESPACE}",
        "--set",
        "spark.shuffle_partitions=2",
    ]


def neurolake(warehouse: Path, raw: Path, *args: str) -> None:
    """Run a ``neurolake`` command in this process (its Spark session is the tests' one)."""
    assert main([*args, *options(warehouse, raw)]) == 0, args


def settings(warehouse: Path, raw: Path):
    return settings_for(warehouse, **{"storage.raw": str(raw), "lineage.namespace": NAMESPACE})


@pytest.fixture(scope="module")
def baseline(spark, tmp_path_factory) -> Baseline:
    root = tmp_path_factory.mktemp("crash")
    raw, warehouse = root / "raw", root / "baseline"
    seed = settings(warehouse, raw).generator.seed
    for day in (DAY1, DAY2):
        generate_day(raw, day, scale=SCALE, seed=seed)
    snapshots = {}
    neurolake(warehouse, raw, "nightly", "--date", DAY1)
    snapshots["day1"] = root / "snapshot-day1"
    shutil.copytree(warehouse, snapshots["day1"])
    for step in STEPS:
        neurolake(warehouse, raw, "step", step, "--date", DAY2)
        snapshots[f"day2-{step}"] = root / f"snapshot-day2-{step}"
        shutil.copytree(warehouse, snapshots[f"day2-{step}"])
    return Baseline(root, raw, snapshots)


# ------------------------------------------------------------------------- killing


def session_members(session: int) -> list[int]:
    """The live (not zombie) processes of a session: the driver, its JVM, Python workers."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL every process of ``process``'s session: its group (driver and JVM) first, then
    the Python workers, which Spark's daemon puts in a group of their own."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    deadline = time.monotonic() + 60
    while left := session_members(process.pid):
        assert time.monotonic() < deadline, f"processes {left} survived SIGKILL"
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


@dataclass
class Killed:
    """A process killed at ``point``; ``log`` holds its output."""

    point: str
    pid: int
    log: Path


def kill_at(point: str, warehouse: Path, raw: Path, *args: str) -> Killed:
    """Start ``neurolake <args>`` in a session of its own, wait until it announces ``point`` (the
    marker of :mod:`neurolake_spark.testing_hooks`), then SIGKILL the whole session."""
    stem = f"{warehouse.name}-{point.replace(':', '-')}"
    pause = warehouse.parent / f"{stem}-pause"
    pause.mkdir()
    log = warehouse.parent / f"{stem}.log"
    env = {**os.environ, PAUSE_AT_ENV: point, PAUSE_DIR_ENV: str(pause)}
    command = [sys.executable, "-m", "neurolake_spark.cli", *args, *options(warehouse, raw)]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [*command, "--set", "spark.driver_memory=1g"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + KILL_TIMEOUT
        while not (pause / MARKER).exists():
            code = process.poll()
            assert code is None, f"{args} ended ({code}) before {point}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{args} never reached {point}:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
    finally:
        kill_session(process)
    return Killed(point, process.pid, log)


# ------------------------------------------------------------------------- checks


def without_run_columns(lh: Lakehouse, name: str) -> DataFrame:
    """The table without :data:`RUN_COLUMNS`."""
    return lh.table(name).drop(*RUN_COLUMNS.get(name, RUN_COLUMNS.get(name.split(".")[0], ())))


def assert_same_tables(spark, warehouse: Path, expected: Path, raw: Path, *, every_row: bool = False) -> None:
    """Every table of ``expected`` is in ``warehouse`` with the same rows (values and multiplicity).

    A table whose Delta log is the same, commit for commit, as the expected one's (a table the
    step does not write, in a warehouse copied from a snapshot) holds the same rows: its rows are
    only compared with ``every_row`` (a restored backup, whose data files are copies)."""
    ours = Lakehouse(settings(warehouse, raw), spark=spark)
    theirs = Lakehouse(settings(expected, raw), spark=spark)
    differences = []
    for name in theirs.tables.names():
        if not every_row and commits(warehouse, name) == commits(expected, name):
            continue
        try:
            assert_df_equality(
                without_run_columns(ours, name),
                without_run_columns(theirs, name),
                ignore_row_order=True,
                ignore_nullable=True,
            )
        except AssertionError as error:
            differences.append(f"{name}: {error}")
    assert not differences, "\n".join(differences)


def commit_files(warehouse: Path, name: str) -> list[Path]:
    layer, table = name.split(".")
    return sorted((warehouse / layer / table / "_delta_log").glob("[0-9]" * 20 + ".json"))


def commits(warehouse: Path, name: str) -> list[bytes]:
    """The table's Delta commits, byte for byte."""
    return [path.read_bytes() for path in commit_files(warehouse, name)]


def delta_versions(warehouse: Path, name: str) -> list[int]:
    return [int(path.stem) for path in commit_files(warehouse, name)]


def data_files(warehouse: Path, name: str) -> set[str]:
    layer, table = name.split(".")
    folder = warehouse / layer / table
    return {str(p.relative_to(folder)) for p in folder.rglob("part-*.parquet")}


@pytest.fixture
def catalog_of() -> Iterator:
    opened = []

    def open_catalog(warehouse: Path, raw: Path) -> CatalogStore:
        opened.append(CatalogStore.from_settings(settings(warehouse, raw), create=False))
        return opened[-1]

    yield open_catalog
    for store in opened:
        store.close()


def open_runs(warehouse: Path, raw: Path, lock: str) -> tuple[OpenRun, ...]:
    """The runs the killed process listed as open in ``lock``'s record (it never released it)."""
    record = LockRegistry.for_settings(settings(warehouse, raw)).current(lock)
    assert record is not None and not record.released
    return record.runs


def assert_running(catalog: CatalogStore, runs: tuple[OpenRun, ...]) -> None:
    for run in runs:
        assert catalog.get_run(run.run_id)["state"] == RunStatus.RUNNING, run


def assert_aborted_and_rerun(
    catalog: CatalogStore, baseline: CatalogStore, killed: tuple[OpenRun, ...], jobs: list[str], day: str
) -> None:
    """The killed runs are aborted, no run is left running, and the newest run of each of ``jobs``
    succeeded with the inputs and outputs of the baseline's run of that job for ``day``."""
    for run in killed:
        info = catalog.get_run(run.run_id)
        assert info["state"] == RunStatus.ABORTED and info["error"].startswith("abandoned: its process"), info
    assert not catalog.list_runs(status=RunStatus.RUNNING, limit=100)
    for job in jobs:
        rerun = catalog.list_runs(job=job, limit=1)[0]
        assert rerun["state"] == RunStatus.SUCCESS and rerun["run_date"] == day, rerun
        expected = next(r for r in baseline.list_runs(job=job, limit=10) if r["run_date"] == day)
        for role in ("inputs", "outputs"):
            assert datasets(catalog, rerun["run"], role) == datasets(baseline, expected["run"], role), (
                job,
                role,
            )


def datasets(catalog: CatalogStore, run_id: str, role: str) -> set[str]:
    return {d["dataset"] for d in catalog.get_run(run_id)[role]}


# ------------------------------------------------------------------------- scenarios


def test_first_night_killed_while_ingest_commits_bronze(spark, baseline, catalog_of):
    warehouse = baseline.root / "killed-ingest"
    killed = kill_at("commit:bronze.orders", warehouse, baseline.raw, "nightly", "--date", DAY1)
    # The moment: bronze.orders' data files written, its first commit not.
    assert data_files(warehouse, "bronze.orders") and not delta_versions(warehouse, "bronze.orders")
    runs = open_runs(warehouse, baseline.raw, date_lock_name(DAY1))
    assert [r.job for r in runs] == ["nightly", "ingest"] and runs[1].parent == runs[0].run_id
    assert_running(catalog_of(warehouse, baseline.raw), runs)

    neurolake(warehouse, baseline.raw, "nightly", "--date", DAY1)

    assert_same_tables(spark, warehouse, baseline.snapshots["day1"], baseline.raw)
    assert_aborted_and_rerun(
        catalog_of(warehouse, baseline.raw),
        catalog_of(baseline.snapshots["day1"], baseline.raw),
        runs,
        ["nightly", *STEPS],
        DAY1,
    )
    assert f"pid {killed.pid} on host" in catalog_of(warehouse, baseline.raw).get_run(runs[0].run_id)["error"]


def test_silver_job_killed_in_quarantine_write_then_its_rerun_killed_in_merge(spark, baseline, catalog_of):
    """Two crashes in a row before the date is run to its end: the quality gate's quarantine write,
    then the rerun's MERGE into silver.orders (one silver rerun for both moments)."""
    warehouse = baseline.copy("day2-ingest", "killed-silver")
    gated = ["quarantine.quality", "silver.customers", "silver.products"]
    merged_later = ["silver.orders", "silver.order_items", "silver.payments"]
    before = {name: delta_versions(warehouse, name)[-1] for name in gated + merged_later}
    files_before = data_files(warehouse, "quarantine.quality")

    kill_at("commit:quarantine.quality", warehouse, baseline.raw, "step", "silver", "--date", DAY2)
    # The moment: the gate's quarantine files written, not committed; no MERGE began.
    assert data_files(warehouse, "quarantine.quality") - files_before, "its data files are written"
    assert {name: delta_versions(warehouse, name)[-1] for name in before} == before
    first = open_runs(warehouse, baseline.raw, date_lock_name(DAY2))
    assert [r.job for r in first] == ["silver"]
    assert_running(catalog_of(warehouse, baseline.raw), first)

    kill_at("commit:silver.orders", warehouse, baseline.raw, "step", "silver", "--date", DAY2)
    # The moment: quarantine and the first MERGEs committed, the one into silver.orders in flight.
    for name in gated:
        assert delta_versions(warehouse, name)[-1] > before[name], name
    for name in merged_later:
        assert delta_versions(warehouse, name)[-1] == before[name], name
    second = open_runs(warehouse, baseline.raw, date_lock_name(DAY2))
    assert [r.job for r in second] == ["silver"] and second != first
    catalog = catalog_of(warehouse, baseline.raw)
    assert catalog.get_run(first[0].run_id)["state"] == RunStatus.ABORTED, "the second took the lock over"
    assert_running(catalog, second)

    neurolake(warehouse, baseline.raw, "step", "silver", "--date", DAY2)

    assert_same_tables(spark, warehouse, baseline.snapshots["day2-silver"], baseline.raw)
    assert_aborted_and_rerun(
        catalog_of(warehouse, baseline.raw),
        catalog_of(baseline.snapshots["day2-silver"], baseline.raw),
        first + second,
        ["silver"],
        DAY2,
    )


def test_maintenance_job_killed_while_tables_compact(spark, baseline, catalog_of):
    warehouse = baseline.copy("day2-gold", "killed-optimize")
    before = delta_versions(warehouse, "bronze.orders")[-1]
    kill_at("optimize:bronze.orders", warehouse, baseline.raw, "step", "maintenance", "--date", DAY2)
    assert delta_versions(warehouse, "bronze.orders")[-1] == before + 1, "its compaction is committed"
    runs = open_runs(warehouse, baseline.raw, date_lock_name(DAY2))
    assert [r.job for r in runs] == ["maintenance"]
    assert_running(catalog_of(warehouse, baseline.raw), runs)

    neurolake(warehouse, baseline.raw, "step", "maintenance", "--date", DAY2)

    assert_same_tables(spark, warehouse, baseline.snapshots["day2-maintenance"], baseline.raw)
    catalog = catalog_of(warehouse, baseline.raw)
    for run in runs:
        assert catalog.get_run(run.run_id)["state"] == RunStatus.ABORTED
    assert not catalog.list_runs(status=RunStatus.RUNNING, limit=100)
    assert catalog.list_runs(job="maintenance", limit=1)[0]["state"] == RunStatus.SUCCESS


def test_backup_job_killed_while_copying(spark, baseline, catalog_of, tmp_path):
    warehouse = baseline.copy("day2-maintenance", "killed-backup")
    backups = baseline.root / "backups"
    first, second = backups / "try1", backups / "try2"
    kill_at(
        "backup.copy:silver.orders",
        warehouse,
        baseline.raw,
        "backup",
        "--all",
        "--to",
        str(first),
        "--date",
        DAY2,
    )
    lh = Lakehouse(settings(warehouse, baseline.raw), spark=spark)
    # The moment: silver.orders' copy begun, the manifest (written last) not.
    assert (
        list((first / "tables" / "silver" / "orders").rglob("*")) and not (first / "manifest.json").exists()
    )
    with pytest.raises(BackupError, match="is not a complete backup: manifest.json is missing"):
        restore(lh, first, tmp_path / "from-try1")
    assert not (tmp_path / "from-try1").exists(), "nothing restored from a half-copied backup"
    runs = open_runs(warehouse, baseline.raw, table_lock_name(lh.resolve("silver.orders").path))
    assert [r.job for r in runs] == ["backup"]
    assert_running(catalog_of(warehouse, baseline.raw), runs)

    neurolake(warehouse, baseline.raw, "backup", "--all", "--to", str(second), "--date", DAY2)

    restored = tmp_path / "restored"
    neurolake(warehouse, baseline.raw, "restore", str(second), "--to", str(restored))
    assert_same_tables(spark, restored, baseline.snapshots["day2-maintenance"], baseline.raw, every_row=True)
    catalog = catalog_of(warehouse, baseline.raw)
    assert catalog.get_run(runs[0].run_id)["state"] == RunStatus.ABORTED
    assert not catalog.list_runs(status=RunStatus.RUNNING, limit=100)
    assert catalog.list_runs(job="backup", limit=1)[0]["state"] == RunStatus.SUCCESS
