"""Spark's pushed filters (``pyspark.sql.datasource``) as NCF filter expressions.

A filter is taken only when NCF evaluates it exactly as Spark would; the others are given
back to Spark. Float columns are never taken (Spark orders NaN above every number and
``NaN = NaN`` is true, IEEE comparisons say otherwise), nor nested columns.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pyspark.sql import datasource as sds

from ..format.filters import And, Compare, Expr, In, IsNull, Not, StartsWith

_COMPARISONS = {
    sds.EqualTo: "=",
    sds.GreaterThan: ">",
    sds.GreaterThanOrEqual: ">=",
    sds.LessThan: "<",
    sds.LessThanOrEqual: "<=",
}


def _column(attribute: tuple[str, ...], schema: pa.Schema) -> str | None:
    if len(attribute) != 1 or attribute[0] not in schema.names:
        return None
    t = schema.field(attribute[0]).type
    if pa.types.is_floating(t) or pa.types.is_nested(t) or pa.types.is_null(t):
        return None
    return attribute[0]


def to_ncf(f: Any, schema: pa.Schema, negated: bool = False) -> Expr | None:
    """The NCF expression of Spark filter ``f`` over ``schema``, or None when not exactly supported."""
    if isinstance(f, sds.Not):
        child = to_ncf(f.child, schema, not negated)
        return Not(child) if child is not None else None
    if isinstance(f, (sds.IsNull, sds.IsNotNull)):
        column = _column(f.attribute, schema)
        return IsNull(column, negated=isinstance(f, sds.IsNotNull)) if column else None
    column = _column(f.attribute, schema) if hasattr(f, "attribute") else None
    if column is None:
        return None
    if type(f) in _COMPARISONS and f.value is not None and not isinstance(f.value, (list, tuple, dict)):
        return Compare(column, _COMPARISONS[type(f)], f.value)
    if isinstance(f, sds.EqualNullSafe) and not negated:
        return IsNull(column) if f.value is None else Compare(column, "=", f.value)
    if isinstance(f, sds.In) and all(
        v is not None and not isinstance(v, (list, tuple, dict)) for v in f.value
    ):
        return In(column, list(f.value))
    if isinstance(f, sds.StringStartsWith) and (
        pa.types.is_string(schema.field(column).type) or pa.types.is_large_string(schema.field(column).type)
    ):
        return StartsWith(column, f.value)
    return None


def bind_all(exprs: list[Expr], schema: pa.Schema) -> Expr | None:
    """One bound conjunction of ``exprs`` (None when empty)."""
    if not exprs:
        return None
    return (exprs[0] if len(exprs) == 1 else And(*exprs)).bind(schema)
