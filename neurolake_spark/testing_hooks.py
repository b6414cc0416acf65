"""Test-only stop points: the crash tests make the pipeline stop at a named point and kill it there.

Nothing here acts in production. Every hook returns at once (one environment lookup) unless
**both** of these are set, the second naming an existing folder::

    NEUROLAKE_TEST_PAUSE_AT=commit:silver.orders      # the one point to stop at
    NEUROLAKE_TEST_PAUSE_DIR=/tmp/pause               # where the marker file goes

When the process reaches that point (the first time), it logs a warning, writes
``<dir>/paused.json`` (the point and its pid) and waits there, for at most
:data:`MAX_PAUSE_SECONDS`, after which it goes on as if nothing happened: a hook set by
mistake costs a delay, never data. The test waits for the marker and SIGKILLs the process
(``tests/e2e/test_crash_recovery.py``). The points:

``commit:<table>`` (:func:`hold_commit`, in ``bulk``'s overwrite, overwrite-where and upsert)
    inside the write of ``<table>``: the frame being written gets a partition more, empty,
    whose task waits. The marker is written once every other task of that stage has ended,
    so for an overwrite the data files of every other task are written and the commit is
    not; a MERGE reads its source first to find the files it touches, so there the MERGE
    is stopped in that scan, before it writes.
``optimize:<table>`` (:func:`pause_at`, in ``maintenance.optimize``)
    after ``<table>``'s compaction committed, while the night's other compactions run on in
    their threads.
``backup.copy:<table>`` (:func:`pause_at`, in ``backup.backup_table``)
    after the first file of ``<table>`` was copied into the backup folder, while the other
    tables' copies run on.

Example (what a test does)::

    env = {**os.environ, PAUSE_AT_ENV: "commit:bronze.orders", PAUSE_DIR_ENV: str(tmp_path)}
    process = subprocess.Popen([neurolake, "nightly", "--date", day], env=env, start_new_session=True)
    # wait for tmp_path / "paused.json", then os.killpg(process.pid, signal.SIGKILL)
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from neurolake_spark.atomic_files import write_atomic

if TYPE_CHECKING:  # for annotations only: pyspark stays out of the import when unused
    import pyarrow as pa
    from pyspark import SparkContext
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

PAUSE_AT_ENV = "NEUROLAKE_TEST_PAUSE_AT"
PAUSE_DIR_ENV = "NEUROLAKE_TEST_PAUSE_DIR"
MARKER = "paused.json"
MAX_PAUSE_SECONDS = 600.0
_POLL_SECONDS = 0.05
_fired: set[str] = set()
_fired_lock = threading.Lock()


def _armed(point: str) -> Path | None:
    """The marker folder when the hook names ``point`` (and it has not fired yet), else None."""
    if os.environ.get(PAUSE_AT_ENV) != point:
        return None
    folder = os.environ.get(PAUSE_DIR_ENV)
    if not folder or not Path(folder).is_dir():
        return None
    with _fired_lock:
        if point in _fired:
            return None
        _fired.add(point)
    log.warning("test hook %s=%s: stopping here (a test-only setting; unset it)", PAUSE_AT_ENV, point)
    return Path(folder)


def _announce(folder: Path, point: str) -> None:
    write_atomic(folder / MARKER, json.dumps({"point": point, "pid": os.getpid(), "at": time.time()}))


def _wait(seconds: float = MAX_PAUSE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)


def pause_at(point: str) -> None:
    """Stop here when the test hook names ``point``: write the marker and wait (see the module)."""
    folder = _armed(point)
    if folder is None:
        return
    _announce(folder, point)
    _wait()
    log.warning("test hook %s=%s: nobody killed this process; going on", PAUSE_AT_ENV, point)


def hold_commit(df: DataFrame, point: str) -> DataFrame:
    """``df`` itself; when the test hook names ``point``, ``df`` with an empty partition more whose
    task waits, so the job that evaluates it cannot end (see the module)."""
    folder = _armed(point)
    if folder is None:
        return df
    spark = df.sparkSession
    threading.Thread(
        target=_announce_when_alone, args=(spark.sparkContext, folder, point), daemon=True
    ).start()
    # One row in two slices: Spark unions frames of one partition each into one task, which would
    # put the waiting partition in the same task as the rows (a lone range slice would be one).
    waiting = spark.range(0, 1, 1, 2).mapInArrow(partial(_waiting_task, str(folder)), df.schema)
    return df.union(waiting)


def _waiting_task(folder: str, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The extra partitions' tasks (in a Python worker): the one given the row says which stage it
    is in and waits; both yield no rows."""
    from pyspark import TaskContext

    if sum(batch.num_rows for batch in batches):
        write_atomic(Path(folder) / "waiting-stage", str(TaskContext.get().stageId()))
        _wait()
    yield from ()


def _announce_when_alone(sc: SparkContext, folder: Path, point: str) -> None:
    """Write the marker once the waiting task is the only unfinished task of its stage."""
    stage_file = folder / "waiting-stage"
    deadline = time.monotonic() + MAX_PAUSE_SECONDS
    while time.monotonic() < deadline:
        if stage_file.exists():
            info = sc.statusTracker().getStageInfo(int(stage_file.read_text()))
            if info is not None and info.numCompletedTasks == info.numTasks - 1:
                _announce(folder, point)
                return
        time.sleep(_POLL_SECONDS)
