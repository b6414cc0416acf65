"""The learned index: exact lookups and ranges against brute force, few pages read, fallbacks."""

from __future__ import annotations

import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ncf_datasource as ncf
from ncf_datasource.format.index import LearnedIndex, fit

HSET = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _brute(table: pa.Table, column: str, lo, hi) -> list:
    keys = table.column(column).to_pylist()
    return [
        i for i, k in enumerate(keys) if k is not None and (lo is None or k >= lo) and (hi is None or k <= hi)
    ]


@HSET
@given(
    keys=st.lists(st.integers(-50, 50), max_size=300).map(sorted),
    lead=st.integers(0, 20),
    trail=st.integers(0, 20),
    eps=st.sampled_from([1, 2, 8, 64]),
    rg=st.integers(5, 400),
    probes=st.lists(st.integers(-60, 60), min_size=1, max_size=6),
)
def test_lookup_and_range_match_brute_force(tmp_path, keys, lead, trail, eps, rg, probes):
    column = [None] * lead + keys + [None] * (trail if not lead else 0)
    table = pa.table({"k": pa.array(column, pa.int64()), "row": np.arange(len(column))})
    path = tmp_path / "i.ncf"
    ncf.write_table(table, path, sort_key="k", index_epsilon=eps, row_group_size=rg, page_size=8)
    with ncf.NCFFile(path) as f:
        if len(set(keys)) and keys:
            assert f.index("k") is not None
        for q in probes:
            assert f.lookup(q).column("row").to_pylist() == _brute(table, "k", q, q)
        lo, hi = min(probes), max(probes)
        assert f.range(lo, hi).column("row").to_pylist() == _brute(table, "k", lo, hi)
        assert f.range(None, hi).column("row").to_pylist() == _brute(table, "k", None, hi)
        assert f.range(lo, None).column("row").to_pylist() == _brute(table, "k", lo, None)
        assert f.lookup(None).column("row").to_pylist() == [i for i, k in enumerate(column) if k is None]


@HSET
@given(
    words=st.lists(st.text("ab", max_size=12), max_size=200).map(sorted),
    probes=st.lists(st.text("ab", max_size=12), min_size=1, max_size=5),
)
def test_string_keys_with_long_shared_prefixes(tmp_path, words, probes):
    keys = ["customer-" + w for w in words]
    table = pa.table({"k": pa.array(keys, pa.string()), "row": np.arange(len(keys))})
    path = tmp_path / "s.ncf"
    ncf.write_table(table, path, sort_key="k", page_size=8, row_group_size=64, index_epsilon=2)
    with ncf.NCFFile(path) as f:
        for p in probes:
            q = "customer-" + p
            assert f.lookup(q).column("row").to_pylist() == _brute(table, "k", q, q)
        lo, hi = sorted(["customer-" + probes[0], "customer-" + probes[-1]])
        assert f.range(lo, hi).column("row").to_pylist() == _brute(table, "k", lo, hi)


