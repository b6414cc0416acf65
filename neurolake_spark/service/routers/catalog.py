"""``/api/v1/catalog``: assets, search, tags and statistics (lineage graphs are in :mod:`.lineage`).

Each route calls the catalog library (:class:`~neurolake_spark.catalog.store.CatalogStore` and
:mod:`neurolake_spark.catalog.pages`) within the caller's tenant; nothing here decides what
the catalog holds.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from neurolake_spark.catalog import pages
from neurolake_spark.service.column_tags import column_tags, pii_columns
from neurolake_spark.service.deps import Engineer, Viewer, audit_note, context
from neurolake_spark.service.pagination import MaxResults, PageToken, decode_token, encode_token, page_size
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.resolve import resolve_asset
from neurolake_spark.service.times import TimeQuery, UtcTime, request_time, with_utc

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"])
AssetName = Annotated[
    str, Path(min_length=1, max_length=1000, description="logical name, e.g. silver.orders")
]
Namespace = Annotated[str | None, Query(max_length=1000, description="only needed when a name is in several")]
TagName = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
SearchField = Literal["any", "name", "column", "tag", "owner", "description"]


class Asset(BaseModel):
    name: str
    namespace: str
    layer: str
    format: str | None
    owner: str | None
    description: str | None
    updated_at: UtcTime | None
    tags: list[str]


class AssetPage(BaseModel):
    assets: list[Asset]
    next_page_token: str | None = None


class SearchRequest(BaseModel):
    text: str = Field(min_length=1, max_length=500)
    by: SearchField = "any"
    layer: str | None = Field(default=None, max_length=100)
    tag: str | None = Field(default=None, max_length=200)
    max_results: int | None = Field(default=None, ge=1, le=1000)
    page_token: str | None = Field(default=None, max_length=200)


class AssetColumn(BaseModel):
    name: str
    type: str | None
    description: str | None
    tags: list[str] = Field(
        description="pii:<class> and policy:<masking policy> for the PII columns conf/pii.yaml declares"
    )


class AssetDetail(Asset):
    versions_count: int
    last_updated: UtcTime | None
    quality_checks: int
    quality_passed: int
    rows: int | None = Field(description="rows of the latest version")
    size_bytes: int | None
    files: int | None
    columns: list[AssetColumn]
    schema_versions: list[dict[str, Any]]
    versions: list[dict[str, Any]]
    quality: list[dict[str, Any]]
    column_lineage: dict[str, list[dict[str, Any]]]
    writers: list[str]
    readers: list[str]


class Tags(BaseModel):
    name: str
    tags: list[str]


class TagCount(BaseModel):
    tag: str
    assets: int


class TagList(BaseModel):
    tags: list[TagCount]


class Stats(BaseModel):
    assets_per_layer: dict[str, int]
    runs_per_day: dict[str, int] | None = None
    events_per_day: dict[str, int] | None = None
    quarantined_rows_per_night: dict[str, int] | None = None


def _assets(found: pages.Page, offset: int) -> AssetPage:
    return AssetPage(
        assets=[Asset(**{k: v for k, v in asdict(a).items() if k != "id"}) for a in found.items],
        next_page_token=encode_token({"o": offset + len(found.items)}) if found.has_more else None,
    )


async def _page(request: Request, principal, query: pages.AssetQuery, max_results, page_token) -> AssetPage:
    ctx = context(request)
    size = page_size(max_results, ctx.settings.service.max_page_size)
    offset = decode_token(page_token, "o") or 0
    found = await ctx.gate.run("assets.page", pages.asset_page, query, ctx.scope(principal), offset, size)
    return _assets(found, offset)


@router.get("/assets", response_model=AssetPage, summary="Assets, by name, filtered (viewer)")
async def list_assets(
    request: Request,
    principal: Viewer,
    layer: Annotated[str | None, Query(max_length=100, description="bronze, silver, gold, raw...")] = None,
    tag: Annotated[str | None, Query(max_length=200, description="exact tag")] = None,
    owner: Annotated[str | None, Query(max_length=200, description="owner contains")] = None,
    text: Annotated[
        str | None, Query(max_length=500, description="name, column, tag, owner or description contains")
    ] = None,
    namespace: Namespace = None,
    max_results: MaxResults = None,
    page_token: PageToken = None,
) -> AssetPage:
    query = pages.AssetQuery(layer=layer, tag=tag, owner=owner, text=text, namespace=namespace)
    return await _page(request, principal, query, max_results, page_token)


@router.post(
    "/search",
    response_model=AssetPage,
    summary="Search assets by name, column, tag, owner or description (viewer)",
)
async def search(request: Request, principal: Viewer, body: SearchRequest) -> AssetPage:
    query = pages.AssetQuery(layer=body.layer, tag=body.tag, text=body.text, by=body.by)
    return await _page(request, principal, query, body.max_results, body.page_token)


@router.put("/assets/{name:path}/tags/{tag}", response_model=Tags, summary="Add a tag (engineer)")
async def add_tag(
    request: Request, principal: Engineer, name: AssetName, tag: TagName, namespace: Namespace = None
) -> Tags:
    ctx = context(request)
    audit_note(request, "tag.add", name, tag=tag, namespace=namespace)
    resolved = await resolve_asset(ctx, principal, name, namespace)

    def tag_it(store):
        with ctx.gate.write_lock:
            return store.tag(name, [tag], resolved)

    return Tags(name=name, tags=await ctx.gate.run("assets.tag", tag_it))


@router.delete("/assets/{name:path}/tags/{tag}", response_model=Tags, summary="Remove a tag (engineer)")
async def remove_tag(
    request: Request, principal: Engineer, name: AssetName, tag: TagName, namespace: Namespace = None
) -> Tags:
    ctx = context(request)
    audit_note(request, "tag.remove", name, tag=tag, namespace=namespace)
    resolved = await resolve_asset(ctx, principal, name, namespace)
    detail = await ctx.gate.run("assets.get", lambda store: store.get_dataset(name, resolved, limit=1))
    if tag not in detail.summary.tags:
        raise Problem("not-found", f"{name} has no tag {tag!r}", tags=detail.summary.tags)

    def untag(store):
        with ctx.gate.write_lock:
            return store.untag(name, [tag], resolved)

    return Tags(name=name, tags=await ctx.gate.run("assets.untag", untag))


@router.get("/assets/{name:path}", response_model=AssetDetail, summary="One asset in full (viewer)")
async def get_asset(
    request: Request,
    principal: Viewer,
    name: AssetName,
    namespace: Namespace = None,
    as_of: TimeQuery = None,
) -> AssetDetail:
    ctx = context(request)
    resolved = await resolve_asset(ctx, principal, name, namespace)
    when = request_time(as_of, "as_of")
    detail = await ctx.gate.run("assets.get", lambda store: store.get_dataset(name, resolved, as_of=when))
    scope = ctx.scope(principal)
    summary = detail.summary
    latest = detail.versions[0] if detail.versions else {}
    for version in detail.versions:
        version["inputs"] = [i for i in version.get("inputs", []) if scope.sees(i["dataset"])]
    column_lineage = {
        column: [source for source in sources if scope.sees(source["dataset"])]
        for column, sources in detail.column_lineage.items()
    }
    pii = pii_columns(ctx.settings, summary.name, [c["name"] for c in detail.columns])
    return AssetDetail(
        name=summary.name,
        namespace=summary.namespace,
        layer=pages.layer_of(summary.name),
        format=summary.format,
        owner=summary.owner,
        description=summary.description,
        updated_at=summary.last_updated,
        tags=summary.tags,
        versions_count=summary.versions,
        last_updated=summary.last_updated,
        quality_checks=summary.quality_checks,
        quality_passed=summary.quality_passed,
        rows=latest.get("rows"),
        size_bytes=latest.get("bytes"),
        files=latest.get("files"),
        columns=[AssetColumn(**c, tags=column_tags(pii.get(c["name"]))) for c in detail.columns],
        schema_versions=with_utc(detail.schema_versions),
        versions=with_utc(detail.versions),
        quality=with_utc(detail.quality),
        column_lineage=column_lineage,
        writers=detail.writers,
        readers=detail.readers,
    )


@router.get(
    "/tags", response_model=TagList, summary="Every tag and how many visible assets carry it (viewer)"
)
async def list_tags(request: Request, principal: Viewer) -> TagList:
    ctx = context(request)
    counts = await ctx.gate.run("tags.list", pages.tag_counts, ctx.scope(principal))
    return TagList(tags=[TagCount(tag=tag, assets=count) for tag, count in counts])


@router.get(
    "/stats",
    response_model=Stats,
    summary="Assets per layer; runs, events and quarantined rows per day (viewer)",
)
async def stats(request: Request, principal: Viewer, days: Annotated[int, Query(ge=1, le=366)] = 30) -> Stats:
    ctx = context(request)
    scope = ctx.scope(principal)
    layers = await ctx.gate.run("stats.layers", pages.assets_per_layer, scope)
    if not scope.unrestricted:  # activity counts span every tenant's tables
        return Stats(assets_per_layer=layers)
    activity = await ctx.gate.run("stats.activity", pages.activity_per_day, days)
    return Stats(
        assets_per_layer=layers,
        runs_per_day=activity["runs"],
        events_per_day=activity["events"],
        quarantined_rows_per_night=activity["quarantined_rows"],
    )
