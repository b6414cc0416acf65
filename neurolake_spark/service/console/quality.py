"""The quality page: ``/quality`` shows, per night and table, the rules that ran, passed or failed,
the rows they held back and why, with a link to a masked sample of the quarantined rows (the
preview of the quarantine table's version that night's run wrote). Results come from
:meth:`~neurolake_spark.catalog.queries.CatalogQueries.quality_report`, within the user's tenant."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response

from neurolake_spark.service.console.base import AuditorPage, render, router_for
from neurolake_spark.service.console.runs import QUARANTINE_LAYER
from neurolake_spark.service.deps import context
from neurolake_spark.service.resolve import resolve_asset

router = router_for()
NIGHTS = 14


def _groups(store, results: list[dict[str, Any]], scope) -> list[dict[str, Any]]:
    """Results by night and table, newest night first, each with the quarantine versions its runs wrote."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for result in results:
        key = (result["run_date"] or "", result["dataset"])
        group = groups.setdefault(key, {"night": key[0], "table": key[1], "results": [], "runs": set()})
        group["results"].append(result)
        group["runs"].add(result["run"])
    nights = sorted({k[0] for k in groups}, reverse=True)[:NIGHTS]
    samples: dict[str, list[dict[str, Any]]] = {}
    out = []
    for key in sorted(groups, key=lambda k: (k[0], k[1]), reverse=True):
        group = groups[key]
        if group["night"] not in nights:
            continue
        links = []
        for run in sorted(group["runs"]):
            if run not in samples:
                samples[run] = [
                    o
                    for o in store.get_run(run)["outputs"]
                    if o["dataset"].startswith(QUARANTINE_LAYER) and scope.sees(o["dataset"])
                ]
            links += samples[run]
        group["samples"] = links
        group["failed"] = sum(not r["success"] for r in group["results"])
        group["quarantined"] = sum(o["rows"] or 0 for o in links)
        out.append(group)
    return out


@router.get("/quality")
async def quality_page(
    request: Request,
    user: AuditorPage,
    night: Annotated[date | None, Query(description="batch date, YYYY-MM-DD")] = None,
    table: Annotated[str, Query(max_length=1000)] = "",
    failed: bool = False,
) -> Response:
    ctx = context(request)
    scope = ctx.scope(user)
    if table.strip():
        await resolve_asset(ctx, user, table.strip())

    def load(store):
        results = store.quality_report(night.isoformat() if night else None, table.strip() or None, failed)
        return _groups(store, [r for r in results if scope.sees(r["dataset"])], scope)

    groups = await ctx.gate.run("console.quality", load)
    return render(
        request,
        "quality.html.j2",
        groups=groups,
        filters={"night": night.isoformat() if night else "", "table": table, "failed": failed},
    )
