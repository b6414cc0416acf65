"""Writer behaviour: atomic publication, streaming, option and schema validation, metadata,
semantic tags, inspect and the ``neurolake ncf inspect`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

import ncf_datasource as ncf
from neurolake_spark.cli import main

from .test_ncf_strategies import assert_identical


def _table(n=100):
    return pa.table(
        {
            "id": np.arange(n),
            "email": [f"u{i}@x.org" for i in range(n)],
            "phone": pa.array([None] * n, pa.string()),
        }
    )


def test_nothing_is_visible_until_close_and_no_temp_files_remain(tmp_path):
    path = tmp_path / "a.ncf"
    w = ncf.NCFWriter(path, _table().schema, row_group_size=10)
    w.write_table(_table())
    assert not path.exists()
    assert len(os.listdir(tmp_path)) == 1  # only the hidden temporary file
    w.close()
    assert os.listdir(tmp_path) == ["a.ncf"]
    assert ncf.read_table(path).num_rows == 100


def test_failure_inside_the_writer_leaves_the_old_file(tmp_path):
    path = tmp_path / "a.ncf"
    ncf.write_table(_table(5), path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError), ncf.NCFWriter(path, _table().schema) as w:
        w.write_table(_table(50))
        raise RuntimeError("crash mid-write")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.ncf"]


def test_replacing_a_file_is_atomic(tmp_path):
    path = tmp_path / "a.ncf"
    ncf.write_table(_table(5), path)
    ncf.write_table(_table(7), path)
    assert ncf.read_table(path).num_rows == 7


def test_schema_mismatch_and_write_after_close(tmp_path):
    w = ncf.NCFWriter(tmp_path / "a.ncf", _table().schema)
    with pytest.raises(ncf.NCFSchemaError):
        w.write_table(pa.table({"id": ["not an int"], "email": ["e"], "phone": [None]}))
    w.write_table(_table(3))  # a rejected batch leaves the writer usable
    assert not (tmp_path / "a.ncf").exists()
    w.abort()
    assert os.listdir(tmp_path) == []
    w2 = ncf.NCFWriter(tmp_path / "b.ncf", _table().schema)
    w2.close()
    with pytest.raises(ncf.NCFWriterError):
        w2.write_table(_table())


@pytest.mark.parametrize(
    "options",
    [
        {"row_group_size": 0},
        {"page_size": 12},
        {"zstd_level": 99},
        {"encodings": {"id": "magic"}},
        {"encodings": {"nope": "plain"}},
        {"encodings": {"id": "delta[codes]"}},  # a dictionary cannot be nested
        {"encodings": {"id": "delta[for"}},
        {"encodings": {"id": "rle[for,for,for]"}},  # RLE has two nested streams
        {"encodings": {"id": "for-zigzag"}},  # only PATCHED has a zigzag variant
        {"encodings": {"id": "delta[delta[delta[delta[for]]]]"}},  # deeper than readers accept
        {"encodings": {"id": "delta[dict]"}},
        {"index_epsilon": 0},
    ],
    ids=repr,
)
def test_bad_options_are_rejected(tmp_path, options):
    with pytest.raises(ncf.NCFWriterError):
        ncf.write_table(_table(), tmp_path / "a.ncf", **options)
    assert os.listdir(tmp_path) == []


def test_void_columns_round_trip(tmp_path):
    table = pa.table({"nothing": pa.nulls(20), "x": np.arange(20)})
    ncf.write_table(table, tmp_path / "v.ncf", page_size=8)
    assert ncf.read_table(tmp_path / "v.ncf").equals(table)
    assert ncf.read_table(tmp_path / "v.ncf", filter=("nothing", "is null")).num_rows == 20


def test_unsupported_types_are_rejected(tmp_path):
    with pytest.raises(ncf.NCFSchemaError, match="cannot store"):
        ncf.write_table(pa.table({"d": pa.array([1], pa.duration("s"))}), tmp_path / "a.ncf")
    with pytest.raises(ncf.NCFSchemaError, match="unknown columns"):
        ncf.write_table(_table(), tmp_path / "a.ncf", column_tags={"nope": {"pii": "email"}})


def test_tags_and_metadata_survive_and_are_inspectable(tmp_path):
    path = tmp_path / "t.ncf"
    tags = {
        "email": {"pii": "email", "owner": "crm", "description": "contact address"},
        "phone": {"pii": "phone"},
    }
    ncf.write_table(
        _table(), path, column_tags=tags, metadata={"source": "crm export", "batch": "42"}, sort_key="id"
    )
    table = ncf.read_table(path)
    assert table.schema.field("email").metadata == {
        b"ncf.tag.pii": b"email",
        b"ncf.tag.owner": b"crm",
        b"ncf.tag.description": b"contact address",
    }
    assert table.schema.metadata == {b"source": b"crm export", b"batch": b"42"}
    with ncf.NCFFile(path) as f:
        assert f.column_tags == tags
        assert f.metadata == {"source": "crm export", "batch": "42"}
    again = tmp_path / "again.ncf"
    ncf.write_table(table, again)
    assert ncf.NCFFile(again).column_tags == tags
    info = ncf.inspect(path)
    json.dumps(info)
    assert info["num_rows"] == 100 and info["sort_key"] == "id"
    assert {f["name"]: f["tags"] for f in info["schema"]}["email"] == tags["email"]
    assert info["indexes"][0]["column"] == "id"
    stats = info["row_groups"][0]["columns"][0]["stats"]
    assert (stats["min"], stats["max"], stats["null_count"]) == (0, 99, 0)
    text = ncf.format_inspect(info)
    assert "pii=email" in text and "learned index on id" in text and "source = crm export" in text


def test_statistics_per_chunk(tmp_path):
    path = tmp_path / "s.ncf"
    table = pa.table(
        {
            "x": [5, None, 3, 9, None, 1],
            "s": ["b", "a", None, "c", "c", "c"],
            "f": [1.0, float("nan"), None, -2.0, 0.5, None],
        }
    )
    ncf.write_table(table, path, row_group_size=3)
    with ncf.NCFFile(path) as f:
        first, second = f.row_groups
        x = first.stats("x")
        assert (x["min"], x["max"], x["null_count"], x["num_values"]) == (3, 5, 1, 3)
        assert second.stats("s")["distinct_estimate"] == 1
        assert (second.stats("f")["min"], second.stats("f")["max"], first.stats("f")["nan_count"]) == (
            -2.0,
            0.5,
            1,
        )
        assert first.columns["x"].uncompressed_bytes > 0 and first.columns["x"].length > 0


def test_cli_inspect_text_and_json(tmp_path, capsys):
    path = tmp_path / "c.ncf"
    ncf.write_table(_table(), path, column_tags={"email": {"pii": "email"}})
    assert main(["ncf", "inspect", str(path)]) == 0
    assert "email: string  [pii=email]" in capsys.readouterr().out
    assert main(["ncf", "inspect", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_rows"] == 100


def test_cli_reports_corrupt_files_in_one_line(tmp_path):
    path = tmp_path / "bad.ncf"
    path.write_bytes(b"definitely not ncf" * 4)
    script = os.path.join(os.path.dirname(sys.executable), "neurolake")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "neurolake_spark.cli"]
    proc = subprocess.run(
        [*command, "ncf", "inspect", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.ncf" in lines[0] and "not an NCF file" in lines[0]


def test_the_format_package_does_not_import_spark():
    code = (
        "import sys, ncf_datasource; ncf_datasource.read_table; "
        "assert not any(m.startswith('pyspark') for m in sys.modules), 'pyspark imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_threads_only_while_cores_are_idle(tmp_path, monkeypatch):
    import threading

    from ncf_datasource.format import columns, reader

    workers: set[str] = set()

    def spying(func):
        def spy(*args, **kwargs):
            workers.add(threading.current_thread().name)
            return func(*args, **kwargs)

        return spy

    monkeypatch.setattr(columns, "encode_page", spying(columns.encode_page))
    monkeypatch.setattr(reader, "decode_page", spying(reader.decode_page))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    table = pa.table({f"c{i}": np.arange(200_000) * i for i in range(4)})  # 6.4 MB, 28 pages
    main_thread = threading.main_thread().name
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))  # every core busy elsewhere
    ncf.write_table(table, tmp_path / "busy.ncf")
    assert_identical(ncf.read_table(tmp_path / "busy.ncf"), table)
    assert workers == {main_thread}
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    workers.clear()
    ncf.write_table(table, tmp_path / "idle.ncf")
    assert_identical(ncf.read_table(tmp_path / "idle.ncf"), table)
    assert workers - {main_thread}
