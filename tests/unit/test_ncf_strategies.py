"""Hypothesis strategies for Arrow schemas and data, and an exact table comparison, shared
by the NCF tests (imported relatively from ``.test_ncf_strategies``); its own tests check the comparison."""

from __future__ import annotations

import datetime
import decimal
import struct
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import strategies as st

UTC = datetime.UTC
_WIDE = decimal.Context(prec=60)

PRIMITIVES = [
    pa.bool_(),
    pa.int8(),
    pa.int16(),
    pa.int32(),
    pa.int64(),
    pa.float32(),
    pa.float64(),
    pa.string(),
    pa.large_string(),
    pa.binary(),
    pa.large_binary(),
    pa.date32(),
    pa.timestamp("us", tz="UTC"),
    pa.timestamp("us"),
]
KEY_TYPES = [pa.int32(), pa.int64(), pa.string(), pa.date32()]


def decimal_types():
    return st.integers(1, 38).flatmap(lambda p: st.integers(0, p).map(lambda s: pa.decimal128(p, s)))


def primitive_types():
    return st.one_of(st.sampled_from(PRIMITIVES), decimal_types())


def _names(n: int):
    return st.lists(st.text("abcdefghij", min_size=1, max_size=4), min_size=n, max_size=n, unique=True)


def _nested(children):
    def struct_of(types):
        return _names(len(types)).flatmap(
            lambda names: st.lists(st.booleans(), min_size=len(types), max_size=len(types)).map(
                lambda nullables: pa.struct(
                    [pa.field(n, t, nullable) for n, t, nullable in zip(names, types, nullables)]
                )
            )
        )

    return st.one_of(
        children.map(pa.list_),
        children.map(pa.large_list),
        st.lists(children, min_size=1, max_size=3).flatmap(struct_of),
        st.tuples(st.sampled_from(KEY_TYPES), children).map(lambda kv: pa.map_(*kv)),
    )


def types():
    """Any Arrow type NCF stores, nesting included."""
    return st.recursive(primitive_types(), _nested, max_leaves=4)


def values(t: pa.DataType, nullable: bool = True):
    """Python values of type ``t`` (None for null when ``nullable``)."""
    if pa.types.is_boolean(t):
        base = st.booleans()
    elif pa.types.is_integer(t):
        bits = t.bit_width
        base = st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    elif pa.types.is_floating(t):
        base = st.floats(width=t.bit_width)
    elif pa.types.is_decimal(t):
        limit = 10**t.precision - 1
        base = st.integers(-limit, limit).map(
            lambda unscaled, s=t.scale: _WIDE.scaleb(decimal.Decimal(unscaled), -s)
        )
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        base = st.text(max_size=12)
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
        base = st.binary(max_size=12)
    elif pa.types.is_date32(t):
        base = st.dates()
    elif pa.types.is_timestamp(t):
        base = st.datetimes(timezones=st.just(UTC)) if t.tz else st.datetimes()
    elif pa.types.is_map(t):
        base = st.lists(
            st.tuples(values(t.key_type, nullable=False), values(t.item_type, t.item_field.nullable)),
            max_size=3,
        )
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        base = st.lists(values(t.value_type, t.value_field.nullable), max_size=4)
    elif pa.types.is_struct(t):
        base = st.fixed_dictionaries({f.name: values(f.type, f.nullable) for f in t})
    else:
        raise AssertionError(t)
    return st.one_of(st.none(), base) if nullable else base


@st.composite
def tables(
    draw, max_rows: int = 40, min_columns: int = 1, max_columns: int = 4, column_types=None
) -> pa.Table:
    """Tables with random schemas (unique column names) and random rows."""
    n_cols = draw(st.integers(min_columns, max_columns))
    names = draw(_names(n_cols))
    col_types = [draw(column_types or types()) for _ in names]
    nullables = [draw(st.booleans()) for _ in names]
    rows = draw(st.integers(0, max_rows))
    arrays = []
    for t, nullable in zip(col_types, nullables):
        data = draw(st.lists(values(t, nullable), min_size=rows, max_size=rows))
        arrays.append(pa.array(data, type=t))
    return pa.Table.from_arrays(
        arrays, schema=pa.schema([pa.field(n, t, nb) for n, t, nb in zip(names, col_types, nullables)])
    )


def canonical(value: Any) -> Any:
    """A comparable form of a Python value in which floats compare by bit pattern
    (NaN == NaN, -0.0 != 0.0)."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def assert_identical(got: pa.Table, want: pa.Table) -> None:
    """Same schema (types, names, nullability, metadata) and bit-identical values, nulls included."""
    assert got.schema.equals(want.schema, check_metadata=True), f"{got.schema}\n!=\n{want.schema}"
    assert got.num_rows == want.num_rows
    for name in want.column_names:
        assert canonical(got.column(name).to_pylist()) == canonical(want.column(name).to_pylist()), name


def test_canonical_tells_signed_zeros_apart():
    with pytest.raises(AssertionError):
        assert_identical(pa.table({"x": [0.0]}), pa.table({"x": [-0.0]}))


def test_canonical_matches_nan_with_nan():
    assert_identical(pa.table({"x": [float("nan"), None]}), pa.table({"x": [float("nan"), None]}))


def test_canonical_tells_empty_from_null():
    with pytest.raises(AssertionError):
        assert_identical(pa.table({"x": [""]}), pa.table({"x": pa.array([None], pa.string())}))
