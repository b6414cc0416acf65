"""The audit page: ``/audit`` lists the audit log newest first, filtered by action, actor and time
(auditor role and above, as ``GET /api/v1/audit``); a tenant that does not see everything sees its own
records only."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response

from neurolake_spark.service.audit import AuditLog
from neurolake_spark.service.console.base import AuditorPage, render, router_for
from neurolake_spark.service.deps import context
from neurolake_spark.service.times import request_time

router = router_for()
PAGE_SIZE = 50


@router.get("/audit")
async def audit_page(
    request: Request,
    user: AuditorPage,
    action: Annotated[str, Query(max_length=100)] = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(max_length=64)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    ctx = context(request)
    scope = ctx.scope(user)
    start = request_time(since or None, "since", end_of_day=False)
    records = await ctx.gate.run(
        "console.audit",
        lambda store: AuditLog(store).list(
            tenant=None if scope.unrestricted else user.tenant,
            action=action.strip() or None,
            actor=actor.strip() or None,
            since=start,
            before_id=before,
            max_results=PAGE_SIZE + 1,
        ),
    )
    more = len(records) > PAGE_SIZE
    records = records[:PAGE_SIZE]
    filters = {"action": action, "actor": actor, "since": since}
    return render(
        request,
        "audit.html.j2",
        records=records,
        filters=filters,
        next_before=records[-1].id if more else None,
        filtered=any(filters.values()),
    )
