"""Golden NCF v1 files (tests/golden/ncf) must keep reading back to their recorded content.

The files and JSON were produced once by ``tests/golden/ncf/make_golden.py`` (not run here):
``encodings``, ``indexed``, ``nested`` and ``primitives`` by the v1.0 writer,
``encodings_v1_1`` (every encoding added in v1.1, with nested cascades) by the v1.1 writer.
If a change to the format code breaks reading them, v1 compatibility is broken.
"""

from __future__ import annotations

import importlib.util
import json
import re
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
    assert NAMES == ["encodings", "encodings_v1_1", "indexed", "nested", "primitives"]


def test_older_golden_files_keep_their_version():
    versions = {name: json.loads((GOLDEN / f"{name}.json").read_text())["format_version"] for name in NAMES}
    assert versions == {
        "encodings": "1.0",
        "encodings_v1_1": "1.1",
        "indexed": "1.0",
        "nested": "1.0",
        "primitives": "1.0",
    }


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


def test_golden_files_cover_every_encoding_and_variant():
    used = set()
    for name in NAMES:
        for rg in ncf.NCFFile(GOLDEN / f"{name}.ncf").row_groups:
            for chunk in rg.columns.values():
                for e in chunk.encodings:
                    used.update(re.findall(r"[a-z]+(?:-aligned|-zigzag)?", e))
    names = {e.name.lower() for e in Encoding} - {"none", "bitmap"} | {"validity"}
    assert names | {"bitpack-aligned", "patched-zigzag"} <= used, names - used


def test_v1_1_golden_cascades_nest_new_encodings():
    with ncf.NCFFile(GOLDEN / "encodings_v1_1.ncf") as f:
        chosen = {name: chunk.encodings[1] for name, chunk in f.row_groups[0].columns.items()}
    assert chosen["codes_runs"] == "codes[rle[bitpack,for]]"
    assert chosen["delta_dates"] == "delta[patched-zigzag]"
    assert chosen["alp"] == "alp[for,delta,plain]"
    assert chosen["tokens"] == "tokens[for,patched[plain]]"
