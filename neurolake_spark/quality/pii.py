"""PII: detection (column names, value patterns on a sample, NCF column tags) and masking.

Policies come from ``conf/pii.yaml`` (``settings.quality.pii_policies``)::

    defaults:                       # a detected column without its own policy gets its class's
      email: hash
      phone: {policy: partial_mask, keep_last: 4}
    tables:
      bronze.customers:
        columns:
          name: tokenize
          email: hash
        allow: []                   # columns that may stay raw although they look like PII

Policies: ``hash`` (salted SHA-256), ``redact``, ``partial_mask`` (keep a few characters,
or an email's domain), ``tokenize`` (deterministic AES-GCM with a synthetic IV: equal
values give equal tokens, only the key holder can reverse them, see :func:`detokenize`)
and ``drop``. Masks are Spark column expressions; nothing is collected but a detection
sample. The salt and the token key are secrets read with
:func:`~neurolake_spark.config.read_secret` (never defaults) and never logged.

Example::

    policies = load_policies(settings.quality.pii_policies)
    masker = Masker(policies, secrets=SecretSource(settings.quality))
    found = detect_pii(df, sample_rows=500, tags={"contact": "email"})
    masked_df, applied = masker.protect("bronze.customers", df, found)
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from neurolake_spark.config import SECRETS_INIT_COMMAND, QualitySettings, read_secret
from neurolake_spark.errors import ConfigError

PII_CLASSES = (
    "email",
    "phone",
    "person_name",
    "address",
    "card_number",
    "national_id",
    "ip_address",
    "date_of_birth",
)
TAG_KEY = "pii"
"""The key of an NCF column's PII tag in the Arrow field metadata (and Spark field metadata)."""

NAME_PATTERNS: dict[str, re.Pattern] = {
    "email": re.compile(r"^(e_?mail|.*_e_?mail|e_?mail_.*)$"),
    "phone": re.compile(r"^(.*_)?(phone|mobile|telephone|tel|fax)(_.*)?$"),
    "person_name": re.compile(
        r"^(name|(first|last|full|middle|given|family|sur|customer|contact|person)_?name)$"
    ),
    "ip_address": re.compile(r"^(.*_)?ip(_?(address|addr))?$"),
    "address": re.compile(r"^(.*_)?(address|street|addr|postcode|zip_?code)(_.*)?$"),
    "card_number": re.compile(r"^(.*_)?(card_?(number|no|num)|cc_?(number|num)|pan)$"),
    "national_id": re.compile(r"^(.*_)?(ssn|national_?id|passport(_?(no|number))?|tax_?id|nino)$"),
    "date_of_birth": re.compile(r"^(dob|date_of_birth|birth_?date|birthday)$"),
}

EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
PHONE = re.compile(
    r"^(\+[0-9]{1,3}[ .-]?([(]?[0-9]{1,4}[)]?[ .-]?){1,4}[0-9]{2,7}|[(]?[0-9]{3}[)]?[ .-][0-9]{3}[ .-][0-9]{4})$"
)
CARD = re.compile(r"^[0-9]{4}([ -]?[0-9]{2,4}){2,4}$")
SSN = re.compile(r"^(?!000|666|9[0-9]{2})[0-9]{3}-(?!00)[0-9]{2}-(?!0000)[0-9]{4}$")
NINO = re.compile(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]$")


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn checksum (card numbers)."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def value_class(value: str) -> str | None:
    """The PII class a single value looks like, or None."""
    text = value.strip()
    if EMAIL.match(text):
        return "email"
    if CARD.match(text):
        digits = re.sub(r"[ -]", "", text)
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return "card_number"
    if SSN.match(text) or NINO.match(text):
        return "national_id"
    if _is_ip(text):
        return "ip_address"
    if PHONE.match(text) and 7 <= sum(c.isdigit() for c in text) <= 15:
        return "phone"
    return None


def class_by_name(column: str) -> str | None:
    """The PII class a column name suggests, or None."""
    lowered = column.lower()
    return next((cls for cls, pattern in NAME_PATTERNS.items() if pattern.match(lowered)), None)


def tags_from_arrow_schema(schema, key: str = TAG_KEY) -> dict[str, str]:
    """``{column: pii_class}`` from a pyarrow schema's field metadata (how NCF tags columns)."""
    tags = {}
    for field in schema:
        metadata = field.metadata or {}
        value = metadata.get(key.encode()) or metadata.get(key)
        if value:
            tags[field.name] = value.decode() if isinstance(value, bytes) else str(value)
    return tags


