"""The NCF table layer without Spark: commits, snapshots, time travel, checkpoints, schema evolution."""

from __future__ import annotations

import datetime as dt
import json
import os

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ncf_datasource.table import (
    CHECKPOINT_INTERVAL,
    NCFTable,
    NotATableError,
    SchemaMismatchError,
    TimeTravelError,
)
from ncf_datasource.table.log import LOG_DIR, checkpoint_name, commit_name

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def rows(start: int, n: int) -> pa.Table:
    return pa.table(
        {"id": list(range(start, start + n)), "name": [f"n{i}" for i in range(start, start + n)]},
        schema=SCHEMA,
    )


def ids(table: pa.Table) -> list[int]:
    return sorted(table.column("id").to_pylist())


def test_appends_make_versions_and_each_version_stays_readable(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA)
    t.append(rows(0, 3))
    t.append(rows(3, 2))
    assert t.version == 2
    assert ids(t.read()) == list(range(5))
    assert ids(t.read(version=1)) == [0, 1, 2]
    assert t.read(version=0).num_rows == 0
    assert [h["operation"] for h in t.history()] == ["APPEND", "APPEND", "CREATE"]
    assert t.history()[0]["metrics"]["num_added_rows"] == 2


def test_time_travel_by_timestamp(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA)
    t.append(rows(0, 1))
    stamp_v1 = t.history(1)[0]["timestamp"]
    t.append(rows(1, 1))
    assert ids(t.read(timestamp=stamp_v1)) == [0]
    iso = dt.datetime.fromtimestamp(stamp_v1 / 1000, dt.UTC).isoformat()
    assert t.snapshot(timestamp=iso).version == 1
    with pytest.raises(TimeTravelError, match="before the first commit"):
        t.snapshot(timestamp="2000-01-01T00:00:00Z")
    with pytest.raises(TimeTravelError, match="version 9 does not exist"):
        t.snapshot(version=9)


def test_commit_files_are_created_exclusively(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA)
    before = (t.log.dir / commit_name(0)).read_bytes()
    assert t.log.write(0, {"version": 0, "timestamp": 1}) is False
    assert (t.log.dir / commit_name(0)).read_bytes() == before
    assert not [n for n in os.listdir(t.log.dir) if n.endswith(".tmp")]


def test_checkpoints_keep_the_same_state_and_are_used(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA)
    for i in range(CHECKPOINT_INTERVAL + 3):
        t.append(rows(i, 1))
    assert (t.log.dir / checkpoint_name(CHECKPOINT_INTERVAL)).exists()
    fresh = NCFTable(t.path)
    assert ids(fresh.read()) == list(range(CHECKPOINT_INTERVAL + 3))
    # Breaking an early commit file proves the checkpoint (not a full replay) is read.
    (t.log.dir / commit_name(1)).write_text("not json")
    assert ids(NCFTable(t.path).read()) == list(range(CHECKPOINT_INTERVAL + 3))
    assert ids(NCFTable(t.path).read(version=CHECKPOINT_INTERVAL + 1)) == list(range(CHECKPOINT_INTERVAL + 1))


def test_not_a_table_is_a_clear_error(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.csv").write_text("a\n")
    with pytest.raises(NotATableError, match="not an NCF table"):
        NCFTable.open(tmp_path / "plain")
    with pytest.raises(NotATableError, match="does not exist"):
        NCFTable.open(tmp_path / "missing")
    with pytest.raises(NotATableError, match="not empty"):
        NCFTable.create(tmp_path / "plain", SCHEMA)


def test_schema_evolution_adds_nullable_columns_only_when_asked(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA)
    t.append(rows(0, 2))
    wider = pa.table({"id": [7], "name": ["x"], "score": [1.5]})
    with pytest.raises(SchemaMismatchError, match="mergeSchema"):
        t.append(wider)
    t.append(wider, merge_schema=True)
    table = t.read().sort_by("id")
    assert table.schema.names == ["id", "name", "score"]
    assert table.column("score").to_pylist() == [None, None, 1.5]
    assert t.read(version=1).schema.names == ["id", "name"]
    assert t.read(columns=["score"], filter=("score", "is null")).num_rows == 2


def test_incompatible_type_change_is_a_clear_error(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA)
    with pytest.raises(SchemaMismatchError, match="column 'id' is int64 in the table but string"):
        t.append(pa.table({"id": ["a"], "name": ["b"]}))
    t.append(pa.table({"id": pa.array([5], pa.int32()), "name": ["widened"]}))
    assert t.read().schema.field("id").type == pa.int64()
    assert t.version == 1


def test_overwrite_replaces_rows_in_one_commit(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA)
    t.append(rows(0, 5))
    version = t.overwrite(rows(100, 2))
    assert ids(t.read()) == [100, 101]
    assert ids(t.read(version=version - 1)) == list(range(5))
    commit = json.loads((t.log.dir / commit_name(version)).read_text())
    assert commit["operation"] == "OVERWRITE" and len(commit["remove"]) == 1 and len(commit["add"]) == 1


def test_delete_and_update_rewrite_only_files_that_can_match(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA, sort_key="id")
    for start in (0, 10, 20):
        t.append(rows(start, 10))
    version = t.delete([("id", ">=", 12), ("id", "<", 15)])
    commit = t.log.read(version)
    assert len(commit["remove"]) == 1 and commit["metrics"]["num_affected_rows"] == 3
    assert ids(t.read()) == [i for i in range(30) if not 12 <= i < 15]
    assert t.delete(("id", "=", 999)) is None
    t.update(("id", "in", [1, 25]), {"name": "fixed", "id": pc.add(pc.field("id"), 1000)})
    changed = t.read(filter=("name", "=", "fixed"))
    assert ids(changed) == [1001, 1025]
    assert t.read().num_rows == 27


def test_reads_prune_files_by_statistics(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA)
    for start in (0, 10, 20):
        t.append(rows(start, 10))
    snapshot = t.snapshot()
    from ncf_datasource.format.filters import bind_filter

    kept = snapshot.prune(bind_filter(("id", ">", 25), snapshot.schema))
    assert len(kept) == 1 and kept[0].stats["id"]["min"] == 20
    assert ids(t.read(filter=("id", ">", 25))) == [26, 27, 28, 29]


def test_log_lives_in_its_folder(tmp_path):
    t = NCFTable.create(tmp_path / "t", SCHEMA)
    t.append(rows(0, 1))
    assert sorted(os.listdir(t.path / LOG_DIR)) == [commit_name(0), commit_name(1)]
