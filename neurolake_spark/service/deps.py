"""What every route shares: the service context, authentication, roles and tenants.

Routers declare their role with ``principal: Principal = require("auditor")``; the
dependency authenticates (key, JWT or session), applies the per-key rate limit, checks the
role and records refusals for the audit log. Routers then call the library through
``ctx.gate.run(...)`` and filter by ``ctx.scope(principal)``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from neurolake_spark.config import Settings
from neurolake_spark.service.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Authenticator,
    AuthFailure,
    Principal,
)
from neurolake_spark.service.catalog_gate import CatalogGate
from neurolake_spark.service.engine import ServiceEngine
from neurolake_spark.service.keys import KeyStore
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.ratelimit import RateLimiter
from neurolake_spark.service.statements import StatementRunner
from neurolake_spark.service.table_access import TableAccess
from neurolake_spark.service.tenants import TenantScope

log = logging.getLogger("neurolake.service")
TOUCH_EVERY_SECONDS = 60.0

bearer_scheme = HTTPBearer(auto_error=False, description="An API key (`nlk_...`) or an OIDC access token")
session_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="A console session")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
SessionCookie = Annotated[str | None, Depends(session_scheme)]


@dataclass
class ServiceContext:
    """The state of one app: settings, catalog gate, Spark engine, tables and statements,
    authenticator, limiters."""

    settings: Settings
    gate: CatalogGate
    engine: ServiceEngine
    authenticator: Authenticator
    key_limiter: RateLimiter | None
    scopes: dict[str, TenantScope]
    tables: TableAccess
    statements: StatementRunner
    _touched: dict[str, float] = field(default_factory=dict)
    _touch_lock: threading.Lock = field(default_factory=threading.Lock)

    def scope(self, principal: Principal) -> TenantScope:
        return self.scopes[principal.tenant]

    def should_touch(self, key_id: str) -> bool:
        """True at most once a minute per key (last-use writes stay rare)."""
        now = time.monotonic()
        with self._touch_lock:
            if now - self._touched.get(key_id, -TOUCH_EVERY_SECONDS) < TOUCH_EVERY_SECONDS:
                return False
            self._touched[key_id] = now
            return True


def context(request: Request) -> ServiceContext:
    return request.app.state.neurolake


def audit_note(request: Request, action: str, target: str | None = None, **parameters: Any) -> None:
    """Describe this request for its audit record (the edge middleware writes it)."""
    request.state.audit = {"action": action, "target": target, "parameters": parameters}


async def authenticate(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    session_token: str | None,
) -> Principal:
    """The caller, or a 401 (``unauthenticated``) recorded in the audit log."""
    ctx = context(request)
    try:
        if credentials is not None:
            if credentials.scheme.lower() != "bearer" or not credentials.credentials:
                raise AuthFailure("the Authorization header is not 'Bearer <token>'")
            principal = await ctx.gate.run("auth", ctx.authenticator.bearer, credentials.credentials)
        elif request.headers.get("authorization"):
            raise AuthFailure("the Authorization header is not 'Bearer <token>'")
        elif session_token:
            principal = await ctx.gate.run(
                "session",
                ctx.authenticator.session,
                session_token,
                request.method,
                request.headers.get(CSRF_HEADER),
            )
        else:
            raise AuthFailure("no credentials")
    except AuthFailure as exc:
        audit_note(request, "auth.failure", reason=str(exc))
        raise Problem(
            "unauthenticated",
            "send a valid API key or token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="neurolake"'},
        ) from None
    except Problem as problem:
        if problem.slug == "csrf-failed":
            audit_note(request, "auth.csrf_failure")
        raise
    request.state.principal = principal
    if ctx.key_limiter is not None:
        verdict = ctx.key_limiter.take(f"{principal.via}:{principal.key_id or principal.subject}")
        request.state.key_rate = verdict
        if not verdict.allowed:
            raise Problem(
                "rate-limited",
                f"too many requests with this credential; retry in {verdict.retry_after} s",
                headers=verdict.headers(),
            )
    if principal.key_id and ctx.should_touch(principal.key_id):
        await ctx.gate.run("keys.touch", lambda store: KeyStore(store, ctx.scopes).touch(principal.key_id))
    return principal


def require(role: str) -> Any:
    """A dependency: the authenticated caller, who must hold ``role`` or a higher one (else 403)."""

    async def dependency(request: Request, credentials: Bearer, session_token: SessionCookie) -> Principal:
        principal = await authenticate(request, credentials, session_token)
        if not principal.allows(role):
            audit_note(request, "auth.forbidden", required_role=role)
            raise Problem("forbidden", f"this needs the {role} role; your role is {principal.role}")
        return principal

    dependency.__name__ = f"require_{role}"
    return Depends(dependency)


Viewer = Annotated[Principal, require("viewer")]
Auditor = Annotated[Principal, require("auditor")]
Engineer = Annotated[Principal, require("engineer")]
Admin = Annotated[Principal, require("admin")]
