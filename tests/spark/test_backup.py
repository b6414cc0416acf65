"""Backups and verified restores of Delta tables and the SQLite catalog (real Spark, real Delta)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from chispa import assert_df_equality

from neurolake_spark import backup, bulk
from neurolake_spark.cli import main

TABLES = ["bronze.customers", "silver.orders", "gold.daily_revenue"]


@pytest.fixture(scope="module")
def backed_up(nightly_warehouse, tmp_path_factory):
    lh, _ = nightly_warehouse
    folder = tmp_path_factory.mktemp("backup") / "b1"
    manifest = backup.backup_tables(lh, TABLES, folder)
    return lh, folder, manifest


def _wh(lh) -> str:
    return f"storage.warehouse={lh.settings.warehouse}"


def test_backup_records_the_current_version_rows_and_checksums_of_each_table(backed_up):
    lh, folder, manifest = backed_up
    assert sorted(manifest["tables"]) == sorted(TABLES)
    for name, entry in manifest["tables"].items():
        ref = lh.resolve(name)
        assert entry["version"] == bulk.current_version(lh.spark, ref).version
        assert entry["rows"] == lh.table(name).count()
        data_files = {f for f in entry["files"] if not f.startswith("_delta_log/")}
        live = {
            Path(p).relative_to(ref.path).as_posix()
            for p in (u.removeprefix("file:") for u in lh.table(name).inputFiles())
        }
        assert data_files == live
        for relative, expected in entry["files"].items():
            assert (
                backup.sha256_of(folder / "tables" / name.replace(".", "/") / relative) == expected["sha256"]
            )
    assert manifest["catalog"]["file"] == "catalog.db"


def test_restore_with_verify_gives_equal_tables_and_catalog(backed_up, tmp_path, capsys):
    lh, folder, manifest = backed_up
    target = tmp_path / "restored"
    code = main(["restore", str(folder), "--to", str(target), "--verify", "--set", _wh(lh)])
    out = capsys.readouterr().out
    assert code == 0, out
    for name in TABLES:
        assert "sampled rows equal to the source" in out.split(name, 1)[1].splitlines()[0]
    restored = lh.spark.read.format("delta").load(str(target / "gold" / "daily_revenue"))
    assert_df_equality(restored, lh.table("gold.daily_revenue"), ignore_row_order=True)
    assert restored.count() == manifest["tables"]["gold.daily_revenue"]["rows"]
    with (
        sqlite3.connect(target / "catalog.db") as copy,
        sqlite3.connect(lh.settings.warehouse / "catalog.db") as live,
    ):
        query = "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute(query).fetchall() == live.execute(query).fetchall()


def test_restore_refuses_a_non_empty_target(backed_up, tmp_path, capsys):
    lh, folder, _ = backed_up
    (tmp_path / "silver" / "orders").mkdir(parents=True)
    (tmp_path / "silver" / "orders" / "keep.txt").write_text("mine")
    code = main(["restore", str(folder), "silver.orders", "--to", str(tmp_path), "--set", _wh(lh)])
    assert code != 0
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "silver" / "orders" / "keep.txt").read_text() == "mine"


def _damaged_copy(folder: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(folder, copy)
    return copy


def _some_data_file(copy: Path) -> Path:
    return next(
        p
        for p in sorted((copy / "tables" / "silver" / "orders").rglob("*.parquet"))
        if "_delta_log" not in p.parts
    )


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate_manifest(copy: Path) -> None:
    manifest = copy / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:-40])


def _edit_manifest_rows(copy: Path) -> None:
    manifest = copy / "manifest.json"
    data = json.loads(manifest.read_text())
    data["tables"]["silver.orders"]["rows"] += 1
    manifest.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda copy: _some_data_file(copy).unlink(), "is missing"),
        (lambda copy: _flip_byte(_some_data_file(copy)), "does not match its checksum"),
        (lambda copy: _flip_byte(copy / "catalog.db"), "does not match its checksum"),
        (_truncate_manifest, "damaged"),
        (_edit_manifest_rows, "damaged"),
        (lambda copy: (copy / "manifest.json").unlink(), "manifest.json is missing"),
    ],
    ids=[
        "missing-file",
        "flipped-byte",
        "corrupt-catalog",
        "truncated-manifest",
        "edited-manifest",
        "no-manifest",
    ],
)
def test_a_damaged_backup_is_never_restored(backed_up, tmp_path, capsys, damage, message):
    lh, folder, _ = backed_up
    copy = _damaged_copy(folder, tmp_path)
    damage(copy)
    target = tmp_path / "restored"
    code = main(["restore", str(copy), "--to", str(target), "--verify", "--set", _wh(lh)])
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not target.exists() or not any(target.rglob("*.parquet"))


def _products(spark, start: int, count: int):
    return spark.range(start, start + count).selectExpr(
        "id AS product_id",
        "concat('p', id) AS name",
        "'toys' AS category",
        "CAST(id AS DECIMAL(10,2)) AS list_price",
        "current_timestamp() AS updated_at",
    )


def test_backup_during_concurrent_appends_is_exactly_one_committed_version(make_lakehouse, tmp_path):
    lh = make_lakehouse(tmp_path / "wh")
    ref = lh.resolve("silver.products")

    def batch(n):
        return _products(lh.spark, n * 100, 100)

    bulk.insert(lh.spark, ref, batch(0))
    appends = 6
    errors = []

    def append_batches():
        try:
            for n in range(1, appends + 1):
                bulk.insert(lh.spark, ref, batch(n))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    writer = threading.Thread(target=append_batches)
    writer.start()
    while bulk.current_version(lh.spark, ref).version < 2 and writer.is_alive():
        time.sleep(0.2)
    manifest = backup.backup_tables(lh, ["silver.products"], tmp_path / "b", catalog=False)
    writer.join()
    assert not errors
    version = manifest["tables"]["silver.products"]["version"]
    final = bulk.current_version(lh.spark, ref).version
    assert version >= 2 and final == appends
    report = backup.restore(lh, tmp_path / "b", tmp_path / "restored", verify=True)
    restored = lh.spark.read.format("delta").load(report.tables["silver.products"]["path"])
    assert_df_equality(restored, lh.table("silver.products", version=version), ignore_row_order=True)
    assert restored.count() == (version + 1) * 100


def _reseal(copy: Path, edit) -> None:
    """Edit a backup's manifest and sign it again with the backup key (what only a key holder can do)."""
    manifest = copy / "manifest.json"
    data = json.loads(manifest.read_text())
    edit(data)
    data["hmac"] = backup.manifest_signature(data, os.environ["NEUROLAKE_BACKUP_KEY"])
    manifest.write_text(json.dumps(data))


