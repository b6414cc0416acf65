"""The ASGI app of ``neurolake serve``: :func:`create_app` builds it from the settings.

Example::

    from neurolake_spark.config import load_settings
    from neurolake_spark.service.app import create_app

    app = create_app(load_settings("conf/local.yaml"))   # then: uvicorn.run(app)

Layers, outermost first: OpenTelemetry's request span, the edge middleware (request id,
trusted hosts, body limit, per-address rate limit, security headers, metrics, access log,
audit of writes), CORS, GZip, then FastAPI's routing with one router per area. Errors of
every kind are answered as problem+json (:mod:`.problems`).
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import Scope

from neurolake_spark import __version__
from neurolake_spark.catalog.errors import UnknownAssetError
from neurolake_spark.config import Settings, load_settings
from neurolake_spark.errors import NeuroLakeError
from neurolake_spark.service.audit import AuditLog
from neurolake_spark.service.auth import CSRF_HEADER, Authenticator
from neurolake_spark.service.catalog_gate import CatalogGate, service_state_dir
from neurolake_spark.service.console import add_console
from neurolake_spark.service.deps import ServiceContext
from neurolake_spark.service.engine import ServiceEngine
from neurolake_spark.service.middleware import BodyTooLarge, EdgeMiddleware, route_of
from neurolake_spark.service.observability import HttpMetrics, current_trace_id, tracer_provider
from neurolake_spark.service.problems import Problem, problem_response, problem_schema
from neurolake_spark.service.ratelimit import RateLimiter
from neurolake_spark.service.routers import (
    access,
    catalog,
    data_read,
    data_write,
    intake,
    lineage,
    probes,
    queries,
    runs,
)
from neurolake_spark.service.statements import ARROW_STREAM, StatementRunner, record_history
from neurolake_spark.service.table_access import TableAccess, UnknownTableError
from neurolake_spark.service.tenants import TenantScope

log = logging.getLogger("neurolake.service")
OPENAPI_URL = "/api/v1/openapi.json"
SETTINGS_ENV = "NEUROLAKE_SERVE_SETTINGS"
# lineage before catalog: its /assets/{name}/lineage routes must match before /assets/{name}
ROUTERS = [
    probes.router,
    lineage.router,
    catalog.router,
    runs.router,
    intake.router,
    access.router,
    queries.router,
    data_read.router,
    data_write.router,
]


def create_app(settings: Settings) -> FastAPI:
    """The service app for one environment's settings."""
    service = settings.service
    provider = tracer_provider(settings)
    gate = CatalogGate(settings, provider)
    engine = ServiceEngine(settings)
    tables = TableAccess(settings)
    statements = StatementRunner(
        engine,
        tables,
        service_state_dir(settings) / "statements" / str(os.getpid()),
        record=lambda statement: gate.call(record_history, statement),
        concurrency=service.statement_concurrency,
        queue=service.statement_queue,
        tenant_limits={
            name: (tenant.statement_concurrency, tenant.statement_queue)
            for name, tenant in service.tenants.items()
        },
        chunk_rows=service.statement_chunk_rows,
        retention_seconds=service.statement_retention_seconds,
    )
    ctx = ServiceContext(
        settings=settings,
        gate=gate,
        engine=engine,
        authenticator=Authenticator(service),
        key_limiter=RateLimiter(service.rate_limit_per_key) if service.rate_limit_enabled else None,
        scopes={name: TenantScope.from_settings(name, tenant) for name, tenant in service.tenants.items()},
        tables=tables,
        statements=statements,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        statements.close()
        engine.close()
        gate.close()
        provider.shutdown()

    app = FastAPI(
        title="NeuroLake API",
        version=__version__,
        description="Catalog, lineage, runs, quality and audit of a NeuroLake lakehouse (docs/service.md).",
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.neurolake = ctx
    app.state.metrics = metrics = HttpMetrics(settings)
    for router in ROUTERS:
        app.include_router(router)
    add_console(app)
    _add_error_handlers(app)
    _add_docs(app)
    app.openapi = lambda: _openapi(app)

    async def audit(scope: Scope, status: int, client: str) -> None:
        await _audit_request(ctx, scope, status, client)

    app.add_middleware(
        GZipMiddleware,
        minimum_size=1024,
        compresslevel=6,
        exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, ARROW_STREAM),
    )
    if service.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=service.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", CSRF_HEADER],
            expose_headers=[
                "X-Request-ID",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
            ],
        )
    app.add_middleware(EdgeMiddleware, service=service, metrics=metrics, audit=audit)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="/health,/live,/metrics")
    return app


