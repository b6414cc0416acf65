"""PII masking as Spark expressions, detection on Spark frames, and secrets that never leak."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyspark.errors import AnalysisException, PythonException
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from neurolake_spark.config import QualitySettings
from neurolake_spark.errors import ConfigError
from neurolake_spark.quality import QualityGates
from neurolake_spark.quality.pii import (
    Masker,
    PiiPolicies,
    SecretSource,
    _derived_key,
    detect_pii,
    detokenize,
    hash_column,
    load_policies,
    partial_mask_column,
    redact_column,
    tokenize_column,
)

DAY = "2026-11-24"


def one_column(spark, values):
    return spark.createDataFrame([(v,) for v in values], "v STRING")


def test_hash_is_salted_sha256_and_keeps_nulls(spark):
    salt = secrets.token_hex(8)
    got = [
        r.h
        for r in one_column(spark, ["ana@example.com", None])
        .select(hash_column(F.col("v"), salt).alias("h"))
        .collect()
    ]
    assert got == [hashlib.sha256((salt + "ana@example.com").encode()).hexdigest(), None]


def test_partial_mask_and_redact(spark):
    values = ["+1-555-0012345", "abc", "", None, "ana.smith@example.com"]
    rows = (
        one_column(spark, values)
        .select(
            partial_mask_column(F.col("v"), keep_last=4).alias("last4"),
            partial_mask_column(F.col("v"), keep_first=2, keep_last=2, mask_char="#").alias("ends"),
            partial_mask_column(F.col("v"), keep_domain=True).alias("domain"),
            redact_column(F.col("v")).alias("redacted"),
        )
        .collect()
    )
    assert [r.last4 for r in rows] == ["**********2345", "***", "", None, "*****************.com"]
    assert [r.ends for r in rows] == ["+1##########45", "###", "", None, "an#################om"]
    assert [r.domain for r in rows] == ["***", "***", "***", None, "***@example.com"]
    assert [r.redacted for r in rows] == ["[REDACTED]", "[REDACTED]", "[REDACTED]", None, "[REDACTED]"]


def test_tokens_are_deterministic_and_reversible_only_with_the_key(spark):
    key = secrets.token_hex(16)
    values = ["Ana Smith", "Ben Kim", "Ana Smith", None]
    tokens = one_column(spark, values).select(F.col("v"), tokenize_column(F.col("v"), key).alias("t"))
    rows = tokens.select("v", "t", detokenize(F.col("t"), key).alias("back")).collect()
    assert [r.back for r in rows] == values
    assert rows[0].t == rows[2].t and rows[0].t != rows[1].t and rows[3].t is None
    assert all("Ana" not in r.t and "Smith" not in r.t for r in rows[:3])
    blob = base64.b64decode(rows[1].t)  # Spark's GCM output: 12-byte IV, ciphertext, 16-byte tag
    assert AESGCM(_derived_key(key, "token-enc")).decrypt(blob[:12], blob[12:], None) == b"Ben Kim"
    with pytest.raises(InvalidTag):
        AESGCM(_derived_key(secrets.token_hex(16), "token-enc")).decrypt(blob[:12], blob[12:], None)


def test_detection_on_a_spark_frame(spark):
    schema = StructType(
        [
            StructField("contact", StringType()),
            StructField("card", StringType()),
            StructField("remote", StringType()),
            StructField("label", StringType()),
            StructField("notes", StringType(), metadata={"pii": "person_name"}),
            StructField("phone", StringType()),
        ]
    )
    rows = [
        (
            f"user{i}@example.com",
            "4111 1111 1111 1111" if i % 2 else "5500 0000 0000 0004",
            f"10.0.0.{i}",
            f"product-{i:05d}",
            "free text",
            None,
        )
        for i in range(1, 11)
    ]
    found = detect_pii(
        spark.createDataFrame(rows, schema), sample_rows=50, tags={"label": "address", "missing": "email"}
    )
    assert {c: d.pii_class for c, d in found.items()} == {
        "contact": "email",
        "card": "card_number",
        "remote": "ip_address",
        "label": "address",
        "phone": "phone",
    }
    assert found["label"].evidence == "tag" and found["phone"].evidence == "name"
    assert found["contact"].evidence == "values (10/10 sampled)"
    by_schema_tag = detect_pii(
        spark.createDataFrame(rows, schema), sample_rows=0, tags={"notes": "person_name"}
    )
    assert set(by_schema_tag) == {"notes", "phone"}


def test_gate_masks_pii_and_never_leaks_secrets(spark, make_lakehouse, tmp_path, caplog):
    salt, key = "salt-" + secrets.token_hex(12), "key-" + secrets.token_hex(12)
    (tmp_path / "salt").write_text(salt)
    (tmp_path / "key").write_text(key)
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "bronze.customers.yaml").write_text("""
rules:
  - {name: email_well_formed, type: matches_regex, column: email, pattern: "^[^@]+@[^@]+$",
     action: quarantine}
