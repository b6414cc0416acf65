"""The pipeline definition (``conf/pipeline.yaml``): raw sources and the tables they feed.

Adding a source or a table is a change to that file, not to code::

    sources:
      orders:
        format: csv                      # csv | json | ncf | parquet
        schema: "order_id STRING, order_ts TIMESTAMP, ..."   # Spark DDL
        key: [order_id]                  # business key for silver's MERGE
        order_by: updated_at             # latest version of a key wins
        bronze: bronze.orders
        silver: silver.orders
        fixable: [silver.orders]         # tables bulk fix files may change (default: none)
    tables:
      bronze.orders: {format: delta, partition_by: [_batch_date], owner: data-eng}
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from neurolake_spark.errors import ConfigError

TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceDefinition(_Strict):
    """One raw source: where its files land, how to parse them, where it goes."""

    format: Literal["csv", "json", "ncf", "parquet"]
    schema_ddl: str = Field(alias="schema")
    key: list[str] = Field(min_length=1)
    order_by: str
    bronze: str
    silver: str
    fixable: list[str] = Field(default_factory=list)
    description: str = ""


class TableDefinition(_Strict):
    """One lakehouse table: storage format, partitioning and catalog metadata."""

    format: Literal["delta", "ncf"] = "delta"
    partition_by: list[str] = Field(default_factory=list)
    owner: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)


class PipelineDefinition(_Strict):
    """Sources and tables of one pipeline, cross-checked on load."""

    sources: dict[str, SourceDefinition]
    tables: dict[str, TableDefinition]

    @model_validator(mode="after")
    def _check_names(self) -> PipelineDefinition:
        for name in self.tables:
            if not TABLE_NAME.match(name):
                raise ValueError(
                    f"table name '{name}' must look like layer.table (lowercase letters, digits, _)"
                )
        for source_name, source in self.sources.items():
            for role in ("bronze", "silver"):
                table = getattr(source, role)
                if table not in self.tables:
                    raise ValueError(
                        f"source '{source_name}' names {role} table '{table}', "
                        "which 'tables' does not declare"
                    )
            for table in source.fixable:
                if table not in (source.bronze, source.silver):
                    raise ValueError(
                        f"source '{source_name}' declares '{table}' fixable, but only its own tables "
                        f"({source.bronze}, {source.silver}) can be"
                    )
        return self

    def fixable_tables(self) -> list[str]:
        """The tables bulk fix files may change: those their source declares ``fixable``."""
        return sorted({table for source in self.sources.values() for table in source.fixable})


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> PipelineDefinition:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"pipeline definition not found: {path}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    try:
        return PipelineDefinition.model_validate(data or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise ConfigError(f"{path}: {where + ': ' if where else ''}{error['msg']}") from None


def load_pipeline_definition(path: Path) -> PipelineDefinition:
    """Parse and validate a pipeline file (cached until the file changes)."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise ConfigError(f"pipeline definition not found: {path}") from None
    return _load(path, mtime)
