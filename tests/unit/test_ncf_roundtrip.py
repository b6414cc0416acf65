"""Lossless round trips of every supported type, encoding, row-group and page layout."""

from __future__ import annotations

import datetime
import decimal
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ncf_datasource as ncf

from .test_ncf_strategies import PRIMITIVES, assert_identical, tables, values

SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(
    table=tables(),
    row_group_size=st.integers(1, 50),
    page_size=st.sampled_from([8, 16, 64]),
    level=st.sampled_from([1, 3]),
)
def test_random_schemas_round_trip(tmp_path_factory, table, row_group_size, page_size, level):
    path = tmp_path_factory.mktemp("rt") / "t.ncf"
    ncf.write_table(table, path, row_group_size=row_group_size, page_size=page_size, zstd_level=level)
    assert_identical(ncf.read_table(path), table)
    with ncf.NCFFile(path) as f:
        assert f.num_rows == table.num_rows
        assert sum(rg.num_rows for rg in f.row_groups) == table.num_rows
        if table.num_rows:
            start = table.num_rows // 3
            assert_identical(
                f.read_rows(start, start + 7).combine_chunks(), table.slice(start, 7).combine_chunks()
            )


FORCEABLE = {
    "plain": [
        pa.int8(),
        pa.int64(),
        pa.float32(),
        pa.float64(),
        pa.decimal128(38, 3),
        pa.date32(),
        pa.timestamp("us"),
    ],
    "for": [pa.int16(), pa.int32(), pa.int64(), pa.decimal128(20, 2), pa.timestamp("us", tz="UTC")],
    "delta": [pa.int32(), pa.int64(), pa.decimal128(10, 0), pa.date32()],
    "bitpack": [pa.int8(), pa.int64(), pa.decimal128(38, 0)],
    "rle": [pa.bool_(), pa.int32(), pa.int64(), pa.float64(), pa.decimal128(5, 1)],
    "dict": [pa.int32(), pa.int64(), pa.float64(), pa.string(), pa.large_binary()],
    "split": [pa.float32(), pa.float64()],
    "scaled": [pa.float32(), pa.float64()],
    "strings": [pa.string(), pa.large_string(), pa.binary()],
    # v1.1 encodings and cascades (nested streams named explicitly)
    "bitpack-aligned": [pa.int8(), pa.int32(), pa.date32()],
    "patched": [pa.int16(), pa.int64(), pa.decimal128(18, 2), pa.timestamp("us")],
    "patched-zigzag[bitpack]": [pa.int32(), pa.int64(), pa.decimal128(38, 5)],
    "delta[patched-zigzag[delta]]": [pa.int64(), pa.date32(), pa.timestamp("us", tz="UTC")],
    "rle[patched,bitpack-aligned]": [pa.bool_(), pa.int32(), pa.float64()],
    "codes[patched-zigzag]": [pa.int8(), pa.int64(), pa.float32(), pa.decimal128(12, 2), pa.string()],
    "codes[rle[bitpack-aligned,patched]]": [pa.int32(), pa.binary(), pa.large_string()],
    "alp": [pa.float32(), pa.float64()],
    "alp[patched-zigzag,delta[bitpack],patched]": [pa.float32(), pa.float64()],
    "tokens": [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()],
    "tokens[patched,rle[for,patched]]": [pa.string(), pa.binary()],
    "strings[patched-zigzag]": [pa.string(), pa.large_binary()],
}


@pytest.mark.parametrize("encoding,arrow_type", [(e, t) for e, ts in FORCEABLE.items() for t in ts], ids=str)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_every_encoding_round_trips(tmp_path, encoding, arrow_type, data):
    small = data.draw(st.booleans())
    pool = st.lists(values(arrow_type), min_size=1, max_size=3) if small else None
    n = data.draw(st.integers(0, 70))
    if pool is not None:
        choices = data.draw(pool)
        rows = data.draw(st.lists(st.sampled_from(choices), min_size=n, max_size=n))
    else:
        rows = data.draw(st.lists(values(arrow_type), min_size=n, max_size=n))
    table = pa.table({"x": pa.array(rows, type=arrow_type)})
    path = tmp_path / f"{encoding}.ncf"
    ncf.write_table(table, path, encodings={"x": encoding}, page_size=16, row_group_size=40)
    assert_identical(ncf.read_table(path), table)


