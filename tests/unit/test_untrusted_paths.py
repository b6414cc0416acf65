"""Paths from logs stay inside their folder: the containment helper and the NCF table layer (no Spark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pytest

from ncf_datasource.table import CorruptTableError, NCFTable, UnsafePathError, check_relative, inside
from ncf_datasource.table.log import LOG_DIR, commit_name

SCHEMA = pa.schema([("id", pa.int64())])
ESCAPES = [
    "../other/part.ncf",
    "/etc/passwd",
    "a/../../x.ncf",
    "a//b.ncf",
    "./a.ncf",
    "a\\..\\x",
    "",
    "a\x00b",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_check_relative_rejects_anything_but_a_plain_relative_path(path):
    with pytest.raises(UnsafePathError):
        check_relative(path)


def test_plain_relative_paths_pass_and_stay_under_the_folder(tmp_path):
    assert check_relative("date=2026-11-24/part-0.ncf") == "date=2026-11-24/part-0.ncf"
    assert inside(tmp_path, "a b/c%20d.ncf") == tmp_path / "a b" / "c%20d.ncf"
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "sub")
    assert inside(tmp_path, "link/x.ncf") == tmp_path / "link" / "x.ncf"


def test_inside_rejects_a_symlink_that_leads_out(tmp_path):
    (tmp_path / "outside").mkdir()
    table = tmp_path / "table"
    table.mkdir()
    (table / "escape").symlink_to(tmp_path / "outside")
    (table / "file.ncf").symlink_to(tmp_path / "outside" / "secret")
    for relative in ("escape/part.ncf", "file.ncf"):
        with pytest.raises(UnsafePathError, match="resolves outside"):
            inside(table, relative)


def _table_with_one_file(tmp_path):
    table = NCFTable.create(tmp_path / "table", SCHEMA)
    table.append(pa.table({"id": [1, 2]}, schema=SCHEMA))
    return table


def _forge_commit(table: NCFTable, path: str) -> None:
    """Rewrite the last commit so its add action names ``path`` (what anyone with write access can do)."""
    log = table.path / LOG_DIR / commit_name(table.version)
    commit = json.loads(log.read_text())
    commit["add"][0]["path"] = path
    log.write_text(json.dumps(commit))


@pytest.mark.parametrize("escape", ["../other/part.ncf", "ABSOLUTE"])
def test_an_ncf_log_entry_outside_the_table_is_a_corrupt_table_error_not_a_read(tmp_path, escape):
    other = _table_with_one_file(tmp_path / "other")
    victim_file = other.path / next(iter(other.snapshot().files))
    table = _table_with_one_file(tmp_path)
    path = str(victim_file) if escape == "ABSOLUTE" else os.path.relpath(victim_file, table.path)
    _forge_commit(table, path)
    with pytest.raises(
        CorruptTableError, match="corrupt table: version 1 adds a file outside the table folder"
    ):
        table.read()
    with pytest.raises(CorruptTableError):
        table.snapshot()


def test_an_ncf_data_file_symlinked_out_of_the_table_is_a_corrupt_table_error(tmp_path):
    other = _table_with_one_file(tmp_path / "other")
    table = _table_with_one_file(tmp_path)
    name = next(iter(table.snapshot().files))
    (table.path / name).unlink()
    (table.path / name).symlink_to(other.path / next(iter(other.snapshot().files)))
    with pytest.raises(CorruptTableError, match="its log names a file outside it"):
        table.read()


def test_the_table_layer_with_its_path_checks_imports_without_spark():
    code = "import sys, ncf_datasource.table; print('pyspark' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