""")
    lh = make_lakehouse(
        tmp_path / "warehouse",
        **{
            "quality.suites": str(suites),
            "quality.pii_salt_file": str(tmp_path / "salt"),
            "quality.token_key_file": str(tmp_path / "key"),
            "quality.pii_salt_env": "TEST_UNSET_SALT_ENV",
            "quality.token_key_env": "TEST_UNSET_KEY_ENV",
        },
    )
    raw = [
        (1, "Ana Smith", "ana.smith1@example.com", "+1-555-0000001", "1 Oak Street", "ana2@example.org"),
        (2, "Ben Kim", "not-an-email", "+1-555-0000002", "2 Mill Street", "ben@example.org"),
    ]
    df = spark.createDataFrame(
        raw,
        "customer_id BIGINT, name STRING, email STRING, phone STRING, address STRING, backup_contact STRING",
    )
    caplog.set_level(logging.DEBUG)
    caplog.set_level(
        logging.INFO, logger="py4j"
    )  # py4j's DEBUG wire trace logs every literal sent to the JVM
    with lh.run("silver", run_date=DAY) as run, QualityGates(lh, DAY) as gates:
        passed = gates.gate("bronze.customers", df, run).collect()
    assert [r.customer_id for r in passed] == [1]
    row = passed[0].asDict()
    assert row["email"] == hashlib.sha256((salt + "ana.smith1@example.com").encode()).hexdigest()
    assert row["phone"] == "**********0001" and row["address"] == "[REDACTED]"
    assert row["backup_contact"] == hashlib.sha256((salt + "ana2@example.org").encode()).hexdigest()
    assert row["name"] != "Ana Smith" and row["name"]
    assert run.facts["pii_masked"]["bronze.customers"] == {
        "name": "tokenize",
        "email": "hash",
        "phone": "partial_mask",
        "address": "redact",
        "backup_contact": "hash",
    }

    record = json.loads(lh.table("quarantine.quality").first().record)
    assert (
        record["customer_id"] == 2
        and record["address"] == "[REDACTED]"
        and record["phone"] == "**********0002"
    )
    raw_values = {str(v) for r in raw for v in r[1:]}
    assert not raw_values & set(map(str, record.values()))

    evidence = [
        caplog.text,
        repr(run.quality),
        repr(run.facts),
        repr(run.outputs),
        (gates.reports_dir / "bronze.customers.json").read_text(),
    ]
    for path in sorted(lh.settings.warehouse.rglob("*")):
        if path.is_file():
            evidence.append(path.read_bytes().decode("latin-1"))
    for secret in (salt, key):
        assert not any(secret in text for text in evidence)
    assert "Ana Smith" not in caplog.text and "ana.smith1@example.com" not in caplog.text


def _spark_expression_hash(column, salt: str):
    """How hash_column masked until the secrets left the plans (kept here to prove equal results)."""
    return F.sha2(F.concat(F.lit(salt), column.cast("string")), 256)


def _spark_expression_token(column, key: str):
    """How tokenize_column masked until the secrets left the plans."""
    text = column.cast("string")
    iv = F.substring(F.unhex(F.sha2(F.concat(F.lit(_derived_key(key, "token-iv").hex()), text), 256)), 1, 12)
    return F.base64(
        F.aes_encrypt(text, F.lit(_derived_key(key, "token-enc")), F.lit("GCM"), F.lit("DEFAULT"), iv)
    )


def test_masks_without_secrets_in_the_plan_equal_the_earlier_spark_expressions(spark):
    salt, key = secrets.token_hex(32), secrets.token_hex(32)
    values = ["ana@example.com", "", "Zoë Ünal 東京", "x" * 29, "y" * 120]
    values += ["1 Oak Street, Springfield", None]
    df = spark.createDataFrame(
        [(v, i, dt.date(2026, 11, i + 1)) for i, v in enumerate(values)], "v STRING, n INT, d DATE"
    )
    for column in ("v", "n", "d"):
        got = df.select(
            hash_column(F.col(column), salt).alias("new_hash"),
            _spark_expression_hash(F.col(column), salt).alias("old_hash"),
            tokenize_column(F.col(column), key).alias("new_token"),
            _spark_expression_token(F.col(column), key).alias("old_token"),
        ).collect()
        assert [(r.new_hash, r.new_token) for r in got] == [(r.old_hash, r.old_token) for r in got]
    long_token = df.where("v LIKE 'yyy%'").select(tokenize_column(F.col("v"), key)).first()[0]
    assert "\r\n" in long_token  # Spark's base64 breaks lines after 76 characters; so do the new tokens


def _plan_text(df) -> str:
    return df._jdf.queryExecution().toString()  # parsed, analyzed, optimized and physical plans


def test_salt_and_token_key_appear_in_no_plan_nor_analysis_error(spark):
    salt, key = "salt-" + secrets.token_hex(12), "key-" + secrets.token_hex(12)
    forms = [salt, key, _derived_key(key, "token-iv").hex(), _derived_key(key, "token-enc").hex()]
    forms += [f.upper() for f in forms]
    df = one_column(spark, ["ana@example.com", "ben@example.org"])
    masked = df.select(
        hash_column(F.col("v"), salt).alias("h"),
        hash_column(F.col("v"), salt, table="bronze.customers").alias("ht"),
        tokenize_column(F.col("v"), key).alias("t"),
        detokenize(tokenize_column(F.col("v"), key, table="x.y"), key, table="x.y").alias("back"),
    )
    assert [r.back for r in masked.collect()] == ["ana@example.com", "ben@example.org"]
    plans = _plan_text(masked)
    assert "pii_hash" in plans and "pii_tokenize" in plans
    with pytest.raises(AnalysisException) as error:
        masked.where("h + 1 > array(1)").collect()
    assert "pii_hash" in str(error.value)
    for text in (plans, str(error.value)):
        assert not [form for form in forms if form in text]


def test_table_scope_keys_each_table_apart(spark):
    salt, key = secrets.token_hex(16), secrets.token_hex(16)
    df = one_column(spark, ["ana@example.com", None])
    rows = df.select(
        hash_column(F.col("v"), salt).alias("shared"),
        hash_column(F.col("v"), salt, table="silver.customers").alias("customers"),
        hash_column(F.col("v"), salt, table="silver.orders").alias("orders"),
        tokenize_column(F.col("v"), key, table="silver.customers").alias("token"),
        tokenize_column(F.col("v"), key).alias("shared_token"),
    ).collect()
    table_key = hmac.new(salt.encode(), b"neurolake-pii-hash-table:silver.customers", hashlib.sha256).digest()
    assert rows[0].customers == hmac.new(table_key, b"ana@example.com", hashlib.sha256).hexdigest()
    assert len({rows[0].shared, rows[0].customers, rows[0].orders}) == 3
    assert rows[0].token != rows[0].shared_token
    assert (rows[1].customers, rows[1].token) == (None, None)
    tokens = spark.createDataFrame([(rows[0].token,)], "t STRING")
    back = tokens.select(detokenize(F.col("t"), key, table="silver.customers")).first()[0]
    assert back == "ana@example.com"
    with pytest.raises(PythonException, match="InvalidTag"):
        tokens.select(detokenize(F.col("t"), key)).collect()


def test_a_masker_policy_with_table_scope_uses_the_plans_table(spark, tmp_path):
    salt = secrets.token_hex(16)
    policies = PiiPolicies.model_validate({"defaults": {"email": {"policy": "hash", "scope": "table"}}})
    masker = Masker(policies, SecretSource(QualitySettings(pii_salt_env="SALT"), env={"SALT": salt}))
    df = spark.createDataFrame([("ana@example.com",)], "email STRING")
    detected = detect_pii(df, sample_rows=0)
    one = masker.apply(df, masker.plan("bronze.customers", detected, df.columns)).first().email
    other = masker.apply(df, masker.plan("bronze.payments", detected, df.columns)).first().email
    expected = df.select(hash_column(F.col("email"), salt, table="bronze.customers")).first()[0]
    assert one == expected and other != one
    wrong = tmp_path / "pii.yaml"
    wrong.write_text("defaults:\n  phone: {policy: redact, scope: table}\n")
    with pytest.raises(ConfigError, match="defaults.phone: scope: table applies to hash and tokenize"):
        load_policies(wrong)