def _recompute_unkeyed(copy: Path, edit) -> None:
    """Edit a manifest and recompute a plain SHA-256 over it (what anyone could do to the old format)."""
    manifest = copy / "manifest.json"
    data = json.loads(manifest.read_text())
    edit(data)
    body = {k: v for k, v in data.items() if k not in ("hmac", "checksum")}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    data["hmac" if "hmac" in data else "checksum"] = digest
    manifest.write_text(json.dumps(data))


@pytest.mark.parametrize("seal", [_recompute_unkeyed, _reseal], ids=["unkeyed-checksum", "signed"])
def test_a_crafted_backup_never_writes_outside_the_target_nor_truncates_a_file(
    backed_up, tmp_path, capsys, seal
):
    lh, folder, _ = backed_up
    copy = _damaged_copy(folder, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (copy / "escaped.txt").write_text("planted")  # tables/gold/daily_revenue/../../../escaped.txt
    planted = {"sha256": backup.sha256_of(copy / "escaped.txt"), "size": len("planted")}

    def craft(data):
        files = data["tables"]["bronze.customers"]["files"]
        files["../../../escaped.txt"] = planted
        files[str(victim)] = {"sha256": backup.sha256_of(victim), "size": victim.stat().st_size}

    seal(copy, craft)
    target = tmp_path / "restore" / "to"
    code = main(["restore", str(copy), "--to", str(target), "--set", _wh(lh)])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert victim.read_text() == "precious"
    assert not (tmp_path / "restore" / "escaped.txt").exists()
    assert not target.exists() or not [p for p in target.rglob("*") if p.is_file()]


def test_a_crafted_table_name_is_refused_before_anything_is_written(backed_up, tmp_path, capsys):
    lh, folder, _ = backed_up
    copy = _damaged_copy(folder, tmp_path)
    _reseal(copy, lambda data: data["tables"].update({"../..": data["tables"]["gold.daily_revenue"]}))
    target = tmp_path / "to"
    assert main(["restore", str(copy), "--to", str(target), "--set", _wh(lh)]) != 0
    assert "invalid table name '../..'" in capsys.readouterr().err
    assert not target.exists()


def test_a_backup_file_symlinked_out_of_the_backup_is_refused(backed_up, tmp_path, capsys):
    lh, folder, _ = backed_up
    copy = _damaged_copy(folder, tmp_path)
    data_file = _some_data_file(copy)
    outside = tmp_path / "outside.parquet"
    data_file.rename(outside)
    data_file.symlink_to(outside)
    target = tmp_path / "to"
    assert main(["restore", str(copy), "silver.orders", "--to", str(target), "--set", _wh(lh)]) != 0
    assert "resolves outside" in capsys.readouterr().err
    assert not target.exists()


@pytest.mark.parametrize("escape", ["absolute", "dot-dot"])
def test_backup_refuses_a_delta_log_path_outside_the_table_and_writes_nothing_outside(
    make_lakehouse, tmp_path, capsys, escape
):
    lh = make_lakehouse(tmp_path / "a" / "b" / "c" / "wh")
    ref = lh.resolve("silver.products")
    bulk.insert(lh.spark, ref, _products(lh.spark, 0, 3))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "a" / "planted.txt").write_text("planted")
    backup_dir = tmp_path / "b"
    # absolute: the old code read and rewrote the same file, truncating it; dot-dot: the source
    # <wh>/silver/products/../../../../../planted.txt is <tmp>/a/planted.txt, its copy went to <tmp>
    path = str(victim) if escape == "absolute" else "../../../../../planted.txt"
    commit = ref.path / "_delta_log" / f"{1:020d}.json"
    commit.write_text(json.dumps({"add": {"path": path, "size": 8}}) + "\n")
    code = main(["backup", "silver.products", "--to", str(backup_dir), "--no-catalog", "--set", _wh(lh)])
    err = capsys.readouterr().err
    assert code != 0 and "the log names a file outside the table" in err, err
    assert victim.read_text() == "precious"
    assert not (tmp_path / "planted.txt").exists()
    assert not [p for p in backup_dir.rglob("*") if p.is_file()]