def app_from_environment() -> FastAPI:
    """The app of a uvicorn worker: settings from ``$NEUROLAKE_SERVE_SETTINGS`` (set by ``serve``)."""
    import json

    from neurolake_spark.service.observability import configure_logging

    configure_logging()
    given = json.loads(os.environ.get(SETTINGS_ENV) or "{}")
    return create_app(load_settings(given.get("conf_file"), given.get("overrides") or []))


async def _audit_request(ctx: ServiceContext, scope: Scope, status: int, client: str) -> None:
    state = scope.get("state", {})
    principal = state.get("principal")
    note: dict[str, Any] = state.get("audit") or {}
    route = route_of(scope)
    parameters = {**scope.get("path_params", {}), **(note.get("parameters") or {})}
    try:
        await ctx.gate.run(
            "audit.record",
            lambda store: AuditLog(store).record(
                note.get("action") or f"{scope['method']} {route}",
                principal.subject if principal else "anonymous",
                key_id=principal.key_id if principal else None,
                role=principal.role if principal else None,
                tenant=principal.tenant if principal else None,
                method=scope["method"],
                route=route,
                target=note.get("target"),
                parameters=parameters or None,
                status=status,
                client=client,
                request_id=state.get("request_id"),
                trace_id=current_trace_id(),
            ),
        )
    except Problem:
        log.warning("audit record not written: the catalog database is unavailable")


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _add_error_handlers(app: FastAPI) -> None:
    def answer(request: Request, problem: Problem):
        return problem_response(problem, _request_id(request), request.url.path)

    @app.exception_handler(Problem)
    async def on_problem(request: Request, problem: Problem):
        return answer(request, problem)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError):
        errors = [
            {
                "location": [str(p) for p in e.get("loc", ())],
                "message": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in exc.errors()[:20]
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return answer(request, Problem("malformed-json", "the request body is not valid JSON"))
        first = errors[0] if errors else {"location": [], "message": "invalid request"}
        where = ".".join(first["location"])
        return answer(request, Problem("invalid-parameter", f"{where}: {first['message']}", errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        slug = {
            404: "not-found",
            405: "method-not-allowed",
            413: "payload-too-large",
            415: "unsupported-media-type",
        }
        detail = {404: f"no route {request.url.path}", 405: f"{request.method} is not allowed here"}
        problem = Problem(
            slug.get(exc.status_code, "bad-request"), detail.get(exc.status_code, "bad request")
        )
        problem.status = exc.status_code if exc.status_code in slug else 400
        if exc.status_code == 405 and exc.headers:
            problem.headers.update(exc.headers)
        return answer(request, problem)

    @app.exception_handler(BodyTooLarge)
    async def on_too_large(request: Request, exc: BodyTooLarge):
        return answer(request, Problem("payload-too-large", f"the request body exceeds {exc.limit} bytes"))

    @app.exception_handler(NeuroLakeError)
    async def on_library_error(request: Request, exc: NeuroLakeError):
        slug = "not-found" if isinstance(exc, UnknownAssetError) else "invalid-parameter"
        extra = {"suggestions": exc.suggestions} if isinstance(exc, UnknownTableError) else {}
        return answer(request, Problem(slug, " ".join(str(exc).split()), **extra))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception):
        return answer(
            request,
            Problem("internal-error", f"an unexpected error occurred (request id {_request_id(request)})"),
        )


def _add_docs(app: FastAPI) -> None:
    static = resources.files("neurolake_spark.service") / "static"
    page = (static / "docs.html").read_text(encoding="utf-8")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the problem+json responses every route may give."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = problem_schema()
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            codes = ["400", "413", "422", "429", "500"]
            if path not in ("/health", "/live"):
                codes += ["401", "403", "404", "503"]
            for code in codes:
                entry = responses.setdefault(code, {"description": "a problem (RFC 9457)"})
                entry.setdefault("content", {}).update(problem)
    app.openapi_schema = schema
    return schema
