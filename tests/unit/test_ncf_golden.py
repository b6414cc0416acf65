"""Golden NCF v1 files (tests/golden/ncf) must keep reading back to their recorded content.

The files and JSON were produced once by ``tests/golden/ncf/make_golden.py`` (not run here);
if a change to the format code breaks reading them, v1 compatibility is broken.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import ncf_datasource as ncf
from ncf_datasource.format.encodings import Encoding

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "ncf"
NAMES = sorted(p.stem for p in GOLDEN.glob("*.ncf"))


def _make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


jsonable = _make_golden().jsonable


def test_the_golden_set_is_complete():
    assert NAMES == ["encodings", "indexed", "nested", "primitives"]


@pytest.mark.parametrize("name", NAMES)
def test_golden_file_reads_back_its_recorded_content(name):
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    with ncf.NCFFile(GOLDEN / f"{name}.ncf") as f:
        assert f.version == expected["format_version"]
        assert f.num_rows == expected["num_rows"]
        table = f.read()
    assert table.column_names == expected["columns"]
    assert [str(field.type) for field in table.schema] == expected["types"]
    for column in expected["columns"]:
        assert jsonable(table.column(column).to_pylist()) == expected["rows"][column], column


@pytest.mark.parametrize("name", NAMES)
def test_golden_file_partial_reads(name):
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    with ncf.NCFFile(GOLDEN / f"{name}.ncf") as f:
        assert [rg.num_rows for rg in f.row_groups][0] == min(
            expected["options"]["row_group_size"], f.num_rows
        )
        last = f.num_row_groups - 1
        part = f.read_row_groups([last], columns=expected["columns"][::-1])
        start = f.row_groups[last].first_row
        for column in expected["columns"]:
            assert jsonable(part.column(column).to_pylist()) == expected["rows"][column][start:], column
        window = f.read_rows(7, 30)
        for column in expected["columns"]:
            assert jsonable(window.column(column).to_pylist()) == expected["rows"][column][7:30], column


def test_golden_indexed_file_lookups_tags_and_metadata():
    expected = json.loads((GOLDEN / "indexed.json").read_text())
    with ncf.NCFFile(GOLDEN / "indexed.ncf") as f:
        assert f.index("id") is not None
        emails = expected["rows"]["email"]
        for key, rows in expected["lookups"].items():
            assert f.lookup(int(key)).column("email").to_pylist() == [emails[i] for i in rows], key
        assert f.column_tags == expected["column_tags"]
        assert f.metadata == expected["metadata"]


def test_golden_files_cover_every_encoding():
    used = set()
    for name in NAMES:
        for rg in ncf.NCFFile(GOLDEN / f"{name}.ncf").row_groups:
            for chunk in rg.columns.values():
                used.update(e.split("[")[0] for e in chunk.encodings)
                used.update(e.split("[")[1].rstrip("]") for e in chunk.encodings if "[" in e)
    names = {e.name.lower() for e in Encoding} - {"none", "bitmap"} | {"validity"}
    assert names <= used, names - used