def test_encodings_are_chosen_from_the_data(tmp_path):
    n = 50_000
    rng = np.random.default_rng(7)
    table = pa.table(
        {
            "sorted": np.arange(n) * 3,
            "narrow": rng.integers(1000, 1100, n),
            "runs": np.repeat(np.arange(10), n // 10),
            "low_card": pa.array(rng.choice(["red", "green", "blue"], n)),
            "cents": np.round(rng.random(n) * 100, 2),
            "noise": rng.random(n),
        }
    )
    path = tmp_path / "c.ncf"
    ncf.write_table(table, path)
    chunks = {c["name"]: c for c in ncf.inspect(path)["row_groups"][0]["columns"]}
    chosen = {name: c["encodings"][1] for name, c in chunks.items()}
    assert chosen["sorted"].startswith("delta")
    assert chosen["narrow"].split("[")[0] in ("for", "bitpack", "patched", "codes")
    assert chunks["runs"]["compressed_bytes"] < 2000 < chunks["narrow"]["compressed_bytes"]
    assert chosen["low_card"].startswith("codes")
    assert chosen["cents"].startswith("alp")
    assert chosen["noise"] in ("plain", "split")
    assert_identical(ncf.read_table(path), table)


def test_decode_cost_budget_limits_the_candidates(tmp_path):
    table = pa.table({"x": np.random.default_rng(1).integers(0, 1000, 20_000)})
    ncf.write_table(table, tmp_path / "cheap.ncf", max_decode_cost=1.0)
    assert ncf.inspect(tmp_path / "cheap.ncf")["row_groups"][0]["columns"][0]["encodings"][1] == "plain"
    assert_identical(ncf.read_table(tmp_path / "cheap.ncf"), table)


def test_special_floats_and_strings_survive(tmp_path):
    nan_payload = np.array([0x7FF8000000000123], dtype=np.int64).view(np.float64)[0]
    floats = [
        float("nan"),
        nan_payload,
        -0.0,
        0.0,
        math.inf,
        -math.inf,
        None,
        5e-324,
        -1.7976931348623157e308,
    ]
    table = pa.table(
        {
            "f64": pa.array(floats, pa.float64()),
            "f32": pa.array(floats, pa.float32()),
            "s": pa.array(["", None, "é", "\x00", "a" * 1000, "", None, "x", "日本"]),
            "b": pa.array([b"", None, b"\x00\xff", b"", None, b"z", b"", b"\x01", b""]),
        }
    )
    for name in ("plain", "split", "dict", "rle", "scaled"):
        path = tmp_path / f"{name}.ncf"
        ncf.write_table(table, path, encodings={"f64": name, "f32": name}, page_size=8)
        got = ncf.read_table(path)
        assert_identical(got, table)
        bits = got.column("f64").combine_chunks().buffers()[1]
        assert np.frombuffer(bits, np.int64)[1] == 0x7FF8000000000123


def test_extreme_integers_decimals_and_times(tmp_path):
    table = pa.table(
        {
            "i64": pa.array([-(2**63), 2**63 - 1, 0, None, -1, 2**63 - 1]),
            "i8": pa.array([-128, 127, None, 0, 1, -1], pa.int8()),
            "dec": pa.array(
                [
                    decimal.Decimal("9" * 38),
                    decimal.Decimal("-" + "9" * 38),
                    None,
                    decimal.Decimal(0),
                    decimal.Decimal(1),
                    decimal.Decimal(-1),
                ],
                pa.decimal128(38, 0),
            ),
            "date": pa.array(
                [
                    datetime.date(1, 1, 1),
                    datetime.date(9999, 12, 31),
                    None,
                    datetime.date(1970, 1, 1),
                    datetime.date(1969, 12, 31),
                    datetime.date(2024, 2, 29),
                ]
            ),
            "ts": pa.array(
                [
                    datetime.datetime(1, 1, 1, tzinfo=datetime.UTC),
                    datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC),
                    None,
                    datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC),
                    datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.UTC),
                    None,
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "ntz": pa.array(
                [
                    datetime.datetime(2024, 1, 1, 12, 30),
                    None,
                    datetime.datetime(1900, 1, 1),
                    datetime.datetime(2100, 1, 1),
                    datetime.datetime(1970, 1, 1),
                    datetime.datetime(1, 1, 1),
                ],
                pa.timestamp("us"),
            ),
        }
    )
    for enc in ("plain", "for", "delta", "bitpack", "rle"):
        path = tmp_path / f"{enc}.ncf"
        ncf.write_table(table, path, encodings={c: enc for c in table.column_names})
        assert_identical(ncf.read_table(path), table)


