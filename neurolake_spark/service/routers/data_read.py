"""``/api/v1/data``, the read side: schemas, tables, a table's schema and history, and previews of
Delta and NCF tables (viewer), after Delta Sharing's table reads.

Every route reads through :class:`~neurolake_spark.service.table_access.TableAccess`: logical
names only, the caller's tenant only (another tenant's table answers 404 like an unknown one),
PII columns masked without the ``pii`` grant. A preview returns at most
``service.preview_max_rows`` rows of the latest version, a ``version`` or a ``timestamp``.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Query, Request

from neurolake_spark.errors import NeuroLakeError
from neurolake_spark.service.deps import Viewer, context
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.statements import batch_rows, rows_to_batch, spark_message
from neurolake_spark.service.table_access import PII_GRANT

router = APIRouter(prefix="/api/v1/data", tags=["data"])
TableName = Annotated[str, Path(min_length=3, max_length=130, description="logical name, e.g. silver.orders")]


def _spark_call(function, *args):
    """Run a Spark read; Spark's own errors (a bad timestamp, a vacuumed version) become 422."""
    try:
        return function(*args)
    except NeuroLakeError:
        raise
    except Exception as exc:
        if type(exc).__module__.startswith("pyspark"):
            raise Problem("invalid-parameter", spark_message(exc)) from None
        raise


@router.get("/schemas", summary="The schemas (layers) with tables the caller sees (viewer)")
async def schemas(request: Request, principal: Viewer) -> dict[str, Any]:
    ctx = context(request)
    return {"schemas": ctx.tables.schemas(ctx.scope(principal))}


@router.get("/tables", summary="The declared tables the caller sees (viewer)")
async def tables(
    request: Request,
    principal: Viewer,
    schema: Annotated[str | None, Query(max_length=64, description="bronze, silver, gold...")] = None,
) -> dict[str, Any]:
    ctx = context(request)
    definitions = ctx.tables.resolver.definition.tables
    found = []
    for name in ctx.tables.names(ctx.scope(principal), schema):
        table = definitions[name]
        found.append(
            {
                "name": name,
                "schema": name.split(".", 1)[0],
                "format": table.format,
                "partition_by": list(table.partition_by),
                "owner": table.owner,
                "description": table.description,
            }
        )
    return {"tables": found}


@router.get("/tables/{name}/schema", summary="A table's columns, with PII columns marked (viewer)")
async def table_schema(request: Request, name: TableName, principal: Viewer) -> dict[str, Any]:
    ctx = context(request)
    scope = ctx.scope(principal)
    ctx.tables.ref(scope, name)

    def read():
        table = ctx.tables.read(ctx.engine.session(), name, scope, pii=False)
        return {
            "name": name,
            "format": table.format,
            "version": table.version,
            "columns": [
                {
                    "name": f.name,
                    "type": f.dataType.simpleString(),
                    "nullable": f.nullable,
                    "pii": f.name in table.masked_columns,
                }
                for f in table.frame.schema.fields
            ],
        }

    return await anyio.to_thread.run_sync(_spark_call, read)


@router.get("/tables/{name}/history", summary="A table's commits, newest first (viewer)")
async def table_history(
    request: Request,
    name: TableName,
    principal: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    ctx = context(request)
    ref = ctx.tables.ref(ctx.scope(principal), name)

    def read():
        spark = ctx.engine.session()
        ctx.tables.current_version(spark, ref)
        return ctx.tables.history(spark, ref, limit)

    history = await anyio.to_thread.run_sync(_spark_call, read)
    return {"name": name, "format": ref.format, "history": history}


@router.get("/tables/{name}/preview", summary="The first rows of a table, a version or a time (viewer)")
async def preview(
    request: Request,
    name: TableName,
    principal: Viewer,
    limit: Annotated[int, Query(ge=1, description="rows (capped at service.preview_max_rows)")] = 100,
    version: Annotated[int | None, Query(ge=0)] = None,
    timestamp: Annotated[str | None, Query(max_length=40, pattern=r"^[0-9T:.+\- Z]+$")] = None,
    columns: Annotated[str | None, Query(max_length=4000, description="comma-separated column names")] = None,
) -> dict[str, Any]:
    ctx = context(request)
    if version is not None and timestamp is not None:
        raise Problem("invalid-parameter", "give version or timestamp, not both")
    scope = ctx.scope(principal)
    ctx.tables.ref(scope, name)
    limit = min(limit, ctx.settings.service.preview_max_rows)
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None

    def read():
        spark = ctx.engine.session()
        with ctx.engine.pool(f"tenant-{scope.name}"):
            table = ctx.tables.read(spark, name, scope, principal.granted(PII_GRANT), version, timestamp)
            frame = table.frame
            if wanted:
                unknown = [c for c in wanted if c not in frame.columns]
                if unknown:
                    raise Problem("invalid-parameter", f"table {name} has no column {unknown[0]!r}")
                frame = frame.select(*[f"`{c}`" for c in wanted])
            rows = frame.limit(limit + 1).collect()
        from pyspark.sql.pandas.types import to_arrow_schema

        batch = rows_to_batch(rows[:limit], frame.schema, to_arrow_schema(frame.schema, timezone="UTC"))
        return {
            "name": name,
            "format": table.format,
            "version": table.version,
            "schema": [{"name": f.name, "type": f.dataType.simpleString()} for f in frame.schema.fields],
            "rows": batch_rows(batch),
            "truncated": len(rows) > limit,
            "masked_columns": [c for c in table.masked_columns if c in frame.columns],
        }

    return await anyio.to_thread.run_sync(_spark_call, read)
