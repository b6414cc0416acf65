"""PII detection without Spark: value patterns, Luhn, column names, NCF tags, policies and secrets."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from neurolake_spark.config import QualitySettings
from neurolake_spark.errors import ConfigError
from neurolake_spark.quality.pii import (
    Detection,
    Masker,
    PiiPolicies,
    SecretSource,
    class_by_name,
    load_policies,
    luhn_valid,
    tags_from_arrow_schema,
    value_class,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("ana.smith42@example.com", "email"),
        ("o'neil+tag@mail.co.uk", "email"),
        ("+1-555-0012345", "phone"),
        ("+44 20 7946 0958", "phone"),
        ("(415) 555-2671", "phone"),
        ("4111 1111 1111 1111", "card_number"),
        ("5500-0000-0000-0004", "card_number"),
        ("378282246310005", "card_number"),
        ("123-45-6789", "national_id"),
        ("AB 12 34 56 C", "national_id"),
        ("192.168.10.254", "ip_address"),
        ("2001:db8::8a2e:370:7334", "ip_address"),
        ("4111 1111 1111 1112", None),  # fails Luhn
        ("666-45-6789", None),  # not a valid SSN area
        ("2026-11-24", None),  # a date, not a phone
        ("2026-11-24T10:00:00Z", None),
        ("999.1.1.1", None),
        ("product-00042", None),
        ("Ana Smith", None),
        ("42", None),
        ("not@an email", None),
    ],
)
def test_value_patterns(value, expected):
    assert value_class(value) == expected


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("7992 7398 713")


@pytest.mark.parametrize(
    "column, expected",
    [
        ("email", "email"),
        ("customer_email", "email"),
        ("e_mail", "email"),
        ("phone", "phone"),
        ("mobile_number", "phone"),
        ("name", "person_name"),
        ("first_name", "person_name"),
        ("customer_name", "person_name"),
        ("address", "address"),
        ("billing_address", "address"),
        ("street", "address"),
        ("card_number", "card_number"),
        ("ssn", "national_id"),
        ("passport_no", "national_id"),
        ("ip", "ip_address"),
        ("client_ip_address", "ip_address"),
        ("date_of_birth", "date_of_birth"),
        ("order_id", None),
        ("product_name_id", None),
        ("shipped", None),
        ("zip", None),
        ("status", None),
    ],
)
def test_column_names(column, expected):
    assert class_by_name(column) == expected


def test_tags_from_arrow_schema_feed_the_detector():
    schema = pa.schema(
        [
            pa.field("contact", pa.string(), metadata={b"pii": b"email"}),
            pa.field("note", pa.string(), metadata={b"owner": b"crm"}),
            pa.field("id", pa.int64()),
        ]
    )
    assert tags_from_arrow_schema(schema) == {"contact": "email"}


def test_shipped_policies_load():
    policies = load_policies(ROOT / "conf" / "pii.yaml")
    customers = policies.for_table("bronze.customers").columns
    assert {c: p.policy for c, p in customers.items()} == {
        "name": "tokenize",
        "email": "hash",
        "phone": "partial_mask",
        "address": "redact",
    }
    assert "name" in policies.for_table("bronze.products").allow
    assert policies.for_table("bronze.unknown").columns == {}


@pytest.mark.parametrize(
    "body, expected",
    [
        ("defaults: {shoe_size: hash}", "unknown PII class(es) shoe_size"),
        ("tables: {bronze.c: {columns: {email: scramble}}}", "tables.bronze.c.columns.email.policy"),
        (
            "tables: {bronze.c: {columns: {email: hash}, allow: [email]}}",
            "column(s) email both masked and allowed",
        ),
        ("detection: {min_match_ratio: 2}", "detection.min_match_ratio"),
        ("defaults: [", "not valid YAML"),
    ],
)
def test_invalid_policies_are_one_line_errors(tmp_path, body, expected):
    path = tmp_path / "pii.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_policies(path)
    assert str(path) in str(error.value) and expected in str(error.value)
    assert "\n" not in str(error.value)


def test_detected_pii_without_policy_is_refused():
    masker = Masker(PiiPolicies(), SecretSource(QualitySettings(), env={}))
    detected = {"email": Detection("email", "email", "name")}
    with pytest.raises(
        ConfigError, match=r"table bronze.x: column 'email' looks like PII \(email, by name\)"
    ):
        masker.plan("bronze.x", detected, ["email"])
    allowing = Masker(
        PiiPolicies.model_validate({"tables": {"bronze.x": {"allow": ["email"]}}}),
        SecretSource(QualitySettings(), env={}),
    )
    assert allowing.plan("bronze.x", detected, ["email"]) == {}


def test_secrets_have_no_default_and_are_read_from_env_or_file(tmp_path):
    missing = SecretSource(QualitySettings(pii_salt_env="TEST_SALT_ENV"), env={})
    with pytest.raises(
        ConfigError, match="the PII hash salt is not set: provide it in env var TEST_SALT_ENV"
    ):
        missing.salt()
    salt_file = tmp_path / "salt"
    salt_file.write_text("from-file-salt\n", encoding="utf-8")
    from_file = SecretSource(QualitySettings(pii_salt_env="TEST_SALT_ENV", pii_salt_file=salt_file), env={})
    assert from_file.salt() == "from-file-salt"
    from_env = SecretSource(QualitySettings(token_key_env="TEST_KEY_ENV"), env={"TEST_KEY_ENV": "k3y"})
    assert from_env.token_key() == "k3y"
