"""Quality suites from config: one YAML file per table in ``settings.quality.suites``.

A suite file is named after the table it checks (``conf/quality/bronze.orders.yaml``)
and lists rules; adding a rule is a change to that file, not to code::

    rules:
      - name: customer_present          # unique in the file; used in reports and quarantine
        type: not_null
        column: customer_id
        action: quarantine              # block | quarantine | warn
        block_above_percent: 5          # optional: too many bad rows blocks the step
      - {name: status_known, type: in_set, column: status, values: [placed, paid], action: warn}
      - {name: enough_rows, type: row_count_between, min: 1, max: 50000000, action: block}

Each rule becomes one Great Expectations expectation (:meth:`Rule.expectation`); each
row-level rule is also a Spark predicate that is true for the rows that pass
(:meth:`Rule.passes`), with GX's null handling: nulls pass every rule but ``not_null``.
``severity`` defaults from the action (block: critical, quarantine and warn: warning);
a warning cannot block and a critical rule cannot merely warn. A file that breaks
these rules is a :class:`~neurolake_spark.errors.ConfigError` naming file, table and rule.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pyspark.sql import Column, Window
from pyspark.sql import functions as F

from neurolake_spark.errors import ConfigError
from neurolake_spark.pipeline_config import TABLE_NAME

Action = Literal["block", "quarantine", "warn"]
Severity = Literal["critical", "warning"]
RULE_NAME = r"^[a-z][a-z0-9_]{0,62}$"


def import_gx() -> ModuleType:
    """Great Expectations, imported on first use (see ``quality.gate.start_importing_gx``)."""
    import great_expectations  # a heavy optional import (seconds): only steps with a gate need it

    return great_expectations


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    row_level: ClassVar[bool] = True

    name: str = Field(pattern=RULE_NAME)
    action: Action
    severity: Severity | None = None
    block_above_percent: float | None = Field(default=None, ge=0, le=100)
    description: str = ""

    @model_validator(mode="after")
    def _check_action(self) -> _Rule:
        if self.severity is None:
            object.__setattr__(self, "severity", "critical" if self.action == "block" else "warning")
        if self.action == "block" and self.severity != "critical":
            raise ValueError("a rule that blocks must have severity critical")
        if self.action == "warn" and self.severity == "critical":
            raise ValueError("a critical rule cannot only warn: use action block or quarantine")
        if self.action == "quarantine" and not self.row_level:
            raise ValueError(
                f"a {self.type} rule checks the whole table, so it can block or warn, not quarantine"
            )
        if self.block_above_percent is not None and self.action != "quarantine":
            raise ValueError("block_above_percent only applies to quarantine rules")
        return self

    @property
    def columns(self) -> list[str]:
        """The columns the rule reads (checked against the batch's schema)."""
        return [self.column] if getattr(self, "column", None) else []

    def expectation(self, batch_date: date):
        """The GX expectation of this rule (``batch_date`` anchors time-relative rules)."""
        raise NotImplementedError

    def passes(self) -> Column | None:
        """A Spark predicate, never null, true for the rows that pass; None for table-level rules."""
        raise NotImplementedError


def _null_or(column: str, condition: Column) -> Column:
    return F.col(column).isNull() | F.coalesce(condition, F.lit(False))


class NotNull(_Rule):
    type: Literal["not_null"]
    column: str

    def expectation(self, batch_date):
        return import_gx().expectations.ExpectColumnValuesToNotBeNull(column=self.column)

    def passes(self):
        return F.col(self.column).isNotNull()


class Unique(_Rule):
    type: Literal["unique"]
    column: str

    def expectation(self, batch_date):
        return import_gx().expectations.ExpectColumnValuesToBeUnique(column=self.column)

    def passes(self):
        return _null_or(self.column, F.count(F.lit(1)).over(Window.partitionBy(self.column)) <= 1)


class Between(_Rule):
    type: Literal["between"]
    column: str
    min: float | None = None
    max: float | None = None
    strict_min: bool = False
    strict_max: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> Between:
        if self.min is None and self.max is None:
            raise ValueError("between needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    def expectation(self, batch_date):
        return import_gx().expectations.ExpectColumnValuesToBeBetween(
            column=self.column,
            min_value=self.min,
            max_value=self.max,
            strict_min=self.strict_min,
            strict_max=self.strict_max,
        )

    def passes(self):
        value = F.col(self.column)
        condition = F.lit(True)
        if self.min is not None:
            condition = condition & (value > F.lit(self.min) if self.strict_min else value >= F.lit(self.min))
        if self.max is not None:
            condition = condition & (value < F.lit(self.max) if self.strict_max else value <= F.lit(self.max))
        return _null_or(self.column, condition)


class InSet(_Rule):
    type: Literal["in_set"]
    column: str
    values: list[Any] = Field(min_length=1)

    def expectation(self, batch_date):
        return import_gx().expectations.ExpectColumnValuesToBeInSet(
            column=self.column, value_set=list(self.values)
        )

    def passes(self):
        return _null_or(self.column, F.col(self.column).isin(list(self.values)))


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression ({exc})") from None
    return pattern


class MatchesRegex(_Rule):
    type: Literal["matches_regex"]
    column: str
    pattern: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _regex(self) -> MatchesRegex:
        _check_regex(self.pattern)
        return self

    def expectation(self, batch_date):
        return import_gx().expectations.ExpectColumnValuesToMatchRegex(column=self.column, regex=self.pattern)

    def passes(self):
        return _null_or(self.column, F.col(self.column).rlike(self.pattern))


class NotMatchesRegex(MatchesRegex):
    type: Literal["not_matches_regex"]

    def expectation(self, batch_date):
        return import_gx().expectations.ExpectColumnValuesToNotMatchRegex(
            column=self.column, regex=self.pattern
        )

    def passes(self):
        return _null_or(self.column, ~F.col(self.column).rlike(self.pattern))


class ColumnPairGreater(_Rule):
    """``column_a`` > ``column_b`` (>= with ``or_equal``); rows missing either value pass."""

    type: Literal["column_pair_greater"]
    column_a: str
    column_b: str
    or_equal: bool = False

    @property
    def columns(self):
        return [self.column_a, self.column_b]

    def expectation(self, batch_date):
        return import_gx().expectations.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=self.column_a,
            column_B=self.column_b,
            or_equal=self.or_equal,
            ignore_row_if="either_value_is_missing",
        )

    def passes(self):
        a, b = F.col(self.column_a), F.col(self.column_b)
        return a.isNull() | b.isNull() | F.coalesce(a >= b if self.or_equal else a > b, F.lit(False))


class CompoundUnique(_Rule):
    """The combination of ``columns`` is unique; rows where all of them are null pass."""

    type: Literal["compound_unique"]
    column_list: list[str] = Field(alias="columns", min_length=2)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def columns(self):
        return list(self.column_list)

    def expectation(self, batch_date):
        return import_gx().expectations.ExpectCompoundColumnsToBeUnique(column_list=list(self.column_list))

    def passes(self):
        all_missing = F.lit(True)
        for column in self.column_list:
            all_missing = all_missing & F.col(column).isNull()
        group = Window.partitionBy(F.struct(*self.column_list))
        return all_missing | (F.count(F.lit(1)).over(group) <= 1)


class RowCountBetween(_Rule):
    type: Literal["row_count_between"]
    row_level: ClassVar[bool] = False
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> RowCountBetween:
        if self.min is None and self.max is None:
            raise ValueError("row_count_between needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    def expectation(self, batch_date):
        return import_gx().expectations.ExpectTableRowCountToBeBetween(min_value=self.min, max_value=self.max)

    def passes(self):
        return None


class Freshness(_Rule):
    """The newest ``column`` value is at most ``max_age_hours`` older than the end of the batch date.

    Anchored on the batch date, not the clock, so re-running an old date gives the same result.
    """

    type: Literal["freshness"]
    row_level: ClassVar[bool] = False
    column: str
    max_age_hours: float = Field(gt=0)

    def oldest_allowed(self, batch_date: date) -> datetime:
        """The limit as a naive local datetime: how PySpark returns a timestamp column's max."""
        end_of_day = datetime(batch_date.year, batch_date.month, batch_date.day, tzinfo=UTC) + timedelta(
            days=1
        )
        return datetime.fromtimestamp((end_of_day - timedelta(hours=self.max_age_hours)).timestamp())

    def expectation(self, batch_date):
        return import_gx().expectations.ExpectColumnMaxToBeBetween(
            column=self.column, min_value=self.oldest_allowed(batch_date)
        )

    def passes(self):
        return None


Rule = Annotated[
    NotNull
    | Unique
    | Between
    | InSet
    | MatchesRegex
    | NotMatchesRegex
    | ColumnPairGreater
    | CompoundUnique
    | RowCountBetween
    | Freshness,
    Field(discriminator="type"),
]
RULE_TYPES = (
    "not_null",
    "unique",
    "between",
    "in_set",
    "matches_regex",
    "not_matches_regex",
    "column_pair_greater",
    "compound_unique",
    "row_count_between",
    "freshness",
)
_RULE = TypeAdapter(Rule)


class Suite(BaseModel):
    """The rules of one table, loaded from ``<suites>/<table>.yaml``."""

    model_config = ConfigDict(frozen=True)

    table: str
    rules: list[Any]
    source: Path

    @property
    def row_rules(self) -> list[Any]:
        return [r for r in self.rules if r.row_level]

    @property
    def quarantines(self) -> bool:
        return any(r.action == "quarantine" for r in self.rules)

    def check_columns(self, columns: list[str]) -> None:
        """Raise ConfigError naming the rule if it reads a column the batch does not have."""
        for rule in self.rules:
            missing = [c for c in rule.columns if c not in columns]
            if missing:
                raise ConfigError(
                    f"{self.source}: table {self.table}, rule '{rule.name}': no column "
                    f"{', '.join(repr(c) for c in missing)} (columns: {', '.join(columns)})"
                )


def _rule_error(path: Path, table: str, index: int, raw: Any, exc: ValidationError) -> ConfigError:
    name = raw.get("name") if isinstance(raw, dict) else None
    label = f"rule '{name}'" if name else f"rule #{index + 1}"
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"][1:] if not isinstance(p, int)) or ".".join(
        str(p) for p in error["loc"]
    )
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "union_tag_invalid":
        message = f"unknown rule type {raw.get('type')!r} (types: {', '.join(RULE_TYPES)})"
        where = "type"
    elif error["type"] == "union_tag_not_found":
        message = f"missing 'type' (types: {', '.join(RULE_TYPES)})"
        where = ""
    elif error["type"] == "extra_forbidden":
        message = "unknown field"
    field = f" field '{where}'" if where and error["type"] != "value_error" else ""
    return ConfigError(f"{path}: table {table}, {label}:{field} {message}")


def load_suite(path: Path) -> Suite:
    """Parse and validate one suite file; every problem is a one-line ConfigError."""
    path = Path(path)
    table = path.name.removesuffix(".yaml").removesuffix(".yml")
    if not TABLE_NAME.match(table):
        raise ConfigError(f"{path}: a suite file is named after its table, e.g. bronze.orders.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read suite file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ConfigError(f"{path}: table {table}: a suite is a mapping with a 'rules' list")
    unknown = set(data) - {"rules", "table", "description"}
    if unknown:
        raise ConfigError(f"{path}: table {table}: unknown key(s) {', '.join(sorted(unknown))}")
    if data.get("table", table) != table:
        raise ConfigError(f"{path}: declares table {data['table']!r} but the file is named for {table}")
    rules, names = [], set()
    for index, raw in enumerate(data["rules"]):
        try:
            rule = _RULE.validate_python(raw)
        except ValidationError as exc:
            raise _rule_error(path, table, index, raw, exc) from None
        if rule.name in names:
            raise ConfigError(f"{path}: table {table}, rule '{rule.name}': the name is used twice")
        names.add(rule.name)
        rules.append(rule)
    return Suite(table=table, rules=rules, source=path)


def load_suites(folder: Path, known_tables: list[str] | None = None) -> dict[str, Suite]:
    """Every suite in ``folder`` by table name (empty if the folder does not exist).

    With ``known_tables``, a suite for a table the pipeline does not declare is an error.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    suites = {}
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        suite = load_suite(path)
        if known_tables is not None and suite.table not in known_tables:
            raise ConfigError(f"{path}: table {suite.table} is not declared in the pipeline definition")
        suites[suite.table] = suite
    return suites
