"""The service's edge: one ASGI middleware around everything else.

For each HTTP request, in this order: a request id (the client's ``X-Request-ID`` when it is
a plain token, else a new one; echoed in the response, the logs, the trace and the audit
log), the trusted-host check, the request body limit (``Content-Length`` and streamed
bodies), the per-address rate limit (probes exempt), then the app. On the way out: security
headers, rate-limit headers, the metrics, one JSON access-log line and, for every write and
every refused credential, an audit record.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neurolake_spark.config import ServiceSettings
from neurolake_spark.service.observability import ACCESS_LOGGER, HttpMetrics, current_trace_id
from neurolake_spark.service.problems import Problem, problem_response
from neurolake_spark.service.ratelimit import RateLimiter

log = logging.getLogger(ACCESS_LOGGER)
errors = logging.getLogger("neurolake.service")

PROBES = frozenset({"/health", "/live", "/ready", "/metrics"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


class BodyTooLarge(Exception):
    pass


def route_of(scope: Scope) -> str:
    """The matched route's template (bounded label values for metrics), or ``unmatched``."""
    route = scope.get("route")
    if route is None and "endpoint" in scope and scope.get("app") is not None:
        for candidate in getattr(scope["app"], "routes", ()):
            if candidate.matches(scope)[0] == Match.FULL:
                route = candidate
                break
    return getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"


def host_allowed(host_header: str, allowed: list[str]) -> bool:
    if "*" in allowed:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8000
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host in allowed


class EdgeMiddleware:
    """See the module docstring. ``audit`` is awaited after the response for audited requests."""

    def __init__(
        self,
        app: ASGIApp,
        service: ServiceSettings,
        metrics: HttpMetrics,
        audit: Callable[[Scope, int, str], Awaitable[None]],
    ):
        self.app = app
        self.service = service
        self.metrics = metrics
        self.audit = audit
        self.limiter = RateLimiter(service.rate_limit_per_address) if service.rate_limit_enabled else None
        self.hosts = [h.lower().strip("[]") for h in service.trusted_hosts]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        trace.get_current_span().set_attribute("neurolake.request_id", request_id)
        path = scope["path"]
        client = scope.get("client")[0] if scope.get("client") else "unknown"
        status = {"code": 0, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message["headers"] = self._headers(message.get("headers", []), path, request_id, state)
            await send(message)

        problem = self._refusal(headers, path, client, state)
        self.metrics.in_flight.inc()
        try:
            if problem is not None:
                await self._answer(problem, scope, receive, send_wrapper, request_id)
            else:
                await self.app(scope, self._limited(receive), send_wrapper)
        except BodyTooLarge:
            if not status["started"]:
                await self._answer(self._too_large(), scope, receive, send_wrapper, request_id)
        except Exception:
            errors.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            if not status["started"]:
                await self._answer(
                    Problem("internal-error", f"an unexpected error occurred (request id {request_id})"),
                    scope,
                    receive,
                    send_wrapper,
                    request_id,
                )
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = route_of(scope)
            self.metrics.observe(route, scope["method"], status["code"], elapsed)
            principal = state.get("principal")
            if self.service.access_log:
                log.info(
                    "%s %s %s",
                    scope["method"],
                    path,
                    status["code"],
                    extra={
                        "fields": {
                            "request_id": request_id,
                            "trace_id": current_trace_id(),
                            "method": scope["method"],
                            "path": path,
                            "route": route,
                            "status": status["code"],
                            "duration_ms": round(elapsed * 1000, 2),
                            "client": client,
                            "subject": principal.subject if principal else None,
                            "role": principal.role if principal else None,
                            "tenant": principal.tenant if principal else None,
                        }
                    },
                )
        # Refused at the edge (host, size, address bucket): nothing reached the app, nothing to audit,
        # and a flood of refused writes must not become a flood of audit rows.
        audited = scope["method"] not in ("GET", "HEAD", "OPTIONS") or "audit" in state
        reached = path.startswith("/api/") or "audit" in state  # console routes note what they audit
        if problem is None and status["code"] != 413 and reached and audited:
            await self.audit(scope, status["code"], client)

    def _refusal(self, headers: dict[str, str], path: str, client: str, state: dict) -> Problem | None:
        if not host_allowed(headers.get("host", ""), self.hosts):
            return Problem("untrusted-host", "the Host header names a host this service does not serve")
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return Problem("bad-request", "Content-Length must be a number")
            if int(length) > self.service.max_body_bytes:
                return self._too_large()
        if self.limiter is not None and path not in PROBES:
            verdict = self.limiter.take(f"addr:{client}")
            state["rate"] = verdict
            if not verdict.allowed:
                return Problem(
                    "rate-limited",
                    f"too many requests from this address; retry in {verdict.retry_after} s",
                    headers=verdict.headers(),
                )
        return None

    def _too_large(self) -> Problem:
        return Problem("payload-too-large", f"the request body exceeds {self.service.max_body_bytes} bytes")

    def _limited(self, receive: Receive) -> Receive:
        limit, seen = self.service.max_body_bytes, 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        return limited

    async def _answer(
        self, problem: Problem, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> None:
        response = problem_response(problem, request_id=request_id, instance=scope["path"])
        await response(scope, receive, send)

    def _headers(self, raw: list, path: str, request_id: str, state: dict[str, Any]) -> list:
        static = path == "/docs" or path.startswith("/static/")
        page = static or bool(state.get("console_page"))  # set by the web console's HTML routes
        extra = {
            "x-request-id": request_id,
            "content-security-policy": PAGE_CSP if page else API_CSP,
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "no-referrer",
            "permissions-policy": PERMISSIONS,
            "cross-origin-opener-policy": "same-origin",
            "cross-origin-resource-policy": "same-origin",
        }
        if not static:
            extra["cache-control"] = "no-store"
        if self.service.behind_tls:
            extra["strict-transport-security"] = "max-age=31536000; includeSubDomains"
        verdict = state.get("key_rate") or state.get("rate")
        if verdict is not None:
            extra.update({k.lower(): v for k, v in verdict.headers().items()})
        kept = [(k, v) for k, v in raw if k.decode("latin-1").lower() not in extra and k.lower() != b"server"]
        return kept + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
