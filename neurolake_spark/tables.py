"""Logical table names (``silver.orders``) to storage paths and formats.

A name is ``layer.table`` in lowercase letters, digits and ``_``; anything else (``..``,
``/``, spaces, quotes) is rejected before it can touch a path. Only tables the pipeline
definition declares resolve; the path is ``<warehouse>/<layer>/<table>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ncf_datasource.table.paths import UnsafePathError, inside
from neurolake_spark.errors import TableNameError
from neurolake_spark.pipeline_config import TABLE_NAME, PipelineDefinition, TableDefinition


@dataclass(frozen=True)
class TableRef:
    """A resolved table: its logical name, storage path and definition."""

    name: str
    path: Path
    definition: TableDefinition

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def format(self) -> str:
        return self.definition.format

    @property
    def uri(self) -> str:
        return str(self.path)


def validate_table_name(name: str) -> str:
    """Return ``name`` if it is a well-formed ``layer.table`` name, else raise TableNameError."""
    if not isinstance(name, str) or not TABLE_NAME.match(name):
        shown = repr(name)[:80]
        raise TableNameError(
            f"invalid table name {shown}: expected layer.table with lowercase letters, digits and _ only"
        )
    return name


class TableResolver:
    """Resolves logical names against one warehouse and one pipeline definition."""

    def __init__(self, warehouse: Path, definition: PipelineDefinition):
        self.warehouse = Path(warehouse)
        self.definition = definition

    def resolve(self, name: str) -> TableRef:
        validate_table_name(name)
        table = self.definition.tables.get(name)
        if table is None:
            known = ", ".join(sorted(self.definition.tables))
            raise TableNameError(f"unknown table '{name}' (known tables: {known})")
        layer, short = name.split(".", 1)
        try:
            path = inside(self.warehouse, f"{layer}/{short}").resolve()
        except UnsafePathError:
            raise TableNameError(f"table '{name}' resolves outside the warehouse") from None
        return TableRef(name=name, path=path, definition=table)

    def names(self, layer: str | None = None) -> list[str]:
        return sorted(n for n in self.definition.tables if layer is None or n.startswith(layer + "."))
