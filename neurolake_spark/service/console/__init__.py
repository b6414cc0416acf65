"""The web console of ``neurolake serve``: HTML pages over the same library calls as the API.

One router module per page area (:mod:`.signin`, :mod:`.catalog`, :mod:`.lineage`, :mod:`.runs`,
:mod:`.quality`, :mod:`.query`, :mod:`.audit`), shared parts in :mod:`.base`. Pages are rendered on
the server from the Jinja2 templates in ``console/templates`` (the lineage drawing is the catalog's
own template); scripts and styles are files in ``console/static`` served under ``/static/console``,
so the page CSP allows no inline script or style. Pages that only show data work without JavaScript.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from neurolake_spark.service.console import audit, catalog, lineage, quality, query, runs, signin
from neurolake_spark.service.console.base import STATIC_PREFIX

ROUTERS = [
    signin.router,
    catalog.router,
    lineage.router,
    runs.router,
    quality.router,
    query.router,
    audit.router,
]


def add_console(app: FastAPI) -> None:
    """Register the console's pages and static files on ``app`` (before the ``/static`` mount)."""
    for router in ROUTERS:
        app.include_router(router)
    drawing_css = (resources.files("neurolake_spark.catalog") / "templates" / "lineage-svg.css").read_text()

    @app.get(f"{STATIC_PREFIX}/lineage-svg.css", include_in_schema=False)
    async def lineage_css() -> Response:
        return Response(drawing_css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    static = resources.files("neurolake_spark.service.console") / "static"
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(static)), name="console-static")
