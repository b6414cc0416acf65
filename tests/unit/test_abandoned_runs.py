"""Runs of a killed lock holder: listed in its lock record, reported aborted by whoever takes the lock over.

Real processes (the holder is SIGKILLed), the real SQLite catalog and OpenLineage client, no Spark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.locks import LockRecord, LockRegistry, OpenRun, date_lock_name, run_lock
from neurolake_spark.run_status import RunStatus
from tests.conftest import settings_for
from tests.openlineage_schema import validate_event

DAY = "2026-11-24"
HOLDER = """
import json, sys
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.locks import run_lock
from tests.conftest import settings_for

lh = Lakehouse(settings_for(sys.argv[1], **json.loads(sys.argv[2])))
nightly = lh.run("nightly", run_date=sys.argv[3])
with run_lock(lh.settings, "a nightly for " + sys.argv[3], nightly, dates=[sys.argv[3]]) as locks, nightly:
    ingest = lh.run("ingest", parent=nightly)
    with locks.running(ingest), ingest:
        pass
    silver = lh.run("silver", parent=nightly)
    with locks.running(silver), silver:
        ids = {"nightly": nightly.run_id, "ingest": ingest.run_id, "silver": silver.run_id}
        print(json.dumps(ids), flush=True)
        sys.stdin.read()
"""
ROOT = Path(__file__).resolve().parents[2]


def overrides(tmp_path: Path) -> dict:
    """The catalog, and a file of every event to check against the OpenLineage schema."""
    return {
        "lineage.transports": [
            {"type": "catalog"},
            {"type": "file", "location": str(tmp_path / "events.jsonl")},
        ],
        "lineage.namespace": "crash-test",
    }


def killed_nightly(tmp_path: Path) -> dict[str, str]:
    """Run ids of a nightly killed (SIGKILL) while its silver step ran; ingest had ended."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "wh"), json.dumps(overrides(tmp_path)), DAY],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    ids = json.loads(holder.stdout.readline())
    holder.kill()
    holder.wait(timeout=60)  # reaped: its pid is gone
    return ids


def test_a_killed_nightly_lists_its_open_runs_in_its_lock(tmp_path):
    ids = killed_nightly(tmp_path)
    settings = settings_for(tmp_path / "wh", **overrides(tmp_path))
    record = LockRegistry.for_settings(settings).current(date_lock_name(DAY))
    assert not record.released and record.owner == ids["nightly"]
    assert record.runs == (
        OpenRun(ids["nightly"], "nightly", None, DAY),
        OpenRun(ids["silver"], "silver", ids["nightly"], DAY),
    ), "the ended ingest step is no longer listed"


def test_the_run_that_takes_a_killed_nightlys_lock_reports_its_open_runs_aborted(tmp_path):
    ids = killed_nightly(tmp_path)
    lh = Lakehouse(settings_for(tmp_path / "wh", **overrides(tmp_path)))
    catalog = CatalogStore.from_settings(lh.settings)
    running = {r["run"]: r["state"] for r in catalog.list_runs(limit=10)}
    assert running == {
        ids["nightly"]: RunStatus.RUNNING,
        ids["ingest"]: RunStatus.SUCCESS,
        ids["silver"]: RunStatus.RUNNING,
    }

    rerun = lh.run("nightly", run_date=DAY)
    with run_lock(lh.settings, f"a nightly for {DAY}", rerun, dates=[DAY]), rerun:
        pass

    for name in ("nightly", "silver"):
        run = catalog.get_run(ids[name])
        assert run["state"] == RunStatus.ABORTED and run["ended"] is not None
        assert run["error"].startswith("abandoned: its process (pid ")
        assert f"run {rerun.run_id} took over lock {date_lock_name(DAY)}" in run["error"]
    assert catalog.get_run(ids["silver"])["parent"] == ids["nightly"]
    assert catalog.get_run(ids["ingest"])["state"] == RunStatus.SUCCESS, "an ended step stays as it ended"
    assert catalog.get_run(rerun.run_id)["state"] == RunStatus.SUCCESS
    assert not catalog.list_runs(status=RunStatus.RUNNING)
    catalog.close()

    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    aborts = [e for e in events if e["eventType"] == "ABORT"]
    assert [(e["job"]["name"], e["run"]["runId"]) for e in aborts] == [
        ("silver", ids["silver"]),
        ("nightly", ids["nightly"]),
    ], "children first, each once"
    for event in aborts:
        validate_event(event)
    assert aborts[0]["run"]["facets"]["parent"]["root"]["run"]["runId"] == ids["nightly"]


def test_a_released_lock_reports_nothing_and_a_second_takeover_none_again(tmp_path):
    ids = killed_nightly(tmp_path)
    lh = Lakehouse(settings_for(tmp_path / "wh", **overrides(tmp_path)))
    for _ in range(2):
        rerun = lh.run("nightly", run_date=DAY)
        with run_lock(lh.settings, f"a nightly for {DAY}", rerun, dates=[DAY]), rerun:
            pass
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sorted(e["run"]["runId"] for e in events if e["eventType"] == "ABORT") == sorted(
        [ids["nightly"], ids["silver"]]
    )


def test_a_notebooks_run_id_lists_no_runs(tmp_path):
    registry = LockRegistry(tmp_path)
    settings = settings_for(tmp_path / "wh", **{"locks.dir": str(tmp_path)})
    with run_lock(settings, "a notebook fix", "my-run", dates=[DAY]):
        assert registry.current(date_lock_name(DAY)).runs == ()


@pytest.mark.parametrize(
    "runs",
    [
        [{"run_id": "r1", "job": "nightly", "extra": 1}],
        [{"run_id": "../../x", "job": "nightly"}],
        [{"run_id": "r1", "job": 7}],
        ["r1"],
    ],
)
def test_a_record_with_malformed_runs_is_unreadable(runs):
    record = {
        "name": "nightly-2026-11-24",
        "what": "a nightly",
        "owner": "r1",
        "pid": 1,
        "host": "h",
        "started_at": 0.0,
        "heartbeat_at": 0.0,
        "token": "t",
        "runs": runs,
    }
    with pytest.raises((ValueError, TypeError)):
        LockRecord.from_json(json.dumps(record))


TABLES_HOLDER = """
import json, sys
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.locks import run_lock
from tests.conftest import settings_for

lh = Lakehouse(settings_for(sys.argv[1], **json.loads(sys.argv[2])))
backup = lh.run("backup")
tables = [lh.resolve(name).path for name in ("silver.orders", "silver.customers")]
with run_lock(lh.settings, "a backup of 2 tables", backup, tables=tables), backup:
    print(backup.run_id, flush=True)
    sys.stdin.read()
"""


def test_a_dead_holder_of_several_locks_has_its_run_reported_once(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", TABLES_HOLDER, str(tmp_path / "wh"), json.dumps(overrides(tmp_path))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    killed = holder.stdout.readline().strip()
    holder.kill()
    holder.wait(timeout=60)
    lh = Lakehouse(settings_for(tmp_path / "wh", **overrides(tmp_path)))
    rerun = lh.run("backup")
    tables = [lh.resolve(name).path for name in ("silver.orders", "silver.customers")]
    with run_lock(lh.settings, "a backup of 2 tables", rerun, tables=tables), rerun:
        pass
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    (abort,) = [e for e in events if e["eventType"] == "ABORT"]
    assert abort["run"]["runId"] == killed and abort["job"]["name"] == "backup"
    message = abort["run"]["facets"]["errorMessage"]["message"]
    assert message.count(f"pid {holder.pid} on host") == 1
    assert f"; run {rerun.run_id} took over 2 locks (table-customers-" in message
