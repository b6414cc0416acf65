"""Read-only statements: Spark's own parser decides whether a statement is a query, and which
tables it names.

:meth:`SqlParser.check` parses the text with Spark's SQL parser (no analysis, no execution),
walks the whole parsed plan (children, CTE bodies, subquery expressions, the plan inside
``EXPLAIN``) and refuses anything that is not a query: each plan node must be one of
:data:`QUERY_NODES` (or ``SHOW TABLES``, ``DESCRIBE``, ``SHOW COLUMNS``, ``EXPLAIN`` at the top),
each function call must not be one of :data:`REFUSED_FUNCTIONS`, each table-valued function
must be ``range``. The relations it names are returned with their places in the text, so the
statement can be rewritten onto per-statement views (:meth:`CheckedStatement.rewrite`); a
path-based relation (``delta.`/p```) is refused.

Before Spark's parser, :func:`lexical_check` looks at the tokens (defence in depth): one
statement only, no control or invisible characters outside string literals.

Example::

    checked = SqlParser(spark._jvm).check("SELECT count(*) FROM silver.orders WHERE status = :s")
    checked.tables                       # ['silver.orders']
    text = checked.rewrite({"silver.orders": "t0"})
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from neurolake_spark.errors import BadInputError

QUERY_NODES = frozenset(
    {
        "Aggregate",
        "Deduplicate",
        "Distinct",
        "Except",
        "Filter",
        "Generate",
        "GlobalLimit",
        "Intersect",
        "Join",
        "LateralJoin",
        "LocalLimit",
        "LocalRelation",
        "Offset",
        "OneRowRelation",
        "Pivot",
        "Project",
        "Sample",
        "Sort",
        "SubqueryAlias",
        "Tail",
        "UnresolvedHaving",
        "UnresolvedInlineTable",
        "UnresolvedRelation",
        "UnresolvedSubqueryColumnAliases",
        "UnresolvedTableValuedFunction",
        "UnresolvedTVFAliases",
        "UnresolvedWith",
        "Union",
        "Unpivot",
        "WithWindowDefinition",
    }
)
"""Parsed-plan operators of a query (Spark's class names); anything else is refused."""

REFUSED_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect", "read_files", "input_file_name"})
ALLOWED_TABLE_FUNCTIONS = frozenset({"range"})
FILE_FORMATS = frozenset(
    {"delta", "parquet", "orc", "json", "csv", "text", "avro", "binaryfile", "ncf", "xml", "file", "jdbc"}
)

_KINDS = (
    (
        ("CreateFunction", "CreateUserDefinedFunction", "DropFunction", "RefreshFunction"),
        "CREATE/DROP FUNCTION",
    ),
    (("SetCatalogAndNamespace", "SetNamespace", "SetCatalog", "Use"), "USE changes the session"),
    (("SetCommand", "ResetCommand", "SetVariable"), "SET and RESET change the session"),
    (
        ("Insert", "Delete", "Update", "Merge", "Overwrite", "Truncate", "Copy", "ReplaceData"),
        "DML changes data",
    ),
    (("AddJar", "AddFile", "AddArchive", "AddArtifacts", "List"), "ADD JAR/FILE and LIST touch the server"),
    (("Cache", "Uncache", "ClearCache"), "CACHE and UNCACHE change the cache"),
    (
        (
            "Create",
            "Drop",
            "Alter",
            "Rename",
            "Repair",
            "Refresh",
            "Analyze",
            "Msck",
            "Comment",
            "Add",
            "Set",
        ),
        "DDL",
    ),
    (("Unset", "Replace", "Recover"), "DDL"),
)


class StatementRefused(BadInputError):
    """A statement that may not run (the message names the reason)."""


@dataclass(frozen=True)
class Relation:
    """A table named by a statement: its name parts and its span in the text (code point indexes,
    as Spark's parser counts them)."""

    parts: tuple[str, ...]
    start: int
    stop: int

    @property
    def name(self) -> str:
        return ".".join(self.parts).lower()


@dataclass(frozen=True)
class Marker:
    """A named parameter marker (``:name``) and its span in the text."""

    name: str
    start: int
    stop: int


@dataclass
class CheckedStatement:
    """A statement that passed the checks: its kind, the relations it names, its CTE names and
    its parameter markers."""

    text: str
    kind: str  # query | show_tables | describe | explain
    relations: list[Relation] = field(default_factory=list)
    ctes: set[str] = field(default_factory=set)
    show_namespace: str | None = None
    markers: set[Marker] = field(default_factory=set)

    @property
    def tables(self) -> list[str]:
        """The logical tables named (CTE names left out), in order of first use."""
        names: list[str] = []
        for r in self.relations:
            if r.name not in names and not (len(r.parts) == 1 and r.parts[0].lower() in self.ctes):
                names.append(r.name)
        return names

    def rewrite(self, views: dict[str, str], parameters_view: str | None = None) -> str:
        """The text with each table name replaced by its view name (``views``: logical name →
        view) and, given ``parameters_view`` (a one-row view with a column per parameter), each
        parameter marker by a scalar subquery on it: parameters bound through data where Spark
        cannot bind markers (Spark Connect 4.2 with Delta's SQL extension), never pasted."""
        spans = [(r.start, r.stop, f"`{views[r.name]}`") for r in self.relations if r.name in views]
        if parameters_view is not None:
            spans += [
                (m.start, m.stop, f"(SELECT `{m.name}` FROM `{parameters_view}`)") for m in self.markers
            ]
        text = self.text
        for start, stop, replacement in sorted(spans, reverse=True):
            text = f"{text[:start]}{replacement}{text[stop + 1 :]}"
        return text


def lexical_check(text: str) -> None:
    """Token-level checks without Spark: one statement, no invisible characters outside literals."""
    if not text or not text.strip():
        raise StatementRefused("the statement is empty")
    quote: str | None = None
    i, n = 0, len(text)
    ended = False
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote != "`":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"`":
            if ended:
                raise StatementRefused("several statements: send one statement per request")
            quote = c
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise StatementRefused("a comment is not closed")
            i = end + 2
            continue
        elif c == ";":
            ended = True
        elif not c.isspace():
            if ended:
                raise StatementRefused("several statements: send one statement per request")
            if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs", "Cn"):
                raise StatementRefused(f"the statement holds an invisible character U+{ord(c):04X}")
        elif c not in " \t\r\n":
            raise StatementRefused(f"the statement holds an unusual space U+{ord(c):04X}")
        i += 1
    if quote:
        raise StatementRefused("a quoted string or name is not closed")


def _kind_reason(node_name: str) -> str:
    for prefixes, reason in _KINDS:
        if node_name.startswith(prefixes):
            return reason
    return "it is not a query"


class _Walker:
    def __init__(self, jvm):
        self.jvm = jvm
        self.subquery = jvm.java.lang.Class.forName(
            "org.apache.spark.sql.catalyst.expressions.SubqueryExpression"
        )
        self.relations: list[Relation] = []
        self.ctes: set[str] = set()
        self.markers: set[Marker] = set()

    @staticmethod
    def _seq(seq) -> list:
        return [seq.apply(i) for i in range(seq.size())]

    def _relation(self, node) -> None:
        parts = tuple(str(p) for p in self._seq(node.multipartIdentifier()))
        origin = node.origin()
        if origin.startIndex().isEmpty() or origin.stopIndex().isEmpty():
            raise StatementRefused(f"cannot place the table {'.'.join(parts)} in the text")
        if len(parts) == 2 and parts[0].lower() in FILE_FORMATS and ("/" in parts[1] or ":" in parts[1]):
            raise StatementRefused(f"path-based reads ({parts[0]}.`...`) are not allowed: name a table")
        self.relations.append(Relation(parts, int(origin.startIndex().get()), int(origin.stopIndex().get())))

    def plan(self, node) -> None:
        name = node.getClass().getSimpleName()
        if name not in QUERY_NODES:
            if name == "RelationTimeTravel":
                raise StatementRefused(
                    "VERSION/TIMESTAMP AS OF is not supported in statements: "
                    "use GET /api/v1/data/tables/{name}/preview?version="
                )
            raise StatementRefused(
                f"only queries (SELECT, WITH, VALUES, SHOW, DESCRIBE, EXPLAIN) may run: "
                f"{_kind_reason(name)} ({name})"
            )
        if name == "UnresolvedRelation":
            self._relation(node)
        elif name == "UnresolvedTableValuedFunction":
            function = ".".join(str(p) for p in self._seq(node.name())).lower()
            if function not in ALLOWED_TABLE_FUNCTIONS:
                raise StatementRefused(f"the table function {function} is not allowed (only range)")
        elif name == "UnresolvedWith":
            for pair in self._seq(node.cteRelations()):
                self.ctes.add(str(pair._1()).lower())
                self.plan(pair._2())
        for expression in self._seq(node.expressions()):
            self.expression(expression)
        for child in self._seq(node.children()):
            self.plan(child)

    def expression(self, expression) -> None:
        name = expression.getClass().getSimpleName()
        if name == "UnresolvedFunction":
            function = str(self._seq(expression.nameParts())[-1]).lower()
            if function in REFUSED_FUNCTIONS:
                raise StatementRefused(f"the function {function} is not allowed")
        elif name == "NamedParameter":
            origin = expression.origin()
            if not origin.startIndex().isEmpty() and not origin.stopIndex().isEmpty():
                start, stop = int(origin.startIndex().get()), int(origin.stopIndex().get())
                self.markers.add(Marker(str(expression.name()), start, stop))
        if self.subquery.isInstance(expression):
            self.plan(expression.plan())
        for child in self._seq(expression.children()):
            self.expression(child)


class SqlParser:
    """Spark's SQL parser (``SparkSqlParser``) in a JVM: parses without a session, never executes."""

    def __init__(self, jvm):
        self.jvm = jvm
        self._parser = jvm.org.apache.spark.sql.execution.SparkSqlParser()

    def parse(self, text: str):
        """The parsed (unresolved) plan of ``text``; a syntax error is a StatementRefused."""
        try:
            return self._parser.parsePlan(text)
        except Exception as exc:  # py4j wraps Spark's ParseException
            if "PARSE" in str(exc) or "ParseException" in str(exc):
                raise StatementRefused("the statement is not valid SQL") from None
            raise

    def check(self, text: str) -> CheckedStatement:
        """Check ``text`` (see the module docstring); raises StatementRefused."""
        lexical_check(text)
        plan = self.parse(text)
        walker = _Walker(self.jvm)
        name = plan.getClass().getSimpleName()
        kind = "query"
        show_namespace = None
        if name == "ShowTables":
            kind = "show_tables"
            if not plan.pattern().isEmpty():
                raise StatementRefused("SHOW TABLES LIKE is not supported: filter the list with a query")
            namespace = plan.namespace()
            if namespace.getClass().getSimpleName() == "UnresolvedNamespace":
                parts = walker._seq(namespace.multipartIdentifier())
                show_namespace = ".".join(str(p) for p in parts).lower()
        elif name in ("DescribeRelation", "DescribeColumn", "ShowColumns"):
            kind = "describe"
            table = plan.relation() if name == "DescribeColumn" else plan.child()
            if table.getClass().getSimpleName() != "UnresolvedTableOrView":
                raise StatementRefused("DESCRIBE and SHOW COLUMNS take a table name")
            walker._relation(table)
        elif name == "ExplainCommand":
            kind = "explain"
            walker.plan(plan.logicalPlan())
        else:
            walker.plan(plan)
        return CheckedStatement(text, kind, walker.relations, walker.ctes, show_namespace, walker.markers)

    def relation_names(self, text: str) -> list[str]:
        """Every relation name of a rewritten statement (the second look before it runs)."""
        walker = _Walker(self.jvm)
        plan = self.parse(text)
        if plan.getClass().getSimpleName() == "ExplainCommand":
            plan = plan.logicalPlan()
        if plan.getClass().getSimpleName() in ("DescribeRelation", "ShowColumns"):
            walker._relation(plan.child())
        elif plan.getClass().getSimpleName() == "DescribeColumn":
            walker._relation(plan.relation())
        elif plan.getClass().getSimpleName() != "ShowTables":
            walker.plan(plan)
        return [r.name for r in walker.relations if r.name.lower() not in walker.ctes]