def tags_from_spark_schema(schema, key: str = TAG_KEY) -> dict[str, str]:
    """``{column: pii_class}`` from a Spark StructType's field metadata."""
    return {f.name: str(f.metadata[key]) for f in schema.fields if f.metadata and f.metadata.get(key)}


@dataclass(frozen=True)
class Detection:
    """Why a column is considered PII: its class and the evidence (tag, name, values)."""

    column: str
    pii_class: str
    evidence: str


def detect_pii(
    df: DataFrame,
    sample_rows: int = 500,
    min_match_ratio: float = 0.8,
    tags: dict[str, str] | None = None,
) -> dict[str, Detection]:
    """Find PII columns of ``df`` by tag, then by name, then by values of a small sample.

    ``tags`` is a ``{column: pii_class}`` mapping (e.g. :func:`tags_from_arrow_schema` of an
    NCF file); a string column is PII by value when at least ``min_match_ratio`` of its
    non-null sampled values look like one class. ``sample_rows=0`` skips the sample.
    """
    found: dict[str, Detection] = {}
    for column, pii_class in (tags or {}).items():
        if column in df.columns:
            found[column] = Detection(column, pii_class, "tag")
    for column in df.columns:
        pii_class = class_by_name(column)
        if column not in found and pii_class:
            found[column] = Detection(column, pii_class, "name")
    candidates = [
        f.name for f in df.schema.fields if isinstance(f.dataType, StringType) and f.name not in found
    ]
    if sample_rows and candidates:
        rows = df.select(*candidates).limit(sample_rows).collect()
        for column in candidates:
            values = [row[column] for row in rows if row[column]]
            if not values:
                continue
            classes: dict[str, int] = {}
            for value in values:
                pii_class = value_class(value)
                if pii_class:
                    classes[pii_class] = classes.get(pii_class, 0) + 1
            best = max(classes.items(), key=lambda item: item[1], default=None)
            if best and best[1] >= min_match_ratio * len(values):
                found[column] = Detection(column, best[0], f"values ({best[1]}/{len(values)} sampled)")
    return found


class Policy(BaseModel):
    """How one column is masked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["hash", "redact", "partial_mask", "tokenize", "drop"]
    keep_first: int = Field(default=0, ge=0)
    keep_last: int = Field(default=0, ge=0)
    keep_domain: bool = False
    mask_char: str = Field(default="*", min_length=1, max_length=1)
    replacement: str = "[REDACTED]"

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"policy": value} if isinstance(value, str) else value


class TablePolicies(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, Policy] = Field(default_factory=dict)
    allow: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_overlap(self) -> TablePolicies:
        both = sorted(set(self.columns) & set(self.allow))
        if both:
            raise ValueError(f"column(s) {', '.join(both)} both masked and allowed")
        return self


class DetectionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rows: int = Field(default=500, ge=0)
    min_match_ratio: float = Field(default=0.8, gt=0, le=1)


class PiiPolicies(BaseModel):
    """The whole ``pii.yaml``: class defaults, detection settings and per-table policies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[str, Policy] = Field(default_factory=dict)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    tables: dict[str, TablePolicies] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_classes(self) -> PiiPolicies:
        unknown = [c for c in self.defaults if c not in PII_CLASSES]
        if unknown:
            raise ValueError(
                f"unknown PII class(es) {', '.join(unknown)} (classes: {', '.join(PII_CLASSES)})"
            )
        return self

    def for_table(self, table: str) -> TablePolicies:
        return self.tables.get(table, TablePolicies())


def load_policies(path: Path) -> PiiPolicies:
    """Parse and validate ``pii.yaml``; a missing file means no policies (detection still runs)."""
    path = Path(path)
    if not path.exists():
        return PiiPolicies()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    try:
        return PiiPolicies.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{path}: {where + ': ' if where else ''}{message}") from None


class SecretSource:
    """Reads the hash salt and the token key on first use only (a table without such policies needs none)."""

    def __init__(self, quality: QualitySettings, env: dict[str, str] | None = None):
        self._quality, self._env, self._cache = quality, env, {}

    def salt(self) -> str:
        if "salt" not in self._cache:
            q = self._quality
            self._cache["salt"] = read_secret(
                q.pii_salt_env, q.pii_salt_file, "the PII hash salt", self._env, SECRETS_INIT_COMMAND
            )
        return self._cache["salt"]

    def token_key(self) -> str:
        if "token" not in self._cache:
            q = self._quality
            self._cache["token"] = read_secret(
                q.token_key_env, q.token_key_file, "the PII token key", self._env, SECRETS_INIT_COMMAND
            )
        return self._cache["token"]


def _derived_key(secret: str, purpose: str, size: int = 32) -> bytes:
    return hmac.new(secret.encode(), f"neurolake-pii-{purpose}".encode(), hashlib.sha256).digest()[:size]


