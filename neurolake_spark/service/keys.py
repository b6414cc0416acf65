"""API keys of the service: created, listed and revoked by ``neurolake keys``; checked per request.

A key reads ``nlk_<key id>_<secret>``. The catalog DB keeps the key id, a random salt and
``sha256(salt + secret)``, never the key: a leaked database gives no usable key. The secret
has 256 random bits, so a fast hash is enough (slow hashes protect guessable passwords).

Example::

    keys = KeyStore(store, tenants=["default"])
    key, token = keys.create("ci-reader", "viewer")   # show ``token`` once; it cannot be read back
    keys.verify(token)                                # the ApiKey, or None (unknown, revoked, expired)
    keys.revoke(key.key_id)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from neurolake_spark.catalog import schema as s
from neurolake_spark.errors import BadInputError

ROLES = ("viewer", "auditor", "engineer", "admin")
"""Each role may do what the ones before it may."""

GRANTS = ("pii",)
"""Grants beside the role: ``pii`` sees PII columns of tables unmasked (statements, previews)."""

KEY_PREFIX = "nlk_"
_TOKEN = re.compile(r"^nlk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


class ServiceError(BadInputError):
    """A wrong key, role or tenant given to ``neurolake keys`` (or the service)."""


def role_rank(role: str) -> int:
    """0 for viewer ... 3 for admin; raises ServiceError for an unknown role."""
    if role not in ROLES:
        raise ServiceError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return ROLES.index(role)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


@dataclass
class ApiKey:
    """One key as stored (without its secret)."""

    key_id: str
    name: str
    role: str
    tenant: str
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    grants: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > utc_now())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.active}


class KeyStore:
    """API keys in the catalog database (table ``api_keys``); see the module docstring."""

    def __init__(self, store, tenants: Iterable[str]):
        self.store = store
        self.tenants = list(tenants)

    def create(
        self,
        name: str,
        role: str,
        tenant: str | None = None,
        expires_days: float | None = None,
        created_by: str | None = None,
        grants: Iterable[str] = (),
    ) -> tuple[ApiKey, str]:
        """A new key and its token (the only time the token exists in clear)."""
        grants = check_grants(grants)
        name = (name or "").strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise ServiceError("a key needs a name of 1 to 200 printable characters")
        role_rank(role)
        tenant = tenant or self.tenants[0]
        if tenant not in self.tenants:
            raise ServiceError(
                f"unknown tenant {tenant!r}: service.tenants declares {', '.join(self.tenants)}"
            )
        if expires_days is not None and expires_days <= 0:
            raise ServiceError("--expires-days must be positive")
        key_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
        now = utc_now()
        key = ApiKey(
            key_id=key_id,
            name=name,
            role=role,
            tenant=tenant,
            created_at=now,
            created_by=created_by,
            expires_at=now + timedelta(days=expires_days) if expires_days else None,
            revoked_at=None,
            last_used_at=None,
            grants=grants,
        )
        with self.store.write() as conn:
            conn.execute(
                s.api_keys.insert().values(
                    key_id=key_id,
                    name=name,
                    role=role,
                    tenant=tenant,
                    salt=salt,
                    secret_hash=_digest(salt, secret),
                    created_at=now,
                    created_by=created_by,
                    expires_at=key.expires_at,
                    grants=format_grants(grants),
                )
            )
        return key, f"{KEY_PREFIX}{key_id}_{secret}"

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        """Every key, oldest first."""
        k = s.api_keys.c
        query = select(s.api_keys).order_by(k.created_at, k.id)
        if not include_revoked:
            query = query.where(k.revoked_at.is_(None))
        with self.store.read() as conn:
            return [_key(row) for row in conn.execute(query)]

    def revoke(self, key_id_or_name: str) -> ApiKey:
        """Revoke one key by id or by its (unique among active keys) name; returns it."""
        k = s.api_keys.c
        with self.store.write() as conn:
            rows = conn.execute(
                select(s.api_keys).where(
                    or_(k.key_id == key_id_or_name, k.name == key_id_or_name), k.revoked_at.is_(None)
                )
            ).all()
            if not rows:
                raise ServiceError(
                    f"no active key with id or name {key_id_or_name!r} (see `neurolake keys list`)"
                )
            if len(rows) > 1:
                ids = ", ".join(r.key_id for r in rows)
                raise ServiceError(
                    f"several active keys are named {key_id_or_name!r} ({ids}): revoke one by id"
                )
            now = utc_now()
            conn.execute(update(s.api_keys).where(k.id == rows[0].id).values(revoked_at=now))
            key = _key(rows[0])
            key.revoked_at = now
            return key

    def verify(self, token: str) -> ApiKey | None:
        """The active key ``token`` stands for, or None."""
        match = _TOKEN.match(token or "")
        if not match:
            return None
        key_id, secret = match.groups()
        with self.store.read() as conn:
            row = conn.execute(select(s.api_keys).where(s.api_keys.c.key_id == key_id)).one_or_none()
        if row is None or not hmac.compare_digest(row.secret_hash, _digest(row.salt, secret)):
            return None
        key = _key(row)
        return key if key.active else None

    def touch(self, key_id: str) -> None:
        """Record that a key was just used."""
        with self.store.write() as conn:
            conn.execute(
                update(s.api_keys).where(s.api_keys.c.key_id == key_id).values(last_used_at=utc_now())
            )


def check_grants(grants: Iterable[str]) -> tuple[str, ...]:
    """``grants`` sorted and checked; raises ServiceError for an unknown one."""
    given = tuple(sorted(set(grants)))
    unknown = [g for g in given if g not in GRANTS]
    if unknown:
        raise ServiceError(f"unknown grant {unknown[0]!r}: choose from {', '.join(GRANTS)}")
    return given


def format_grants(grants: Iterable[str]) -> str | None:
    """The stored form of grants (comma-separated, None for none)."""
    return ",".join(grants) or None


def parse_grants(stored: str | None) -> tuple[str, ...]:
    """Grants as stored, read back (unknown ones dropped)."""
    return tuple(g for g in (stored or "").split(",") if g in GRANTS)


def looks_like_key(text: str) -> bool:
    """True for text shaped like a NeuroLake API key (so logs and audit records can drop it)."""
    return bool(_TOKEN.match(text))


def _key(row) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        role=row.role,
        tenant=row.tenant,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        grants=parse_grants(row.grants),
    )
