"""Filter expressions: row-group skipping by statistics, learned-index ranges, exact row filtering.

A filter is given to :func:`read_table`, :func:`iter_batches` and :meth:`NCFFile.read` in
any of these equivalent forms:

* an expression object built with :func:`col`::

      (col("id") >= 10) & (col("id") < 20) | col("country").isin(["FR", "DE"])
      ~col("email").is_null() & col("name").starts_with("A")

* a predicate tuple ``(column, op, value)`` where ``op`` is one of ``=`` (or ``==``),
  ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``, ``is null``, ``is not null``
  (value omitted or ``None``) and ``starts with``;
* a list of predicates, meaning AND, or a list of such lists, meaning OR of ANDs (pyarrow's
  disjunctive normal form): ``[[("a", "=", 1), ("b", ">", 2)], [("c", "is null")]]``;
* prefix tuples, for translating trees such as Spark's pushed filters:
  ``("and", f1, f2, ...)``, ``("or", f1, f2, ...)``, ``("not", f)``.

Spark's pushed filters map one to one: ``EqualTo`` ``=``, ``GreaterThan(OrEqual)``
``>``/``>=``, ``LessThan(OrEqual)`` ``<``/``<=``, ``In`` ``in``, ``IsNull``/``IsNotNull``,
``StringStartsWith`` ``starts with``, ``And``/``Or``/``Not``; ``EqualNullSafe(c, v)`` is
``("c", "=", v)`` for a non-null ``v`` and ``("c", "is null")`` for null.

Semantics are SQL's: a comparison with a null column value is unknown and never selects the
row (also under ``not``); ``in`` ignores null list entries and ``not in`` with a null entry
selects nothing. Comparisons on floats follow IEEE/Arrow rules (NaN compares false, but ``in``
matches NaN with NaN; -0.0 equals 0.0 in both), so the Spark source should also evaluate float
predicates itself. A number that does not fit the column exactly (``2.5`` for an int column) is
compared, not truncated. Literals are converted to the column's type
(``datetime``/``date``/``Decimal``/``str``/``bytes``/numbers).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .errors import NCFFilterError
from .stats import from_json, physical

_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_INVERSE = {"=": "!=", "!=": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_ARROW = {
    "=": "equal",
    "!=": "not_equal",
    "<": "less",
    "<=": "less_equal",
    ">": "greater",
    ">=": "greater_equal",
}

Interval = tuple[Any, Any]  # inclusive physical bounds, None = unbounded


class Expr:
    """Base of filter expressions; combine with ``&``, ``|`` and ``~``."""

    def __and__(self, other: Expr) -> Expr:
        return And(self, to_expr(other))

    def __or__(self, other: Expr) -> Expr:
        return Or(self, to_expr(other))

    def __invert__(self) -> Expr:
        return Not(self)

    def columns(self) -> set[str]:
        """Names of the columns the expression reads."""
        raise NotImplementedError

    def bind(self, schema: pa.Schema) -> Expr:
        """Validated copy with column types attached and negations pushed down."""
        raise NotImplementedError

    def to_arrow(self) -> pc.Expression:
        """The equivalent Arrow compute expression (bound expressions only)."""
        raise NotImplementedError

    def might_match(self, stats: Callable[[str], dict | None]) -> bool:
        """False only when chunk statistics prove no row can match."""
        return True

    def intervals(self, column: str) -> list[Interval] | None:
        """Key ranges of ``column`` outside which no row matches; None when unconstrained."""
        return None

    def negate(self) -> Expr:
        return Not(self)


class _Leaf(Expr):
    column: str
    type: pa.DataType | None = None

    def columns(self) -> set[str]:
        return {self.column}

    def _typed(self, schema: pa.Schema, comparable: bool = True):
        if self.column not in schema.names:
            raise NCFFilterError(f"filter names unknown column {self.column!r}")
        t = schema.field(self.column).type
        if comparable and pa.types.is_nested(t):
            raise NCFFilterError(f"filter cannot compare nested column {self.column!r}")
        return t

    def _scalar(self, value: Any) -> pa.Scalar:
        """``value`` as a scalar of the column type when that is exact (Arrow would truncate
        2.5 to an int64 2), else as Arrow infers it, leaving the comparison to Arrow's casts."""
        try:
            if _is_number(value) and not self._exact(value):
                raise ValueError("inexact")
            return pa.scalar(value, type=self.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            try:
                return pa.scalar(value)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                raise NCFFilterError(
                    f"bad filter value {value!r} for column {self.column!r}: {exc}"
                ) from None

    def _exact(self, value: Any) -> bool:
        """Whether the number ``value`` converts to the column type without change."""
        try:
            got = pa.scalar(value, type=self.type).as_py()
            return got == value or (got != got and value != value)  # NaN stays NaN
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            return False

    def _phys(self, value: Any) -> Any:
        try:
            return physical(value, self.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, ArithmeticError) as exc:
            raise NCFFilterError(f"bad filter value {value!r} for column {self.column!r}: {exc}") from None


class Compare(_Leaf):
    """``column op value`` with op one of ``= != < <= > >=``."""

    def __init__(self, column: str, op: str, value: Any, type: pa.DataType | None = None, phys: Any = None):
        if op not in _OPS:
            raise NCFFilterError(f"unknown filter operator {op!r}")
        if value is None:
            raise NCFFilterError(f"comparison of {column!r} with None: use 'is null' / 'is not null'")
        self.column, self.op, self.value, self.type, self.phys = column, _OPS[op], value, type, phys

    def __repr__(self) -> str:
        return f"({self.column} {self.op} {self.value!r})"

    def bind(self, schema):
        bound = Compare(self.column, self.op, self.value, self._typed(schema))
        bound.phys = bound._phys(self.value)
        return bound

    def negate(self):
        if pa.types.is_floating(self.type):
            return Not(self)
        return Compare(self.column, _INVERSE[self.op], self.value, self.type, self.phys)

    def to_arrow(self):
        return getattr(pc, _ARROW[self.op])(pc.field(self.column), self._scalar(self.value))

    def might_match(self, stats):
        s = stats(self.column)
        if s is None:
            return True
        if s.get("null_count", 0) == s.get("num_values", -1):
            return False
        lo, hi, v = from_json(s.get("min"), self.type), from_json(s.get("max"), self.type), self.phys
        if lo is None or hi is None:
            return True
        try:
            if self.op == "=":
                return lo <= v <= hi
            if self.op == "!=":
                return not (lo == hi == v and not s.get("nan_count"))
            if self.op == "<":
                return lo < v
            if self.op == "<=":
                return lo <= v
            if self.op == ">":
                return hi > v
            return hi >= v
        except TypeError:
            return True

    def intervals(self, column):
        if column != self.column:
            return None
        v = self.phys
        return {"=": [(v, v)], "<": [(None, v)], "<=": [(None, v)], ">": [(v, None)], ">=": [(v, None)]}.get(
            self.op
        )


class In(_Leaf):
    """``column in values`` (``negated``: ``not in``)."""

    def __init__(
        self,
        column: str,
        values: Iterable[Any],
        negated: bool = False,
        type: pa.DataType | None = None,
        phys: list | None = None,
    ):
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise NCFFilterError(f"'in' filter on {column!r} needs a list of values")
        self.column, self.values, self.negated, self.type, self.phys = (
            column,
            list(values),
            negated,
            type,
            phys,
        )

    def __repr__(self) -> str:
        return f"({self.column} {'not in' if self.negated else 'in'} {self.values!r})"

    def bind(self, schema):
        bound = In(self.column, self.values, self.negated, self._typed(schema))
        bound.phys = [bound._phys(v) for v in self.values if v is not None]
        return bound

    def negate(self):
        return In(self.column, self.values, not self.negated, self.type, self.phys)

    def to_arrow(self):
        present = [v for v in self.values if v is not None]
        exact = [v for v in present if not _is_number(v) or self._exact(v)]  # 2.5 never equals an int
        if pa.types.is_floating(self.type):
            exact += [-float(v) for v in exact if v == 0]  # is_in tells -0.0 from 0.0; '=' and SQL do not
        try:
            value_set = pa.array(exact, type=self.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
            raise NCFFilterError(f"bad 'in' values for column {self.column!r}: {exc}") from None
        field = pc.field(self.column)
        member = field.isin(value_set)
        if not self.negated:
            return member
        if len(present) != len(self.values):
            return pc.scalar(False)
        return ~member & field.is_valid()

    @property
    def bound_values(self) -> list:
        """The values in the column's physical form (of an expression bound to a schema)."""
        if self.phys is None:
            raise NCFFilterError(f"{self!r} is not bound to a schema")
        return self.phys

    def might_match(self, stats):
        s = stats(self.column)
        if s is None:
            return True
        phys = self.bound_values
        if self.negated:
            if len(phys) != len(self.values):
                return False
            lo, hi = from_json(s.get("min"), self.type), from_json(s.get("max"), self.type)
            try:
                return not (
                    lo is not None
                    and lo == hi
                    and lo in phys
                    and not s.get("nan_count")
                    and not s.get("null_count")
                )
            except TypeError:
                return True
        if not phys or s.get("null_count", 0) == s.get("num_values", -1):
            return False
        if s.get("nan_count") and any(v != v for v in phys):
            return True  # 'in' matches NaN with NaN, unlike '='
        return any(Compare(self.column, "=", v, self.type, v).might_match(stats) for v in phys if v == v)

    def intervals(self, column):
        if column != self.column or self.negated:
            return None
        return [(v, v) for v in self.bound_values]


class IsNull(_Leaf):
    """``column is null`` (``negated``: ``is not null``); works on nested columns too."""

    def __init__(self, column: str, negated: bool = False, type: pa.DataType | None = None):
        self.column, self.negated, self.type = column, negated, type

    def __repr__(self) -> str:
        return f"({self.column} is {'not ' if self.negated else ''}null)"

    def bind(self, schema):
        return IsNull(self.column, self.negated, self._typed(schema, comparable=False))

    def negate(self):
        return IsNull(self.column, not self.negated, self.type)

    def to_arrow(self):
        field = pc.field(self.column)
        return field.is_valid() if self.negated else field.is_null()

    def might_match(self, stats):
        s = stats(self.column)
        if s is None:
            return True
        nulls = s.get("null_count", 0)
        return nulls < s.get("num_values", nulls + 1) if self.negated else nulls > 0


class StartsWith(_Leaf):
    """``column`` (string) starts with ``prefix``."""

    def __init__(self, column: str, prefix: str, type: pa.DataType | None = None):
        if not isinstance(prefix, str):
            raise NCFFilterError(f"'starts with' filter on {column!r} needs a string prefix")
        self.column, self.prefix, self.type = column, prefix, type

    def __repr__(self) -> str:
        return f"({self.column} starts with {self.prefix!r})"

    def bind(self, schema):
        t = self._typed(schema)
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            raise NCFFilterError(f"'starts with' needs a string column, {self.column!r} is {t}")
        return StartsWith(self.column, self.prefix, t)

    def to_arrow(self):
        return pc.starts_with(pc.field(self.column), pattern=self.prefix)

    def might_match(self, stats):
        s = stats(self.column)
        if s is None or s.get("min") is None or s.get("max") is None:
            return True
        lo, hi, p = s["min"], s["max"], self.prefix
        return not (hi < p or (lo > p and not lo.startswith(p)))


class And(Expr):
    """All children hold."""

    def __init__(self, *children: Expr):
        self.children = [to_expr(c) for c in children]

    def __repr__(self) -> str:
        return "(" + " and ".join(map(repr, self.children)) + ")"

    def columns(self):
        return set().union(*(c.columns() for c in self.children))

    def bind(self, schema):
        return And(*(c.bind(schema) for c in self.children))

    def negate(self):
        return Or(*(c.negate() for c in self.children))

    def to_arrow(self):
        out = pc.scalar(True)
        for c in self.children:
            out = out & c.to_arrow()
        return out

    def might_match(self, stats):
        return all(c.might_match(stats) for c in self.children)

    def intervals(self, column):
        result = None
        for c in self.children:
            iv = c.intervals(column)
            if iv is None:
                continue
            result = iv if result is None else [x for a in result for b in iv if (x := _intersect(a, b))]
        return result


class Or(Expr):
    """At least one child holds."""

    def __init__(self, *children: Expr):
        self.children = [to_expr(c) for c in children]

    def __repr__(self) -> str:
        return "(" + " or ".join(map(repr, self.children)) + ")"

    def columns(self):
        return set().union(*(c.columns() for c in self.children))

    def bind(self, schema):
        return Or(*(c.bind(schema) for c in self.children))

    def negate(self):
        return And(*(c.negate() for c in self.children))

    def to_arrow(self):
        out = pc.scalar(False)
        for c in self.children:
            out = out | c.to_arrow()
        return out

    def might_match(self, stats):
        return any(c.might_match(stats) for c in self.children)

    def intervals(self, column):
        result: list[Interval] = []
        for c in self.children:
            iv = c.intervals(column)
            if iv is None:
                return None
            result += iv
        return result


class Not(Expr):
    """The child does not hold (unknown stays unknown, as in SQL)."""

    def __init__(self, child: Expr):
        self.child = to_expr(child)

    def __repr__(self) -> str:
        return f"(not {self.child!r})"

    def columns(self):
        return self.child.columns()

    def bind(self, schema):
        return self.child.bind(schema).negate()

    def negate(self):
        return self.child

    def to_arrow(self):
        return ~self.child.to_arrow()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)


def _intersect(a: Interval, b: Interval) -> Interval | None:
    try:
        lo = a[0] if b[0] is None else b[0] if a[0] is None else max(a[0], b[0])
        hi = a[1] if b[1] is None else b[1] if a[1] is None else min(a[1], b[1])
        if lo is not None and hi is not None and lo > hi:
            return None
    except TypeError:
        return a
    return (lo, hi)


class Col:
    """A column reference that builds expressions: ``col("x") > 3``, ``col("x").isin([1, 2])``."""

    def __init__(self, name: str):
        self.name = name

    def __eq__(self, value):
        return Compare(self.name, "=", value)

    def __ne__(self, value):
        return Compare(self.name, "!=", value)

    def __lt__(self, value):
        return Compare(self.name, "<", value)

    def __le__(self, value):
        return Compare(self.name, "<=", value)

    def __gt__(self, value):
        return Compare(self.name, ">", value)

    def __ge__(self, value):
        return Compare(self.name, ">=", value)

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: Iterable[Any]) -> In:
        return In(self.name, values)

    def is_null(self) -> IsNull:
        return IsNull(self.name)

    def is_not_null(self) -> IsNull:
        return IsNull(self.name, negated=True)

    def starts_with(self, prefix: str) -> StartsWith:
        return StartsWith(self.name, prefix)


