"""``/api/v1/queries``: read-only SQL statements over the lakehouse (engineer), after Databricks'
Statement Execution API.

``POST /api/v1/queries`` checks the statement with Spark's parser (422 ``statement-refused``
names why), queues it in the caller's tenant (429 when the queue is full) and waits up to
``wait_timeout`` for it: the answer then holds the state, the manifest and the first chunk of
rows. ``GET /{id}`` polls, ``GET /{id}/result/chunks/{n}`` reads a chunk (JSON, or Arrow IPC
with ``Accept: application/vnd.apache.arrow.stream``), ``POST`` or ``DELETE /{id}/cancel``
stops it. The logic lives in :mod:`~neurolake_spark.service.statements`.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from neurolake_spark.catalog import schema as s
from neurolake_spark.errors import BadInputError, NeuroLakeError
from neurolake_spark.service.auth import Principal
from neurolake_spark.service.deps import Engineer, ServiceContext, audit_note, context
from neurolake_spark.service.pagination import MaxResults, PageToken, decode_token, encode_token, page_size
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.readonly import StatementRefused
from neurolake_spark.service.statements import (
    ARROW_STREAM,
    FINAL,
    Busy,
    Caller,
    Statement,
    bind_parameters,
    spark_message,
)
from neurolake_spark.service.table_access import PII_GRANT
from neurolake_spark.service.times import UtcTime

router = APIRouter(prefix="/api/v1/queries", tags=["queries"])
MAX_STATEMENT = 100_000
WAIT = re.compile(r"^([0-9]{1,2})s$")
StatementId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the statement_id")]


class Parameter(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
    value: str | int | float | bool | None = None
    type: str = Field(default="STRING", max_length=40)


class StatementRequest(BaseModel):
    statement: str = Field(min_length=1, max_length=MAX_STATEMENT)
    parameters: list[Parameter] = Field(default_factory=list, max_length=100)
    wait_timeout: str = Field(default="10s", description='"0s" (answer at once) to "50s"')
    on_wait_timeout: Literal["CONTINUE", "CANCEL"] = "CONTINUE"
    row_limit: int | None = Field(default=None, ge=1)
    byte_limit: int | None = Field(default=None, ge=1)

    @field_validator("wait_timeout")
    @classmethod
    def _wait(cls, value: str) -> str:
        match = WAIT.match(value)
        if not match or int(match.group(1)) > 50:
            raise ValueError('give "0s" to "50s"')
        return value


class ExplainRequest(BaseModel):
    statement: str = Field(min_length=1, max_length=MAX_STATEMENT)
    parameters: list[Parameter] = Field(default_factory=list, max_length=100)


class HistoryEntry(BaseModel):
    statement_id: str
    statement: str
    state: str
    error: str | None
    submitted_at: UtcTime
    started_at: UtcTime | None
    ended_at: UtcTime | None
    duration_ms: int | None
    rows: int | None
    bytes: int | None
    tables: str | None


class HistoryPage(BaseModel):
    statements: list[HistoryEntry]
    next_page_token: str | None = None


def caller_of(ctx: ServiceContext, principal: Principal) -> Caller:
    return Caller(principal.subject, principal.key_id, ctx.scope(principal), principal.granted(PII_GRANT))


async def _checked(ctx: ServiceContext, principal: Principal, text: str, parameters: list[Parameter]):
    """The checked statement and its bound parameters; every table it names must be visible
    (else 404, the same for an unknown table and another tenant's)."""
    try:
        bound = bind_parameters(p.model_dump() for p in parameters)
        checked = await anyio.to_thread.run_sync(ctx.statements.check, text)
    except StatementRefused as exc:
        raise Problem("statement-refused", str(exc)) from None
    except BadInputError as exc:
        raise Problem("invalid-parameter", str(exc)) from None
    unbound = sorted({m.name for m in checked.markers} - bound.keys())
    if unbound:
        raise Problem("invalid-parameter", f"no value for the parameter(s) {', '.join(unbound)}")
    for name in checked.tables:
        ctx.tables.ref(ctx.scope(principal), name)
    return checked, bound


async def _answer(ctx: ServiceContext, statement: Statement) -> JSONResponse:
    """The statement with its first chunk of rows, as JSON (rows are JSON-ready already: no
    second encoding pass over them); the chunk is read off the event loop."""
    answer = statement.describe()
    if statement.state == "SUCCEEDED":
        answer["result"] = await anyio.to_thread.run_sync(ctx.statements.chunk_json, statement, 0)
    return JSONResponse(answer)


def _own(ctx: ServiceContext, principal: Principal, statement_id: str) -> Statement:
    statement = ctx.statements.get(statement_id, caller_of(ctx, principal))
    if statement is None:
        raise Problem(
            "not-found", f"no statement {statement_id} (statements are kept for a while, then dropped)"
        )
    return statement


@router.post("", response_model=dict[str, Any], summary="Run a read-only SQL statement (engineer)")
async def submit(request: Request, body: StatementRequest, principal: Engineer) -> JSONResponse:
    ctx = context(request)
    service = ctx.settings.service
    audit_note(request, "statement.submit", statement=body.statement[:500])
    checked, bound = await _checked(ctx, principal, body.statement, body.parameters)
    row_limit = min(body.row_limit or service.statement_row_limit, service.statement_row_limit)
    byte_limit = min(body.byte_limit or service.statement_byte_limit, service.statement_byte_limit)
    try:
        statement = ctx.statements.submit(checked, bound, caller_of(ctx, principal), row_limit, byte_limit)
    except Busy as exc:
        raise Problem("rate-limited", str(exc), headers={"Retry-After": "1"}) from None
    request.state.audit["target"] = statement.id
    wait = int(WAIT.match(body.wait_timeout).group(1))
    if wait:
        await anyio.to_thread.run_sync(statement.done.wait, wait)
    if statement.state not in FINAL and body.on_wait_timeout == "CANCEL":
        ctx.statements.cancel(statement)
        await anyio.to_thread.run_sync(statement.done.wait, 30)
    return await _answer(ctx, statement)


@router.post("/explain", summary="Spark's plan of a statement, the tables and versions it reads (engineer)")
async def explain(request: Request, body: ExplainRequest, principal: Engineer) -> dict[str, Any]:
    ctx = context(request)
    audit_note(request, "statement.explain", statement=body.statement[:500])
    checked, bound = await _checked(ctx, principal, body.statement, body.parameters)
    try:
        return await anyio.to_thread.run_sync(
            ctx.statements.explain, checked, bound, caller_of(ctx, principal)
        )
    except StatementRefused as exc:
        raise Problem("statement-refused", str(exc)) from None
    except NeuroLakeError:
        raise
    except Exception as exc:  # Spark's analysis error: an unknown column, a wrong type...
        raise Problem("invalid-parameter", spark_message(exc)) from None


@router.get(
    "/history", response_model=HistoryPage, summary="The caller's statements, newest first (engineer)"
)
async def history(
    request: Request, principal: Engineer, max_results: MaxResults = None, page_token: PageToken = None
) -> HistoryPage:
    ctx = context(request)
    size = page_size(max_results, ctx.settings.service.max_page_size)
    before = decode_token(page_token, "b")
    h = s.statement_history.c

    def read(store):
        query = select(s.statement_history).where(
            h.subject == principal.subject, h.tenant == principal.tenant
        )
        if before is not None:
            query = query.where(h.id < before)
        with store.read() as conn:
            return conn.execute(query.order_by(h.id.desc()).limit(size + 1)).all()

    rows = await ctx.gate.run("statements.history", read)
    entries = [HistoryEntry(**{k: getattr(r, k) for k in HistoryEntry.model_fields}) for r in rows[:size]]
    token = encode_token({"b": rows[size - 1].id}) if len(rows) > size else None
    return HistoryPage(statements=entries, next_page_token=token)


@router.get(
    "/{statement_id}",
    response_model=dict[str, Any],
    summary="A statement's state, manifest and first chunk (engineer)",
)
async def get_statement(request: Request, statement_id: StatementId, principal: Engineer) -> JSONResponse:
    ctx = context(request)
    return await _answer(ctx, _own(ctx, principal, statement_id))


@router.get(
    "/{statement_id}/result/chunks/{chunk_index}",
    summary="One chunk of a result: JSON rows, or Arrow IPC with Accept: application/vnd.apache.arrow.stream",
    responses={200: {"content": {ARROW_STREAM: {}}}},
)
async def get_chunk(
    request: Request,
    statement_id: StatementId,
    chunk_index: Annotated[int, Path(ge=0, le=10_000_000)],
    principal: Engineer,
):
    ctx = context(request)
    statement = _own(ctx, principal, statement_id)
    if ARROW_STREAM in request.headers.get("accept", ""):
        found = ctx.statements.chunk(statement, chunk_index)
        if found is None:
            raise Problem("not-found", f"statement {statement_id} has no chunk {chunk_index}")
        return FileResponse(found[1], media_type=ARROW_STREAM)
    chunk = await anyio.to_thread.run_sync(ctx.statements.chunk_json, statement, chunk_index)
    if chunk is None:
        raise Problem("not-found", f"statement {statement_id} has no chunk {chunk_index}")
    return JSONResponse(chunk)


async def _cancel(request: Request, statement_id: str, principal: Principal) -> dict[str, Any]:
    ctx = context(request)
    audit_note(request, "statement.cancel", statement_id)
    statement = _own(ctx, principal, statement_id)
    ctx.statements.cancel(statement)
    deadline = time.monotonic() + 10
    while statement.state not in FINAL and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    return statement.describe()


@router.post("/{statement_id}/cancel", summary="Cancel a statement (engineer)")
async def cancel(request: Request, statement_id: StatementId, principal: Engineer) -> dict[str, Any]:
    return await _cancel(request, statement_id, principal)


@router.delete(
    "/{statement_id}/cancel", summary="Cancel a statement, as the origin document names it (engineer)"
)
async def cancel_delete(request: Request, statement_id: StatementId, principal: Engineer) -> dict[str, Any]:
    return await _cancel(request, statement_id, principal)
