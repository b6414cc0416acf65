"""Compaction and vacuum of NCF tables (no Spark)."""

from __future__ import annotations

import os
import time

import pyarrow as pa
import pytest

from ncf_datasource import NCFFile
from ncf_datasource.table import NCFTable, VacuumRetentionError, compact, vacuum

SCHEMA = pa.schema([("id", pa.int64()), ("v", pa.string())])


def small_files_table(path, files=12, rows=5):
    t = NCFTable.create(path, SCHEMA)
    order = [(i * 7) % files for i in range(files)]  # appended out of key order
    for f in order:
        t.append(
            pa.table({"id": list(range(f * rows, f * rows + rows))[::-1], "v": ["x"] * rows}, schema=SCHEMA)
        )
    return t


def test_compaction_bin_packs_small_files_without_changing_data(tmp_path):
    t = small_files_table(tmp_path / "t")
    before = t.read().sort_by("id")
    version = compact(t, target_file_mb=1)
    assert len(t.snapshot().files) == 1
    assert t.read().sort_by("id").equals(before)
    commit = t.log.read(version)
    assert commit["operation"] == "COMPACT" and len(commit["remove"]) == 12
    assert all(a["data_change"] is False for a in commit["add"] + commit["remove"])
    assert compact(t, target_file_mb=1) is None


def test_compaction_with_sort_key_builds_the_learned_index(tmp_path):
    t = small_files_table(tmp_path / "t")
    compact(t, target_file_mb=1, sort_by="id")
    (only,) = t.snapshot().files.values()
    assert only.indexed == ("id",)
    with NCFFile(t.snapshot().absolute(only)) as f:
        assert f.sort_key == "id"
        assert f.lookup(17).column("id").to_pylist() == [17]
    assert t.read().column("id").to_pylist() == list(range(60))


def test_compaction_splits_output_at_the_target_size(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA)
    payload = os.urandom(20_000).hex()
    for i in range(6):
        t.append(pa.table({"id": [i], "v": [payload + str(i)]}, schema=SCHEMA))
    each = max(f.size for f in t.snapshot().files.values())
    compact(t, target_file_mb=3 * each / (1 << 20))
    assert 1 < len(t.snapshot().files) < 6
    assert sorted(t.read().column("id").to_pylist()) == list(range(6))


def test_vacuum_refuses_unsafe_retention_and_deletes_only_unreferenced_old_files(tmp_path):
    t = small_files_table(tmp_path / "t", files=3)
    compact(t, target_file_mb=1)
    with pytest.raises(VacuumRetentionError, match="below the safe minimum"):
        vacuum(t, retention_hours=1)
    assert vacuum(t) == []  # the removed files are younger than the default retention
    orphan = t.path / ".part-x.ncf.0123.tmp"
    orphan.write_bytes(b"half a file")
    old = time.time() - 3600
    for name in os.listdir(t.path):
        if not name.startswith("_"):
            os.utime(t.path / name, (old, old))
    # Files removed by a commit inside the retention stay (time travel needs them).
    assert vacuum(t, retention_hours=0.5, force=True) == [orphan.name]
    planned = vacuum(t, retention_hours=0, force=True, dry_run=True)
    assert len(planned) == 3
    assert vacuum(t, retention_hours=0, force=True) == planned
    live = set(t.snapshot().files)
    assert {n for n in os.listdir(t.path) if not n.startswith("_")} == live
    assert t.read().num_rows == 15
