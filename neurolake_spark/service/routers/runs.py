"""``/api/v1/runs`` and ``/api/v1/quality/results``: pipeline runs and quality results (auditor).

Runs and results come from the catalog library (:func:`~neurolake_spark.catalog.pages.run_page`,
:meth:`CatalogStore.get_run`, :meth:`CatalogStore.quality_report`). A caller limited to some
tables sees the runs that read or wrote one of them, and only those tables in a run.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from neurolake_spark.catalog import pages
from neurolake_spark.run_status import RunStatus
from neurolake_spark.service.deps import Auditor, context
from neurolake_spark.service.pagination import MaxResults, PageToken, decode_token, encode_token, page_size
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.resolve import resolve_asset
from neurolake_spark.service.times import TimeQuery, UtcTime, request_time, with_utc

router = APIRouter(prefix="/api/v1")


class Run(BaseModel):
    run: str
    job: str
    state: RunStatus
    run_date: str | None
    started: UtcTime | None
    ended: UtcTime | None
    duration_seconds: float | None
    parent: str | None
    code_version: str | None = None
    error: str | None


class RunPage(BaseModel):
    runs: list[Run]
    next_page_token: str | None = None


class RunDetail(Run):
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    metrics: dict[str, int]
    quality: list[dict[str, Any]]
    children: list[Run]


class QualityResult(BaseModel):
    dataset: str
    version: str | None
    expectation: str
    column: str | None
    success: bool
    severity: str | None
    observed_value: str | None
    expected_value: str | None
    unexpected_count: int | None
    run_date: str | None
    recorded: UtcTime
    run: str
    job: str


class QualityPage(BaseModel):
    results: list[QualityResult]
    next_page_token: str | None = None


@router.get("/runs", response_model=RunPage, tags=["runs"], summary="Runs, newest first (auditor)")
async def list_runs(
    request: Request,
    principal: Auditor,
    job: Annotated[str | None, Query(max_length=1000)] = None,
    status: Annotated[RunStatus | None, Query(description="the run's state")] = None,
    since: TimeQuery = None,
    max_results: MaxResults = None,
    page_token: PageToken = None,
) -> RunPage:
    ctx = context(request)
    size = page_size(max_results, ctx.settings.service.max_page_size)
    offset = decode_token(page_token, "o") or 0
    found = await ctx.gate.run(
        "runs.page",
        pages.run_page,
        job,
        status,
        request_time(since, "since", end_of_day=False),
        ctx.scope(principal),
        offset,
        size,
    )
    return RunPage(
        runs=[Run(**r) for r in found.items],
        next_page_token=encode_token({"o": offset + len(found.items)}) if found.has_more else None,
    )


@router.get("/runs/{run_id}", response_model=RunDetail, tags=["runs"], summary="One run in full (auditor)")
async def get_run(
    request: Request, principal: Auditor, run_id: Annotated[str, Path(min_length=1, max_length=64)]
) -> RunDetail:
    ctx = context(request)
    scope = ctx.scope(principal)
    if not await ctx.gate.run("runs.visible", pages.run_visible, run_id, scope):
        raise Problem("not-found", f"unknown run '{run_id}'")
    run = await ctx.gate.run("runs.get", lambda store: store.get_run(run_id))
    inputs = [i for i in run["inputs"] if scope.sees(i["dataset"])]
    outputs = [o for o in run["outputs"] if scope.sees(o["dataset"])]
    quality = [q for q in run["quality"] if scope.sees(q["dataset"])]
    children = run["children"] if scope.unrestricted else []
    metrics = {
        "rows_in": sum(i["rows"] or 0 for i in inputs),
        "rows_out": sum(o["rows"] or 0 for o in outputs),
        "bytes_written": sum(o["bytes"] or 0 for o in outputs),
        "files_written": sum(o["files"] or 0 for o in outputs),
        "quality_checks": len(quality),
        "quality_failed": sum(not q["success"] for q in quality),
    }
    base = {k: run[k] for k in Run.model_fields}
    return RunDetail(
        **base,
        inputs=inputs,
        outputs=outputs,
        metrics=metrics,
        quality=with_utc(quality),
        children=[Run(**{k: c[k] for k in Run.model_fields}) for c in children],
    )


@router.get(
    "/quality/results",
    response_model=QualityPage,
    tags=["quality"],
    summary="Quality results, newest first (auditor)",
)
async def quality_results(
    request: Request,
    principal: Auditor,
    date_: Annotated[
        date | None, Query(alias="date", description="batch date of the runs, YYYY-MM-DD")
    ] = None,
    table: Annotated[str | None, Query(max_length=1000)] = None,
    failed: bool = False,
    max_results: MaxResults = None,
    page_token: PageToken = None,
) -> QualityPage:
    ctx = context(request)
    scope = ctx.scope(principal)
    if table:
        await resolve_asset(ctx, principal, table)
    size = page_size(max_results, ctx.settings.service.max_page_size)
    offset = decode_token(page_token, "o") or 0
    day = date_.isoformat() if date_ else None
    results = await ctx.gate.run("quality.report", lambda store: store.quality_report(day, table, failed))
    visible = [r for r in results if scope.sees(r["dataset"])]
    chunk = visible[offset : offset + size]
    return QualityPage(
        results=[QualityResult(**r) for r in chunk],
        next_page_token=encode_token({"o": offset + size}) if offset + size < len(visible) else None,
    )