def col(name: str) -> Col:
    """Reference a top-level column in a filter expression."""
    return Col(name)


def _predicate(t: tuple) -> Expr:
    if len(t) not in (2, 3) or not isinstance(t[0], str) or not isinstance(t[1], str):
        raise NCFFilterError(f"malformed filter predicate {t!r}")
    column, op = t[0], " ".join(t[1].lower().replace("_", " ").split())
    if op == "is null":
        return IsNull(column)
    if op == "is not null":
        return IsNull(column, negated=True)
    if len(t) != 3:
        raise NCFFilterError(f"filter predicate {t!r} needs a value")
    value = t[2]
    if op in ("in", "not in"):
        return In(column, value, negated=op == "not in")
    if op == "starts with":
        return StartsWith(column, value)
    return Compare(column, op, value)


def to_expr(obj: Any) -> Expr:
    """Normalise any accepted filter form (see module docstring) into an :class:`Expr`."""
    if isinstance(obj, Expr):
        return obj
    if isinstance(obj, tuple) and obj and isinstance(obj[0], str) and obj[0].lower() in ("and", "or", "not"):
        kind, args = obj[0].lower(), obj[1:]
        if kind == "not":
            if len(args) != 1:
                raise NCFFilterError(f"'not' takes one operand: {obj!r}")
            return Not(to_expr(args[0]))
        if not args:
            raise NCFFilterError(f"{kind!r} needs operands: {obj!r}")
        return (And if kind == "and" else Or)(*map(to_expr, args))
    if isinstance(obj, tuple):
        return _predicate(obj)
    if isinstance(obj, list) and obj:
        if all(isinstance(x, list) for x in obj):
            return Or(*(And(*map(to_expr, conj)) for conj in obj))
        return And(*map(to_expr, obj))
    raise NCFFilterError(f"malformed filter {obj!r}")


def bind_filter(obj: Any, schema: pa.Schema) -> Expr | None:
    """Parse and validate a filter against ``schema``; None stays None."""
    if obj is None:
        return None
    return to_expr(obj).bind(schema)
