"""The runs pages: ``/runs`` (newest first, by job, state and start) and ``/runs/{id}`` (one run: its
steps on a time line, what it read and wrote with versions and row counts, quarantined rows, metrics,
quality results, the error). The catalog's :func:`~neurolake_spark.catalog.pages.run_page` and
:meth:`~neurolake_spark.catalog.queries.CatalogQueries.get_run`, within the user's tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import Response

from neurolake_spark.catalog import pages
from neurolake_spark.run_status import RunStatus
from neurolake_spark.service.console.base import AuditorPage, render, router_for
from neurolake_spark.service.deps import context
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.times import request_time

router = router_for()
PAGE_SIZE = 50
QUARANTINE_LAYER = "quarantine."


@router.get("/runs")
async def runs_page(
    request: Request,
    user: AuditorPage,
    job: Annotated[str, Query(max_length=1000)] = "",
    state: Annotated[str, Query(max_length=20)] = "",
    since: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    ctx = context(request)
    status = RunStatus(state) if state in {s.value for s in RunStatus} else None
    start = request_time(since or None, "since", end_of_day=False)
    found = await ctx.gate.run(
        "console.runs",
        pages.run_page,
        job.strip() or None,
        status,
        start,
        ctx.scope(user),
        (page - 1) * PAGE_SIZE,
        PAGE_SIZE,
    )
    return render(
        request,
        "runs.html.j2",
        runs=found.items,
        more=found.has_more,
        page=page,
        filters={"job": job, "state": state, "since": since},
        states=[s.value for s in RunStatus],
    )


def _timeline(run: dict[str, Any]) -> dict[str, Any] | None:
    """Bars of the run's steps on one time axis (x in 0..100 percent of the run's span)."""
    steps = [c for c in run["children"] if c["started"]]
    if not steps:
        return None
    start = min([run["started"] or steps[0]["started"]] + [c["started"] for c in steps])
    end = max([run["ended"] or start] + [c["ended"] or c["started"] for c in steps])
    span = max((end - start).total_seconds(), 1e-6)
    bars = []
    for row, step in enumerate(steps):
        left = (step["started"] - start).total_seconds() / span
        right = ((step["ended"] or end) - start).total_seconds() / span
        bars.append(
            {
                "step": step,
                "x": round(100 * left, 2),
                "w": round(max(100 * (right - left), 0.4), 2),
                "y": 8 + 30 * row,
            }
        )
    return {"bars": bars, "height": 16 + 30 * len(bars), "span": span, "start": start}


@router.get("/runs/{run_id}")
async def run_page(
    request: Request, user: AuditorPage, run_id: Annotated[str, Path(min_length=1, max_length=64)]
) -> Response:
    ctx = context(request)
    scope = ctx.scope(user)
    if not await ctx.gate.run("runs.visible", pages.run_visible, run_id, scope):
        raise Problem("not-found", f"unknown run '{run_id}'")

    def load(store) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        run = store.get_run(run_id)
        steps = [store.get_run(child["run"]) for child in run["children"]] if scope.unrestricted else []
        return run, steps

    run, steps = await ctx.gate.run("runs.get", load)
    inputs = [i for i in run["inputs"] if scope.sees(i["dataset"])]
    outputs = [o for o in run["outputs"] if scope.sees(o["dataset"])]
    quality = [q for q in run["quality"] if scope.sees(q["dataset"])]
    run["children"] = run["children"] if scope.unrestricted else []
    # a nightly run reads and writes through its steps: its metrics are theirs added up
    read = inputs + [i for step in steps for i in step["inputs"]]
    written = outputs + [o for step in steps for o in step["outputs"]]
    checks = quality + [q for step in steps for q in step["quality"]]
    metrics = {
        "rows read": sum(i["rows"] or 0 for i in read),
        "rows written": sum(o["rows"] or 0 for o in written if not o["dataset"].startswith(QUARANTINE_LAYER)),
        "rows quarantined": sum(o["rows"] or 0 for o in written if o["dataset"].startswith(QUARANTINE_LAYER)),
        "bytes written": sum(o["bytes"] or 0 for o in written),
        "files written": sum(o["files"] or 0 for o in written),
        "quality checks": len(checks),
        "quality checks failed": sum(not q["success"] for q in checks),
    }
    step_rows = {
        step["run"]: {
            "written": sum(
                o["rows"] or 0 for o in step["outputs"] if not o["dataset"].startswith(QUARANTINE_LAYER)
            ),
            "quarantined": sum(
                o["rows"] or 0 for o in step["outputs"] if o["dataset"].startswith(QUARANTINE_LAYER)
            ),
        }
        for step in steps
    }
    return render(
        request,
        "run.html.j2",
        run=run,
        inputs=inputs,
        outputs=outputs,
        quality=quality,
        metrics=metrics,
        step_rows=step_rows,
        timeline=_timeline(run),
        quarantine=QUARANTINE_LAYER,
    )
