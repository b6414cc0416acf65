"""Keys, sessions and the audit log: ``/api/v1/keys`` (admin), ``/api/v1/session``, ``/api/v1/audit``.

The key routes call the same :class:`~neurolake_spark.service.keys.KeyStore` as ``neurolake
keys``; a created key's token is in the response once and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from neurolake_spark.service.audit import AuditLog
from neurolake_spark.service.auth import SESSION_COOKIE, clear_session_cookies, set_session_cookies
from neurolake_spark.service.deps import Admin, Auditor, Viewer, audit_note, context
from neurolake_spark.service.keys import ROLES, KeyStore, ServiceError
from neurolake_spark.service.pagination import MaxResults, PageToken, decode_token, encode_token, page_size
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.times import TimeQuery, UtcTime, request_time

router = APIRouter(prefix="/api/v1")
Role = Literal["viewer", "auditor", "engineer", "admin"]
assert set(Role.__args__) == set(ROLES)


class KeyOut(BaseModel):
    key_id: str
    name: str
    role: Role
    tenant: str
    created_at: UtcTime
    created_by: str | None
    expires_at: UtcTime | None
    revoked_at: UtcTime | None
    last_used_at: UtcTime | None
    active: bool
    grants: list[Literal["pii"]] = Field(default_factory=list, description="grants beside the role")


class KeyList(BaseModel):
    keys: list[KeyOut]


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    tenant: str | None = Field(default=None, max_length=100)
    expires_days: float | None = Field(default=None, gt=0, le=3650)
    grants: list[Literal["pii"]] = Field(default_factory=list, max_length=5)


class KeyCreated(KeyOut):
    token: str = Field(description="The key itself: shown once, store it now")


class SessionOpened(BaseModel):
    subject: str
    role: Role
    tenant: str
    csrf_token: str
    expires_in: int


class AuditOut(BaseModel):
    id: int
    recorded_at: UtcTime
    action: str
    actor: str
    key_id: str | None
    role: str | None
    tenant: str | None
    method: str | None
    route: str | None
    target: str | None
    parameters: dict | None
    status: int | None
    client: str | None
    request_id: str | None
    trace_id: str | None


class AuditPage(BaseModel):
    records: list[AuditOut]
    next_page_token: str | None = None


def _key_store(ctx):
    return lambda store: KeyStore(store, ctx.settings.service.tenants)


@router.get("/keys", response_model=KeyList, tags=["keys"], summary="Every API key (admin)")
async def list_keys(request: Request, principal: Admin) -> KeyList:
    ctx = context(request)
    keys = await ctx.gate.run("keys.list", lambda store: _key_store(ctx)(store).list())
    visible = [k for k in keys if ctx.scope(principal).unrestricted or k.tenant == principal.tenant]
    return KeyList(keys=[KeyOut(**k.to_dict()) for k in visible])


@router.post(
    "/keys", response_model=KeyCreated, status_code=201, tags=["keys"], summary="Create an API key (admin)"
)
async def create_key(request: Request, body: KeyCreate, principal: Admin) -> KeyCreated:
    ctx = context(request)
    tenant = body.tenant or principal.tenant
    if tenant != principal.tenant and not ctx.scope(principal).unrestricted:
        raise Problem("forbidden", "an admin can create keys for its own tenant only")
    audit_note(
        request, "key.create", body.name, name=body.name, role=body.role, tenant=tenant, grants=body.grants
    )
    if "pii" in body.grants and not principal.granted("pii"):
        raise Problem("forbidden", "only an admin holding the pii grant may grant pii")
    try:
        key, token = await ctx.gate.run(
            "keys.create",
            lambda store: _key_store(ctx)(store).create(
                body.name,
                body.role,
                tenant,
                body.expires_days,
                created_by=f"{principal.via}:{principal.subject}",
                grants=body.grants,
            ),
        )
    except ServiceError as exc:
        raise Problem("invalid-parameter", str(exc)) from None
    request.state.audit["target"] = key.key_id
    return KeyCreated(**key.to_dict(), token=token)


@router.delete("/keys/{key_id}", response_model=KeyOut, tags=["keys"], summary="Revoke an API key (admin)")
async def revoke_key(request: Request, key_id: str, principal: Admin) -> KeyOut:
    ctx = context(request)
    audit_note(request, "key.revoke", key_id)
    keys = await ctx.gate.run("keys.list", lambda store: _key_store(ctx)(store).list(include_revoked=False))
    match = [k for k in keys if k.key_id == key_id]
    if not match or not (ctx.scope(principal).unrestricted or match[0].tenant == principal.tenant):
        raise Problem("not-found", f"no active key with id {key_id!r}")
    key = await ctx.gate.run("keys.revoke", lambda store: _key_store(ctx)(store).revoke(key_id))
    return KeyOut(**key.to_dict())


@router.post(
    "/session",
    response_model=SessionOpened,
    tags=["session"],
    summary="Sign in: turn a bearer credential into a session cookie (for the console)",
)
async def open_session(request: Request, response: Response, principal: Viewer) -> SessionOpened:
    ctx = context(request)
    if principal.via == "session":
        raise Problem("bad-request", "sign in with an API key or a token, not with a session")
    audit_note(request, "session.open", principal.subject)
    token, csrf, lifetime = await ctx.gate.run("session.open", ctx.authenticator.open_session, principal)
    set_session_cookies(response, token, csrf, lifetime, ctx.settings.service.behind_tls)
    return SessionOpened(
        subject=principal.subject,
        role=principal.role,
        tenant=principal.tenant,
        csrf_token=csrf,
        expires_in=lifetime,
    )


@router.delete(
    "/session", status_code=204, tags=["session"], summary="Sign out: end the session of the cookie"
)
async def close_session(request: Request, principal: Viewer) -> Response:
    ctx = context(request)
    audit_note(request, "session.close", principal.subject)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await ctx.gate.run("session.close", ctx.authenticator.close_session, token)
    response = Response(status_code=204)
    clear_session_cookies(response)
    return response


@router.get(
    "/audit", response_model=AuditPage, tags=["audit"], summary="The audit log, newest first (auditor, admin)"
)
async def audit_list(
    request: Request,
    principal: Auditor,
    action: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    since: TimeQuery = None,
    max_results: MaxResults = None,
    page_token: PageToken = None,
) -> AuditPage:
    ctx = context(request)
    size = page_size(max_results, ctx.settings.service.max_page_size)
    before = decode_token(page_token, "b")
    scope = ctx.scope(principal)
    start = request_time(since, "since", end_of_day=False)
    records = await ctx.gate.run(
        "audit.list",
        lambda store: AuditLog(store).list(
            tenant=None if scope.unrestricted else principal.tenant,
            action=action,
            actor=actor,
            since=start,
            before_id=before,
            max_results=size + 1,
        ),
    )
    more = len(records) > size
    records = records[:size]
    return AuditPage(
        records=[AuditOut(**r.to_dict()) for r in records],
        next_page_token=encode_token({"b": records[-1].id}) if more else None,
    )
