"""Run locks with real processes: racing holders, a killed holder, a paused one, a heartbeat."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurolake_spark.cli import exit_code
from neurolake_spark.locks import (
    LockHeldError,
    LockRegistry,
    date_lock_name,
    table_lock_name,
)

NIGHTLY = date_lock_name("2026-11-24")
HOLDER = """
import sys
from neurolake_spark.locks import LockRegistry
registry = LockRegistry(sys.argv[1], stale_after=float(sys.argv[2]), heartbeat_every=float(sys.argv[3]))
with registry.hold([sys.argv[4]], "a nightly for 2026-11-24", "run-holder"):
    print("held", flush=True)
    sys.stdin.read()
print("released", flush=True)
"""


class Holder:
    """A separate Python process holding one lock until its stdin is closed."""

    def __init__(self, directory: Path, name: str, stale_after: float, heartbeat: float):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(directory), str(stale_after), str(heartbeat), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline() == "held\n"

    def release(self) -> None:
        self.process.stdin.close()
        assert self.process.stdout.readline() == "released\n"
        assert self.process.wait(timeout=60) == 0

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=60)  # reaped: its pid is gone


def eventually(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def can_take(registry: LockRegistry, name: str = NIGHTLY) -> bool:
    try:
        registry.acquire(name, "a nightly for 2026-11-24", "run-taker").release()
    except LockHeldError:
        return False
    return True


def _race(directory: str, barrier, results, done) -> None:
    registry = LockRegistry(Path(directory), stale_after=60, heartbeat_every=1)
    barrier.wait()
    try:
        with registry.hold([NIGHTLY], "a nightly for 2026-11-24", f"run-{os.getpid()}"):
            results.put(("won", os.getpid(), ""))
            done.wait(120)
    except LockHeldError as error:
        results.put(("held", os.getpid(), str(error)))


@pytest.mark.parametrize("round_", range(3))
def test_of_racing_processes_exactly_one_takes_the_lock(tmp_path, round_):
    context = multiprocessing.get_context("fork")
    racers = 6
    barrier, results, done = context.Barrier(racers), context.Queue(), context.Event()
    processes = [
        context.Process(target=_race, args=(str(tmp_path), barrier, results, done)) for _ in range(racers)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in range(racers)]
    done.set()
    for process in processes:
        process.join(timeout=60)
    winners = [pid for kind, pid, _ in outcomes if kind == "won"]
    assert len(winners) == 1, outcomes
    for kind, _, message in outcomes:
        if kind == "held":
            assert message.startswith(
                f"a nightly for 2026-11-24 is running (run run-{winners[0]}, pid {winners[0]} "
            )


def test_the_refusal_names_the_holder(tmp_path):
    registry = LockRegistry(tmp_path)
    with registry.hold([NIGHTLY], "a nightly for 2026-11-24", "5d0c1e2f-run"):
        with pytest.raises(LockHeldError) as error:
            registry.acquire(NIGHTLY, "step silver for 2026-11-24", "other-run")
    pattern = (
        r"a nightly for 2026-11-24 is running \(run 5d0c1e2f-run, pid (\d+) on host (\S+), "
        r"since \d\d:\d\d:\d\d UTC\)"
    )
    match = re.fullmatch(pattern, str(error.value))
    assert match and int(match[1]) == os.getpid() and match[2] == socket.gethostname()
    assert exit_code(error.value) == 75, "EX_TEMPFAIL: the command may be run again later"


def test_a_released_lock_is_taken_again_and_old_records_go(tmp_path):
    registry = LockRegistry(tmp_path)
    for _ in range(3):
        with registry.hold([NIGHTLY], "a nightly", "run"):
            assert registry.holder(NIGHTLY) is not None
        assert registry.holder(NIGHTLY) is None
    assert sorted(p.name for p in (tmp_path / NIGHTLY).iterdir()) == ["000000000003.json"]


def test_a_killed_holders_lock_is_taken_over_once_its_pid_is_gone(tmp_path):
    holder = Holder(tmp_path, NIGHTLY, stale_after=3600, heartbeat=60)
    registry = LockRegistry(tmp_path, stale_after=3600, heartbeat_every=60)
    assert not can_take(registry)
    holder.kill()
    assert can_take(registry)


def test_a_holder_that_stops_beating_is_taken_over_after_the_timeout_and_cannot_overwrite_its_successor(
    tmp_path,
):
    holder = Holder(tmp_path, NIGHTLY, stale_after=2, heartbeat=0.2)
    registry = LockRegistry(tmp_path, stale_after=2, heartbeat_every=0.2)
    try:
        assert not can_take(registry)
        os.kill(holder.process.pid, signal.SIGSTOP)  # alive, same host, but its heartbeat stops
        assert eventually(lambda: registry.holder(NIGHTLY) is None)
        successor = registry.acquire(NIGHTLY, "a nightly for 2026-11-24", "run-successor")
        os.kill(holder.process.pid, signal.SIGCONT)  # the old holder wakes up
        time.sleep(1.0)  # several of its heartbeat periods
        current = registry.current(NIGHTLY)
        assert current.owner == "run-successor" and current.token == successor.record.token
        successor.release()
    finally:
        os.kill(holder.process.pid, signal.SIGCONT)
        holder.kill()


def test_the_heartbeat_keeps_a_long_holder_alive(tmp_path):
    holder = Holder(tmp_path, NIGHTLY, stale_after=2, heartbeat=0.2)
    registry = LockRegistry(tmp_path, stale_after=2, heartbeat_every=0.2)
    deadline = time.monotonic() + 6  # three times the stale timeout
    while time.monotonic() < deadline:
        assert not can_take(registry)
        time.sleep(0.3)
    holder.release()
    assert can_take(registry)


def test_an_exclusive_holder_runs_alone(tmp_path):
    registry = LockRegistry(tmp_path)
    table = table_lock_name(tmp_path / "silver" / "customers")
    with registry.hold([NIGHTLY], "a nightly for 2026-11-24", "run-nightly"):
        with pytest.raises(LockHeldError, match="^a nightly for 2026-11-24 is running"):
            with registry.hold([table], "an erase on silver.customers", "run-erase", exclusive=True):
                pass
        assert registry.holder(table) is None and registry.holder("exclusive") is None  # all given back
    with registry.hold([table], "an erase on silver.customers", "run-erase", exclusive=True):
        with pytest.raises(LockHeldError, match="^an erase on silver.customers is running"):
            with registry.hold([NIGHTLY], "a nightly for 2026-11-24", "run-nightly"):
                pass
        assert registry.holder(NIGHTLY) is None


def test_a_table_has_one_lock_whatever_its_path_spelling(tmp_path):
    (tmp_path / "silver" / "events").mkdir(parents=True)
    name = table_lock_name(tmp_path / "silver" / "events")
    assert name.startswith("table-events-")
    assert table_lock_name(f"{tmp_path}/silver/../silver/events/") == name
    assert table_lock_name(f"file://{tmp_path}/silver/events") == name
    assert table_lock_name(tmp_path / "gold" / "events") != name


def test_lock_settings(tmp_path):
    from neurolake_spark.config import load_settings
    from neurolake_spark.errors import ConfigError
    from tests.conftest import LOCAL_CONF

    settings = load_settings(LOCAL_CONF, overrides={"storage.warehouse": str(tmp_path)})
    registry = LockRegistry.for_settings(settings)
    assert registry.directory == tmp_path / "_locks"
    assert (registry.stale_after, registry.heartbeat_every) == (300.0, 15.0)
    with pytest.raises(ConfigError, match="heartbeat_seconds must be shorter than locks.stale_after_seconds"):
        load_settings(LOCAL_CONF, overrides={"locks.heartbeat_seconds": 400})
