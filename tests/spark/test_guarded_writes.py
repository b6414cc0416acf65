"""Destructive commands need explicit intent, and run one at a time (real Spark, Delta, NCF).

``ncf delete/update``, the bulk fix files and ``erase`` parse their conditions with the restricted
language, refuse "every row" without ``--all-rows`` / ``"all_rows": true``, and print what they
would change with ``--dry-run``; nightly runs, steps, fixes, erasures, vacuums and restores take
run locks, so a second one fails fast and a forced vacuum cannot delete a writer's files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from ncf_datasource.table import NCFTable
from neurolake_spark import bulk
from neurolake_spark.cli import main
from neurolake_spark.locks import LockRegistry, date_lock_name, table_lock_name

DAY = "2026-11-24"


@pytest.fixture
def lh(make_lakehouse, tmp_path):
    return make_lakehouse(tmp_path / "wh")


def cli(lh, *args: str) -> int:
    return main([*args, "--set", f"storage.warehouse={lh.settings.warehouse}"])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("neurolake: error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture
def events(tmp_path) -> NCFTable:
    """An NCF table of 10 rows in two files."""
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    table = NCFTable.create(tmp_path / "events", schema)
    table.append(pa.table({"id": list(range(5)), "name": [f"n{i}" for i in range(5)]}, schema=schema))
    table.append(pa.table({"id": list(range(5, 10)), "name": [f"n{i}" for i in range(5, 10)]}, schema=schema))
    return table


def ids(table: NCFTable) -> list[int]:
    return sorted(table.read().column("id").to_pylist())


# ----------------------------------------------------------------------------- ncf delete / update


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("true", "the condition 'TRUE' is true for every row; pass --all-rows to delete every row"),
        ("1=1", "the condition '1 = 1' is true for every row"),
        ("id >= 0", "the condition 'id >= 0' matches every row (10 of 10); pass --all-rows"),
        ("reflect('java.lang.Thread', 'sleep', 10000) IS NULL", "function not allowed"),
        ("id = 1; DROP TABLE x", "';' (U+003B) at position 7"),
        ("idd = 1", "unknown column 'idd' (did you mean 'id'?)"),
    ],
)
def test_ncf_delete_refuses_every_row_and_hostile_conditions(lh, events, capsys, where, message):
    assert cli(lh, "ncf", "delete", str(events.path), "--where", where) == 2
    assert message in one_line_error(capsys)
    assert ids(events) == list(range(10))


def test_ncf_delete_dry_run_then_delete_then_all_rows(lh, events, capsys):
    assert cli(lh, "ncf", "delete", str(events.path), "--where", "id < 3", "--dry-run") == 0
    out = capsys.readouterr().out
    assert re.search(r": would delete 3 of 10 rows in 1 of 2 files\n  \S+\.ncf  3 rows\n$", out), out
    assert ids(events) == list(range(10))
    assert cli(lh, "ncf", "delete", str(events.path), "--where", "id < 3") == 0
    assert "(3 rows in 1 files)" in capsys.readouterr().out
    assert ids(events) == list(range(3, 10))
    assert cli(lh, "ncf", "delete", str(events.path), "--where", "true", "--all-rows") == 0
    assert ids(events) == []


def test_ncf_update_parses_assignments(lh, events, capsys):
    assert (
        cli(
            lh,
            "ncf",
            "update",
            str(events.path),
            "--where",
            "id IN (1, 2)",
            "--assign",
            "name = upper(name) ",
        )
        == 0
    )
    names = dict(zip(*events.read().to_pydict().values()))
    assert names[1] == "N1" and names[2] == "N2" and names[3] == "n3"
    code = cli(
        lh, "ncf", "update", str(events.path), "--where", "id = 1", "--assign", "name = java_method('a', 'b')"
    )
    assert code == 2 and "'java_method' at position 8" in one_line_error(capsys)
    assert cli(lh, "ncf", "update", str(events.path), "--where", "id > -1", "--assign", "name = 'x'") == 2
    assert "pass --all-rows to update every row" in one_line_error(capsys)
    assert (
        cli(
            lh,
            "ncf",
            "update",
            str(events.path),
            "--where",
            "id = DATE '2026-01-01'",
            "--assign",
            "name = 'x'",
        )
        == 2
    )
    assert "Spark cannot evaluate the condition" in one_line_error(capsys)


# ----------------------------------------------------------------------------- bulk fix files


@pytest.fixture
def orders(lh):
    frame = lh.spark.createDataFrame(
        [(i, i % 3, "new") for i in range(1, 7)], "order_id BIGINT, customer_id BIGINT, status STRING"
    )
    bulk.overwrite(lh.spark, lh.resolve("silver.orders"), frame)
    return lh


def write_fix(lh, name: str, fix: dict) -> None:
    folder = lh.settings.raw_dir / "fixes" / f"date={DAY}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(fix))


def statuses(lh) -> dict[int, str]:
    return {r.order_id: r.status for r in lh.table("silver.orders").collect()}


OK_FIX = {"op": "update", "table": "silver.orders", "where": "order_id = 1", "set": {"status": "'void'"}}


@pytest.mark.parametrize(
    ("fix", "code", "message"),
    [
        (
            {"op": "delete", "table": "silver.orders", "where": "reflect('a', 'b') = 1"},
            2,
            "where: function not allowed",
        ),
        (
            {
                "op": "update",
                "table": "silver.orders",
                "where": "order_id = 1",
                "set": {"status": "java_method('a')"},
            },
            2,
            "set status: function not allowed",
        ),
        (
            {"op": "delete", "table": "silver.payments", "where": "payment_id = 1"},
            1,
            "add it to sources.payments.fixable",
        ),
        (
            {"op": "delete", "table": "gold.customer_ltv", "where": "x = 1"},
            1,
            "only a source's bronze or silver table",
        ),
        (
            {"op": "delete", "table": "silver.orders", "where": "order_id = 1", "all_row": True},
            1,
            "unknown key(s) all_row",
        ),
    ],
)
def test_a_bad_fix_file_stops_the_fixes_before_any_applies(orders, capsys, fix, code, message):
    write_fix(orders, "000-ok.json", OK_FIX)
    write_fix(orders, "001-bad.json", fix)
    assert cli(orders, "fixes", "--date", DAY) == code
    error = one_line_error(capsys)
    assert "fix 001-bad.json" in error and message in error
    assert statuses(orders)[1] == "new"  # every file was parsed and checked before any was applied


@pytest.mark.parametrize(
    ("where", "message"),
    [("true", "is true for every row"), ("order_id > 0", "matches every row (6 of 6)")],
)
def test_a_fix_matching_every_row_needs_all_rows(orders, capsys, where, message):
    write_fix(orders, "001-all.json", {"op": "delete", "table": "silver.orders", "where": where})
    assert cli(orders, "fixes", "--date", DAY) == 2
    error = one_line_error(capsys)
    assert message in error and 'add "all_rows": true to the fix to delete every row' in error
    assert len(statuses(orders)) == 6
    write_fix(
        orders, "001-all.json", {"op": "delete", "table": "silver.orders", "where": where, "all_rows": True}
    )
    assert cli(orders, "fixes", "--date", DAY) == 0
    assert statuses(orders) == {}


def test_fixes_dry_run_then_apply(orders, capsys):
    write_fix(
        orders,
        "001-void.json",
        {"op": "update", "table": "silver.orders", "where": "order_id % 2 = 0", "set": {"status": "'void'"}},
    )
    write_fix(
        orders,
        "002-drop.json",
        {
            "op": "delete",
            "table": "silver.orders",
            "where": [
                {"column": "status", "op": "=", "value": "void"},
                {"column": "customer_id", "op": "=", "value": 0},
            ],
        },
    )
    assert cli(orders, "fixes", "--date", DAY, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "001-void.json: silver.orders: would update 3 of 6 rows" in out
    assert "002-drop.json: silver.orders: would delete 0 of 6 rows" in out  # nothing is void yet
    assert set(statuses(orders).values()) == {"new"}
    assert cli(orders, "fixes", "--date", DAY) == 0
    assert statuses(orders) == {1: "new", 2: "void", 3: "new", 4: "void", 5: "new"}  # 6 was void, customer 0


def test_erase_dry_run_prints_rows_per_file_and_changes_nothing(orders, capsys):
    assert (
        cli(
            orders,
            "erase",
            "--table",
            "silver.orders",
            "--key",
            "customer_id",
            "--values",
            "1,2",
            "--dry-run",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert re.fullmatch(
        r"silver\.orders: would erase 4 of 6 rows in \d of \d files\n(  part-\S+\.parquet  \d rows\n)+", out
    )
    assert sum(int(n) for n in re.findall(r"  (\d) rows", out)) == 4
    assert len(statuses(orders)) == 6


# ----------------------------------------------------------------------------- run locks


def holding(lh, name: str, what: str, exclusive: bool = False):
    return LockRegistry.for_settings(lh.settings).hold([name], what, "run-holder", exclusive=exclusive)


HELD = re.compile(r"is running \(run run-holder, pid \d+ on host \S+, since \d\d:\d\d:\d\d UTC\)$")


@pytest.mark.parametrize(
    "command",
    [
        ["nightly", "--date", DAY],
        ["step", "silver", "--date", DAY],
        ["fixes", "--date", DAY],
        ["erase", "--table", "silver.customers", "--key", "customer_id", "--values", "1"],
        ["table", "restore", "silver.orders", "--version", "0"],
        ["table", "vacuum", "silver.orders", "--retention-hours", "0", "--force"],
    ],
)
def test_a_running_nightly_stops_a_second_run_of_its_date_and_history_rewrites(lh, capsys, command):
    with holding(lh, date_lock_name(DAY), f"a nightly for {DAY}"):
        assert cli(lh, *command) == 75
    error = one_line_error(capsys)
    assert f"a nightly for {DAY} is running (run run-holder" in error and HELD.search(error.strip()), error


@pytest.mark.parametrize(
    "command",
    [["nightly", "--date", DAY], ["table", "optimize", "silver.customers"], ["fixes", "--date", DAY]],
)
def test_no_writer_starts_beside_an_erasure(lh, capsys, command):
    table = table_lock_name(lh.resolve("silver.customers").path)
    with holding(lh, table, "an erasure from silver.customers", exclusive=True):
        assert cli(lh, *command) == 75
    assert "an erasure from silver.customers is running (run run-holder" in one_line_error(capsys)


def test_no_backup_starts_beside_an_erasure(lh, capsys, tmp_path):
    """A backup holds its tables' locks: it never copies a table an erasure is rewriting."""
    table = table_lock_name(lh.resolve("silver.customers").path)
    with holding(lh, table, "an erasure from silver.customers", exclusive=True):
        assert cli(lh, "backup", "silver.customers", "--to", str(tmp_path / "backup")) == 75
    assert "an erasure from silver.customers is running (run run-holder" in one_line_error(capsys)
    assert not (tmp_path / "backup").exists()


