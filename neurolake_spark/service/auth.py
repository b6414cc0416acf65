"""Who is calling: API keys, OIDC JWTs and console sessions, turned into a :class:`Principal`.

- ``Authorization: Bearer nlk_...``: an API key (see :mod:`.keys`).
- ``Authorization: Bearer <JWT>``: when ``service.oidc.issuer`` is set, a token signed by a
  key of the issuer's JWKS (``jwks_file`` or ``jwks_url``), with that issuer and audience;
  role and tenant come from the ``role_claim`` and ``tenant_claim`` claims.
- the ``neurolake_session`` cookie: a console session made by ``POST /api/v1/session``.
  A state-changing request on a session must send its CSRF token in ``X-CSRF-Token``;
  bearer requests carry no ambient credential and need none.

Roles: ``viewer`` < ``auditor`` < ``engineer`` < ``admin`` (:data:`~.keys.ROLES`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt
from sqlalchemy import select, update

from neurolake_spark.catalog import schema as s
from neurolake_spark.config import OidcSettings, ServiceSettings
from neurolake_spark.service.keys import (
    GRANTS,
    ROLES,
    KeyStore,
    ServiceError,
    format_grants,
    parse_grants,
    role_rank,
    utc_now,
)
from neurolake_spark.service.problems import Problem

SESSION_COOKIE = "neurolake_session"
CSRF_COOKIE = "neurolake_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    subject: str
    role: str
    tenant: str
    via: str  # key | jwt | session
    key_id: str | None = None
    grants: tuple[str, ...] = ()

    def allows(self, role: str) -> bool:
        return role_rank(self.role) >= role_rank(role)

    def granted(self, grant: str) -> bool:
        """True if the caller holds ``grant`` (e.g. ``pii``)."""
        return grant in self.grants


def set_session_cookies(response, token: str, csrf: str, lifetime: int, secure: bool) -> None:
    """Set the session cookie (``HttpOnly``) and the CSRF cookie (readable), both ``SameSite=Strict``."""
    for name, value, httponly in ((SESSION_COOKIE, token, True), (CSRF_COOKIE, csrf, False)):
        response.set_cookie(
            name, value, max_age=lifetime, httponly=httponly, secure=secure, samesite="strict", path="/"
        )


def clear_session_cookies(response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


class AuthFailure(Exception):
    """Why a credential was refused (audited; the client only sees ``unauthenticated``)."""


class OidcVerifier:
    """Checks JWTs against the issuer's keys (from a JWKS file, or a URL fetched and cached)."""

    def __init__(self, oidc: OidcSettings):
        self.oidc = oidc
        if oidc.jwks_file:
            try:
                self._keys = jwt.PyJWKSet.from_json(oidc.jwks_file.read_text(encoding="utf-8"))
            except (OSError, jwt.PyJWTError, ValueError) as exc:
                raise ServiceError(
                    f"service.oidc.jwks_file {oidc.jwks_file}: not a readable JWKS ({exc})"
                ) from None
            self._client = None
        elif oidc.jwks_url:
            self._client = jwt.PyJWKClient(oidc.jwks_url, cache_keys=True, lifespan=300, timeout=5)
        else:
            raise ServiceError("service.oidc.issuer is set: give service.oidc.jwks_file or jwks_url")

    def _signing_key(self, token: str):
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._keys.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise AuthFailure("no JWKS key matches the token's kid")

    def verify(self, token: str, tenants: set[str]) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._signing_key(token),
                algorithms=self.oidc.algorithms,
                audience=self.oidc.audience,
                issuer=self.oidc.issuer,
                leeway=self.oidc.leeway_seconds,
                options={"require": ["exp", "iss", "sub"] + (["aud"] if self.oidc.audience else [])},
            )
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"JWT refused: {type(exc).__name__}") from None
        role, tenant = claims.get(self.oidc.role_claim), claims.get(self.oidc.tenant_claim)
        if role not in ROLES:
            raise AuthFailure(f"JWT claim {self.oidc.role_claim} is not a role")
        if tenant not in tenants:
            raise AuthFailure(f"JWT claim {self.oidc.tenant_claim} is not a configured tenant")
        grants = claims.get(self.oidc.grants_claim) or []
        grants = tuple(sorted(g for g in grants if g in GRANTS)) if isinstance(grants, list) else ()
        return Principal(subject=str(claims["sub"])[:200], role=role, tenant=tenant, via="jwt", grants=grants)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Authenticator:
    """Resolves credentials to principals (called in a worker thread: it reads the catalog)."""

    def __init__(self, service: ServiceSettings):
        self.service = service
        self.tenants = set(service.tenants)
        self.oidc = OidcVerifier(service.oidc) if service.oidc.issuer else None

    def bearer(self, store, token: str) -> Principal:
        """The principal of a bearer token; raises AuthFailure."""
        if token.startswith("nlk_"):
            key = KeyStore(store, self.service.tenants).verify(token)
            if key is None:
                raise AuthFailure("unknown, revoked or expired API key")
            if key.tenant not in self.tenants:
                raise AuthFailure("the key's tenant is no longer configured")
            return Principal(
                subject=key.name,
                role=key.role,
                tenant=key.tenant,
                via="key",
                key_id=key.key_id,
                grants=key.grants,
            )
        if self.oidc is not None and token.count(".") == 2:
            return self.oidc.verify(token, self.tenants)
        raise AuthFailure("not an API key" + (" or a JWT" if self.oidc else ""))

    # ------------------------------------------------------------------ sessions

    def open_session(self, store, principal: Principal) -> tuple[str, str, int]:
        """A new console session for ``principal``: (session token, CSRF token, lifetime in seconds)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = utc_now()
        lifetime = timedelta(hours=self.service.session_hours)
        with store.write() as conn:
            conn.execute(
                s.service_sessions.insert().values(
                    session_hash=_hash(token),
                    csrf_hash=_hash(csrf),
                    subject=principal.subject,
                    key_id=principal.key_id,
                    role=principal.role,
                    tenant=principal.tenant,
                    created_at=now,
                    expires_at=now + lifetime,
                    grants=format_grants(principal.grants),
                )
            )
        return token, csrf, int(lifetime.total_seconds())

    def session(self, store, token: str, method: str, csrf_token: str | None) -> Principal:
        """The principal of a session cookie; unsafe methods need the session's CSRF token."""
        c, k = s.service_sessions.c, s.api_keys.c
        with store.read() as conn:
            row = conn.execute(
                select(
                    s.service_sessions, k.revoked_at.label("key_revoked"), k.expires_at.label("key_expires")
                )
                .outerjoin(s.api_keys, k.key_id == c.key_id)
                .where(c.session_hash == _hash(token))
            ).one_or_none()
        now = utc_now()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise AuthFailure("unknown, ended or expired session")
        if row.key_id and (row.key_revoked is not None or (row.key_expires and row.key_expires <= now)):
            raise AuthFailure("the session's API key was revoked or expired")
        if method not in SAFE_METHODS and not (
            csrf_token and hmac.compare_digest(_hash(csrf_token), row.csrf_hash)
        ):
            raise Problem("csrf-failed", f"a {method} on a session cookie needs the X-CSRF-Token header")
        return Principal(
            subject=row.subject,
            role=row.role,
            tenant=row.tenant,
            via="session",
            key_id=row.key_id,
            grants=parse_grants(row.grants),
        )

    def close_session(self, store, token: str) -> bool:
        with store.write() as conn:
            done = conn.execute(
                update(s.service_sessions)
                .where(
                    s.service_sessions.c.session_hash == _hash(token),
                    s.service_sessions.c.revoked_at.is_(None),
                )
                .values(revoked_at=utc_now())
            ).rowcount
        return bool(done)
