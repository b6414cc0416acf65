"""What every console page shares: templates, the signed-in user, forms with CSRF tokens, error pages.

Console routes use :data:`router_for` routers, whose route class renders HTML for every error
(a 404 with "did you mean" links, a 403 naming the role needed, a 503 when the catalog is down)
and sends a browser that is not signed in to ``/signin``. A page declares its role with
``user: Principal = page_user("auditor")``; a form handler with ``form_user("engineer")``,
which also checks the form's ``csrf_token`` field against the session (403 without it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

from neurolake_spark import __version__
from neurolake_spark.catalog.words import STATE_WORDS, format_time
from neurolake_spark.errors import NeuroLakeError
from neurolake_spark.run_status import RunStatus
from neurolake_spark.service.auth import CSRF_COOKIE, SESSION_COOKIE, AuthFailure, Principal
from neurolake_spark.service.deps import audit_note, context
from neurolake_spark.service.problems import Problem

log = logging.getLogger("neurolake.service")
STATIC_PREFIX = "/static/console"
FORM_CSRF_FIELD = "csrf_token"

TEMPLATES = Environment(
    loader=ChoiceLoader(
        [
            PackageLoader("neurolake_spark.service.console", "templates"),
            PackageLoader("neurolake_spark.catalog", "templates"),
        ]
    ),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(moment: datetime | None) -> str:
    return format_time(moment) if moment else "—"


def _state(value: RunStatus | str | None) -> str:
    return STATE_WORDS[value] if isinstance(value, RunStatus) else (value or "—")


def _number(value: int | float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    minutes, seconds = divmod(round(value, 1), 60)
    return f"{int(minutes)} min {seconds:.0f} s" if minutes else f"{seconds:.1f} s"


def _ago(moment: datetime | None, now: datetime) -> str:
    """``3 h ago`` (what a freshness column says)."""
    if moment is None:
        return "never written"
    seconds = max(0.0, (now - moment).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


TEMPLATES.filters.update(when=_when, state=_state, number=_number, seconds=_seconds, urlpart=quote)
TEMPLATES.globals.update(static=STATIC_PREFIX, version=__version__, ago=_ago, urlencode=urlencode)


class SignInNeeded(Exception):
    """The browser has no valid session: send it to the sign-in page."""


class PageRoute(APIRoute):
    """Marks its answers as console pages (the page CSP) and answers errors as HTML pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            request.state.console_page = True
            try:
                return await handler(request)
            except SignInNeeded:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/signin?{urlencode({'next': target})}", status_code=303)
            except Problem as problem:
                return error_page(request, problem)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ())[1:])
                detail = f"{where}: {first.get('msg', 'invalid value')}" if where else "invalid request"
                return error_page(request, Problem("invalid-parameter", detail))
            except NeuroLakeError as exc:
                return error_page(request, Problem("invalid-parameter", " ".join(str(exc).split())))

        return handle


def router_for(**kwargs: Any) -> APIRouter:
    """A router of console pages (left out of the OpenAPI document: they are HTML, not the API)."""
    return APIRouter(route_class=PageRoute, include_in_schema=False, **kwargs)


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """The page ``template`` with the signed-in user, the nav and the form CSRF token."""
    principal: Principal | None = getattr(request.state, "principal", None)
    html = TEMPLATES.get_template(template).render(
        user=principal,
        csrf=request.cookies.get(CSRF_COOKIE, "") if principal else "",
        path=request.url.path,
        oidc=context(request).authenticator.oidc is not None,
        **values,
    )
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, problem: Problem) -> HTMLResponse:
    """A problem as a page: what went wrong, close names to try, the request id."""
    if problem.status >= 500:
        log.warning("console page failed: %s", problem.detail)
    response = render(
        request,
        "error.html.j2",
        status=problem.status,
        problem=problem,
        suggestions=problem.extra.get("suggestions") or [],
        request_id=getattr(request.state, "request_id", None),
    )
    response.headers.update(problem.headers)
    return response


async def _session_user(request: Request, csrf_token: str | None) -> Principal:
    ctx = context(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInNeeded()
    try:
        principal = await ctx.gate.run(
            "session", ctx.authenticator.session, token, request.method, csrf_token
        )
    except AuthFailure:
        raise SignInNeeded() from None
    except Problem as problem:
        if problem.slug == "csrf-failed":
            audit_note(request, "auth.csrf_failure")
            raise Problem(
                "csrf-failed", "the form was sent without its security token: reload the page"
            ) from None
        raise
    request.state.principal = principal
    return principal


def _allowed(request: Request, principal: Principal, role: str) -> Principal:
    if not principal.allows(role):
        audit_note(request, "auth.forbidden", required_role=role)
        raise Problem("forbidden", f"this page needs the {role} role; you are signed in as {principal.role}")
    return principal


def page_user(role: str) -> Any:
    """A dependency: the signed-in user of a page, who must hold ``role`` or a higher one."""

    async def dependency(request: Request) -> Principal:
        return _allowed(request, await _session_user(request, None), role)

    dependency.__name__ = f"page_{role}"
    return Depends(dependency)


def form_user(role: str) -> Any:
    """A dependency: the signed-in user of a posted form; its ``csrf_token`` field must match the session."""

    async def dependency(request: Request) -> Principal:
        form = await read_form(request)
        return _allowed(request, await _session_user(request, form.get(FORM_CSRF_FIELD)), role)

    dependency.__name__ = f"form_{role}"
    return Depends(dependency)


ViewerPage = Annotated[Principal, page_user("viewer")]
AuditorPage = Annotated[Principal, page_user("auditor")]
EngineerPage = Annotated[Principal, page_user("engineer")]
ViewerForm = Annotated[Principal, form_user("viewer")]
EngineerForm = Annotated[Principal, form_user("engineer")]


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a posted ``application/x-www-form-urlencoded`` form (the last value of each)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Problem("unsupported-media-type", "a console form is sent as application/x-www-form-urlencoded")
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[-1] for name, values in parse_qs(body, keep_blank_values=True).items()}


def safe_next(target: str | None, default: str = "/catalog") -> str:
    """A redirect target on this site only (a path, never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
