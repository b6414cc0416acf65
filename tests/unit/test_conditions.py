"""Restricted conditions: hostile inputs refused, the language parsed, folded and printed back.

Spark's own evaluation of the same conditions is compared in ``tests/spark/test_conditions_spark.py``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurolake_spark.conditions import (
    CAST_TYPES,
    FUNCTIONS,
    UNKNOWN,
    Between,
    Binary,
    Call,
    Cast,
    Col,
    ConditionError,
    InList,
    IsNull,
    Like,
    Lit,
    Logic,
    Unary,
    always_true,
    assignments_from_json,
    bind,
    bind_assignments,
    condition_from_json,
    fold,
    parse_assignment,
    parse_assignments,
    parse_condition,
    to_text,
)

# ------------------------------------------------------------------------------ refusals

HOSTILE = [
    # (text, what the one-line error must name)
    ("reflect('java.lang.Runtime', 'getRuntime')", "'reflect' at position 1"),
    ("java_method('java.lang.System', 'exit', 0) = 1", "'java_method' at position 1"),
    ("status = 'x' OR REFLECT('java.lang.Thread', 'sleep', 1000) IS NULL", "'REFLECT' at position 17"),
    ("my_udf(status) = 1", "'my_udf' at position 1"),
    ("status = 'a'; DROP TABLE silver.orders", "';' (U+003B) at position 13"),
    ("true; SELECT 1", "';' (U+003B) at position 5"),
    ("id IN (SELECT id FROM silver.customers)", "'SELECT' at position 8"),
    ("EXISTS (SELECT 1)", "'EXISTS' at position 1"),
    ("(SELECT 1) = 1", "'SELECT' at position 2"),
    ("status = 'a' -- AND id = 1", "'--' at position 14"),
    ("status = 'a' /* hidden */", "'/*' at position 14"),
    ("id = 1 */", "'*/' at position 8"),
    ("id = 1 # comment", "'#' at position 8"),
    ('status = "test"', "double quotes are not allowed at position 10"),
    ("status \uff1d 'test'", "'\uff1d' (U+FF1D) at position 8"),  # fullwidth equals sign
    ("status = \u2018test\u2019", "(U+2018) at position 10"),  # typographic quotes
    ("st\u0430tus = 'x'", "(U+0430) at position 3"),  # Cyrillic a inside a name
    ("\uff52eflect('a', 'b')", "(U+FF52) at position 1"),  # fullwidth r
    ("id\u200b= 1", "(U+200B) at position 3"),  # zero-width space
    ("id\u00a0= 1", "(U+00A0) at position 3"),  # no-break space
    ("id = 1\x00", "(U+0000) at position 7"),
    ("a.b = 1", "'.' (U+002E) at position 2"),
    ("a[0] = 1", "'[' (U+005B) at position 2"),
    ("x = ${spark.sql.warehouse.dir}", "'$' (U+0024) at position 5"),
    ("CASE WHEN id = 1 THEN true END", "'CASE' at position 1"),
    ("id = 1 UNION SELECT 1", "'UNION' at position 8"),
    ("id RLIKE '.*'", "'RLIKE' at position 4"),
    ("id = INTERVAL 1 DAY", "'INTERVAL' at position 6"),
    ("transform(a, x -> x) IS NULL", "'transform' at position 1"),
    ("current_date() > d", "'current_date' at position 1"),
    ("CAST(id AS map<string,string>) IS NULL", "'map' at position 12"),
    ("CAST(id AS binary) IS NULL", "'binary' at position 12"),
    ("lower(a, b) = 'x'", "lower() takes 1 argument(s), got 2"),
    ("coalesce() IS NULL", "coalesce() takes at least 1 argument(s), got 0"),
    ("status = 'unterminated", "unterminated string starting at position 10"),
    ("`unterminated = 1", "unterminated name starting at position 1"),
    ("`` = 1", "empty column name at position 1"),
    ("id = 99999999999999999999", "out of range (64 bits)"),
    ("id = 1e400", "out of range"),
    ("id = 1." + "0" * 38 + "1", "more than 38 digits"),
    ("d = DATE '2026-02-30'", "not a valid DATE"),
    ("d = DATE '2026-01-01'' OR ''1'='1'", "not a valid DATE"),
    ("t = TIMESTAMP 'yesterday'", "not a valid TIMESTAMP"),
    ("id = 1 = 1", "'=' at position 8"),
    ("id = 1 AND", "at the end"),
    ("(id = 1", "expected ')' at the end"),
    ("id IN ()", "')' at position 8"),
    ("", "unexpected end"),
    ("AND", "'AND' at position 1"),
    ("1x = 1", "'x' (U+0078) at position 2"),
    ("id = 0x10", "'x' (U+0078) at position 7"),
    ("((((((((((((((((((((((((((((((((((((((((((id = 1))))))))))))))))))))))))))))))))))))))))))", "nested"),
    ("NOT " * 60 + "true", "nested"),
    (" + ".join(["id"] * 150) + " = 1", "nested more than 100 levels deep"),
    ("id = 1" + " " * 20_000, "longer than 20000 characters"),
    ("id = '\udcff'", "(U+DCFF) at position 7"),  # a lone surrogate (an undecodable byte in argv)
    (
        "path = 'C:\\dir'",
        "backslash in a string is only allowed before % or _ (LIKE escapes), at position 11",
    ),
    ("s = 'it\\'s'", "backslash in a string is only allowed before % or _ (LIKE escapes), at position 8"),
]


@pytest.mark.parametrize(("text", "named"), HOSTILE)
def test_hostile_conditions_are_refused_naming_the_token_and_its_position(text, named):
    with pytest.raises(ConditionError) as error:
        parse_condition(text, "--where")
    message = str(error.value)
    assert message.startswith("--where: ") and "\n" not in message
    assert named in message


def test_the_refusal_table_is_large():
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("status = reflect('a', 'b')", "'reflect'"),
        ("status", "expected '='"),
        ("= 'x'", "expected a column name to set, found '='"),
        ("select = 1", "expected a column name to set, found 'select'"),
        ("status = 'a'; DROP TABLE t", "';'"),
    ],
)
def test_hostile_assignments_are_refused(text, named):
    with pytest.raises(ConditionError, match="^--assign: ") as error:
        parse_assignment(text, "--assign")
    assert named in str(error.value)


def test_a_column_set_twice_is_refused():
    with pytest.raises(ConditionError, match="column set twice: 'a' at position 8"):
        parse_assignments("a = 1, a = 2")


# ------------------------------------------------------------------------------ the language


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("status = 'test'", Binary("=", Col("status"), Lit("test", "string"))),
        ("status == 'it''s'", Binary("=", Col("status"), Lit("it's", "string"))),
        ("a <> 1", Binary("!=", Col("a"), Lit(1, "int"))),
        ("a <=> NULL", Binary("<=>", Col("a"), Lit(None, "null"))),
        ("`order id` >= -1.50", Binary(">=", Col("order id"), Lit(Decimal("-1.50"), "decimal"))),
        ("`a``b` < 2E3", Binary("<", Col("a`b"), Lit(2000.0, "double"))),
        ("name LIKE '50\\%\\_%'", Like(Col("name"), Lit("50\\%\\_%", "string"))),
        ("date = DATE '2026-11-24'", Binary("=", Col("date"), Lit("2026-11-24", "date"))),
        (
            "ts < TIMESTAMP '2026-11-24 02:00:13.5'",
            Binary("<", Col("ts"), Lit("2026-11-24 02:00:13.5", "timestamp")),
        ),
        ("order_id % 97 = 0", Binary("=", Binary("%", Col("order_id"), Lit(97, "int")), Lit(0, "int"))),
        ("a - -5 * b", Binary("-", Col("a"), Binary("*", Lit(-5, "int"), Col("b")))),
        ("-(a)", Unary("-", Col("a"))),
        ("NOT a = 1", Unary("NOT", Binary("=", Col("a"), Lit(1, "int")))),
        (
            "a = 1 OR b = 2 AND c = 3",
            Logic(
                "OR",
                (
                    Binary("=", Col("a"), Lit(1, "int")),
                    Logic(
                        "AND", (Binary("=", Col("b"), Lit(2, "int")), Binary("=", Col("c"), Lit(3, "int")))
                    ),
                ),
            ),
        ),
        ("a NOT IN (1, 2)", InList(Col("a"), (Lit(1, "int"), Lit(2, "int")), negated=True)),
        (
            "a BETWEEN 1 AND 2 AND b",
            Logic("AND", (Between(Col("a"), Lit(1, "int"), Lit(2, "int")), Col("b"))),
        ),
        ("name NOT LIKE 'a%'", Like(Col("name"), Lit("a%", "string"), negated=True)),
        ("email IS NOT NULL", IsNull(Col("email"), negated=True)),
        (
            "LOWER(trim(s)) = 'x'",
            Binary("=", Call("lower", (Call("trim", (Col("s"),)),)), Lit("x", "string")),
        ),
        (
            "coalesce(a, b, 0) > 1",
            Binary(">", Call("coalesce", (Col("a"), Col("b"), Lit(0, "int"))), Lit(1, "int")),
        ),
        ("CAST(s AS integer) = 1", Binary("=", Cast(Col("s"), "int"), Lit(1, "int"))),
        ("CAST(s AS DECIMAL(12, 2)) = 1", Binary("=", Cast(Col("s"), "decimal(12,2)"), Lit(1, "int"))),
        ("flag", Col("flag")),
        ("TRUE", Lit(True, "boolean")),
    ],
)
def test_the_language_parses_into_its_tree(text, tree):
    assert parse_condition(text) == tree
    assert parse_condition(to_text(tree)) == tree


def test_assignments_parse_with_expressions_on_the_right():
    assert parse_assignments("status = 'void', amount = amount * -1") == {
        "status": Lit("void", "string"),
        "amount": Binary("*", Col("amount"), Lit(-1, "int")),
    }
    assert parse_assignment("`the flag` = a > 1") == ("the flag", Binary(">", Col("a"), Lit(1, "int")))


# ------------------------------------------------------------------------------ columns


def test_columns_are_checked_against_the_schema_with_a_suggestion():
    columns = ["order_id", "status", "amount"]
    assert bind(parse_condition("STATUS = 'x'"), columns) == Binary("=", Col("status"), Lit("x", "string"))
    with pytest.raises(
        ConditionError, match=r"^--where: unknown column 'stauts' \(did you mean 'status'\?\)$"
    ):
        bind(parse_condition("stauts = 'x'"), columns, "--where")
    with pytest.raises(ConditionError, match=r"unknown column 'zzz' \(columns: order_id, status, amount\)"):
        bind(parse_condition("lower(zzz) = 'x'"), columns)
    with pytest.raises(ConditionError, match=r"column 'ab' is ambiguous \(Ab, AB\)"):
        bind(parse_condition("ab = 1"), ["Ab", "AB"])
    assert bind_assignments(parse_assignments("Status = 'void'"), columns) == {
        "status": Lit("void", "string")
    }
    with pytest.raises(ConditionError, match="unknown column 'state'"):
        bind_assignments(parse_assignments("state = 'void'"), columns)


# ------------------------------------------------------------------------------ folding


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("1 = 1", True),
        ("1 == 1.0", True),
        ("2 > 1", True),
        ("'a' < 'b'", True),
        ("NOT false", True),
        ("NOT NOT true", True),
        ("1 IN (1)", True),
        ("1 IN (2, 1)", True),
        ("x <=> x", True),
        ("lower(x) <=> lower(x)", True),
        ("a > 1 OR true", True),
        ("true OR a > 1", True),
        ("NULL IS NULL", True),
        ("1 + 1 = 2", True),
        ("5 BETWEEN 1 AND 9", True),
        ("'abc' LIKE 'a%'", True),
        ("'a_c' LIKE 'a\\_c'", True),
        ("lower('ABC') = 'abc'", True),
        ("coalesce(NULL, 3) = 3", True),
        ("DATE '2026-01-02' > DATE '2026-01-01'", True),
        ("1 = 2", False),
        ("a > 1 AND false", False),
        ("NULL = NULL", None),
        ("1 IN (2, NULL)", None),
        ("NULL AND true", None),
        ("x = x", UNKNOWN),
        ("x IS NULL OR x IS NOT NULL", UNKNOWN),
        ("a > 1", UNKNOWN),
        ("1 = '1'", UNKNOWN),
        ("CAST('1' AS int) = 1", UNKNOWN),
        ("TIMESTAMP '2026-01-01 00:00' = TIMESTAMP '2026-01-01 00:00'", UNKNOWN),
        ("9223372036854775807 + 1 > 0", UNKNOWN),
    ],
)
def test_constant_folding(text, value):
    assert fold(parse_condition(text)) is value
    assert always_true(parse_condition(text)) == (value is True)


# ------------------------------------------------------------------------------ the JSON form


def test_the_structured_form_builds_the_same_trees():
    spec = [
        {"column": "status", "op": "=", "value": "test"},
        {"or": [{"column": "amount", "op": "<", "value": 0}, {"column": "amount", "op": "IS  NULL"}]},
        {"not": {"column": "id", "op": "in", "value": [1, 2]}},
        {"column": "d", "op": "between", "value": ["2026-01-01", "2026-12-31"]},
        {"column": "name", "op": "not like", "value": "x%"},
    ]
    assert condition_from_json(spec) == parse_condition(
        "status = 'test' AND (amount < 0 OR amount IS NULL) AND NOT id IN (1, 2) "
        "AND d BETWEEN '2026-01-01' AND '2026-12-31' AND name NOT LIKE 'x%'"
    )
    assert condition_from_json({"column": "x", "op": "=", "value": "'); DROP TABLE t; --"}) == Binary(
        "=", Col("x"), Lit("'); DROP TABLE t; --", "string")
    )
    assert assignments_from_json({"status": "void", "n": 0, "ok": False}) == {
        "status": Lit("void", "string"),
        "n": Lit(0, "int"),
        "ok": Lit(False, "boolean"),
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "an empty list of clauses"),
        ({"column": "a", "op": "~", "value": 1}, "'op' must be one of"),
        ({"column": "a", "op": "=", "value": None}, "use 'is null'"),
        (
            {"column": "a", "op": "=", "value": {"$gt": 1}},
            "a value must be a string, number, boolean or null",
        ),
        ({"column": "a", "op": "in", "value": []}, "needs a list of 1 to"),
        ({"column": "a", "op": "between", "value": [1]}, "needs [low, high]"),
        ({"column": "a", "op": "is null", "value": 1}, "takes no value"),
        ({"column": "a", "op": "=", "value": 1, "sql": "1=1"}, "unknown keys: sql"),
        ({"column": "", "op": "=", "value": 1}, "'column' must be a non-empty string"),
        ({"column": "a", "op": "=", "value": 2**70}, "out of range"),
        ({"column": "a", "op": "=", "value": float("nan")}, "not a number"),
        ({"column": "a", "op": "like", "value": 1}, "needs a string pattern"),
        ("status = 'x'", "a clause must be an object or a list"),
        ({"and": {"column": "a"}}, "must be a list of clauses"),
        ({"not": {"not": {"not": {}}}}, "a clause is"),
    ],
)
def test_bad_structured_conditions_are_refused(spec, message):
    with pytest.raises(ConditionError, match="^where") as error:
        condition_from_json(spec, "where")
    assert message in str(error.value)


def test_deeply_nested_structured_conditions_are_refused():
    spec: dict = {"column": "a", "op": "=", "value": 1}
    for _ in range(200):
        spec = {"not": spec}
    with pytest.raises(ConditionError, match="nested more than"):
        condition_from_json(spec)


# ------------------------------------------------------------------------------ fuzzing

NAMES = st.one_of(
    st.sampled_from(["a", "b", "Status", "order_id", "date", "select", "not", "x y", "a`b", "é"]),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8),
)
NUMBERS = st.one_of(
    st.integers(-(2**63) + 1, 2**63 - 1).map(lambda v: Lit(v, "int")),
    st.decimals(min_value=-(10**12), max_value=10**12, places=3).map(lambda v: Lit(v, "decimal")),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: Lit(v, "double")),
)
LEAVES = st.one_of(
    NAMES.map(Col),
    NUMBERS,
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\\"), max_size=10).map(
        lambda v: Lit(v, "string")
    ),
    st.booleans().map(lambda v: Lit(v, "boolean")),
    st.just(Lit(None, "null")),
    st.dates().map(lambda d: Lit(d.isoformat(), "date")),
    st.datetimes().map(lambda t: Lit(t.isoformat(sep=" "), "timestamp")),
)
TYPES = st.sampled_from([t for t in CAST_TYPES if t != "decimal"] + ["decimal(10,0)", "decimal(38,6)"])


def _extend(children):
    negatable = children.filter(lambda n: not (isinstance(n, Lit) and n.kind in ("int", "decimal", "double")))
    functions = st.sampled_from(sorted(FUNCTIONS)).flatmap(
        lambda name: st.lists(children, min_size=FUNCTIONS[name][0], max_size=FUNCTIONS[name][1] or 3).map(
            lambda args, name=name: Call(name, tuple(args))
        )
    )
    return st.one_of(
        st.builds(Unary, st.just("NOT"), children),
        st.builds(Unary, st.just("-"), negatable),
        st.builds(
            Binary,
            st.sampled_from(["+", "-", "*", "/", "%", "=", "!=", "<", "<=", ">", ">=", "<=>"]),
            children,
            children,
        ),
        st.builds(
            Logic, st.sampled_from(["AND", "OR"]), st.lists(children, min_size=2, max_size=3).map(tuple)
        ),
        st.builds(InList, children, st.lists(children, min_size=1, max_size=3).map(tuple), st.booleans()),
        st.builds(Between, children, children, children, st.booleans()),
        st.builds(Like, children, children, st.booleans()),
        st.builds(IsNull, children, st.booleans()),
        st.builds(Cast, children, TYPES),
        functions,
    )


TREES = st.recursive(LEAVES, _extend, max_leaves=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES)
def test_random_trees_print_and_parse_back_equal(tree):
    assert parse_condition(to_text(tree)) == tree
    fold(tree)  # never raises


ALPHABET = st.sampled_from(
    list("abcxyz_019 .,;'\"`()=<>!+-*/%#$[]{}\\\n\t")
    + ["AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "BETWEEN", "CAST", "AS", "DATE ", "TRUE", "--", "/*"]
    + ["lower(", "reflect(", "SELECT ", "\uff1d", "\u0430", "\u200b", "1e9", "1.5", "'x'", "`c`"]
)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(ALPHABET, max_size=25).map("".join)))
def test_random_text_only_ever_raises_condition_error(text):
    try:
        tree = parse_condition(text)
    except ConditionError as error:
        assert "\n" not in str(error)
        return
    assert parse_condition(to_text(tree)) == tree
    always_true(tree)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
        lambda c: st.one_of(
            st.lists(c, max_size=3),
            st.dictionaries(
                st.sampled_from(["column", "op", "value", "and", "or", "not", "x"]), c, max_size=4
            ),
        ),
        max_leaves=10,
    )
)
def test_random_json_only_ever_raises_condition_error(spec):
    try:
        condition_from_json(spec)
    except ConditionError as error:
        assert "\n" not in str(error)


def test_dates_and_times_in_literals_are_kept_as_written():
    tree = parse_condition("d >= DATE '2026-11-24' AND t < TIMESTAMP '2026-11-24T02:00'")
    assert fold(tree) is UNKNOWN
    assert dt.date.fromisoformat(tree.terms[0].right.value) == dt.date(2026, 11, 24)
    assert "TIMESTAMP '2026-11-24T02:00'" in to_text(tree)
