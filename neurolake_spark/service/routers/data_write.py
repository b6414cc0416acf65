"""Data writes (engineer): ``POST /api/v1/data/bulk/{insert,upsert,update,delete}`` and
``POST /api/v1/data/upload`` (a raw file landed for a source and date, optionally ingested).

Each bulk route calls :mod:`neurolake_spark.bulk_requests` (one commit in a JobRun under the
table's lock) on the service's Spark session, in a worker thread and under the request id's
Spark tag. Tables are reached by logical name and only those the caller's tenant sees; an
``Idempotency-Key`` header makes a retry return the first answer (:mod:`..idempotency`).
Uploads call :mod:`neurolake_spark.uploads` and, with ``?ingest=true``,
:func:`neurolake_spark.pipeline.run_ingest`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio
import pyarrow as pa
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from neurolake_spark import bulk, bulk_requests
from neurolake_spark.bulk_requests import BulkResult, MissingTableError
from neurolake_spark.errors import BadInputError, NeuroLakeError, TableNameError
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.locks import LockHeldError
from neurolake_spark.service.auth import Principal
from neurolake_spark.service.deps import Engineer, ServiceContext, audit_note, context
from neurolake_spark.service.idempotency import HEADER, IdempotencyStore, Replay, checked_key, fingerprint
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.statements import ARROW_STREAM
from neurolake_spark.tables import validate_table_name

router = APIRouter(prefix="/api/v1/data", tags=["data"])
LOCK_RETRY_SECONDS = "30"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table: str = Field(min_length=1, max_length=200, description="logical name, e.g. silver.orders")
    dry_run: bool = Field(default=False, description="check and count; commit nothing")


class RowsBody(_Body):
    rows: list[dict[str, Any]] = Field(min_length=1, description="one object per row, column: value")
    keys: list[str] | None = Field(default=None, description="upsert: match columns (default: business key)")


class ConditionBody(_Body):
    where: list[Any] | dict[str, Any] = Field(
        description='[{"column": "status", "op": "=", "value": "test"}, ...] (AND), or {"or": [...]}'
    )
    set: dict[str, Any] | None = Field(default=None, description="update: column: new value")
    all_rows: bool = Field(default=False, description="allow a condition that matches every row")


class BulkAnswer(BaseModel):
    operation: Literal["insert", "upsert", "update", "delete"]
    table: str
    run_id: str | None
    committed: bool
    dry_run: bool
    version: int | None
    rows_in: int
    rows_matched: int | None
    rows_total: int | None
    metrics: dict[str, Any]


def _lakehouse(ctx: ServiceContext) -> Lakehouse:
    return Lakehouse(ctx.settings, spark=ctx.engine.session())


def visible_table(ctx: ServiceContext, principal: Principal, name: str) -> None:
    """422 for a malformed name; 404 for a table that is not declared or that the caller's tenant
    does not see (alike, with suggestions only from the tables it sees)."""
    import difflib

    try:
        validate_table_name(name)
    except TableNameError as exc:
        raise Problem("invalid-parameter", " ".join(str(exc).split())) from None
    scope, namespace = ctx.scope(principal), ctx.settings.lineage_namespace
    declared = ctx.settings.pipeline_definition().tables
    if name in declared and scope.sees(name, namespace):
        return
    close = difflib.get_close_matches(name, [n for n in declared if scope.sees(n, namespace)], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise Problem("not-found", f"unknown table '{name}'{hint}", suggestions=close)


def _parsed(model: type[BaseModel], raw: bytes) -> Any:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem("malformed-json", "the request body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "body"
        raise Problem("invalid-parameter", f"{where}: {error['msg']}") from None


def _arrow(raw: bytes) -> pa.Table:
    try:
        return pa.ipc.open_stream(pa.py_buffer(raw)).read_all()
    except pa.ArrowException:
        raise Problem("invalid-parameter", "the body is not an Arrow IPC stream") from None


async def _in_spark(ctx: ServiceContext, request: Request, work: Callable[[Lakehouse], Any]) -> Any:
    """``work(lakehouse)`` in a worker thread, its Spark jobs tagged with the request id;
    library errors become problems."""
    tag = f"request-{request.state.request_id}"

    def run() -> Any:
        with ctx.engine.tagged(tag):
            return work(_lakehouse(ctx))

    try:
        return await anyio.to_thread.run_sync(run)
    except LockHeldError as exc:
        raise Problem(
            "conflict", f"{exc}; retry later", headers={"Retry-After": LOCK_RETRY_SECONDS}
        ) from None
    except MissingTableError as exc:
        raise Problem("not-found", str(exc)) from None
    except BadInputError as exc:
        raise Problem("invalid-parameter", " ".join(str(exc).split())[:1000]) from None


async def _idempotent(
    request: Request,
    ctx: ServiceContext,
    principal: Principal,
    raw: bytes,
    write: Callable[[], Any],
) -> tuple[Any, bool]:
    """``await write()``, or the first answer of an earlier request with the same key;
    returns (answer, replayed)."""
    key = checked_key(request.headers.get(HEADER))
    if key is None:
        return await write(), False
    scope = f"{principal.tenant}:{principal.subject}"
    route = request.url.path
    replay: Replay | None = await ctx.gate.run(
        "idempotency.claim",
        lambda store: IdempotencyStore(store).claim(scope, key, route, fingerprint(route, raw)),
    )
    if replay is not None:
        return replay.body, True
    try:
        answer = await write()
    except BaseException:
        await ctx.gate.run("idempotency.release", lambda store: IdempotencyStore(store).release(scope, key))
        raise
    await ctx.gate.run(
        "idempotency.complete", lambda store: IdempotencyStore(store).complete(scope, key, 200, answer)
    )
    return answer, False


def _answer(result: BulkResult, dry_run: bool) -> dict[str, Any]:
    return BulkAnswer(**result.to_dict(), dry_run=dry_run).model_dump()


def _respond(answer: dict[str, Any], replayed: bool) -> JSONResponse:
    return JSONResponse(answer, headers={"Idempotent-Replayed": "true"} if replayed else {})


def _note(request: Request, operation: str, table: str, answer: dict[str, Any] | None, **more: Any) -> None:
    counts = (
        {k: answer[k] for k in ("rows_in", "rows_matched", "version", "run_id", "committed")}
        if answer
        else {}
    )
    audit_note(request, f"data.bulk_{operation}", target=table, **counts, **more)


async def _rows(request: Request, principal: Principal, operation: str) -> JSONResponse:
    ctx = context(request)
    raw = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == ARROW_STREAM:
        table = request.query_params.get("table", "")
        keys = [k for k in request.query_params.getlist("keys") if k] or None
        dry_run = request.query_params.get("dry_run", "false").lower() == "true"
        if not table:
            raise Problem("invalid-parameter", "an Arrow body names its table in ?table=")
        rows_of = lambda schema: bulk_requests.arrow_rows(_arrow(raw), schema)  # noqa: E731
    elif media in ("application/json", ""):
        body = _parsed(RowsBody, raw)
        table, keys, dry_run = body.table, body.keys, body.dry_run
        rows_of = lambda schema: bulk_requests.rows_table(body.rows, schema)  # noqa: E731
    else:
        raise Problem("unsupported-media-type", f"send rows as application/json or {ARROW_STREAM}")
    _note(request, operation, table, None, dry_run=dry_run)
    visible_table(ctx, principal, table)

    def work(lh: Lakehouse) -> dict[str, Any]:
        rows = rows_of(bulk_requests.table_schema(lh, table))
        if dry_run:
            current = bulk.current_version(lh.spark, lh.resolve(table)).version
            return _answer(BulkResult(operation, table, None, False, current, rows_in=rows.num_rows), True)
        return _answer(bulk_requests.write_rows(lh, operation, table, rows, keys=keys), False)

    async def write() -> dict[str, Any]:
        return await _in_spark(ctx, request, work)

    answer, replayed = await _idempotent(request, ctx, principal, raw, write)
    _note(request, operation, table, answer, dry_run=dry_run, replayed=replayed)
    return _respond(answer, replayed)


async def _where(request: Request, principal: Principal, operation: str) -> JSONResponse:
    from neurolake_spark.conditions import assignments_from_json, condition_from_json

    ctx = context(request)
    raw = await request.body()
    body: ConditionBody = _parsed(ConditionBody, raw)
    _note(request, operation, body.table, None, dry_run=body.dry_run, all_rows=body.all_rows)
    visible_table(ctx, principal, body.table)
    if operation == "delete" and body.set is not None:
        raise Problem("invalid-parameter", "set: a delete takes no 'set'")
    try:
        where = condition_from_json(body.where, "where")
        sets = assignments_from_json(body.set, "set") if operation == "update" else None
    except BadInputError as exc:
        raise Problem("invalid-parameter", " ".join(str(exc).split())[:1000]) from None

    def work(lh: Lakehouse) -> dict[str, Any]:
        result = bulk_requests.change_rows(
            lh, operation, body.table, where, sets, all_rows=body.all_rows, dry_run=body.dry_run
        )
        return _answer(result, body.dry_run)

    async def write() -> dict[str, Any]:
        return await _in_spark(ctx, request, work)

    answer, replayed = await _idempotent(request, ctx, principal, raw, write)
    _note(
        request,
        operation,
        body.table,
        answer,
        dry_run=body.dry_run,
        replayed=replayed,
        all_rows=body.all_rows,
    )
    return _respond(answer, replayed)


ROWS_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": RowsBody.model_json_schema()},
            ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "parameters": [
        {"name": HEADER, "in": "header", "required": False, "schema": {"type": "string", "maxLength": 200}},
        {"name": "table", "in": "query", "required": False, "schema": {"type": "string"}},
        {
            "name": "keys",
            "in": "query",
            "required": False,
            "schema": {"type": "array", "items": {"type": "string"}},
        },
        {"name": "dry_run", "in": "query", "required": False, "schema": {"type": "boolean"}},
    ],
}
WHERE_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ConditionBody.model_json_schema()}},
    },
    "parameters": [
        {"name": HEADER, "in": "header", "required": False, "schema": {"type": "string", "maxLength": 200}},
    ],
}


@router.post("/bulk/insert", response_model=BulkAnswer, openapi_extra=ROWS_DOC)
async def bulk_insert(request: Request, principal: Engineer) -> JSONResponse:
    """Append rows (JSON, or an Arrow IPC stream with ``?table=``) to a table in one commit."""
    return await _rows(request, principal, "insert")


@router.post("/bulk/upsert", response_model=BulkAnswer, openapi_extra=ROWS_DOC)
async def bulk_upsert(request: Request, principal: Engineer) -> JSONResponse:
    """MERGE rows into a table by ``keys`` (default: its source's business key) in one commit."""
    return await _rows(request, principal, "upsert")


@router.post("/bulk/update", response_model=BulkAnswer, openapi_extra=WHERE_DOC)
async def bulk_update(request: Request, principal: Engineer) -> JSONResponse:
    """Set columns on the rows a structured condition matches, in one commit."""
    return await _where(request, principal, "update")


@router.post("/bulk/delete", response_model=BulkAnswer, openapi_extra=WHERE_DOC)
async def bulk_delete(request: Request, principal: Engineer) -> JSONResponse:
    """Delete the rows a structured condition matches, in one commit."""
    return await _where(request, principal, "delete")


class UploadAnswer(BaseModel):
    source: str
    date: str
    file: str
    path: str = Field(description="relative to the raw landing zone")
    bytes: int
    sha256: str
    ingest: dict[str, Any] | None = Field(default=None, description="with ?ingest=true: the ingest run")


UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def _ingested(lh: Lakehouse, source: str, day: str) -> dict[str, Any]:
    from neurolake_spark.pipeline import run_ingest

    run = run_ingest(lh, day, [source])
    return {
        "run_id": run.run_id,
        "status": str(run.status),
        "rows_read": run.rows_in,
        "rows_quarantined": run.rows_quarantined,
        "outputs": {o.name: {"version": o.version, "rows": o.rows} for o in run.outputs},
    }


@router.post("/upload", response_model=UploadAnswer, openapi_extra=UPLOAD_DOC)
async def upload(
    request: Request,
    principal: Engineer,
    source: Annotated[str, Query(min_length=1, max_length=100, description="a source of conf/pipeline.yaml")],
    date: Annotated[str, Query(description="batch date, YYYY-MM-DD")],
    ingest: Annotated[bool, Query(description="run the ingest step for this source and date")] = False,
) -> JSONResponse:
    """Land one CSV, JSON or NCF file (multipart field ``file``) in ``<raw>/<source>/date=D/``."""
    from neurolake_spark.uploads import UploadExistsError, UploadTooLargeError, land_file

    ctx = context(request)
    audit_note(request, "data.upload", target=f"{source}/date={date}", ingest=ingest)
    sources = ctx.settings.pipeline_definition().sources
    scope = ctx.scope(principal)
    if source not in sources or not scope.sees(sources[source].bronze, ctx.settings.lineage_namespace):
        visible = [n for n, s in sources.items() if scope.sees(s.bronze, ctx.settings.lineage_namespace)]
        raise Problem("not-found", f"unknown source '{source}' (sources: {', '.join(sorted(visible))})")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise Problem("unsupported-media-type", "send the file as multipart/form-data, field 'file'")
    limit = ctx.settings.service.upload_max_bytes
    try:
        async with request.form(max_files=1, max_fields=1) as form:
            sent = form.get("file")
            if sent is None or isinstance(sent, str):
                raise Problem("invalid-parameter", "the multipart body needs one file in the field 'file'")
            landed = await anyio.to_thread.run_sync(
                lambda: land_file(ctx.settings, source, date, sent.filename, sent.file, limit)
            )
    except UploadExistsError as exc:
        raise Problem("conflict", str(exc)) from None
    except UploadTooLargeError as exc:
        raise Problem("payload-too-large", str(exc)) from None
    except NeuroLakeError as exc:
        raise Problem("invalid-parameter", " ".join(str(exc).split())[:1000]) from None
    except StarletteHTTPException as exc:  # the multipart parser's refusals (too many files, bad body)
        raise Problem("invalid-parameter", f"the multipart body is malformed: {exc.detail}") from None
    answer: dict[str, Any] = {
        "source": landed.source,
        "date": landed.batch_date,
        "file": landed.file,
        "path": landed.relative_path,
        "bytes": landed.bytes,
        "sha256": landed.sha256,
        "ingest": None,
    }
    audit_note(request, "data.upload", target=landed.relative_path, bytes=landed.bytes, sha256=landed.sha256)
    if ingest:
        try:
            answer["ingest"] = await _in_spark(
                ctx, request, lambda lh: _ingested(lh, source, landed.batch_date)
            )
        except Problem as problem:
            problem.detail = f"landed {landed.relative_path}, but its ingest failed: {problem.detail}"
            raise
        except NeuroLakeError as exc:
            detail = " ".join(str(exc).split())[:1000]
            raise Problem(
                "invalid-parameter", f"landed {landed.relative_path}, but its ingest failed: {detail}"
            ) from None
        audit_note(
            request,
            "data.upload",
            target=landed.relative_path,
            bytes=landed.bytes,
            sha256=landed.sha256,
            run_id=answer["ingest"]["run_id"],
            rows_read=answer["ingest"]["rows_read"],
            rows_quarantined=answer["ingest"]["rows_quarantined"],
        )
    return JSONResponse(answer)
