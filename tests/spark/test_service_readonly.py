"""The statements' read-only checker against Spark's own parser (no server): what passes, what is
refused and why, and the rewrite onto per-statement views."""

from __future__ import annotations

import pytest

from neurolake_spark.service.readonly import SqlParser, StatementRefused, lexical_check

HOSTILE = [
    # (statement, a word of the reason)
    ("DROP TABLE silver.orders", "DDL"),
    ("DROP VIEW v", "DDL"),
    ("DROP DATABASE silver CASCADE", "DDL"),
    ("CREATE TABLE t (a INT)", "DDL"),
    ("CREATE TABLE t AS SELECT * FROM silver.orders", "DDL"),
    ("CREATE OR REPLACE TEMP VIEW v AS SELECT 1", "DDL"),
    ("CREATE DATABASE x", "DDL"),
    ("ALTER TABLE silver.orders ADD COLUMNS (x INT)", "DDL"),
    ("ALTER TABLE silver.orders RENAME TO silver.o2", "DDL"),
    ("ALTER TABLE silver.orders SET TBLPROPERTIES ('a'='b')", "DDL"),
    ("TRUNCATE TABLE silver.orders", "DML"),
    ("INSERT INTO silver.orders SELECT * FROM silver.orders", "DML"),
    ("INSERT OVERWRITE TABLE silver.orders SELECT * FROM silver.orders", "DML"),
    ("INSERT OVERWRITE DIRECTORY '/tmp/x' SELECT 1", "DML"),
    ("DELETE FROM silver.orders WHERE 1=1", "DML"),
    ("UPDATE silver.orders SET status = 'x'", "DML"),
    (
        "MERGE INTO silver.orders t USING silver.orders s ON t.order_id = s.order_id "
        "WHEN MATCHED THEN DELETE",
        "DML",
    ),
    ("SET spark.sql.ansi.enabled=false", "SET"),
    ("SET", "SET"),
    ("RESET", "SET"),
    ("ADD JAR /tmp/evil.jar", "ADD JAR"),
    ("ADD FILE /etc/passwd", "ADD JAR"),
    ("LIST FILES", "ADD JAR"),
    ("CREATE FUNCTION f AS 'com.evil.F'", "FUNCTION"),
    ("CREATE TEMPORARY FUNCTION f AS 'com.evil.F' USING JAR '/tmp/e.jar'", "FUNCTION"),
    ("DROP FUNCTION f", "FUNCTION"),
    ("CACHE TABLE silver.orders", "CACHE"),
    ("CACHE LAZY TABLE c AS SELECT 1", "CACHE"),
    ("UNCACHE TABLE silver.orders", "CACHE"),
    ("CLEAR CACHE", "CACHE"),
    ("REFRESH TABLE silver.orders", "DDL"),
    ("MSCK REPAIR TABLE silver.orders", "DDL"),
    ("ANALYZE TABLE silver.orders COMPUTE STATISTICS", "DDL"),
    ("USE silver", "USE"),
    ("SELECT * FROM delta.`/tmp/warehouse/silver/orders`", "path-based"),
    ("SELECT * FROM parquet.`file:///etc`", "path-based"),
    ("SELECT * FROM ncf.`/lake/t`", "path-based"),
    ("SELECT * FROM read_files('/etc/passwd')", "read_files"),
    ("SELECT reflect('java.lang.Runtime', 'getRuntime')", "reflect"),
    ("SELECT java_method('java.lang.System', 'exit', 0)", "java_method"),
    ("SELECT try_reflect('java.lang.Thread', 'sleep', 100000L)", "try_reflect"),
    ("SELECT upper(reflect('a', 'b')) FROM silver.orders", "reflect"),
    ("SELECT * FROM silver.orders WHERE order_id IN (SELECT java_method('a', 'b'))", "java_method"),
    ("WITH x AS (SELECT reflect('a', 'b')) SELECT * FROM x", "reflect"),
    ("SELECT 1; DROP TABLE silver.orders", "several statements"),
    ("SELECT 1;SELECT 2", "several statements"),
    ("SELECT 1; -- fine\nDELETE FROM silver.orders", "several statements"),
    ("SELECT 1 /* ; */ ; /* x */ SET a=b", "several statements"),
    ("SELECT 1\u200b; DROP TABLE silver.orders", "invisible"),
    ("SELECT\u00a01", "unusual space"),
    ("SELECT 1 /* never closed", "comment"),
    ("SELECT 'open", "not closed"),
    ("DR\u043ePOP TABLE x", "not valid SQL"),
    ("SELECT TRANSFORM(order_id) USING 'cat /etc/passwd' FROM silver.orders", "not a query"),
    ("SELECT * FROM silver.orders VERSION AS OF 0", "VERSION"),
    ("EXPLAIN DELETE FROM silver.orders", "DML"),
    ("EXPLAIN SELECT reflect('a', 'b')", "reflect"),
    ("DESCRIBE FUNCTION reflect", "not a query"),
    ("SHOW TABLES LIKE 'x*'", "LIKE"),
    ("SELECT * FROM IDENTIFIER('delta.`/tmp/x`')", "path-based"),
]


