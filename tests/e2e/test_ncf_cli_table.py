"""``neurolake ncf history|compact|vacuum`` on an NCF table, as subprocesses (no Spark needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from ncf_datasource.table import NCFTable

NEUROLAKE = [sys.executable, "-m", "neurolake_spark.cli"]


def neurolake(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*NEUROLAKE, *args, "--set", f"storage.warehouse={tmp_path / 'wh'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_history_compact_and_vacuum_commands(tmp_path):
    table = NCFTable.create(tmp_path / "t", pa.schema([("id", pa.int64())]))
    for i in range(4):
        table.append(pa.table({"id": [3 - i]}))
    done = neurolake(tmp_path, "ncf", "compact", str(table.path), "--target-file-mb", "1", "--sort-by", "id")
    assert done.returncode == 0, done.stderr
    assert "4 files compacted into 1" in done.stdout
    history = neurolake(tmp_path, "ncf", "history", str(table.path), "--json", "--limit", "2")
    assert [e["operation"] for e in json.loads(history.stdout)] == ["COMPACT", "APPEND"]
    refused = neurolake(tmp_path, "ncf", "vacuum", str(table.path), "--retention-hours", "0")
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1 and "safe minimum" in refused.stderr
    vacuumed = neurolake(tmp_path, "ncf", "vacuum", str(table.path), "--retention-hours", "0", "--force")
    assert vacuumed.returncode == 0 and "deleted 4 files" in vacuumed.stdout
    assert table.read().column("id").to_pylist() == [0, 1, 2, 3]


def test_not_a_table_is_a_one_line_error(tmp_path):
    done = neurolake(tmp_path, "ncf", "history", str(tmp_path))
    assert done.returncode == 2
    assert (
        done.stderr.startswith("neurolake: error:")
        and "not an NCF table" in done.stderr
        and done.stderr.count("\n") == 1
    )
