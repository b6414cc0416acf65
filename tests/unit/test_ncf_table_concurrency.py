"""Optimistic concurrency of NCF tables with real parallel processes (no Spark)."""

from __future__ import annotations

import multiprocessing

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ncf_datasource.table import ConcurrentModificationError, NCFTable, compact

SCHEMA = pa.schema([("id", pa.int64()), ("writer", pa.int64()), ("n", pa.int64())])
WRITERS = 3
ROUNDS = 4


def _append_rows(path: str, writer: int, barrier) -> None:
    table = NCFTable(path)
    barrier.wait()
    for i in range(ROUNDS):
        table.append(pa.table({"id": [writer * 100 + i], "writer": [writer], "n": [0]}, schema=SCHEMA))


def _increment(path: str, retries: int, results, barrier) -> None:
    table = NCFTable(path)
    barrier.wait()
    done = conflicts = 0
    for _ in range(ROUNDS):
        try:
            table.update(("id", "=", 0), {"n": pc.add(pc.field("n"), 1)}, retries=retries)
            done += 1
        except ConcurrentModificationError as exc:
            assert "conflicts with version" in str(exc)
            conflicts += 1
    results.put((done, conflicts))


def _compact_repeatedly(path: str, barrier) -> None:
    table = NCFTable(path)
    barrier.wait()
    for _ in range(ROUNDS):
        compact(table, target_file_mb=1, retries=20)


def _context():
    """Fresh interpreters (no fork of a process that may run a JVM), with imports done once."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pyarrow", "ncf_datasource.table", __name__])
    return ctx


def _run(*jobs: tuple) -> None:
    """Start one process per ``(target, *args)`` job, all released at once by a barrier."""
    ctx = _context()
    barrier = ctx.Barrier(len(jobs))
    processes = [ctx.Process(target=target, args=(*args, barrier)) for target, *args in jobs]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
        assert p.exitcode == 0, f"a writer process failed with exit code {p.exitcode}"


@pytest.fixture
def counter_table(tmp_path):
    table = NCFTable.create(tmp_path / "counter", SCHEMA)
    table.append(pa.table({"id": [0], "writer": [-1], "n": [0]}, schema=SCHEMA))
    return table


def test_concurrent_appends_never_conflict_and_lose_nothing(tmp_path):
    table = NCFTable.create(tmp_path / "t", SCHEMA)
    _run(*[(_append_rows, str(table.path), w) for w in range(WRITERS)])
    assert table.version == WRITERS * ROUNDS
    got = sorted(table.read().column("id").to_pylist())
    assert got == sorted(w * 100 + i for w in range(WRITERS) for i in range(ROUNDS))
    assert all(h["operation"] in ("APPEND", "CREATE") for h in table.history())


def test_concurrent_updates_with_retries_lose_no_update(counter_table):
    ctx = _context()
    results = ctx.Queue()
    _run(*[(_increment, str(counter_table.path), 50, results) for _ in range(WRITERS)])
    outcomes = [results.get(timeout=10) for _ in range(WRITERS)]
    assert sum(done for done, _ in outcomes) == WRITERS * ROUNDS
    assert counter_table.read().column("n").to_pylist() == [WRITERS * ROUNDS]


def test_concurrent_updates_without_retries_fail_clearly_and_count_exactly(counter_table):
    ctx = _context()
    results = ctx.Queue()
    _run(*[(_increment, str(counter_table.path), 0, results) for _ in range(WRITERS)])
    outcomes = [results.get(timeout=10) for _ in range(WRITERS)]
    done = sum(d for d, _ in outcomes)
    assert done + sum(c for _, c in outcomes) == WRITERS * ROUNDS
    # Every successful update is in the result; every conflicting one left no trace.
    assert counter_table.read().column("n").to_pylist() == [done]
    assert counter_table.read().num_rows == 1


def test_compaction_does_not_conflict_with_concurrent_appends(tmp_path):
    table = NCFTable.create(tmp_path / "t", SCHEMA)
    for i in range(6):
        table.append(pa.table({"id": [1000 + i], "writer": [-1], "n": [0]}, schema=SCHEMA))
    _run(
        (_append_rows, str(table.path), 0),
        (_append_rows, str(table.path), 1),
        (_compact_repeatedly, str(table.path)),
    )
    expected = sorted([1000 + i for i in range(6)] + [w * 100 + i for w in range(2) for i in range(ROUNDS)])
    assert sorted(table.read().column("id").to_pylist()) == expected
    assert any(h["operation"] == "COMPACT" for h in table.history())
