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
and ``drop``. ``hash`` and ``tokenize`` take ``scope: table`` to key each table apart
(HMAC with a per-table key derived from the secret), so values cannot be linked across
tables; the default ``shared`` gives equal results in every table. Nothing is collected
but a detection sample. The salt and the token key are secrets read with
:func:`~neurolake_spark.config.read_secret` (never defaults) and never logged.

The secrets never enter a Spark plan: ``hash`` and ``tokenize`` are vectorised Arrow UDFs
whose key material reaches the executors in a Spark broadcast, so EXPLAIN, the Spark UI,
event logs, analysis errors and the OpenLineage plan facet show ``pii_hash(email)``, never
a literal. Their results are byte for byte those of the earlier Spark expressions
(``sha2(concat(salt, v), 256)`` and ``base64(aes_encrypt(...))``, line breaks included), so
tables masked before stay consistent.

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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyspark import Broadcast
from pyspark.sql import Column, DataFrame, SparkSession
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
    r"^(\+[0-9]{1,3}[ .-]?([(]?[0-9]{1,4}[)]?[ .-]?){1,4}[0-9]{2,7}"
    r"|[(]?[0-9]{3}[)]?[ .-][0-9]{3}[ .-][0-9]{4})$"
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
    scope: Literal["shared", "table"] = "shared"
    """``hash``/``tokenize``: ``shared`` gives a value the same result in every table (joinable
    across tables, and so linkable); ``table`` keys each table apart (HMAC with a per-table key)."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"policy": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _scoped_only_when_keyed(self) -> Policy:
        if self.scope == "table" and self.policy not in ("hash", "tokenize"):
            raise ValueError(f"scope: table applies to hash and tokenize, not to {self.policy}")
        return self


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

    def declared_columns(self, table: str, columns: Iterable[str]) -> dict[str, tuple[str, str]]:
        """``{column: (PII class, masking policy)}`` of the ``columns`` of ``table`` these policies
        treat as PII without reading data: tagged, named like a PII class or given a policy, and not
        allowed raw (class "PII" when only a policy names it, policy "none" when no policy covers it).

        >>> PiiPolicies().declared_columns("silver.customers", ["customer_id", "email"])
        {'email': ('email', 'none')}
        """
        policies = self.for_table(table)
        found = {}
        for column in columns:
            pii_class = policies.tags.get(column) or class_by_name(column.rsplit(".", 1)[-1])
            policy = policies.columns.get(column) or (self.defaults.get(pii_class) if pii_class else None)
            if column in policies.allow or not (pii_class or policy):
                continue
            found[column] = (pii_class or "PII", policy.policy if policy else "none")
        return found


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


def _broadcast(material: tuple) -> Broadcast:
    """Key material for the executors, outside every plan (a plan only holds the broadcast's id)."""
    return SparkSession.active().sparkContext.broadcast(material)


def _chunked_base64() -> bool:
    """Whether Spark's ``base64`` breaks lines every 76 characters (as the tokens were first made)."""
    return SparkSession.active().conf.get("spark.sql.chunkBase64String.enabled", "true") == "true"


def _hash_udf(material: Broadcast):
    """``pii_hash``: hex SHA-256 of salt + text (``("salt", salt)``), hex HMAC-SHA256 (``("hmac", key)``)."""

    def pii_hash(values: pa.Array) -> pa.Array:
        import hashlib
        import hmac

        mode, key = material.value
        if mode == "salt":
            salted = hashlib.sha256(key)

            def digest(text: str) -> str:
                one = salted.copy()
                one.update(text.encode())
                return one.hexdigest()
        else:

            def digest(text: str) -> str:
                return hmac.digest(key, text.encode(), "sha256").hex()

        return pa.array([None if v is None else digest(v) for v in values.to_pylist()], pa.string())

    return F.arrow_udf(pii_hash, "string")


def _tokenize_udf(material: Broadcast, chunked: bool):
    """``pii_tokenize``: base64 of IV + AES-256-GCM(text) + tag, IV = SHA-256(iv prefix + text)[:12]."""

    def pii_tokenize(values: pa.Array) -> pa.Array:
        import base64
        import hashlib

        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        encryption_key, iv_prefix = material.value
        cipher = AESGCM(encryption_key)

        def token(text: str) -> str:
            data = text.encode()
            iv = hashlib.sha256(iv_prefix + data).digest()[:12]
            encoded = base64.b64encode(iv + cipher.encrypt(iv, data, None)).decode()
            if not chunked:
                return encoded
            return "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))

        return pa.array([None if v is None else token(v) for v in values.to_pylist()], pa.string())

    return F.arrow_udf(pii_tokenize, "string")


def _detokenize_udf(material: Broadcast):
    """``pii_detokenize``: the text of a ``pii_tokenize`` token (fails on a token of another key)."""

    def pii_detokenize(values: pa.Array) -> pa.Array:
        import base64

        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        cipher = AESGCM(material.value)

        def text(token: str) -> str:
            blob = base64.b64decode(token)
            return cipher.decrypt(blob[:12], blob[12:], None).decode(errors="replace")

        return pa.array([None if v is None else text(v) for v in values.to_pylist()], pa.string())

    return F.arrow_udf(pii_detokenize, "string")


def _hash_material(salt: str, table: str | None) -> tuple[str, bytes]:
    """Shared scope: the salt; table scope: an HMAC key derived from the salt for ``table``."""
    if table is None:
        return ("salt", salt.encode())
    return ("hmac", _derived_key(salt, f"hash-table:{table}"))


def _token_material(key: str, table: str | None) -> tuple[bytes, bytes]:
    """The AES key and the IV prefix, from the token key or (table scope) a key derived for ``table``."""
    secret = key if table is None else _derived_key(key, f"token-table:{table}").hex()
    return (_derived_key(secret, "token-enc"), _derived_key(secret, "token-iv").hex().encode())


def hash_column(column: Column, salt: str, table: str | None = None) -> Column:
    """Salted SHA-256 hex of the value's text; null stays null.

    With ``table``, HMAC-SHA256 under a key derived from the salt for that table instead,
    so the same value hashes differently in each table. The salt stays out of the plan.
    """
    return _hash_udf(_broadcast(_hash_material(salt, table)))(column.cast("string"))


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


def tokenize_column(column: Column, key: str, table: str | None = None) -> Column:
    """Deterministic, reversible token: base64 of AES-256-GCM with IV = keyed hash of the value.

    Equal values give equal tokens (joins and counts still work); :func:`detokenize`
    reverses it with the same key (and ``table``, if given: a per-table derived key).
    Null stays null; the key stays out of the plan.
    """
    return _tokenize_udf(_broadcast(_token_material(key, table)), _chunked_base64())(column.cast("string"))


def detokenize(column: Column, key: str, table: str | None = None) -> Column:
    """The original text of a :func:`tokenize_column` token (needs the token key)."""
    return _detokenize_udf(_broadcast(_token_material(key, table)[0]))(column)


class MaskPlan(dict):
    """``{column: Policy}`` for one ``table``, as :meth:`Masker.plan` makes it (for ``scope: table``)."""

    def __init__(self, table: str, policies: dict[str, Policy] | None = None):
        super().__init__(policies or {})
        self.table = table


class Masker:
    """Applies the policies of ``pii.yaml`` to a table's frames; secrets reach no plan, only broadcasts."""

    def __init__(self, policies: PiiPolicies, secrets: SecretSource):
        self.policies, self.secrets = policies, secrets

    def plan(self, table: str, detected: dict[str, Detection], columns: list[str]) -> MaskPlan:
        """``{column: policy}`` for ``table``: explicit policies, then class defaults of detected columns.

        A detected column that is neither allowed nor covered by a policy is a ConfigError,
        so raw PII never passes silently.
        """
        table_policies = self.policies.for_table(table)
        plan = MaskPlan(table, {c: p for c, p in table_policies.columns.items() if c in columns})
        for column, detection in detected.items():
            if column in plan or column in table_policies.allow:
                continue
            default = self.policies.defaults.get(detection.pii_class)
            if default is None:
                raise ConfigError(
                    f"table {table}: column '{column}' looks like PII ({detection.pii_class}, "
                    f"by {detection.evidence}) but the PII policies give it no policy: add one under "
                    f"tables.{table}.columns, a default for {detection.pii_class}, or allow it"
                )
            plan[column] = default
        return plan

    def expression(self, column: str, policy: Policy, table: str | None = None) -> Column:
        """The masked value of ``column`` under ``policy`` (not ``drop``); ``table`` keys ``scope: table``."""
        source = F.col(column)
        if policy.scope == "table" and table is None:
            raise ConfigError(f"column '{column}': scope: table needs the table name (use Masker.plan)")
        scoped = table if policy.scope == "table" else None
        if policy.policy == "hash":
            return hash_column(source, self.secrets.salt(), scoped)
        if policy.policy == "redact":
            return redact_column(source, policy.replacement)
        if policy.policy == "partial_mask":
            return partial_mask_column(
                source, policy.keep_first, policy.keep_last, policy.mask_char, policy.keep_domain
            )
        return tokenize_column(source, self.secrets.token_key(), scoped)

    def apply(self, df: DataFrame, plan: MaskPlan) -> DataFrame:
        """``df`` with every planned column masked (or dropped), other columns untouched."""
        table = getattr(plan, "table", None)
        dropped = [c for c, p in plan.items() if p.policy == "drop"]
        masked = {c: self.expression(c, p, table) for c, p in plan.items() if p.policy != "drop"}
        return df.withColumns(masked).drop(*dropped) if masked else df.drop(*dropped)
