"""The catalog pages: ``/catalog`` (search and filters) and ``/tables/{name}`` (one table in full),
with the tag forms engineers use. Everything comes from the catalog library, within the user's tenant."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response

from neurolake_spark.catalog import pages
from neurolake_spark.catalog.records import DatasetDetail
from neurolake_spark.catalog.times import utc_now
from neurolake_spark.quality.pii import class_by_name, load_policies
from neurolake_spark.run_status import RunStatus
from neurolake_spark.service.console.base import EngineerForm, ViewerPage, read_form, render, router_for
from neurolake_spark.service.deps import ServiceContext, audit_note, context
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.resolve import resolve_asset

router = router_for()
PAGE_SIZE = 25
SearchField = Literal["any", "name", "column", "tag", "owner", "description"]
Text = Annotated[str, Query(max_length=500)]


def _last_state(store, writers: list[str]) -> RunStatus | None:
    """The state of the newest run of the jobs that write a table."""
    runs = [run for job in writers for run in store.list_runs(job, limit=1)]
    runs.sort(key=lambda r: r["started"] or utc_now(), reverse=True)
    return runs[0]["state"] if runs else None


def _results(store, found: pages.Page) -> list[dict[str, Any]]:
    """Each asset of a page with its latest version, its rows, its writers' last run state, its freshness."""
    rows = []
    for asset in found.items:
        detail = store.get_dataset(asset.name, asset.namespace, limit=5)
        latest = detail.versions[0] if detail.versions else None
        # maintenance (compaction) writes versions without a row count: show the newest count
        counted = next((v["rows"] for v in detail.versions if v["rows"] is not None), None)
        rows.append(
            {
                "asset": asset,
                "version": latest["version"] if latest else None,
                "rows": counted,
                "written": detail.summary.last_updated,
                "state": _last_state(store, detail.writers),
            }
        )
    return rows


@router.get("/catalog")
async def catalog_page(
    request: Request,
    user: ViewerPage,
    q: Text = "",
    by: SearchField = "any",
    layer: Annotated[str, Query(max_length=100)] = "",
    tag: Annotated[str, Query(max_length=200)] = "",
    owner: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    ctx = context(request)
    scope = ctx.scope(user)
    query = pages.AssetQuery(
        layer=layer or None, tag=tag or None, owner=owner or None, text=q.strip() or None, by=by
    )

    def load(store):
        found = pages.asset_page(store, query, scope, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        return (
            _results(store, found),
            found.has_more,
            pages.assets_per_layer(store, scope),
            pages.tag_counts(store, scope),
        )

    results, more, layers, tags = await ctx.gate.run("console.catalog", load)
    filters = {"q": q, "by": by, "layer": layer, "tag": tag, "owner": owner}
    return render(
        request,
        "catalog.html.j2",
        results=results,
        more=more,
        page=page,
        layers=layers,
        tags=tags,
        filters=filters,
        searched=any(filters[k] for k in ("q", "layer", "tag", "owner")),
        now=utc_now(),
    )


def pii_columns(ctx: ServiceContext, name: str, columns: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """``{column: {"class", "policy"}}`` for the columns that hold PII, by the quality settings' policies
    (``conf/pii.yaml``): a column named or tagged like a PII class and not allowed raw."""
    policies = load_policies(ctx.settings.quality.pii_policies)
    table = policies.for_table(name)
    found = {}
    for column in columns:
        field = column["name"]
        pii_class = table.tags.get(field) or class_by_name(field.rsplit(".", 1)[-1])
        policy = table.columns.get(field) or (policies.defaults.get(pii_class) if pii_class else None)
        if field in table.allow or not (pii_class or policy):
            continue
        found[field] = {"class": pii_class or "PII", "policy": policy.policy if policy else "none"}
    return found


def _chart(versions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Points of the row-count chart (oldest left), in a 600 x 140 box."""
    points = [v for v in reversed(versions) if v["rows"] is not None and v["completed"] is not None]
    if len(points) < 2:
        return None
    top = max(v["rows"] for v in points) or 1
    step = 560 / (len(points) - 1)
    placed = [
        {"x": round(20 + i * step, 1), "y": round(120 - 100 * v["rows"] / top, 1), "v": v}
        for i, v in enumerate(points)
    ]
    return {"points": placed, "line": " ".join(f"{p['x']},{p['y']}" for p in placed), "top": top}


@router.get("/tables/{name:path}")
async def table_page(
    request: Request,
    name: str,
    user: ViewerPage,
    namespace: Annotated[str | None, Query(max_length=1000)] = None,
    version: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    ctx = context(request)
    resolved = await resolve_asset(ctx, user, name, namespace)
    scope = ctx.scope(user)
    detail: DatasetDetail = await ctx.gate.run(
        "console.table", lambda store: store.get_dataset(name, resolved, limit=100)
    )
    for entry in detail.versions:
        entry["inputs"] = [i for i in entry["inputs"] if scope.sees(i["dataset"])]
    latest_run = detail.quality[0]["run"] if detail.quality else None
    return render(
        request,
        "table.html.j2",
        detail=detail,
        summary=detail.summary,
        namespace=resolved,
        pii=pii_columns(ctx, name, list(detail.columns)),
        chart=_chart(detail.versions),
        quality=[q for q in detail.quality if q["run"] == latest_run],
        preview_version=version or "",
        can_tag=user.allows("engineer"),
        can_lineage=user.allows("auditor"),
    )


def _tag_text(form: dict[str, str]) -> str:
    tag = form.get("tag", "").strip()
    if not tag or len(tag) > 200 or any(ord(c) < 32 for c in tag):
        raise Problem("invalid-parameter", "a tag has 1 to 200 printable characters")
    return tag


@router.post("/tables/{name:path}/tags")
async def add_tag(request: Request, name: str, user: EngineerForm) -> Response:
    ctx = context(request)
    form = await read_form(request)
    tag = _tag_text(form)
    audit_note(request, "tag.add", name, tag=tag, via="console")
    resolved = await resolve_asset(ctx, user, name, form.get("namespace") or None)

    def tag_it(store):
        with ctx.gate.write_lock:
            return store.tag(name, [tag], resolved)

    await ctx.gate.run("assets.tag", tag_it)
    return RedirectResponse(f"/tables/{name}#tags", status_code=303)


@router.post("/tables/{name:path}/untag")
async def remove_tag(request: Request, name: str, user: EngineerForm) -> Response:
    ctx = context(request)
    form = await read_form(request)
    tag = _tag_text(form)
    audit_note(request, "tag.remove", name, tag=tag, via="console")
    resolved = await resolve_asset(ctx, user, name, form.get("namespace") or None)

    def untag(store):
        with ctx.gate.write_lock:
            if tag not in store.get_dataset(name, resolved, limit=1).summary.tags:
                raise Problem("not-found", f"{name} has no tag {tag!r}")
            return store.untag(name, [tag], resolved)

    await ctx.gate.run("assets.untag", untag)
    return RedirectResponse(f"/tables/{name}#tags", status_code=303)