@pytest.fixture(scope="module")
def parser(spark):
    return SqlParser(spark._jvm)


def test_at_least_forty_hostile_statements_are_each_refused_with_their_reason(parser):
    assert len(HOSTILE) >= 40
    for text, reason in HOSTILE:
        with pytest.raises(StatementRefused) as refused:
            parser.check(text)
        assert reason.lower() in str(refused.value).lower(), (text, str(refused.value))


def test_queries_pass_and_name_their_tables_cte_names_left_out(parser):
    checked = parser.check(
        "WITH recent AS (SELECT * FROM silver.orders WHERE status = :status) "
        "SELECT c.country, count(*) FROM recent r "
        "JOIN `silver`.`customers` c ON r.customer_id = c.customer_id "
        "WHERE EXISTS (SELECT 1 FROM gold.daily_revenue) GROUP BY c.country"
    )
    assert checked.kind == "query"
    assert sorted(checked.tables) == ["gold.daily_revenue", "silver.customers", "silver.orders"]
    for text, kind in [
        ("VALUES (1, 'a')", "query"),
        ("SELECT * FROM range(10)", "query"),
        ("SHOW TABLES IN silver", "show_tables"),
        ("DESCRIBE silver.orders", "describe"),
        ("EXPLAIN SELECT * FROM silver.orders", "explain"),
        ("SELECT 1;", "query"),
    ]:
        assert parser.check(text).kind == kind, text


def test_rewrite_replaces_exactly_the_table_names_also_after_non_ascii_text(parser):
    checked = parser.check(
        "SELECT '\U0001f600é' AS s, o.* FROM silver.orders o WHERE o.status <> 'silver.orders'"
    )
    text = checked.rewrite({"silver.orders": "nl_table_0"})
    assert text == "SELECT '\U0001f600é' AS s, o.* FROM `nl_table_0` o WHERE o.status <> 'silver.orders'"
    assert parser.relation_names(text) == ["nl_table_0"]


def test_rewrite_binds_markers_in_ctes_and_subqueries_through_a_view(parser):
    checked = parser.check(
        "WITH c AS (SELECT :v AS a) SELECT ':v', x FROM silver.orders "
        "WHERE y > :n AND z IN (SELECT a FROM c WHERE a = :v) LIMIT 5"
    )
    assert {m.name for m in checked.markers} == {"v", "n"} and len(checked.markers) == 3
    text = checked.rewrite({"silver.orders": "nl_table_0"}, "nl_parameters")
    assert text == (
        "WITH c AS (SELECT (SELECT `v` FROM `nl_parameters`) AS a) SELECT ':v', x FROM `nl_table_0` "
        "WHERE y > (SELECT `n` FROM `nl_parameters`) AND z IN (SELECT a FROM c WHERE a = "
        "(SELECT `v` FROM `nl_parameters`)) LIMIT 5"
    )
    assert sorted(set(parser.relation_names(text))) == ["nl_parameters", "nl_table_0"]
    assert checked.rewrite({"silver.orders": "nl_table_0"}).count(":v") == 3


def test_the_lexical_check_alone_needs_no_spark():
    lexical_check("SELECT ';' AS semicolon, \"a;b\" FROM t -- ; trailing\n")
    with pytest.raises(StatementRefused, match="several statements"):
        lexical_check("SELECT 1; SELECT 2")
    with pytest.raises(StatementRefused, match="empty"):
        lexical_check("  ")
