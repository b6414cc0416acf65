"""One place for "this logical table, as this caller may read it": statements and previews both
come here.

A caller names tables by their logical names (``silver.orders``), resolved through the
pipeline definition (:class:`~neurolake_spark.tables.TableResolver`), Delta and NCF alike. A
table the caller's tenant does not see answers exactly like an unknown one. A caller without
the ``pii`` grant gets the PII columns masked: the columns ``conf/pii.yaml`` lists for the table
and those the project's PII detection finds (NCF ``pii`` tags, column names, sampled values),
less the table's ``allow`` list; strings become ``[REDACTED]``, other types null.

Example::

    access = TableAccess(settings)
    read = access.read(spark, "bronze.customers", scope, pii=False, version=3)
    read.frame.show(); read.masked_columns        # ['name', 'email', 'phone', 'address']
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from neurolake_spark.catalog.errors import UnknownAssetError
from neurolake_spark.config import Settings
from neurolake_spark.errors import NeuroLakeError
from neurolake_spark.quality.pii import (
    PiiPolicies,
    detect_pii,
    load_policies,
    redact_column,
    tags_from_spark_schema,
)
from neurolake_spark.service.tenants import TenantScope
from neurolake_spark.tables import TableRef, TableResolver

PII_GRANT = "pii"


class UnknownTableError(UnknownAssetError):
    """A table that does not exist, or that the caller's tenant does not see (the same answer)."""

    def __init__(self, name: str, suggestions: list[str]):
        hint = f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""
        super().__init__(f"unknown table '{name}'{hint}")
        self.suggestions = suggestions


class TableNotWrittenError(NeuroLakeError):
    """A declared table that has no committed version yet."""


@dataclass
class TableRead:
    """A table as one caller reads it: the frame, the version read and the columns masked."""

    name: str
    format: str
    version: int | None
    frame: DataFrame
    masked_columns: list[str] = field(default_factory=list)


class TableAccess:
    """Resolves, checks and masks logical tables for callers (see the module docstring)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._pii_cache: dict[tuple[str, int | None], list[str]] = {}
        self._lock = threading.Lock()

    @cached_property
    def resolver(self) -> TableResolver:
        return TableResolver(self.settings.warehouse, self.settings.pipeline_definition())

    @cached_property
    def policies(self) -> PiiPolicies:
        return load_policies(self.settings.quality.pii_policies)

    def sees(self, scope: TenantScope, name: str) -> bool:
        return scope.sees(name, self.settings.lineage_namespace)

    def names(self, scope: TenantScope, schema: str | None = None) -> list[str]:
        """The declared tables ``scope`` sees (of one schema, e.g. ``silver``)."""
        return [n for n in self.resolver.names(schema) if self.sees(scope, n)]

    def schemas(self, scope: TenantScope) -> list[dict[str, Any]]:
        """The schemas (layers) with at least one visible table, and their formats."""
        result = []
        for layer in sorted({n.split(".", 1)[0] for n in self.names(scope)}):
            tables = self.names(scope, layer)
            formats = sorted({self.resolver.definition.tables[n].format for n in tables})
            result.append({"name": layer, "tables": len(tables), "formats": formats})
        return result

    def ref(self, scope: TenantScope, name: str) -> TableRef:
        """The table ``name`` if declared and visible, else UnknownTableError (same for both)."""
        visible = self.names(scope)
        if name not in visible:
            raise UnknownTableError(str(name)[:100], difflib.get_close_matches(str(name), visible, n=3))
        return self.resolver.resolve(name)

    def current_version(self, spark: SparkSession, ref: TableRef) -> int:
        from neurolake_spark import bulk

        if not bulk.exists(spark, ref):
            raise TableNotWrittenError(f"table {ref.name} has no data yet")
        return bulk.current_version(spark, ref).version

    def read(
        self,
        spark: SparkSession,
        name: str,
        scope: TenantScope,
        pii: bool,
        version: int | None = None,
        timestamp: str | None = None,
    ) -> TableRead:
        """``name`` for a caller of ``scope`` (``pii``: the caller holds the pii grant)."""
        ref = self.ref(scope, name)
        current = self.current_version(spark, ref)
        reader = spark.read.format(ref.format)
        if version is not None:
            if not 0 <= version <= current:
                raise TableNotWrittenError(f"table {name} has versions 0 to {current}, not {version}")
            reader = reader.option("versionAsOf", int(version))
        elif timestamp is not None:
            reader = reader.option("timestampAsOf", timestamp)
        else:
            version = current
        frame = reader.load(ref.uri)
        masked: list[str] = []
        if not pii:
            masked = self.pii_columns(ref, frame, version)
            frame = mask(frame, masked)
        return TableRead(name, ref.format, version, frame, masked)

    def pii_columns(self, ref: TableRef, frame: DataFrame, version: int | None) -> list[str]:
        """The PII columns of ``ref`` (policies, then detection; cached per table version)."""
        key = (ref.name, version)
        with self._lock:
            if key in self._pii_cache:
                return self._pii_cache[key]
        table = self.policies.for_table(ref.name)
        detection = self.policies.detection
        found = detect_pii(
            frame,
            detection.sample_rows,
            detection.min_match_ratio,
            tags={**tags_from_spark_schema(frame.schema), **table.tags},
        )
        columns = [c for c in frame.columns if (c in table.columns or c in found) and c not in table.allow]
        with self._lock:
            if version is not None:
                self._pii_cache[key] = columns
        return columns

    def history(self, spark: SparkSession, ref: TableRef, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` commits of a table, newest first, from its commit log."""
        if ref.format == "ncf":
            from ncf_datasource.table.log import CommitLog

            log = CommitLog(ref.path)
            versions = log.versions()[-limit:]
            commits = [(v, log.read(v)) for v in reversed(versions)]
            return [
                {
                    "version": v,
                    "timestamp": _ms_time(c.get("timestamp")),
                    "operation": c.get("operation"),
                    "metrics": c.get("metrics") or {},
                }
                for v, c in commits
            ]
        from delta.tables import DeltaTable

        rows = DeltaTable.forPath(spark, ref.uri).history(limit).collect()
        return [
            {
                "version": r["version"],
                "timestamp": r["timestamp"].astimezone(UTC).isoformat() if r["timestamp"] else None,
                "operation": r["operation"],
                "metrics": dict(r["operationMetrics"] or {}),
            }
            for r in rows
        ]


def _ms_time(ms: Any) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat() if isinstance(ms, int) else None


def mask(frame: DataFrame, columns: list[str]) -> DataFrame:
    """``frame`` with ``columns`` masked: strings ``[REDACTED]``, other types null."""
    if not columns:
        return frame
    types = {f.name: f.dataType for f in frame.schema.fields}
    return frame.withColumns(
        {
            c: redact_column(F.col(f"`{c}`"))
            if isinstance(types[c], StringType)
            else F.lit(None).cast(types[c])
            for c in columns
        }
    )
