"""Backup internals without Spark: the Delta log replay, manifests, fix files, key values, CLI flags."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neurolake_spark import backup
from neurolake_spark.cli import build_parser
from neurolake_spark.cli.ops import key_values, load_fix
from neurolake_spark.errors import PipelineError


def _commit(table: Path, version: int, *actions: dict) -> None:
    log = table / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"commitInfo": {"operation": "TEST"}})] + [json.dumps(a) for a in actions]
    (log / f"{version:020d}.json").write_text("\n".join(lines) + "\n")


def add(path: str) -> dict:
    return {"add": {"path": path, "size": 1, "dataChange": True}}


def remove(path: str) -> dict:
    return {"remove": {"path": path, "dataChange": True}}


def test_delta_files_replays_adds_and_removes_up_to_the_version(tmp_path):
    _commit(tmp_path, 0, add("a.parquet"), add("_batch_date=2026-11-24/b%20c.parquet"))
    _commit(tmp_path, 1, remove("a.parquet"), add("d.parquet"))
    _commit(tmp_path, 2, remove("d.parquet"), add("e.parquet"))
    at_1 = backup.delta_files(tmp_path, 1)
    assert at_1.version == 1
    assert at_1.data_files == ["_batch_date=2026-11-24/b c.parquet", "d.parquet"]
    assert at_1.log_files == ["_delta_log/00000000000000000000.json", "_delta_log/00000000000000000001.json"]
    latest = backup.delta_files(tmp_path)
    assert latest.version == 2 and latest.data_files == ["_batch_date=2026-11-24/b c.parquet", "e.parquet"]


def test_delta_files_starts_from_the_newest_checkpoint_at_or_before_the_version(tmp_path):
    _commit(tmp_path, 0, add("old.parquet"))
    _commit(tmp_path, 1, add("x.parquet"))
    checkpoint = pa.table({"add": [{"path": "x.parquet", "size": 1}, None]})
    pq.write_table(checkpoint, tmp_path / "_delta_log" / f"{1:020d}.checkpoint.parquet")
    (
        tmp_path / "_delta_log" / f"{0:020d}.json"
    ).unlink()  # log cleanup removed the commits before the checkpoint
    _commit(tmp_path, 2, add("y.parquet"))
    files = backup.delta_files(tmp_path, 2)
    assert files.data_files == ["x.parquet", "y.parquet"]
    assert "_delta_log/00000000000000000001.checkpoint.parquet" in files.log_files


@pytest.mark.parametrize(
    "path",
    ["../../victim.parquet", "/etc/passwd", "%2E%2E/%2e%2e/victim.parquet", "a/%2F..%2F..%2Fx", "a%00b"],
)
def test_delta_files_refuses_log_paths_that_leave_the_table(tmp_path, path):
    table = tmp_path / "wh" / "silver" / "orders"
    _commit(table, 0, add("a.parquet"), add(path))
    with pytest.raises(backup.BackupError, match="the log names a file outside the table"):
        backup.delta_files(table)


def test_delta_files_refuses_a_data_file_symlinked_out_of_the_table(tmp_path):
    table = tmp_path / "table"
    _commit(table, 0, add("a.parquet"), add("part/b.parquet"))
    (tmp_path / "elsewhere").mkdir()
    (table / "part").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(backup.BackupError, match="resolves outside"):
        backup.delta_files(table)


def test_delta_files_refuses_unknown_versions_foreign_paths_and_deletion_vectors(tmp_path):
    with pytest.raises(backup.BackupError, match="not a Delta table"):
        backup.delta_files(tmp_path)
    _commit(tmp_path, 0, add("a.parquet"))
    with pytest.raises(backup.BackupError, match="version 5 is not in the log"):
        backup.delta_files(tmp_path, 5)
    _commit(tmp_path, 1, add("s3://elsewhere/a.parquet"))
    with pytest.raises(backup.BackupError, match="outside the table"):
        backup.delta_files(tmp_path, 1)
    _commit(tmp_path / "dv", 0, {"add": {"path": "b.parquet", "deletionVector": {"storageType": "u"}}})
    with pytest.raises(backup.BackupError, match="deletion vectors"):
        backup.delta_files(tmp_path / "dv")


KEY = "unit-test-backup-key"
SHA = "0" * 64


def _manifest(tmp_path: Path, key: str = KEY, **changes) -> Path:
    body = {
        "format_version": backup.FORMAT_VERSION,
        "key_id": backup.backup_key_id(key),
        "tables": {},
        "catalog": None,
        **changes,
    }
    body["hmac"] = backup.manifest_signature(body, key)
    (tmp_path / backup.MANIFEST).write_text(json.dumps(body))
    return tmp_path


def test_read_manifest_accepts_an_intact_manifest_and_rejects_damaged_ones(tmp_path):
    assert backup.read_manifest(_manifest(tmp_path), KEY)["tables"] == {}
    text = (tmp_path / backup.MANIFEST).read_text()
    (tmp_path / backup.MANIFEST).write_text(text.replace('"tables": {}', '"tables": {"x.y": {}}'))
    with pytest.raises(backup.BackupError, match="damaged or was tampered with"):
        backup.read_manifest(tmp_path, KEY)
    (tmp_path / backup.MANIFEST).write_text(text[: len(text) // 2])
    with pytest.raises(backup.BackupError, match="not valid JSON"):
        backup.read_manifest(tmp_path, KEY)
    (tmp_path / backup.MANIFEST).unlink()
    with pytest.raises(backup.BackupError, match="manifest.json is missing"):
        backup.read_manifest(tmp_path, KEY)


def test_a_manifest_is_only_believed_under_the_backup_key(tmp_path):
    """An unkeyed checksum can be recomputed by anyone; the HMAC needs the backup key."""
    forged = {"format_version": backup.FORMAT_VERSION, "key_id": backup.backup_key_id(KEY), "tables": {}}
    payload = json.dumps(forged, sort_keys=True, separators=(",", ":"))
    forged["hmac"] = hashlib.sha256(payload.encode()).hexdigest()
    (tmp_path / backup.MANIFEST).write_text(json.dumps(forged))
    with pytest.raises(backup.BackupError, match="tampered with"):
        backup.read_manifest(tmp_path, KEY)
    _manifest(tmp_path, key="another-key")
    with pytest.raises(backup.BackupError, match="signed with another backup key .*restore with the key"):
        backup.read_manifest(tmp_path, KEY)
    old = {"format_version": 1, "tables": {}, "catalog": None}
    old["checksum"] = hashlib.sha256(
        json.dumps(old, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    (tmp_path / backup.MANIFEST).write_text(json.dumps(old))
    with pytest.raises(backup.BackupError, match="backup format 1 is not signed"):
        backup.read_manifest(tmp_path, KEY)


def _table(files: dict, name: str = "silver.orders") -> dict:
    return {name: {"format": "delta", "version": 0, "rows": 1, "files": files}}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"tables": _table({"../../../x": {"sha256": SHA, "size": 1}})}, "not a plain relative path"),
        ({"tables": _table({"/etc/passwd": {"sha256": SHA, "size": 1}})}, "is absolute"),
        ({"tables": _table({}, name="../x.y")}, "invalid table name"),
        ({"tables": _table({}, name="silver.orders/../../x")}, "invalid table name"),
        ({"tables": _table({"a.parquet": {"sha256": "zz", "size": 1}})}, "no valid sha256 and size"),
        ({"tables": _table({"a.parquet": {"sha256": SHA, "size": -1}})}, "no valid sha256 and size"),
        ({"catalog": {"file": "../catalog.db", "sha256": SHA, "size": 1}}, "the catalog: path"),
        ({"tables": []}, "'tables' is not a mapping"),
    ],
)
def test_even_a_signed_manifest_may_not_name_paths_outside_the_backup(tmp_path, changes, message):
    _manifest(tmp_path, **changes)
    with pytest.raises(backup.BackupError, match=message):
        backup.read_manifest(tmp_path, KEY)


def test_sqlite_catalog_urls_and_server_catalogs():
    assert backup.sqlite_path("sqlite:////srv/wh/catalog.db") == Path("/srv/wh/catalog.db")
    assert backup.sqlite_path("postgresql+psycopg://u@h/db") is None
    assert "pg_dump" in backup.backup_catalog("postgresql+psycopg://u@h/db", Path("unused"))["skipped"]


@pytest.mark.parametrize(
    "text, column_type, expected",
    [
        ("1, 2,3", "bigint", [1, 2, 3]),
        ("a@x.org,b", "string", ["a@x.org", "b"]),
    ],
)
def test_key_values_follow_the_key_column_type(text, column_type, expected):
    assert key_values(text, column_type) == expected


@pytest.mark.parametrize(
    "text, column_type", [("1,x", "bigint"), (" , ", "string"), ("1.5e", "decimal(10,2)")]
)
def test_bad_key_values_are_one_line_errors(text, column_type):
    with pytest.raises(PipelineError, match="--values"):
        key_values(text, column_type)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"op": "update", "table": "silver.orders"}', "missing where, set"),
        ('{"op": "truncate", "table": "silver.orders"}', "'op' must be one of"),
        ('{"op": "delete", "table": ', "not valid JSON"),
    ],
)
def test_bad_fix_files_are_named_in_the_error(tmp_path, content, message):
    path = tmp_path / "007-fix.json"
    path.write_text(content)
    with pytest.raises(PipelineError, match=message) as error:
        load_fix(path)
    assert "007-fix.json" in str(error.value)


@pytest.mark.parametrize(
    "argv",
    [
        ["table", "restore", "silver.orders"],
        ["table", "restore", "silver.orders", "--version", "1", "--timestamp", "2026-11-24"],
        ["table", "restore", "silver.orders", "--version", "one"],
        ["backup", "--all"],
        ["erase", "--table", "silver.customers", "--key", "customer_id"],
    ],
)
def test_invalid_operator_command_lines_are_refused(argv):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2


def test_hidden_crc_files_are_ignored_and_v2_checkpoints_refused(tmp_path):
    _commit(tmp_path, 0, add("a.parquet"))
    (tmp_path / "_delta_log" / f".{0:020d}.checkpoint.parquet.crc").write_bytes(b"crc")
    assert backup.delta_files(tmp_path).data_files == ["a.parquet"]
    (tmp_path / "_delta_log" / f"{0:020d}.checkpoint.3a0d2f4e-7b1c-4d7e-9a53-2b8f1c0e6d71.json").write_text(
        "{}"
    )
    with pytest.raises(backup.BackupError, match="v2 checkpoints"):
        backup.delta_files(tmp_path)
