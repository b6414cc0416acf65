"""Signing in and out of the console: ``/signin`` (an API key or, when OIDC is configured, an access
token, turned into the same session as ``POST /api/v1/session``) and ``/signout``.

The sign-in form carries a one-time token that must match a ``SameSite=Strict`` cookie set with
the form, so another site cannot sign a browser in under someone else's key.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from neurolake_spark.service.auth import (
    SESSION_COOKIE,
    AuthFailure,
    Principal,
    clear_session_cookies,
    set_session_cookies,
)
from neurolake_spark.service.console.base import ViewerForm, read_form, render, router_for, safe_next
from neurolake_spark.service.deps import audit_note, context
from neurolake_spark.service.problems import Problem

router = router_for()
SIGNIN_COOKIE = "neurolake_signin"
SIGNIN_FIELD = "signin_token"


def _form(request: Request, status: int = 200, error: str | None = None, next_page: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "signin.html.j2",
        status=status,
        error=error,
        next_page=safe_next(next_page),
        signin_token=token,
        signed_out=request.query_params.get("signed_out") == "1",
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        max_age=900,
        httponly=True,
        secure=context(request).settings.service.behind_tls,
        samesite="strict",
        path="/signin",
    )
    return response


@router.get("/", include_in_schema=False)
async def home() -> Response:
    return RedirectResponse("/catalog", status_code=303)


@router.get("/signin")
async def signin_page(request: Request, next: str = "") -> Response:
    return _form(request, next_page=next)


@router.post("/signin")
async def signin(request: Request) -> Response:
    ctx = context(request)
    form = await read_form(request)
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, form.get(SIGNIN_FIELD, "")):
        audit_note(request, "auth.csrf_failure")
        raise Problem("csrf-failed", "the sign-in form expired or came from another site: open it again")
    credential = form.get("credential", "").strip()
    try:
        if not credential:
            raise AuthFailure("no credentials")
        principal: Principal = await ctx.gate.run("auth", ctx.authenticator.bearer, credential)
    except AuthFailure as exc:
        audit_note(request, "auth.failure", reason=str(exc), via="console")
        return _form(request, 401, "That key or token was not accepted.", form.get("next", ""))
    request.state.principal = principal
    audit_note(request, "session.open", principal.subject, via="console")
    token, csrf, lifetime = await ctx.gate.run("session.open", ctx.authenticator.open_session, principal)
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    set_session_cookies(response, token, csrf, lifetime, ctx.settings.service.behind_tls)
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@router.post("/signout")
async def signout(request: Request, user: ViewerForm) -> Response:
    ctx = context(request)
    audit_note(request, "session.close", user.subject, via="console")
    await ctx.gate.run("session.close", ctx.authenticator.close_session, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/signin?signed_out=1", status_code=303)
    clear_session_cookies(response)
    return response
