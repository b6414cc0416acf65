"""The query page: ``/query`` (engineer role) is an editor whose script runs statements through the
statements API (``/api/v1/queries``: submit, poll, cancel, result chunks) with the session cookie and
its CSRF token; it shows the state, pages through the result and downloads it as CSV."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from neurolake_spark.service.console.base import EngineerPage, render, router_for

router = router_for()


@router.get("/query")
async def query_page(request: Request, user: EngineerPage) -> Response:
    return render(request, "query.html.j2")
