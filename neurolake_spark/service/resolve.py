"""Finding a dataset for a caller: visible in their tenant, or a 404 with close names they may see."""

from __future__ import annotations

import difflib

from neurolake_spark.catalog import pages
from neurolake_spark.service.auth import Principal
from neurolake_spark.service.deps import ServiceContext
from neurolake_spark.service.problems import Problem

MAX_NAME = 1000


async def resolve_asset(
    ctx: ServiceContext, principal: Principal, name: str, namespace: str | None = None
) -> str:
    """The namespace of the dataset ``name`` the caller may see; 404 (did you mean ...) otherwise.

    A dataset of another tenant answers exactly as one that does not exist.
    """
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise Problem("invalid-parameter", "a table name has 1 to 1000 printable characters")
    scope = ctx.scope(principal)
    found = await ctx.gate.run("assets.find", pages.find_visible, name, namespace, scope)
    if not found:
        names = await ctx.gate.run("assets.names", pages.visible_names, scope)
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        where = f" in namespace {namespace}" if namespace else ""
        raise Problem("not-found", f"unknown table '{name}'{where}{hint}", suggestions=close)
    if len(found) > 1:
        raise Problem(
            "conflict",
            f"'{name}' exists in {len(found)} namespaces: choose one with ?namespace=",
            namespaces=found,
        )
    return found[0]
