"""Probes and metrics: ``/health``, ``/live``, ``/ready``, ``/metrics``.

``/health`` and ``/live`` answer as long as the process serves requests (no dependency is
checked). ``/ready`` checks what requests need: the catalog database answers a query, the
warehouse is readable and writable (a probe file is created and removed), the lineage spool is
below ``service.ready_max_spooled_events`` and, once the query API has started Spark, the Spark
session answers (a local session whose JVM has died is replaced first); each check reports its
status and latency, and any failure makes the answer 503. ``/ready`` and ``/metrics`` need no
credential unless ``service.anonymous_ready`` / ``service.anonymous_metrics`` are off.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Literal

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from neurolake_spark.lineage.spool import EVENT_SUFFIX
from neurolake_spark.service.deps import Bearer, SessionCookie, context, require

router = APIRouter(tags=["probes"])


class Health(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    status: Literal["ok", "failed"]
    latency_ms: float
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, Check]


@router.get("/health", response_model=Health, summary="The process is up (no dependency checked)")
async def health() -> Health:
    return Health(status="ok")


@router.get("/live", response_model=Health, summary="Liveness: the process serves requests")
async def live() -> Health:
    return Health(status="ok")


async def _optional_auth(request: Request, credentials: Bearer, session_token: SessionCookie) -> None:
    """Authenticate only when the probe is not anonymous by config."""
    service = context(request).settings.service
    anonymous = service.anonymous_ready if request.url.path == "/ready" else service.anonymous_metrics
    if not anonymous:
        dependency = require("viewer").dependency
        await dependency(request, credentials, session_token)


def _catalog_check(store) -> None:
    with store.read() as conn:
        conn.execute(text("SELECT 1"))


def _warehouse_check(settings) -> None:
    """List the warehouse, then create and remove a hidden probe file in it (nothing is left behind)."""
    warehouse = settings.warehouse
    os.listdir(warehouse)
    probe = warehouse / f".neurolake-ready-{uuid.uuid4().hex}"
    probe.write_bytes(b"ok")
    probe.unlink()


def _spool_check(settings) -> None:
    root = settings.lineage_spool_dir
    waiting = 0
    if root.is_dir():
        for queue in root.iterdir():
            if queue.is_dir() and queue.name != "corrupt":
                waiting += sum(1 for entry in os.scandir(queue) if entry.name.endswith(EVENT_SUFFIX))
    limit = settings.service.ready_max_spooled_events
    if waiting > limit:
        raise RuntimeError(
            f"{waiting} lineage events wait in the spool (limit {limit}): run `neurolake lineage replay`"
        )


async def _timed(name: str, call, timeout: float, results: dict[str, Check]) -> None:
    started = time.perf_counter()
    detail, ok = None, True
    try:
        with anyio.fail_after(timeout):
            await call()
    except TimeoutError:
        ok, detail = False, f"no answer within {timeout:g} s"
    except Exception as exc:  # each check reports why it failed, without a traceback
        ok, detail = False, _reason(name, exc)
    results[name] = Check(
        status="ok" if ok else "failed",
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        detail=detail,
    )


def _spark_check(engine) -> None:
    engine.session().version  # noqa: B018 - a round trip to the JVM (or the Spark Connect server)


def _reason(name: str, exc: Exception) -> str:
    if name == "catalog":
        return "the catalog database does not answer"
    if name == "warehouse":
        return f"the warehouse is not readable and writable ({type(exc).__name__})"
    if name == "spark":
        return f"Spark does not answer ({type(exc).__name__})"
    return str(exc)


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness: catalog database, warehouse, lineage spool, Spark once started",
    responses={503: {"model": Readiness, "description": "a check failed"}},
    dependencies=[Depends(_optional_auth)],
)
async def ready(request: Request) -> JSONResponse:
    ctx = context(request)
    settings, timeout = ctx.settings, ctx.settings.service.catalog_timeout_seconds
    results: dict[str, Check] = {}

    async def catalog():
        if ctx.gate.breaker_open():
            raise RuntimeError("circuit breaker open")
        await ctx.gate.run("ready", _catalog_check)

    async with anyio.create_task_group() as group:
        group.start_soon(_timed, "catalog", catalog, timeout + 1, results)
        group.start_soon(
            _timed,
            "warehouse",
            lambda: anyio.to_thread.run_sync(_warehouse_check, settings),
            timeout,
            results,
        )
        group.start_soon(
            _timed,
            "lineage_spool",
            lambda: anyio.to_thread.run_sync(_spool_check, settings),
            timeout,
            results,
        )
        if ctx.engine.started:
            group.start_soon(
                _timed,
                "spark",
                lambda: anyio.to_thread.run_sync(_spark_check, ctx.engine, abandon_on_cancel=True),
                timeout,
                results,
            )
    if results["catalog"].status == "failed" and ctx.gate.breaker_open():
        results["catalog"].detail = "the catalog database does not answer (circuit breaker open)"
    healthy = all(check.status == "ok" for check in results.values())
    body = Readiness(status="ready" if healthy else "not ready", checks=dict(sorted(results.items())))
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics of the service and the pipeline",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    dependencies=[Depends(_optional_auth)],
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    payload = await anyio.to_thread.run_sync(generate_latest, registry)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)