def test_a_forced_vacuum_never_deletes_a_running_writers_uncommitted_file(lh, events, capsys):
    """A writer has written a data file and not yet committed it; a forced vacuum (retention 0)
    would delete that file, leaving the commit pointing at nothing. It must wait for the writer."""
    tx = events.begin("WRITE")
    pending = events.write_file(pa.table({"id": [10], "name": ["n10"]}), events.snapshot())
    tx.add(pending)
    with holding(lh, table_lock_name(events.path), f"an NCF update on {events.path}"):
        assert cli(lh, "ncf", "vacuum", str(events.path), "--retention-hours", "0", "--force") == 75
        assert "an NCF update on" in one_line_error(capsys)
    with holding(lh, date_lock_name(DAY), f"a nightly for {DAY}"):  # any registered writer
        assert cli(lh, "ncf", "vacuum", str(events.path), "--retention-hours", "0", "--force") == 75
        assert f"a nightly for {DAY} is running" in one_line_error(capsys)
    assert (Path(events.path) / pending.path).exists()
    tx.commit()
    assert ids(events) == list(range(11))
    assert cli(lh, "ncf", "vacuum", str(events.path), "--retention-hours", "0", "--force") == 0
    assert ids(events) == list(range(11))


def test_a_forced_vacuum_waits_for_a_running_stream_and_a_running_backup(lh, tmp_path, capsys, monkeypatch):
    """``neurolake stream`` writes files before it commits them and a backup copies the files of
    one version: both are registered under a lock while they run, so a forced vacuum (which
    would delete those files) stops at once, naming them. The vacuum is tried from inside each
    command, at the moment it writes or copies."""
    from neurolake_spark import backup, stream_ingest

    tried: list[int] = []
    vacuum = ["table", "vacuum", "--all", "--retention-hours", "0", "--force"]

    def during(original):
        """``original``, trying a forced vacuum the first time it is called."""
        calls = []

        def hooked(*args, **kwargs):
            if not calls:
                tried.append(cli(lh, *vacuum))
            calls.append(1)
            return original(*args, **kwargs)

        return hooked

    folder = lh.settings.raw_dir / "orders" / f"date={DAY}"
    folder.mkdir(parents=True)
    (folder / "part-0.csv").write_text(
        "order_id,customer_id,order_ts,status,updated_at\n1,5,2026-11-24 10:00:00,paid,2026-11-24 10:00:00\n"
    )
    monkeypatch.setattr(stream_ingest, "_append_once", during(stream_ingest._append_once))
    assert cli(lh, "stream", "--source", "orders", "--available-now") == 0
    assert tried == [75]
    assert "a stream of source orders is running (run " in one_line_error(capsys)

    monkeypatch.setattr(backup, "backup_table", during(backup.backup_table))
    assert cli(lh, "backup", "bronze.orders", "--to", str(tmp_path / "b1")) == 0
    assert tried == [75, 75]
    assert "a backup of bronze.orders is running (run " in one_line_error(capsys)
