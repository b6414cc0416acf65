"""Filters: exact rows against an independent SQL-semantics evaluator, statistics pruning, errors."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ncf_datasource as ncf
from ncf_datasource import col

UTC = datetime.UTC
DAY0 = datetime.date(2024, 1, 1)
TS0 = datetime.datetime(2024, 1, 1, tzinfo=UTC)

SCHEMA = pa.schema(
    [
        ("i", pa.int64()),
        ("f", pa.float64()),
        ("s", pa.string()),
        ("d", pa.date32()),
        ("t", pa.timestamp("us", tz="UTC")),
    ]
)
DOMAINS = {
    "i": st.integers(-5, 5),
    "f": st.sampled_from([-1.5, 0.0, -0.0, 2.25, math.inf, -math.inf, math.nan]),
    "s": st.sampled_from(["", "a", "ab", "abc", "b", "ba", "zz"]),
    "d": st.integers(0, 6).map(lambda k: DAY0 + datetime.timedelta(days=k)),
    "t": st.integers(0, 6).map(lambda k: TS0 + datetime.timedelta(hours=k)),
}
LITERALS = {c: (d.filter(lambda v: not (isinstance(v, float) and math.isnan(v)))) for c, d in DOMAINS.items()}


def rows_strategy():
    row = st.fixed_dictionaries({c: st.one_of(st.none(), d) for c, d in DOMAINS.items()})
    return st.lists(row, max_size=60)


def predicates():
    def compare(c):
        return st.tuples(st.just(c), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), LITERALS[c])

    def member(c):
        return st.tuples(
            st.just(c),
            st.sampled_from(["in", "not in"]),
            st.lists(st.one_of(LITERALS[c], st.none()), max_size=3),
        )

    leaf = st.sampled_from(list(DOMAINS)).flatmap(
        lambda c: st.one_of(
            compare(c),
            member(c),
            st.tuples(st.just(c), st.sampled_from(["is null", "is not null"])),
            *(
                [st.tuples(st.just(c), st.just("starts with"), st.sampled_from(["", "a", "ab", "b", "c"]))]
                if c == "s"
                else []
            ),
        )
    )
    return st.recursive(
        leaf,
        lambda kids: st.one_of(
            st.lists(kids, min_size=1, max_size=3).map(lambda xs: ("and", *xs)),
            st.lists(kids, min_size=1, max_size=3).map(lambda xs: ("or", *xs)),
            kids.map(lambda x: ("not", x)),
        ),
        max_leaves=5,
    )


def sql(pred, row):
    """Three-valued (True/False/None) SQL evaluation, written independently of the library."""
    head = pred[0]
    if head == "and":
        vals = [sql(p, row) for p in pred[1:]]
        return False if False in vals else (None if None in vals else True)
    if head == "or":
        vals = [sql(p, row) for p in pred[1:]]
        return True if True in vals else (None if None in vals else False)
    if head == "not":
        v = sql(pred[1], row)
        return None if v is None else not v
    column, op = pred[0], pred[1]
    x = row[column]
    if op == "is null":
        return x is None
    if op == "is not null":
        return x is not None
    if x is None:
        return None
    value = pred[2]
    if op == "in":
        present = [v for v in value if v is not None]
        return True if x in present else (None if len(present) != len(value) else False)
    if op == "not in":
        present = [v for v in value if v is not None]
        return False if x in present else (None if len(present) != len(value) else True)
    if op == "starts with":
        return x.startswith(value)
    return {
        "=": x == value,
        "!=": x != value,
        "<": x < value,
        "<=": x <= value,
        ">": x > value,
        ">=": x >= value,
    }[op]


def _row_key(row: dict) -> str:
    return repr(
        sorted((k, "nan" if isinstance(v, float) and math.isnan(v) else repr(v)) for k, v in row.items())
    )


def _same_rows(got: list[dict], want: list[dict]) -> bool:
    return [_row_key(r) for r in got] == [_row_key(r) for r in want]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rows=rows_strategy(), pred=predicates(), rg=st.integers(1, 20), sort=st.booleans())
def test_filters_return_exactly_the_sql_matches(tmp_path, rows, pred, rg, sort):
    if sort:
        rows = sorted(rows, key=lambda r: (r["i"] is None, r["i"] if r["i"] is not None else 0))
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    path = tmp_path / "f.ncf"
    ncf.write_table(
        table, path, row_group_size=rg, page_size=8, sort_key="i" if sort else None, index_epsilon=1
    )
    got = ncf.read_table(path, filter=pred).to_pylist()
    want = [r for r in table.to_pylist() if sql(pred, r) is True]
    assert _same_rows(got, want), (pred, got, want)


def test_filter_forms_are_equivalent(tmp_path):
    table = pa.table({"a": list(range(20)), "b": [str(i % 3) for i in range(20)]})
    path = tmp_path / "t.ncf"
    ncf.write_table(table, path, row_group_size=4)
    tuples = ncf.read_table(path, filter=[("a", ">=", 5), ("b", "=", "1")])
    dnf = ncf.read_table(path, filter=[[("a", ">=", 5), ("b", "=", "1")], [("a", "=", 0)]])
    expr = ncf.read_table(path, filter=((col("a") >= 5) & (col("b") == "1")) | (col("a") == 0))
    prefix = ncf.read_table(path, filter=("or", ("and", ("a", ">=", 5), ("b", "==", "1")), ("a", "=", 0)))
    assert tuples.column("a").to_pylist() == [7, 10, 13, 16, 19]
    assert dnf.equals(expr) and expr.equals(prefix)
    assert dnf.column("a").to_pylist() == [0, 7, 10, 13, 16, 19]
    assert ncf.read_table(
        path, filter=~col("a").isin([1, 2, 3]) & col("a").is_not_null() & (col("a") < 5)
    ).column("a").to_pylist() == [0, 4]


def _count_chunk_decodes(monkeypatch):
    calls = []
    original = ncf.NCFFile._chunk_pages

    def spy(self, rg, column):
        calls.append((rg.index, column))
        return original(self, rg, column)

    monkeypatch.setattr(ncf.NCFFile, "_chunk_pages", spy)
    return calls


def test_row_groups_are_skipped_by_statistics(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "k": np.repeat(np.arange(10), 100),
            "v": rng.random(1000),
            "s": pa.array([f"name{i // 100}" for i in range(1000)]),
        }
    )
    path = tmp_path / "p.ncf"
    ncf.write_table(table, path, row_group_size=100, learned_index=False)
    calls = _count_chunk_decodes(monkeypatch)
    got = ncf.read_table(path, filter=[("k", "in", [3, 7])], columns=["v"])
    assert got.num_rows == 200
    assert sorted({rg for rg, _ in calls}) == [3, 7]
    calls.clear()
    assert ncf.read_table(path, filter=("s", "starts with", "name9")).num_rows == 100
    assert {rg for rg, _ in calls} == {9}
    calls.clear()
    assert ncf.read_table(path, filter=("k", ">", 100)).num_rows == 0
    assert calls == []


def test_nan_is_never_pruned_away_by_not_equal(tmp_path):
    table = pa.table({"x": [1.0, float("nan"), 1.0]})
    path = tmp_path / "n.ncf"
    ncf.write_table(table, path)
    got = ncf.read_table(path, filter=("x", "!=", 1.0)).column("x").to_pylist()
    assert len(got) == 1 and math.isnan(got[0])


def test_in_matches_nan_like_arrow_and_is_not_pruned(tmp_path):
    path = tmp_path / "n.ncf"
    ncf.write_table(pa.table({"x": [1.0, 2.0, float("nan"), 3.0]}), path, row_group_size=2)
    got = ncf.read_table(path, filter=("x", "in", [float("nan"), 1.0])).column("x").to_pylist()
    assert got[0] == 1.0 and math.isnan(got[1]) and len(got) == 2


def test_decimal_and_binary_filters(tmp_path):
    import decimal

    table = pa.table(
        {
            "p": pa.array([decimal.Decimal("1.10"), decimal.Decimal("2.50"), None], pa.decimal128(5, 2)),
            "b": [b"\x00", b"\x01", b"\x02"],
        }
    )
    path = tmp_path / "d.ncf"
    ncf.write_table(table, path, row_group_size=1)
    assert ncf.read_table(path, filter=("p", ">", decimal.Decimal("2"))).column("p").to_pylist() == [
        decimal.Decimal("2.50")
    ]
    assert ncf.read_table(path, filter=("p", "<", 2)).num_rows == 1
    assert ncf.read_table(path, filter=("b", ">=", b"\x01")).num_rows == 2


@pytest.mark.parametrize(
    "bad",
    [
        ("nope", "=", 1),
        ("a", "~", 1),
        ("a", "=", None),
        ("a", "in", 5),
        ("a",),
        "a = 1",
        [],
        ("not", ("a", "=", 1), ("a", "=", 2)),
        ("s", "starts with", 1),
    ],
    ids=repr,
)
def test_malformed_filters_raise_one_line_errors(tmp_path, bad):
    path = tmp_path / "e.ncf"
    ncf.write_table(pa.table({"a": [1, 2], "s": ["x", "y"], "l": [[1], [2]]}), path)
    with pytest.raises(ncf.NCFFilterError) as info:
        ncf.read_table(path, filter=bad)
    assert "\n" not in str(info.value)


def test_nested_columns_support_null_tests_only(tmp_path):
    path = tmp_path / "n.ncf"
    ncf.write_table(pa.table({"l": [[1], None, []]}), path)
    assert ncf.read_table(path, filter=("l", "is null")).num_rows == 1
    with pytest.raises(ncf.NCFFilterError):
        ncf.read_table(path, filter=("l", "=", 1))


@pytest.mark.parametrize("index", [True, False])
def test_fractional_literals_on_integer_columns_are_not_truncated(tmp_path, index):
    path = tmp_path / "k.ncf"
    ncf.write_table(pa.table({"k": pa.array([1, 2, 3], pa.int32())}), path, learned_index=index)
    assert ncf.read_table(path, filter=("k", "<", 2.5)).column("k").to_pylist() == [1, 2]
    assert ncf.read_table(path, filter=("k", "=", 2.5)).num_rows == 0
    assert ncf.read_table(path, filter=("k", ">=", 2.5)).column("k").to_pylist() == [3]
    assert ncf.read_table(path, filter=("k", "in", [2.5, 3, 1e30])).column("k").to_pylist() == [3]
    assert ncf.read_table(path, filter=("k", "not in", [2.5, 3])).column("k").to_pylist() == [1, 2]


def test_in_treats_signed_zeros_as_equal(tmp_path):
    """Arrow's is_in tells -0.0 from 0.0; SQL's IN (like '=') does not. Found by the test above."""
    table = pa.Table.from_pylist([{"i": 1, "f": 0.0}, {"i": 2, "f": -0.0}, {"i": 3, "f": 1.0}], schema=SCHEMA)
    path = tmp_path / "zeros.ncf"
    ncf.write_table(table, path)
    for pred, ids in (
        (("f", "in", [-0.0]), [1, 2]),
        (("f", "in", [0.0]), [1, 2]),
        (("not", ("f", "not in", [-0.0])), [1, 2]),
        (("f", "not in", [0.0]), [3]),
    ):
        assert sorted(r["i"] for r in ncf.read_table(path, filter=pred).to_pylist()) == ids, pred
