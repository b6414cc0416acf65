"""Bulk fix files: parsed with the restricted language, and only for tables declared fixable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from neurolake_spark.cli.ops import load_fix
from neurolake_spark.conditions import Binary, Col, ConditionError, Lit
from neurolake_spark.errors import ConfigError, PipelineError
from neurolake_spark.pipeline_config import load_pipeline_definition

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_pipeline_declares_orders_and_customers_fixable():
    definition = load_pipeline_definition(ROOT / "conf" / "pipeline.yaml")
    assert definition.fixable_tables() == ["silver.customers", "silver.orders"]


@pytest.mark.parametrize("table", ["silver.payments", "gold.daily_revenue", "silver.nope"])
def test_a_source_can_declare_only_its_own_tables_fixable(tmp_path, table):
    data = yaml.safe_load((ROOT / "conf" / "pipeline.yaml").read_text())
    data["sources"]["orders"]["fixable"] = [table]
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(
        ConfigError, match=f"source 'orders' declares '{table}' fixable, but only its own tables"
    ):
        load_pipeline_definition(path)


def fix_file(tmp_path, content) -> Path:
    path = tmp_path / "003-fix.json"
    path.write_text(json.dumps(content))
    return path


def test_a_fix_file_is_parsed_into_trees(tmp_path):
    fix = load_fix(
        fix_file(
            tmp_path,
            {
                "op": "update",
                "table": "silver.orders",
                "where": [{"column": "order_id", "op": "=", "value": 42}],
                "set": {"status": "'cancelled'"},
                "comment": "ticket 7",
            },
        )
    )
    assert fix.where == Binary("=", Col("order_id"), Lit(42, "int"))
    assert fix.assignments == {"status": Lit("cancelled", "string")} and not fix.all_rows


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (
            {"op": "delete", "table": "silver.orders", "where": "true; DROP TABLE x"},
            ConditionError,
            "fix 003-fix.json: where: unexpected character ';'",
        ),
        (
            {"op": "delete", "table": "silver.orders", "where": {"column": "a", "op": "~"}},
            ConditionError,
            "fix 003-fix.json: where: 'op' must be one of",
        ),
        (
            {"op": "update", "table": "silver.orders", "where": "a = 1", "set": ["status"]},
            PipelineError,
            "'set' must map columns to expressions",
        ),
        (
            {"op": "update", "table": "silver.orders", "where": "a = 1", "set": {"s": "reflect('x')"}},
            ConditionError,
            "fix 003-fix.json: set s: function not allowed",
        ),
        (
            {"op": "erase", "table": "silver.customers", "key": "customer_id", "values": []},
            PipelineError,
            "'values' a non-empty list",
        ),
        (
            {"op": "delete", "table": "silver.orders", "where": "a = 1", "all_rows": "yes"},
            PipelineError,
            "'all_rows' true or false",
        ),
        (
            {"op": "delete", "table": "silver.orders", "where": "a = 1", "sql": "1=1"},
            PipelineError,
            "unknown key(s) sql",
        ),
    ],
)
def test_bad_fix_files_are_one_line_errors_naming_the_file(tmp_path, content, error, message):
    with pytest.raises(error) as raised:
        load_fix(fix_file(tmp_path, content))
    assert message in str(raised.value) and "\n" not in str(raised.value)