def hash_column(column: Column, salt: str) -> Column:
    """Salted SHA-256 hex of the value's text; null stays null."""
    return F.sha2(F.concat(F.lit(salt), column.cast("string")), 256)


def redact_column(column: Column, replacement: str = "[REDACTED]") -> Column:
    """A fixed replacement; null stays null."""
    return F.when(column.isNull(), F.lit(None).cast("string")).otherwise(F.lit(replacement))


def partial_mask_column(
    column: Column, keep_first: int = 0, keep_last: int = 0, mask_char: str = "*", keep_domain: bool = False
) -> Column:
    """Mask all but ``keep_first``/``keep_last`` characters (all of them if the value is that short).

    With ``keep_domain`` an email keeps its ``@domain`` and masks the local part.
    """
    text = column.cast("string")
    if keep_domain:
        return F.regexp_replace(text, r"^[^@]*", mask_char * 3)
    length = F.length(text)
    middle = F.repeat(F.lit(mask_char), F.greatest(length - F.lit(keep_first + keep_last), F.lit(0)))
    head = F.substring(text, 1, keep_first) if keep_first else F.lit("")
    tail = F.substring(text, -keep_last, keep_last) if keep_last else F.lit("")
    return (
        F.when(text.isNull(), F.lit(None).cast("string"))
        .when(length <= F.lit(keep_first + keep_last), F.repeat(F.lit(mask_char), length))
        .otherwise(F.concat(head, middle, tail))
    )


def tokenize_column(column: Column, key: str) -> Column:
    """Deterministic, reversible token: base64 of AES-256-GCM with IV = keyed hash of the value.

    Equal values give equal tokens (joins and counts still work); :func:`detokenize`
    reverses it with the same key. Null stays null.
    """
    text = column.cast("string")
    enc_key, iv_key = _derived_key(key, "token-enc"), _derived_key(key, "token-iv")
    iv = F.substring(F.unhex(F.sha2(F.concat(F.lit(iv_key.hex()), text), 256)), 1, 12)
    return F.base64(F.aes_encrypt(text, F.lit(enc_key), F.lit("GCM"), F.lit("DEFAULT"), iv))


def detokenize(column: Column, key: str) -> Column:
    """The original text of a :func:`tokenize_column` token (needs the token key)."""
    return F.aes_decrypt(F.unbase64(column), F.lit(_derived_key(key, "token-enc")), F.lit("GCM")).cast(
        "string"
    )


class Masker:
    """Applies the policies of ``pii.yaml`` to a table's frames as Spark expressions."""

    def __init__(self, policies: PiiPolicies, secrets: SecretSource):
        self.policies, self.secrets = policies, secrets

    def plan(self, table: str, detected: dict[str, Detection], columns: list[str]) -> dict[str, Policy]:
        """``{column: policy}`` for ``table``: explicit policies, then class defaults of detected columns.

        A detected column that is neither allowed nor covered by a policy is a ConfigError,
        so raw PII never passes silently.
        """
        table_policies = self.policies.for_table(table)
        plan = {c: p for c, p in table_policies.columns.items() if c in columns}
        for column, detection in detected.items():
            if column in plan or column in table_policies.allow:
                continue
            default = self.policies.defaults.get(detection.pii_class)
            if default is None:
                raise ConfigError(
                    f"table {table}: column '{column}' looks like PII ({detection.pii_class}, by {detection.evidence}) "
                    f"but the PII policies give it no policy: add one under tables.{table}.columns, "
                    f"a default for {detection.pii_class}, or allow it"
                )
            plan[column] = default
        return plan

    def expression(self, column: str, policy: Policy) -> Column:
        """The masked value of ``column`` under ``policy`` (not for ``drop``)."""
        source = F.col(column)
        if policy.policy == "hash":
            return hash_column(source, self.secrets.salt())
        if policy.policy == "redact":
            return redact_column(source, policy.replacement)
        if policy.policy == "partial_mask":
            return partial_mask_column(
                source, policy.keep_first, policy.keep_last, policy.mask_char, policy.keep_domain
            )
        return tokenize_column(source, self.secrets.token_key())

    def apply(self, df: DataFrame, plan: dict[str, Policy]) -> DataFrame:
        """``df`` with every planned column masked (or dropped), other columns untouched."""
        dropped = [c for c, p in plan.items() if p.policy == "drop"]
        masked = {c: self.expression(c, p) for c, p in plan.items() if p.policy != "drop"}
        return df.withColumns(masked).drop(*dropped) if masked else df.drop(*dropped)
