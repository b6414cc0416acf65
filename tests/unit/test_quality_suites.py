"""Suite files: the shipped suites load, and every kind of mistake is a one-line error naming file,
table and rule."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from neurolake_spark.config import load_settings
from neurolake_spark.errors import ConfigError, NeuroLakeError
from neurolake_spark.quality.suites import load_suite, load_suites

ROOT = Path(__file__).resolve().parents[2]


def write_suite(tmp_path: Path, body: str, name: str = "bronze.orders.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_shipped_suites_load_and_name_declared_tables():
    settings = load_settings(ROOT / "conf" / "local.yaml")
    tables = list(settings.pipeline_definition().tables)
    suites = load_suites(ROOT / "conf" / "quality", known_tables=tables)
    sources = settings.pipeline_definition().sources.values()
    assert {s.bronze for s in sources} <= set(suites)
    for suite in suites.values():
        assert suite.rules, suite.table
        if suite.table.startswith("silver."):
            assert not suite.quarantines, f"{suite.table} is checked as a whole table: it cannot quarantine"


def test_severity_defaults_from_action(tmp_path):
    suite = load_suite(
        write_suite(
            tmp_path,
            """
rules:
  - {name: a, type: not_null, column: x, action: block}
  - {name: b, type: not_null, column: x, action: quarantine}
  - {name: c, type: not_null, column: x, action: quarantine, severity: critical}
  - {name: d, type: not_null, column: x, action: warn}
""",
        )
    )
    assert [(r.name, r.severity) for r in suite.rules] == [
        ("a", "critical"),
        ("b", "warning"),
        ("c", "critical"),
        ("d", "warning"),
    ]
    assert suite.quarantines and suite.table == "bronze.orders"


@pytest.mark.parametrize(
    "rules, expected",
    [
        (
            "- {name: r1, type: not_nul, column: x, action: block}",
            "rule 'r1': field 'type' unknown rule type 'not_nul'",
        ),
        ("- {name: r1, column: x, action: block}", "rule 'r1': missing 'type'"),
        ("- {name: r1, type: not_null, action: block}", "rule 'r1': field 'column' Field required"),
        ("- {name: r1, type: not_null, column: x, action: stop}", "rule 'r1': field 'action'"),
        (
            "- {name: r1, type: not_null, column: x, action: block, colour: red}",
            "rule 'r1': field 'colour' unknown field",
        ),
        (
            "- {name: r1, type: not_null, column: x, action: block, severity: warning}",
            "rule 'r1': a rule that blocks must have severity critical",
        ),
        (
            "- {name: r1, type: not_null, column: x, action: warn, severity: critical}",
            "rule 'r1': a critical rule cannot only warn",
        ),
        (
            "- {name: r1, type: row_count_between, min: 1, action: quarantine}",
            "rule 'r1': a row_count_between rule checks the whole table",
        ),
        (
            "- {name: r1, type: between, column: x, min: 5, max: 1, action: warn}",
            "rule 'r1': min 5.0 is greater than max 1.0",
        ),
        ("- {name: r1, type: between, column: x, action: warn}", "rule 'r1': between needs min, max or both"),
        (
            "- {name: r1, type: matches_regex, column: x, pattern: '([a-z', action: warn}",
            "rule 'r1': pattern '([a-z' is not a valid regular expression",
        ),
        (
            "- {name: r1, type: not_null, column: x, action: block, block_above_percent: 3}",
            "block_above_percent only applies to quarantine rules",
        ),
        ("- {name: r1, type: compound_unique, columns: [a], action: block}", "rule 'r1': field 'columns'"),
        ("- {name: Bad Name, type: not_null, column: x, action: block}", "rule 'Bad Name': field 'name'"),
        ("- {type: not_null, column: x, action: block}", "rule #1: field 'name' Field required"),
        (
            "- {name: r1, type: not_null, column: x, action: block}\n"
            "- {name: r1, type: unique, column: x, action: block}",
            "rule 'r1': the name is used twice",
        ),
    ],
)
def test_invalid_rule_names_file_table_and_rule(tmp_path, rules, expected):
    path = write_suite(tmp_path, "rules:\n" + "\n".join("  " + line for line in rules.splitlines()) + "\n")
    with pytest.raises(ConfigError) as error:
        load_suite(path)
    message = str(error.value)
    assert isinstance(error.value, NeuroLakeError) and "\n" not in message
    assert message.startswith(f"{path}: table bronze.orders, "), message
    assert expected in message, message


@pytest.mark.parametrize(
    "name, body, expected",
    [
        ("orders.yaml", "rules: []", "a suite file is named after its table"),
        ("bronze.orders.yaml", "rules: [\n", "not valid YAML"),
        ("bronze.orders.yaml", "- just a list", "a suite is a mapping with a 'rules' list"),
        ("bronze.orders.yaml", "rules: []\nowner: me", "unknown key(s) owner"),
        (
            "bronze.orders.yaml",
            "table: bronze.items\nrules: []",
            "declares table 'bronze.items' but the file is named for bronze.orders",
        ),
    ],
)
def test_invalid_file_is_a_clear_error(tmp_path, name, body, expected):
    path = write_suite(tmp_path, body, name)
    with pytest.raises(ConfigError, match=None) as error:
        load_suite(path)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_suite_for_undeclared_table_is_rejected(tmp_path):
    write_suite(tmp_path, "rules: []", "bronze.nope.yaml")
    with pytest.raises(ConfigError, match="table bronze.nope is not declared"):
        load_suites(tmp_path, known_tables=["bronze.orders"])
    assert load_suites(tmp_path / "missing") == {}


def test_unknown_column_names_the_rule(tmp_path):
    suite = load_suite(
        write_suite(
            tmp_path,
            "rules:\n  - {name: pair, type: column_pair_greater, column_a: a, column_b: zz, action: warn}\n",
        )
    )
    with pytest.raises(
        ConfigError, match=r"table bronze.orders, rule 'pair': no column 'zz' \(columns: a, b\)"
    ):
        suite.check_columns(["a", "b"])


def test_freshness_is_anchored_on_the_batch_date(tmp_path):
    rule = load_suite(
        write_suite(
            tmp_path, "rules:\n  - {name: f, type: freshness, column: t, max_age_hours: 36, action: warn}\n"
        )
    ).rules[0]
    oldest = rule.oldest_allowed(date(2026, 11, 24))
    assert oldest.tzinfo is None
    assert oldest.astimezone(UTC) == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