def test_timestamp_and_date_keys(tmp_path):
    rng = np.random.default_rng(5)
    micros = 1_700_000_000_000_000 + np.cumsum(rng.integers(0, 5_000_000, 20_000))
    table = pa.table(
        {
            "ts": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "day": pa.array((micros // 86_400_000_000).astype(np.int32), pa.date32()),
            "row": np.arange(len(micros)),
        }
    )
    path = tmp_path / "t.ncf"
    ncf.write_table(table, path, page_size=512)
    with ncf.NCFFile(path) as f:
        assert set(f.index_meta) == {"ts", "day", "row"}
        probe = table.column("ts")[12_345].as_py()
        want = table.filter(pc.equal(table.column("ts"), pa.scalar(probe, pa.timestamp("us", tz="UTC"))))
        assert want.num_rows >= 1
        assert f.lookup(probe, column="ts").to_pylist() == want.to_pylist()
        day = table.column("day")[5_000].as_py()
        got = f.range(day, day + datetime.timedelta(days=1), column="day").column("row").to_pylist()
        assert got == _brute(table, "day", day, day + datetime.timedelta(days=1))


def test_lookup_reads_only_a_few_pages(tmp_path, monkeypatch):
    n = 200_000
    rng = np.random.default_rng(9)
    ids = np.cumsum(rng.integers(1, 20, n))
    table = pa.table(
        {"id": ids, "payload": rng.random(n), "name": pa.array([f"n{i % 1000}" for i in range(n)])}
    )
    path = tmp_path / "big.ncf"
    ncf.write_table(table, path, sort_key="id", page_size=1024, row_group_size=50_000)
    pages, chunks = [], []
    original_page, original_chunk = ncf.NCFFile._page, ncf.NCFFile._chunk_pages
    monkeypatch.setattr(
        ncf.NCFFile,
        "_page",
        lambda self, rg, c, i: pages.append((rg.index, c, i)) or original_page(self, rg, c, i),
    )
    monkeypatch.setattr(
        ncf.NCFFile, "_chunk_pages", lambda self, rg, c: chunks.append(c) or original_chunk(self, rg, c)
    )
    with ncf.NCFFile(path) as f:
        meta = f.index_meta["id"]
        assert meta["epsilon"] <= 32
        for probe in (int(ids[0]), int(ids[123_456]), int(ids[-1]), int(ids[777]) + 0):
            pages.clear()
            got = f.lookup(probe)
            assert got.column("id").to_pylist() == [probe]
            assert len({p for p in pages if p[1] == "id"}) <= 2
            assert len(pages) <= 6
        absent = int(ids[50_000]) + 1 if int(ids[50_001]) > int(ids[50_000]) + 1 else int(ids[-1]) + 5
        assert f.lookup(absent).num_rows == 0
        filtered = f.read(filter=[("id", ">=", int(ids[1000])), ("id", "<=", int(ids[1010]))])
        assert filtered.column("id").to_pylist() == ids[1000:1011].tolist()
    assert chunks == []


def test_unsorted_sort_key_falls_back_cleanly(tmp_path):
    table = pa.table({"k": [3, 1, 2, 1, None], "v": ["a", "b", "c", "d", "e"]})
    path = tmp_path / "u.ncf"
    ncf.write_table(table, path, sort_key="k")
    with ncf.NCFFile(path) as f:
        assert f.index("k") is None
        assert f.lookup(1).column("v").to_pylist() == ["b", "d"]
        assert f.range(2, 3).column("v").to_pylist() == ["a", "c"]
        assert f.lookup(None).column("v").to_pylist() == ["e"]
    assert any("not sorted" in note for note in ncf.inspect(path)["notes"])


def test_nulls_in_the_middle_disable_the_index(tmp_path):
    path = tmp_path / "m.ncf"
    ncf.write_table(pa.table({"k": [1, None, 2]}), path, sort_key="k")
    with ncf.NCFFile(path) as f:
        assert f.index() is None
        assert f.lookup(2).column("k").to_pylist() == [2]


def test_sortedness_is_checked_across_row_groups(tmp_path):
    path = tmp_path / "x.ncf"
    ncf.write_table(pa.table({"k": [1, 2, 3, 0, 1, 2]}), path, row_group_size=3)
    assert ncf.NCFFile(path).index_meta == {}


def test_fit_respects_the_error_bound():
    rng = np.random.default_rng(2)
    keys = np.sort(rng.lognormal(0, 3, 50_000))
    for eps in (1, 4, 32):
        x0, y0, slope, max_err = fit(keys, eps)
        index = LearnedIndex("k", 0, len(keys), max_err, x0, y0, slope)
        firsts = {}
        for i, k in enumerate(keys):
            firsts.setdefault(k, i)
        sample = list(firsts.items())[::97]
        assert max_err <= eps
        assert all(abs(index.predict(k) - pos) <= eps + 1 for k, pos in sample)


def test_bad_sort_key_is_rejected(tmp_path):
    with pytest.raises(ncf.NCFWriterError):
        ncf.write_table(pa.table({"f": [1.0]}), tmp_path / "f.ncf", sort_key="f")
    with pytest.raises(ncf.NCFWriterError):
        ncf.write_table(pa.table({"f": [1.0]}), tmp_path / "f.ncf", sort_key="missing")
    assert not (tmp_path / "f.ncf").exists()


def test_keys_of_the_wrong_type_are_filter_errors(tmp_path):
    path = tmp_path / "k.ncf"
    ncf.write_table(pa.table({"k": [1, 2, 3], "s": ["a", "b", "c"]}), path, sort_key="k")
    with ncf.NCFFile(path) as f:
        for bad in ("abc", b"x"):
            with pytest.raises(ncf.NCFFilterError, match="does not fit column 'k'"):
                f.lookup(bad)
        with pytest.raises(ncf.NCFFilterError):
            f.range(1, "z")
        with pytest.raises(ncf.NCFFilterError):
            f.lookup(1, column="s")
        assert f.lookup(2).column("s").to_pylist() == ["b"]
        assert f.lookup(2.5).num_rows == 0