def test_all_types_at_once_many_row_groups(tmp_path):
    n = 3000
    rng = np.random.default_rng(3)
    cols = {}
    for t in PRIMITIVES:
        cols[str(t).replace(" ", "").replace(",", "_")] = (
            pa.array(np.where(rng.random(n) < 0.1, None, np.arange(n) % 7).tolist(), pa.int64()).cast(t)
            if pa.types.is_integer(t)
            else None
        )
    table = pa.table({k: v for k, v in cols.items() if v is not None})
    table = table.append_column(
        "nested",
        pa.array(
            [None if i % 11 == 0 else {"a": [i, None], "m": [("k", i)]} for i in range(n)],
            pa.struct([("a", pa.list_(pa.int64())), ("m", pa.map_(pa.string(), pa.int64()))]),
        ),
    )
    path = tmp_path / "many.ncf"
    ncf.write_table(table, path, row_group_size=700, page_size=64)
    with ncf.NCFFile(path) as f:
        assert [rg.num_rows for rg in f.row_groups] == [700, 700, 700, 700, 200]
        assert_identical(
            f.read_row_groups([3, 1]), pa.concat_tables([table.slice(2100, 700), table.slice(700, 700)])
        )
    assert_identical(ncf.read_table(path), table)
    assert_identical(ncf.read_table(path, columns=["nested", "int8"]), table.select(["nested", "int8"]))


def test_empty_table_and_zero_columns_of_rows(tmp_path):
    table = pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())})
    ncf.write_table(table, tmp_path / "e.ncf")
    assert_identical(ncf.read_table(tmp_path / "e.ncf"), table)
    assert ncf.NCFFile(tmp_path / "e.ncf").row_groups == []


def test_sliced_and_chunked_inputs(tmp_path):
    base = pa.array([{"x": i, "s": str(i) if i % 3 else None} for i in range(100)])
    chunked = pa.chunked_array([base.slice(5, 30), base.slice(50, 20)])
    lists = pa.chunked_array(
        [
            pa.array([[i, i + 1] if i % 4 else None for i in range(60)]).slice(7, 40),
            pa.array([[]] * 10, pa.list_(pa.int64())),
        ]
    )
    table = pa.table({"st": chunked, "l": lists})
    path = tmp_path / "s.ncf"
    ncf.write_table(table, path, page_size=8, row_group_size=17)
    assert_identical(ncf.read_table(path), table)


