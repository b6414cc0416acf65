"""What a :class:`~neurolake_spark.runs.JobRun` records, and who is told about it.

The data model of a run, with no behaviour: the tables it read and wrote
(:class:`Dataset`, with :class:`ColumnSource` column lineage), the quality results it
recorded (:class:`QualityResult`), and the :class:`RunListener` protocol that metrics and
lineage implement. Lineage, metrics, the catalog and the coming HTTP service read these
types without depending on how a run is executed.

Example::

    >>> from pyspark.sql.types import LongType, StructField, StructType
    >>> schema = StructType([StructField("order_id", LongType())])
    >>> orders = Dataset("silver.orders", version=7, rows=99_000, schema=schema_of(schema),
    ...                  column_lineage={"order_id": [ColumnSource("bronze.orders", "order_id")]})
    >>> orders.schema, orders.column_lineage["order_id"][0].kind
    ([('order_id', 'bigint')], 'DIRECT')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # for annotations only: runs imports this module
    from pyspark.sql.types import StructType

    from neurolake_spark.runs import JobRun

JOB_NAMESPACE = "neurolake"
"""The OpenLineage job namespace of every run of the pipeline."""


@dataclass
class ColumnSource:
    """One input column that feeds an output column (an OpenLineage column lineage input field)."""

    dataset: str
    column: str
    kind: Literal["DIRECT", "INDIRECT"] = "DIRECT"
    subtype: str = "IDENTITY"


@dataclass
class Dataset:
    """A table a run read or wrote, at a version, with what is known about it."""

    name: str
    format: str = "delta"
    path: str | None = None
    version: int | None = None
    rows: int | None = None
    bytes: int | None = None
    files: int | None = None
    schema: list[tuple[str, str]] | None = None
    column_lineage: dict[str, list[ColumnSource]] = field(default_factory=dict)


@dataclass
class QualityResult:
    """One expectation's outcome on one dataset, as the quality gates report it."""

    dataset: str
    expectation: str
    success: bool
    severity: str = "critical"
    action: str = "block"
    column: str | None = None
    observed_value: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None


def schema_of(struct: StructType) -> list[tuple[str, str]]:
    """A Spark ``StructType`` as ``[(column, type)]`` for a :class:`Dataset`."""
    return [(f.name, f.dataType.simpleString()) for f in struct.fields]


class RunListener(Protocol):
    """Told about a run's life; implemented by metrics and lineage.

    A listener that raises is logged by the run and never fails the job."""

    def on_start(self, run: JobRun) -> None:
        """The run has started (its ``started_at`` is set, its status is ``running``)."""

    def on_end(self, run: JobRun) -> None:
        """The run has ended (``ended_at``, ``status`` and, on failure, ``error`` are set)."""
