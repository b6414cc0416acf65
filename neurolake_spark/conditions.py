"""Restricted conditions and assignments for bulk writes: parsed here, never run as SQL text.

A condition from the command line, a fix file or the HTTP API is parsed by this module's own
tokenizer and recursive-descent parser into a small typed tree, checked against the table's
columns, and turned into a pyspark ``Column`` built from ``F.col``, ``F.lit``, Column
operators and a few allowed functions. Nothing the user wrote reaches Spark's SQL parser::

    condition = parse_condition("status = 'test' AND order_ts < DATE '2026-01-01'")
    bound = bind(condition, df.columns)          # unknown column -> ConditionError (did you mean ...)
    df.where(to_column(bound))
    always_true(parse_condition("1 = 1"))        # True: refuse "every row" without --all-rows

    parse_assignments("status = 'void', amount = amount * -1")
    condition_from_json([{"column": "status", "op": "=", "value": "test"}])   # the API's form

The language (case-insensitive keywords; a subset of Spark SQL with the same meaning):

- column references: ``name`` (ASCII letters, digits, ``_``; not a keyword) or ```any name```
  (backquoted, a backquote doubled inside);
- literals: integers (64-bit), decimals (``1.50``, at most 38 digits), doubles (``1.5E3``),
  ``'strings'`` (a quote doubled inside; a backslash only before ``%`` or ``_``, the escapes
  of LIKE patterns, as Spark SQL would read any other backslash differently), ``TRUE``,
  ``FALSE``, ``NULL``, ``DATE 'YYYY-MM-DD'``, ``TIMESTAMP 'YYYY-MM-DD HH:MM[:SS[.ffffff]]'``
  (in the session's time zone);
- arithmetic ``+ - * / %`` and unary minus; comparisons ``= == != <> < <= > >= <=>``;
  ``AND``, ``OR``, ``NOT`` and parentheses; ``[NOT] IN (...)``, ``[NOT] BETWEEN .. AND ..``,
  ``[NOT] LIKE``, ``IS [NOT] NULL``;
- the functions in :data:`FUNCTIONS` (``lower upper trim ltrim rtrim length abs coalesce``)
  and ``CAST(expr AS type)`` to the types in :data:`CAST_TYPES`.

Everything else is refused with a one-line :class:`ConditionError` naming the offending token
and its position (1-based): other functions (``reflect``, ``java_method``, UDFs), subqueries
and statements (``SELECT``...), ``;``, comments, double-quoted text, and any character outside
ASCII outside a quoted literal or name (so Unicode look-alikes of ``=`` or ``'`` cannot hide).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from neurolake_spark.errors import BadInputError

MAX_TEXT_LENGTH = 20_000
MAX_NESTING = 40
"""Parentheses, NOT and unary minus nested deeper than this are refused while parsing."""
MAX_DEPTH = 100
"""A tree deeper than this (e.g. a chain of 100 additions) is refused."""
MAX_LIST_ITEMS = 10_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class ConditionError(BadInputError):
    """A condition or assignment is malformed or uses something this language does not allow."""


# ----------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Col:
    """A column reference (after :func:`bind`, spelled as in the table's schema)."""

    name: str


@dataclass(frozen=True)
class Lit:
    """A literal; ``kind`` is one of int, decimal, double, string, boolean, null, date, timestamp
    (dates and timestamps keep their text)."""

    value: Any
    kind: str


@dataclass(frozen=True)
class Unary:
    """``-operand`` (``op`` "-") or ``NOT operand`` (``op`` "NOT")."""

    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    """Arithmetic (``+ - * / %``) or a comparison (``= != < <= > >= <=>``)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Logic:
    """``terms`` joined by ``op`` (``AND`` or ``OR``); two or more terms."""

    op: str
    terms: tuple[Node, ...]


@dataclass(frozen=True)
class InList:
    operand: Node
    items: tuple[Node, ...]
    negated: bool = False


@dataclass(frozen=True)
class Between:
    operand: Node
    low: Node
    high: Node
    negated: bool = False


@dataclass(frozen=True)
class Like:
    operand: Node
    pattern: Node
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    operand: Node
    negated: bool = False


@dataclass(frozen=True)
class Call:
    """A call of an allowed function (``name`` in lowercase)."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Cast:
    operand: Node
    type: str


Node = Col | Lit | Unary | Binary | Logic | InList | Between | Like | IsNull | Call | Cast

ARITHMETIC = ("+", "-", "*", "/", "%")
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=", "<=>")
_OPERATOR_SPELLINGS = {"==": "=", "<>": "!="}

FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., Column]]] = {
    # name: (fewest arguments, most arguments or None, the pyspark function)
    "lower": (1, 1, F.lower),
    "upper": (1, 1, F.upper),
    "trim": (1, 1, F.trim),
    "ltrim": (1, 1, F.ltrim),
    "rtrim": (1, 1, F.rtrim),
    "length": (1, 1, F.length),
    "abs": (1, 1, F.abs),
    "coalesce": (1, None, F.coalesce),
}
"""The functions a condition or assignment may call, besides ``CAST``."""

CAST_TYPES = (
    "boolean",
    "tinyint",
    "smallint",
    "int",
    "bigint",
    "float",
    "double",
    "decimal",
    "string",
    "date",
    "timestamp",
)
"""The types ``CAST(x AS type)`` may name (``integer`` means ``int``; ``decimal(p[, s])``)."""

KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "BETWEEN", "TRUE", "FALSE", "CAST", "AS"}
REFUSED_WORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "WITH",
    "VALUES",
    "TABLE",
    "UNION",
    "EXISTS",
    "CASE",
    "WHEN",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "DROP",
    "CREATE",
    "ALTER",
    "SET",
    "INTERVAL",
    "LATERAL",
    "OVER",
    "RLIKE",
    "REGEXP",
}
"""Words a plain column name may not be (subqueries, statements and constructs this language
does not have); a column with such a name is written backquoted."""


# ----------------------------------------------------------------------------- tokens

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
)
_OPERATORS = ("<=>", "<=", ">=", "<>", "!=", "==", "=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",")
_WHITESPACE = " \t\r\n"
_SURROGATE = re.compile("[\ud800-\udfff]")
_AMBIGUOUS_BACKSLASH = re.compile(r"\\(?![%_])")


@dataclass(frozen=True)
class _Token:
    kind: str  # ident, quoted, number, string, op, end
    text: str  # the token as written
    value: Any  # identifier text, number, string content
    position: int  # 1-based


def _shown(text: str) -> str:
    """A token for an error message: quoted, shortened, non-printable characters escaped."""
    short = text if len(text) <= 40 else text[:37] + "..."
    return repr(short) if short.isprintable() else ascii(short)


def _character(char: str) -> str:
    return f"{_shown(char)} (U+{ord(char):04X})"


def _check_text(text: str, what: str) -> None:
    if not isinstance(text, str):
        raise ConditionError(f"{what}: expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise ConditionError(f"{what}: longer than {MAX_TEXT_LENGTH} characters")
    surrogate = _SURROGATE.search(text)
    if surrogate:
        raise ConditionError(
            f"{what}: invalid character {_character(surrogate.group())} at position {surrogate.start() + 1}"
        )


def _tokens(text: str, what: str) -> Iterator[_Token]:
    """The tokens of ``text``, made as the parser asks for them (so the first error in the text
    is the one reported), ending with an ``end`` token."""
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        position = i + 1
        if char in _WHITESPACE:
            i += 1
        elif text.startswith(("--", "/*", "*/"), i) or char == "#":
            raise ConditionError(
                f"{what}: comments are not allowed: {_shown(char if char == '#' else text[i : i + 2])} "
                f"at position {position}"
            )
        elif char == "'":
            end, value = _quoted(text, i, "'", what, "string")
            backslash = _AMBIGUOUS_BACKSLASH.search(text, i, end)
            if backslash:
                raise ConditionError(
                    f"{what}: a backslash in a string is only allowed before % or _ (LIKE escapes), "
                    f"at position {backslash.start() + 1}: Spark SQL would read it as an escape"
                )
            yield _Token("string", text[i:end], value, position)
            i = end
        elif char == "`":
            end, value = _quoted(text, i, "`", what, "name")
            if not value:
                raise ConditionError(f"{what}: empty column name at position {position}")
            yield _Token("quoted", text[i:end], value, position)
            i = end
        elif char == '"':
            raise ConditionError(
                f"{what}: double quotes are not allowed at position {position}: "
                "write 'text' for a string, `name` for a column"
            )
        elif match := _IDENT.match(text, i):
            yield _Token("ident", match.group(), match.group(), position)
            i = match.end()
        elif match := _NUMBER.match(text, i):
            i = match.end()
            if i < n and (text[i].isalnum() or text[i] in "_."):
                raise ConditionError(f"{what}: unexpected {_character(text[i])} at position {i + 1}")
            yield _Token("number", match.group(), _number(match.group(), what, position), position)
        else:
            operator = next((op for op in _OPERATORS if text.startswith(op, i)), None)
            if operator is None:
                raise ConditionError(
                    f"{what}: unexpected character {_character(char)} at position {position}"
                )
            yield _Token("op", operator, _OPERATOR_SPELLINGS.get(operator, operator), position)
            i += len(operator)
    yield _Token("end", "", None, n + 1)


def _quoted(text: str, start: int, quote: str, what: str, kind: str) -> tuple[int, str]:
    """The end of a quoted string or name starting at ``start`` and its content (a doubled
    quote stands for one)."""
    parts, i = [], start + 1
    while True:
        end = text.find(quote, i)
        if end < 0:
            raise ConditionError(f"{what}: unterminated {kind} starting at position {start + 1}")
        parts.append(text[i:end])
        if text.startswith(quote * 2, end):
            parts.append(quote)
            i = end + 2
        else:
            return end + 1, "".join(parts)


def _number(text: str, what: str, position: int) -> int | Decimal | float:
    if "e" in text or "E" in text:
        double = float(text)
        if double in (float("inf"), float("-inf")):
            raise ConditionError(f"{what}: number {_shown(text)} at position {position} is out of range")
        return double
    if "." in text:
        decimal = Decimal(text)
        _, digits, exponent = decimal.as_tuple()
        if max(len(digits), -int(exponent)) > 38:
            raise ConditionError(
                f"{what}: number {_shown(text)} at position {position} has more than 38 digits"
            )
        return decimal
    number = int(text)
    if number > INT64_MAX:
        raise ConditionError(
            f"{what}: number {_shown(text)} at position {position} is out of range (64 bits)"
        )
    return number


# ----------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the tokens; precedence from loosest: OR, AND, NOT, predicates
    (comparisons, IN, BETWEEN, LIKE, IS NULL), + -, * / %, unary minus."""

    def __init__(self, text: str, what: str):
        self.what = what
        _check_text(text, what)
        self._stream = _tokens(text, what)
        self._ahead: list[_Token] = []
        self.depth = 0

    # helpers ------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> _Token:
        while len(self._ahead) <= ahead:
            if self._ahead and self._ahead[-1].kind == "end":
                return self._ahead[-1]
            self._ahead.append(next(self._stream))
        return self._ahead[ahead]

    @property
    def token(self) -> _Token:
        return self.peek()

    def advance(self) -> _Token:
        token = self.peek()
        if token.kind != "end":
            self._ahead.pop(0)
        return token

    def is_word(self, *words: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "ident" and token.value.upper() in words

    def is_op(self, *ops: str) -> bool:
        return self.token.kind == "op" and self.token.value in ops

    def error(self, problem: str | None = None, token: _Token | None = None) -> ConditionError:
        token = token or self.token
        if token.kind == "end":
            return ConditionError(
                f"{self.what}: {problem or 'unexpected end'} at the end (position {token.position})"
            )
        return ConditionError(
            f"{self.what}: {problem or 'unexpected'} {_shown(token.text)} at position {token.position}"
        )

    def expect_op(self, op: str) -> None:
        if not self.is_op(op):
            raise self.error(f"expected {op!r}, found" if self.token.kind != "end" else f"expected {op!r}")
        self.advance()

    def expect_word(self, word: str) -> None:
        if not self.is_word(word):
            raise self.error(f"expected {word}, found" if self.token.kind != "end" else f"expected {word}")
        self.advance()

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"nested more than {MAX_NESTING} levels deep at")

    def finish(self, node: Node) -> Node:
        if self.token.kind != "end":
            raise self.error()
        return _checked_depth(node, self.what)

    # grammar ------------------------------------------------------------------------

    def expression(self) -> Node:
        self.nested()
        node = self.disjunction()
        self.depth -= 1
        return node

    def disjunction(self) -> Node:
        terms = [self.conjunction()]
        while self.is_word("OR"):
            self.advance()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else Logic("OR", tuple(terms))

    def conjunction(self) -> Node:
        terms = [self.negation()]
        while self.is_word("AND"):
            self.advance()
            terms.append(self.negation())
        return terms[0] if len(terms) == 1 else Logic("AND", tuple(terms))

    def negation(self) -> Node:
        if self.is_word("NOT"):
            self.advance()
            self.nested()
            node = Unary("NOT", self.negation())
            self.depth -= 1
            return node
        return self.predicate()

    def predicate(self) -> Node:
        node = self.additive()
        if self.is_op(*COMPARISONS):
            op = self.advance().value
            return Binary(op, node, self.additive())
        negated = self.is_word("NOT") and self.is_word("IN", "BETWEEN", "LIKE", ahead=1)
        if negated:
            self.advance()
        if self.is_word("IN"):
            self.advance()
            return InList(node, self.item_list(), negated)
        if self.is_word("BETWEEN"):
            self.advance()
            low = self.additive()
            self.expect_word("AND")
            return Between(node, low, self.additive(), negated)
        if self.is_word("LIKE"):
            self.advance()
            return Like(node, self.additive(), negated)
        if self.is_word("IS"):
            self.advance()
            is_not = self.is_word("NOT")
            if is_not:
                self.advance()
            self.expect_word("NULL")
            return IsNull(node, is_not)
        return node

    def item_list(self) -> tuple[Node, ...]:
        start = self.token
        self.expect_op("(")
        if self.is_word(*REFUSED_WORDS):
            raise self.error("subqueries are not allowed:")
        items = [self.expression()]
        while self.is_op(","):
            self.advance()
            items.append(self.expression())
            if len(items) > MAX_LIST_ITEMS:
                raise self.error(f"more than {MAX_LIST_ITEMS} values in the list starting", start)
        self.expect_op(")")
        return tuple(items)

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.is_op("+", "-"):
            op = self.advance().value
            node = Binary(op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.is_op("*", "/", "%"):
            op = self.advance().value
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.is_op("-", "+"):
            op = self.advance().value
            self.nested()
            operand = self.unary()
            self.depth -= 1
            if op == "+":
                return operand
            if isinstance(operand, Lit) and operand.kind in ("int", "decimal", "double"):
                return Lit(-operand.value, operand.kind)
            return Unary("-", operand)
        return self.primary()

    def primary(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.advance()
            value = token.value
            kind = (
                "double" if isinstance(value, float) else "decimal" if isinstance(value, Decimal) else "int"
            )
            return Lit(value, kind)
        if token.kind == "string":
            self.advance()
            return Lit(token.value, "string")
        if token.kind == "quoted":
            self.advance()
            return Col(token.value)
        if self.is_op("("):
            self.advance()
            node = self.expression()
            self.expect_op(")")
            return node
        if token.kind == "ident":
            return self.word()
        raise self.error()

    def word(self) -> Node:
        token = self.advance()
        upper = token.value.upper()
        if upper in ("TRUE", "FALSE"):
            return Lit(upper == "TRUE", "boolean")
        if upper == "NULL":
            return Lit(None, "null")
        if upper in ("DATE", "TIMESTAMP") and self.token.kind == "string":
            return self.typed_literal(upper.lower(), self.advance())
        if upper == "CAST":
            return self.cast(token)
        if self.is_op("("):
            return self.call(token)
        if upper in REFUSED_WORDS:
            raise self.error("subqueries, statements and this construct are not allowed:", token)
        if upper in KEYWORDS:
            raise self.error("unexpected keyword", token)
        return Col(token.value)

    def typed_literal(self, kind: str, token: _Token) -> Lit:
        text = token.value.strip()
        pattern = _DATE_TEXT if kind == "date" else _TIMESTAMP_TEXT
        try:
            if not pattern.fullmatch(text):
                raise ValueError(text)
            (dt.date if kind == "date" else dt.datetime).fromisoformat(text)
        except ValueError:
            expected = "YYYY-MM-DD" if kind == "date" else "YYYY-MM-DD HH:MM[:SS[.ffffff]]"
            raise self.error(f"not a valid {kind.upper()} ({expected}):", token) from None
        return Lit(text, kind)

    def call(self, name: _Token) -> Call:
        function = name.value.lower()
        if function not in FUNCTIONS:
            allowed = ", ".join(sorted(FUNCTIONS))
            raise self.error(f"function not allowed (allowed: {allowed}, CAST):", name)
        self.advance()  # (
        args: list[Node] = []
        if not self.is_op(")"):
            args.append(self.expression())
            while self.is_op(","):
                self.advance()
                args.append(self.expression())
        self.expect_op(")")
        fewest, most, _ = FUNCTIONS[function]
        if len(args) < fewest or (most is not None and len(args) > most):
            count = str(fewest) if fewest == most else f"at least {fewest}"
            raise self.error(f"{function}() takes {count} argument(s), got {len(args)}:", name)
        return Call(function, tuple(args))

    def cast(self, name: _Token) -> Cast:
        self.expect_op("(")
        operand = self.expression()
        self.expect_word("AS")
        return Cast(operand, self.cast_type())

    def cast_type(self) -> str:
        token = self.token
        if token.kind != "ident":
            raise self.error("expected a type, found")
        self.advance()
        name = token.value.lower()
        name = "int" if name == "integer" else name
        if name not in CAST_TYPES:
            raise self.error(f"CAST to this type is not allowed (types: {', '.join(CAST_TYPES)}):", token)
        if name == "decimal" and self.is_op("("):
            self.advance()
            precision = self.type_number(1, 38)
            scale = 0
            if self.is_op(","):
                self.advance()
                scale = self.type_number(0, precision)
            name = f"decimal({precision},{scale})"
            self.expect_op(")")
        elif name == "decimal":
            name = "decimal(10,0)"
        self.expect_op(")")
        return name

    def type_number(self, low: int, high: int) -> int:
        token = self.token
        if token.kind != "number" or not isinstance(token.value, int) or not low <= token.value <= high:
            raise self.error(f"expected a whole number from {low} to {high}, found")
        self.advance()
        return token.value

    def assignment(self) -> tuple[str, Node]:
        token = self.token
        plain = token.kind == "ident" and token.value.upper() not in KEYWORDS | REFUSED_WORDS
        if token.kind == "quoted" or plain:
            target = token.value
        else:
            raise self.error("expected a column name to set, found")
        self.advance()
        self.expect_op("=")
        return target, self.expression()


def parse_condition(text: str, what: str = "condition") -> Node:
    """Parse a condition (``status = 'test' AND amount > 10``) into its tree.

    ``what`` starts every error message (e.g. ``--where`` or ``fix 003.json: where``).
    """
    parser = _Parser(text, what)
    return parser.finish(parser.expression())


parse_expression = parse_condition
"""Parse a value expression (the right side of an assignment): the same language."""


def parse_assignment(text: str, what: str = "assignment") -> tuple[str, Node]:
    """Parse ``column = expression`` into ``(column, tree)``."""
    parser = _Parser(text, what)
    target, node = parser.assignment()
    return target, parser.finish(node)


def parse_assignments(text: str, what: str = "assignments") -> dict[str, Node]:
    """Parse ``col = expr, col2 = expr`` into ``{column: tree}`` (a column at most once)."""
    parser = _Parser(text, what)
    result: dict[str, Node] = {}
    while True:
        start = parser.token
        target, node = parser.assignment()
        if target in result:
            raise parser.error("column set twice:", start)
        result[target] = _checked_depth(node, what)
        if not parser.is_op(","):
            break
        parser.advance()
    parser.finish(node)
    return result


# ----------------------------------------------------------------------------- JSON form

JSON_OPERATORS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "<=>": "<=>",
    "in": "in",
    "not in": "not in",
    "like": "like",
    "not like": "not like",
    "between": "between",
    "not between": "not between",
    "is null": "is null",
    "is not null": "is not null",
}
"""The ``op`` values of the structured form (case-insensitive)."""


def literal(value: Any, where: str = "value") -> Lit:
    """The literal of a Python value (str, int, float, Decimal, bool, None): data, never parsed."""
    if value is None:
        return Lit(None, "null")
    if isinstance(value, bool):
        return Lit(value, "boolean")
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ConditionError(f"{where}: number {value} is out of range (64 bits)")
        return Lit(value, "int")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConditionError(f"{where}: {value!r} is not a number a condition can use")
        return Lit(value, "double")
    if isinstance(value, Decimal):
        return Lit(value, "decimal")
    if isinstance(value, str):
        if len(value) > MAX_TEXT_LENGTH:
            raise ConditionError(f"{where}: value longer than {MAX_TEXT_LENGTH} characters")
        if _SURROGATE.search(value):
            raise ConditionError(f"{where}: the value is not valid Unicode (a lone surrogate)")
        return Lit(value, "string")
    raise ConditionError(
        f"{where}: a value must be a string, number, boolean or null, got {type(value).__name__}"
    )


def condition_from_json(spec: Any, what: str = "condition") -> Node:
    """The tree of a structured condition, the HTTP API's form (values are data, never parsed).

    ``spec`` is one clause or a list of clauses (all must hold). A clause is
    ``{"column": name, "op": op, "value": v}`` (no ``value`` for ``is null`` / ``is not null``;
    a list for ``in``, ``[low, high]`` for ``between``), or ``{"and": [...]}``,
    ``{"or": [...]}``, ``{"not": clause}``. Example::

        [{"column": "status", "op": "=", "value": "test"},
         {"or": [{"column": "amount", "op": "<", "value": 0}, {"column": "amount", "op": "is null"}]}]
    """
    return _checked_depth(_json_clause(spec, what, 0), what)


def _json_clause(spec: Any, where: str, depth: int) -> Node:
    if depth > MAX_NESTING:
        raise ConditionError(f"{where}: nested more than {MAX_NESTING} levels deep")
    if isinstance(spec, list):
        return _json_all(spec, "and", where, depth)
    if not isinstance(spec, dict):
        raise ConditionError(f"{where}: a clause must be an object or a list, got {type(spec).__name__}")
    if set(spec) in ({"and"}, {"or"}):
        (key,) = spec
        if not isinstance(spec[key], list):
            raise ConditionError(f"{where}.{key}: must be a list of clauses")
        return _json_all(spec[key], key, f"{where}.{key}", depth)
    if set(spec) == {"not"}:
        return Unary("NOT", _json_clause(spec["not"], f"{where}.not", depth + 1))
    unknown = sorted(set(spec) - {"column", "op", "value"})
    if unknown or "column" not in spec or "op" not in spec:
        raise ConditionError(
            f'{where}: a clause is {{"column", "op", "value"}} or one of and / or / not'
            + (f" (unknown keys: {', '.join(map(str, unknown))})" if unknown else "")
        )
    column, op = spec["column"], spec["op"]
    if not isinstance(column, str) or not column:
        raise ConditionError(f"{where}: 'column' must be a non-empty string")
    if not isinstance(op, str) or " ".join(op.lower().split()) not in JSON_OPERATORS:
        raise ConditionError(f"{where}: 'op' must be one of {', '.join(JSON_OPERATORS)}; got {op!r}")
    op = JSON_OPERATORS[" ".join(op.lower().split())]
    target = Col(column)
    if op in ("is null", "is not null"):
        if "value" in spec:
            raise ConditionError(f"{where}: '{op}' takes no value")
        return IsNull(target, op == "is not null")
    if "value" not in spec:
        raise ConditionError(f"{where}: '{op}' needs a value")
    value = spec["value"]
    if op in ("in", "not in"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST_ITEMS:
            raise ConditionError(f"{where}: '{op}' needs a list of 1 to {MAX_LIST_ITEMS} values")
        return InList(target, tuple(literal(v, where) for v in value), op == "not in")
    if op in ("between", "not between"):
        if not isinstance(value, list) or len(value) != 2:
            raise ConditionError(f"{where}: '{op}' needs [low, high]")
        low, high = (literal(v, where) for v in value)
        return Between(target, low, high, op == "not between")
    operand = literal(value, where)
    if op in ("like", "not like"):
        if operand.kind != "string":
            raise ConditionError(f"{where}: '{op}' needs a string pattern")
        return Like(target, operand, op == "not like")
    if operand.kind == "null" and op != "<=>":
        raise ConditionError(f"{where}: '{op}' with null is never true; use 'is null' or 'is not null'")
    return Binary(op, target, operand)


def _json_all(items: list, key: str, where: str, depth: int) -> Node:
    if not items:
        raise ConditionError(f"{where}: an empty list of clauses")
    nodes = [_json_clause(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(items)]
    return nodes[0] if len(nodes) == 1 else Logic(key.upper(), tuple(nodes))


def assignments_from_json(spec: Any, what: str = "set") -> dict[str, Node]:
    """``{"status": "void", "amount": 0}``: columns set to JSON values (data, never parsed)."""
    if not isinstance(spec, dict) or not spec:
        raise ConditionError(f"{what}: must be a non-empty object of column: value")
    result: dict[str, Node] = {}
    for column, value in spec.items():
        if not isinstance(column, str) or not column:
            raise ConditionError(f"{what}: column names must be non-empty strings")
        result[column] = literal(value, f"{what}.{column}")
    return result


# ----------------------------------------------------------------------------- walking


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary | IsNull | Cast):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Logic):
        return node.terms
    if isinstance(node, InList):
        return (node.operand, *node.items)
    if isinstance(node, Between):
        return (node.operand, node.low, node.high)
    if isinstance(node, Like):
        return (node.operand, node.pattern)
    if isinstance(node, Call):
        return node.args
    return ()


def _rebuild(node: Node, change: Callable[[Node], Node]) -> Node:
    """``node`` with ``change`` applied to each child."""
    if isinstance(node, Unary):
        return Unary(node.op, change(node.operand))
    if isinstance(node, Binary):
        return Binary(node.op, change(node.left), change(node.right))
    if isinstance(node, Logic):
        return Logic(node.op, tuple(change(t) for t in node.terms))
    if isinstance(node, InList):
        return InList(change(node.operand), tuple(change(i) for i in node.items), node.negated)
    if isinstance(node, Between):
        return Between(change(node.operand), change(node.low), change(node.high), node.negated)
    if isinstance(node, Like):
        return Like(change(node.operand), change(node.pattern), node.negated)
    if isinstance(node, IsNull):
        return IsNull(change(node.operand), node.negated)
    if isinstance(node, Cast):
        return Cast(change(node.operand), node.type)
    if isinstance(node, Call):
        return Call(node.name, tuple(change(a) for a in node.args))
    return node


def _checked_depth(node: Node, what: str) -> Node:
    """``node``, unless it is nested deeper than :data:`MAX_DEPTH` (counted without recursion,
    so that the recursive walks below stay far from Python's recursion limit)."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConditionError(f"{what}: nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in _children(current))
    return node


def columns_of(node: Node) -> set[str]:
    """The column names ``node`` refers to."""
    if isinstance(node, Col):
        return {node.name}
    return set().union(*(columns_of(child) for child in _children(node)))


def resolve_column(name: str, columns: Iterable[str], what: str = "condition") -> str:
    """``name`` as the schema spells it (exact, else the one case-insensitive match), or a
    :class:`ConditionError` with a did-you-mean."""
    columns = list(columns)
    if name in columns:
        return name
    folded = [c for c in columns if c.casefold() == name.casefold()]
    if len(folded) == 1:
        return folded[0]
    if len(folded) > 1:
        raise ConditionError(f"{what}: column {_shown(name)} is ambiguous ({', '.join(folded)})")
    close = difflib.get_close_matches(name.casefold(), [c.casefold() for c in columns], n=1, cutoff=0.6)
    suggestion = next((c for c in columns if close and c.casefold() == close[0]), None)
    if suggestion is not None:
        hint = f" (did you mean {_shown(suggestion)}?)"
    else:
        hint = f" (columns: {', '.join(columns[:20])}{', ...' if len(columns) > 20 else ''})"
    raise ConditionError(f"{what}: unknown column {_shown(name)}{hint}")


def bind(node: Node, columns: Iterable[str], what: str = "condition") -> Node:
    """``node`` with every column checked against ``columns`` and spelled as they are."""
    columns = list(columns)

    def walk(n: Node) -> Node:
        if isinstance(n, Col):
            return Col(resolve_column(n.name, columns, what))
        return _rebuild(n, walk)

    return walk(node)


def bind_assignments(
    assignments: Mapping[str, Node], columns: Iterable[str], what: str = "assignment"
) -> dict[str, Node]:
    """``assignments`` with targets and expressions checked against ``columns``."""
    columns = list(columns)
    bound: dict[str, Node] = {}
    for target, node in assignments.items():
        name = resolve_column(target, columns, what)
        if name in bound:
            raise ConditionError(f"{what}: column {_shown(name)} set twice")
        bound[name] = bind(node, columns, what)
    return bound


# ----------------------------------------------------------------------------- text

_OR, _AND, _NOT, _PREDICATE, _ADDITIVE, _MULTIPLICATIVE, _NEGATIVE, _PRIMARY = range(1, 9)


def _precedence(node: Node) -> int:
    """How tightly ``node``'s text binds (a child binding less tightly than its place needs is
    parenthesized)."""
    if isinstance(node, Logic):
        return _OR if node.op == "OR" else _AND
    if isinstance(node, Binary):
        if node.op in COMPARISONS:
            return _PREDICATE
        return _ADDITIVE if node.op in ("+", "-") else _MULTIPLICATIVE
    if isinstance(node, Unary):
        return _NOT if node.op == "NOT" else _NEGATIVE
    if isinstance(node, InList | Between | Like | IsNull):
        return _PREDICATE
    if isinstance(node, Lit) and node.kind in ("int", "decimal", "double") and node.value < 0:
        return _NEGATIVE
    return _PRIMARY


def _text_name(name: str) -> str:
    if _IDENT.fullmatch(name) and name.upper() not in KEYWORDS | REFUSED_WORDS | {"DATE", "TIMESTAMP"}:
        return name
    return "`" + name.replace("`", "``") + "`"


def _number_text(lit: Lit) -> str:
    if lit.kind == "int":
        return str(lit.value)
    if lit.kind == "decimal":
        text = format(lit.value, "f")
        return text if "." in text else text + ".0"
    text = repr(float(lit.value))
    return text if "e" in text else text + "E0"


def _text_literal(lit: Lit) -> str:
    if lit.kind == "null":
        return "NULL"
    if lit.kind == "boolean":
        return "TRUE" if lit.value else "FALSE"
    if lit.kind in ("int", "decimal", "double"):
        return _number_text(lit)
    if lit.kind in ("date", "timestamp"):
        return f"{lit.kind.upper()} '{lit.value}'"
    return "'" + str(lit.value).replace("'", "''") + "'"


def to_text(node: Node) -> str:
    """``node`` in this module's language, parenthesized only where needed: parsing the text
    gives ``node`` back."""

    def wrap(child: Node, least: int) -> str:
        text = to_text(child)
        return f"({text})" if _precedence(child) < least else text

    if isinstance(node, Col):
        return _text_name(node.name)
    if isinstance(node, Lit):
        return _text_literal(node)
    if isinstance(node, Logic):
        least = _precedence(node) + 1  # a nested chain of the same operator keeps its parentheses
        return f" {node.op} ".join(wrap(term, least) for term in node.terms)
    if isinstance(node, Unary):
        if node.op == "NOT":
            return f"NOT {wrap(node.operand, _NOT)}"
        return f"-{wrap(node.operand, _PRIMARY)}"
    if isinstance(node, Binary):
        if node.op in COMPARISONS:
            return f"{wrap(node.left, _ADDITIVE)} {node.op} {wrap(node.right, _ADDITIVE)}"
        least = _precedence(node)
        return f"{wrap(node.left, least)} {node.op} {wrap(node.right, least + 1)}"
    if isinstance(node, Call):
        return f"{node.name}({', '.join(to_text(a) for a in node.args)})"
    if isinstance(node, Cast):
        return f"CAST({to_text(node.operand)} AS {node.type.upper()})"
    operand = wrap(node.operand, _ADDITIVE)
    negation = "NOT " if node.negated else ""
    if isinstance(node, InList):
        return f"{operand} {negation}IN ({', '.join(to_text(i) for i in node.items)})"
    if isinstance(node, Between):
        return f"{operand} {negation}BETWEEN {wrap(node.low, _ADDITIVE)} AND {wrap(node.high, _ADDITIVE)}"
    if isinstance(node, Like):
        return f"{operand} {negation}LIKE {wrap(node.pattern, _ADDITIVE)}"
    return f"{operand} IS {negation}NULL"


# ----------------------------------------------------------------------------- Spark


def _column_reference(name: str) -> Column:
    """``F.col`` of a top-level column, backquoted so dots and backquotes in names are literal."""
    return F.col("`" + name.replace("`", "``") + "`")


def _literal(lit: Lit) -> Column:
    if lit.kind in ("date", "timestamp"):
        return F.lit(lit.value).cast(lit.kind)
    return F.lit(lit.value)


_COLUMN_OPERATORS: dict[str, Callable[[Column, Column], Column]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": lambda a, b: a % b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<=>": lambda a, b: a.eqNullSafe(b),
    "AND": lambda a, b: a & b,
    "OR": lambda a, b: a | b,
}


def to_column(node: Node) -> Column:
    """A pyspark ``Column`` of ``node`` (bind it first), built from ``F.col``, ``F.lit``,
    Column operators and the functions of :data:`FUNCTIONS`; no SQL text is parsed."""
    if isinstance(node, Col):
        return _column_reference(node.name)
    if isinstance(node, Lit):
        return _literal(node)
    if isinstance(node, Logic):
        column = to_column(node.terms[0])
        for term in node.terms[1:]:
            column = _COLUMN_OPERATORS[node.op](column, to_column(term))
        return column
    if isinstance(node, Unary):
        operand = to_column(node.operand)
        return ~operand if node.op == "NOT" else -operand
    if isinstance(node, Binary):
        return _COLUMN_OPERATORS[node.op](to_column(node.left), to_column(node.right))
    if isinstance(node, Call):
        return FUNCTIONS[node.name][2](*(to_column(a) for a in node.args))
    if isinstance(node, Cast):
        return to_column(node.operand).cast(node.type)
    operand = to_column(node.operand)
    if isinstance(node, InList):
        column = operand.isin(*(to_column(i) for i in node.items))
    elif isinstance(node, Between):
        column = operand.between(to_column(node.low), to_column(node.high))
    elif isinstance(node, Like):
        column = F.like(operand, to_column(node.pattern))
    else:
        return operand.isNotNull() if node.negated else operand.isNull()
    return ~column if node.negated else column


# ----------------------------------------------------------------------------- folding


class _Unknown:
    """The value of an expression only the data can tell."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal | float) and not isinstance(value, bool)


def _truth(value: Any) -> Any:
    """A folded value as a SQL truth value: True, False, None (NULL) or UNKNOWN."""
    return value if value is None or isinstance(value, bool) else UNKNOWN


def _compare(op: str, a: Any, b: Any) -> Any:
    if op == "<=>" and (a is None or b is None):
        return a is None and b is None
    if a is None or b is None:
        return None
    if _is_number(a) and _is_number(b):
        if isinstance(a, float) or isinstance(b, float):  # Spark compares as doubles
            a, b = float(a), float(b)
    elif not (type(a) is type(b) and isinstance(a, str | bool | dt.date)):
        return UNKNOWN  # Spark would coerce one side; not folded
    return {
        "=": a == b,
        "<=>": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


def _logic(op: str, values: Iterable[Any]) -> Any:
    """SQL's AND / OR over truth values: a decisive value wins, then UNKNOWN, then NULL."""
    decisive = op == "OR"
    result: Any = not decisive
    for value in map(_truth, values):
        if value is decisive:
            return decisive
        if value is UNKNOWN or result is UNKNOWN:
            result = UNKNOWN
        elif value is None:
            result = None
    return result


def _not(value: Any) -> Any:
    value = _truth(value)
    return (not value) if isinstance(value, bool) else value


def _like(value: str, pattern: str) -> Any:
    """SQL LIKE with ``\\`` escaping ``%``, ``_`` and itself; UNKNOWN for another escape (Spark
    refuses it)."""
    regex, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if pattern[i + 1 : i + 2] not in ("%", "_", "\\"):
                return UNKNOWN
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.fullmatch("".join(regex), value, re.DOTALL) is not None


_STRING_FUNCTIONS: dict[str, Callable[[str], Any]] = {
    "lower": str.lower,
    "upper": str.upper,
    "trim": lambda s: s.strip(" "),
    "ltrim": lambda s: s.lstrip(" "),
    "rtrim": lambda s: s.rstrip(" "),
    "length": len,
}


def fold(node: Node) -> Any:
    """The value of ``node`` when the data cannot change it, else :data:`UNKNOWN`.

    SQL's three-valued logic (None is NULL). Only what Spark would compute the same way is
    folded: comparisons of numbers, of strings, of booleans and of dates; integer ``+ - *``;
    the string functions; ``x <=> x`` is TRUE. ``x = x`` is not folded: it is NULL where
    ``x`` is NULL.
    """
    if isinstance(node, Lit):
        if node.kind == "date":
            return dt.date.fromisoformat(node.value)
        return UNKNOWN if node.kind == "timestamp" else node.value
    if isinstance(node, Col | Cast):
        return UNKNOWN
    if isinstance(node, Logic):
        return _logic(node.op, (fold(t) for t in node.terms))
    if isinstance(node, Unary):
        value = fold(node.operand)
        if node.op == "NOT":
            return _not(value)
        if value is None or (_is_number(value) and not isinstance(value, int)):
            return value if value is None else -value
        return _small_int(-value) if isinstance(value, int) and not isinstance(value, bool) else UNKNOWN
    if isinstance(node, Binary):
        if node.op == "<=>" and node.left == node.right:
            return True
        return _fold_binary(node.op, fold(node.left), fold(node.right))
    if isinstance(node, IsNull):
        value = fold(node.operand)
        return value if value is UNKNOWN else (value is None) != node.negated
    if isinstance(node, Between):
        inside = _logic(
            "AND",
            (
                _fold_binary(">=", fold(node.operand), fold(node.low)),
                _fold_binary("<=", fold(node.operand), fold(node.high)),
            ),
        )
        return _not(inside) if node.negated else inside
    if isinstance(node, InList):
        value = fold(node.operand)
        found = _logic("OR", (_fold_binary("=", value, fold(item)) for item in node.items))
        return _not(found) if node.negated else found
    if isinstance(node, Like):
        value, pattern = fold(node.operand), fold(node.pattern)
        if UNKNOWN in (value, pattern):
            return UNKNOWN
        if value is None or pattern is None:
            return None
        if not (isinstance(value, str) and isinstance(pattern, str)):
            return UNKNOWN
        matched = _like(value, pattern)
        return matched if matched is UNKNOWN else matched != node.negated
    return _fold_call(node)


def _fold_binary(op: str, left: Any, right: Any) -> Any:
    if left is UNKNOWN or right is UNKNOWN:
        return UNKNOWN
    if op in COMPARISONS:
        return _compare(op, left, right)
    if left is None or right is None:
        return None
    if op in ("+", "-", "*") and all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right)):
        if _small_int(left) is UNKNOWN or _small_int(right) is UNKNOWN:
            return UNKNOWN
        return _small_int({"+": left + right, "-": left - right, "*": left * right}[op])
    return UNKNOWN


def _fold_call(node: Call) -> Any:
    values = [fold(a) for a in node.args]
    if node.name == "coalesce":
        if UNKNOWN in values or len({_category(v) for v in values if v is not None}) > 1:
            return UNKNOWN  # Spark would coerce the arguments to one type first
        return next((v for v in values if v is not None), None)
    (value,) = values
    if value is None or value is UNKNOWN:
        return value
    if node.name == "abs":
        if isinstance(value, int) and not isinstance(value, bool):
            return _small_int(abs(value))
        return abs(value) if _is_number(value) else UNKNOWN
    if not isinstance(value, str) or (node.name in ("lower", "upper") and not value.isascii()):
        return UNKNOWN  # case mappings beyond ASCII differ between Python and Java
    return _STRING_FUNCTIONS[node.name](value)


def _category(value: Any) -> type:
    return Decimal if _is_number(value) else type(value)


def _small_int(value: int) -> Any:
    """``value`` if Spark computes it the same in 32-bit integer arithmetic (the type of small
    integer literals), else UNKNOWN (it would overflow)."""
    return value if INT32_MIN <= value <= INT32_MAX else UNKNOWN


def always_true(node: Node) -> bool:
    """Whether ``node`` is TRUE for every row whatever the data (``true``, ``1 = 1``,
    ``NOT false``, ``1 IN (1)``, ``x <=> x``, ``a > 1 OR true``...)."""
    return fold(node) is True