def test_iter_batches_and_streaming_writer(tmp_path):
    table = pa.table({"id": np.arange(1000), "v": pa.array([str(i % 13) for i in range(1000)])})
    path = tmp_path / "w.ncf"
    with ncf.NCFWriter(path, table.schema, row_group_size=300, page_size=64) as w:
        for batch in table.to_batches(max_chunksize=77):
            w.write_batch(batch)
        assert not path.exists()
    batches = list(ncf.iter_batches(path, batch_size=128))
    assert all(b.num_rows <= 128 for b in batches)
    assert_identical(pa.Table.from_batches(batches), table)
    with ncf.NCFFile(path) as f:
        assert [rg.num_rows for rg in f.row_groups] == [300, 300, 300, 100]


def test_v1_1_cascades_are_chosen_from_the_data(tmp_path):
    n = 60_000
    rng = np.random.default_rng(11)
    words = np.array(["carefully", "final", "deposits", "sleep", "furiously", "ironic", "pinto", "beans"])
    text = [" ".join(words[rng.integers(0, len(words), 6)]) + f" {i % 50}" for i in range(n)]
    delays = np.where(rng.random(n) < 0.97, rng.integers(-10, 60, n), rng.integers(60, 1300, n))
    prices = np.round(rng.random(n) * 1000, 2)
    prices[::997] = np.nan
    table = pa.table(
        {
            "comment": pa.array(text),
            "delay": pa.array(delays, pa.int64()),
            "price": pa.array(prices),
            "day": pa.array(  # TPC-H's ship dates: an order's date (random) plus 1 to 121 days per line
                np.datetime64("1992-01-01")
                + np.repeat(rng.integers(0, 2400, n // 4), 4)
                + rng.integers(1, 122, n)
            ),
            "quantity": pa.array(
                [decimal.Decimal(int(q)) for q in rng.integers(1, 51, n)], pa.decimal128(15, 2)
            ),
            "flag": pa.array(rng.choice(["A", "N", "R"], n, p=[0.25, 0.5, 0.25])),
        }
    )
    path = tmp_path / "v11.ncf"
    ncf.write_table(table, path)
    chosen = {c["name"]: c["encodings"][1] for c in ncf.inspect(path)["row_groups"][0]["columns"]}
    assert chosen["comment"].startswith("tokens"), chosen
    assert chosen["delay"].startswith(("patched", "codes")), chosen
    assert chosen["price"].startswith("alp"), chosen
    assert chosen["day"].startswith("delta[patched-zigzag"), chosen
    assert chosen["quantity"].startswith("codes"), chosen
    assert chosen["flag"].startswith("codes[bitpack"), chosen
    assert_identical(ncf.read_table(path), table)


def test_long_text_is_cut_into_pairs_of_words_and_round_trips(tmp_path):
    from ncf_datasource.format.columns import tokenize

    first, tokens = tokenize(pa.array(["a b c", "", "d, e", "f g h i", None, "j"]), pairs=True)
    assert tokens.to_pylist() == [b"a b ", b"c", b"d, e", b"f g ", b"h i", b"j"]
    assert first.tolist() == [0, 2, 2, 3, 5, 5, 6]
    rng = np.random.default_rng(5)
    phrases = np.array([f"w{i} w{i + 1}{'' if i % 3 else ','} " for i in range(40)])  # pairs repeat
    text = ["".join(rng.choice(phrases, int(rng.integers(0, 20)))) for _ in range(40_000)]
    text[::97] = [None] * len(text[::97])
    table = pa.table({"comment": pa.array(text)})
    path = tmp_path / "pairs.ncf"
    ncf.write_table(table, path, page_size=4096)
    assert ncf.inspect(path)["row_groups"][0]["columns"][0]["encodings"][1].startswith("tokens")
    with ncf.NCFFile(path) as f:  # the token dictionary holds pairs of words
        entries = f._dictionary(f.row_groups[0], "comment").to_pylist()
        assert sum(entry.count("w") == 2 for entry in entries) > 0.9 * len(entries)
    assert_identical(ncf.read_table(path), table)
    assert_identical(
        ncf.read_table(path, filter=("comment", "is null")), table.filter(pa.array([t is None for t in text]))
    )
