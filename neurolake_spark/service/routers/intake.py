"""``POST /api/v1/lineage``: OpenLineage RunEvents from any producer, as Marquez takes them.

The body is one event; it is validated against the OpenLineage spec (:mod:`..intake`) and
stored by :meth:`CatalogStore.ingest`. 201 when stored, 200 when the same event (run id,
event type, event time, job) was already stored. Engineer role.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from neurolake_spark.catalog.errors import InvalidEventError
from neurolake_spark.service.deps import Engineer, audit_note, context
from neurolake_spark.service.intake import event_errors
from neurolake_spark.service.problems import Problem

router = APIRouter(prefix="/api/v1", tags=["lineage"])


class IngestResult(BaseModel):
    stored: bool
    run_id: str
    event_type: str


@router.post(
    "/lineage",
    response_model=IngestResult,
    status_code=201,
    summary="Record one OpenLineage RunEvent (engineer)",
    responses={200: {"model": IngestResult, "description": "the same event was already stored"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "An OpenLineage RunEvent (spec 2-0-2)",
                        "required": ["eventTime", "producer", "schemaURL", "run", "job"],
                    }
                }
            },
        }
    },
)
async def record_lineage(request: Request, principal: Engineer) -> Any:
    ctx = context(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise Problem("unsupported-media-type", "send the event as application/json")
    body = await request.body()
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Problem("malformed-json", "the request body is not valid JSON") from None
    errors = event_errors(event)
    if errors:
        first = errors[0]
        where = f" at {first['location']}" if first["location"] else ""
        raise Problem(
            "invalid-event", f"not a valid OpenLineage RunEvent{where}: {first['message']}", errors=errors
        )
    scope = ctx.scope(principal)
    outside = [
        f"{d['namespace']}:{d['name']}"
        for d in (event.get("inputs") or []) + (event.get("outputs") or [])
        if not scope.sees(d["name"], d["namespace"])
    ]
    if outside:
        raise Problem("forbidden", f"the event names {len(outside)} dataset(s) outside your tenant")
    run_id, event_type = event["run"]["runId"], event.get("eventType") or "OTHER"
    job = event["job"]
    audit_note(
        request,
        "lineage.ingest",
        f"{job['namespace']}:{job['name']}",
        run_id=run_id,
        event_type=event_type,
        event_time=event["eventTime"],
    )

    def ingest(store) -> bool:
        with ctx.gate.write_lock:
            return store.ingest(event)

    try:
        stored = await ctx.gate.run("lineage.ingest", ingest)
    except InvalidEventError as exc:
        raise Problem("invalid-event", " ".join(str(exc).split())) from None
    result = IngestResult(stored=stored, run_id=run_id, event_type=event_type)
    return JSONResponse(result.model_dump(), status_code=201 if stored else 200)
