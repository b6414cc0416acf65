"""NCF tables without Spark: a folder of NCF files plus a commit log (``_ncf_log/``).

Snapshots, time travel, optimistic concurrency across processes, row-level delete and
update, compaction and vacuum; see ``ncf_datasource/TABLE_SPEC.md`` for the log format.
The Spark data source ``ncf`` (``ncf_datasource.spark``) is built on this layer.

Example::

    >>> import pyarrow as pa
    >>> from ncf_datasource.table import NCFTable
    >>> _ = NCFTable.create("warehouse/events", schema=pa.schema([("id", pa.int64())]))
    >>> t = NCFTable("warehouse/events")
    >>> t.append(pa.table({"id": [5, 11, 12]}))
    1
    >>> t.snapshot().version, t.read(filter=("id", ">", 10)).num_rows, len(t.history(limit=5))
    (1, 2, 2)
"""

from .errors import (
    ConcurrentModificationError,
    CorruptTableError,
    NCFTableError,
    NotATableError,
    SchemaMismatchError,
    TimeTravelError,
    VacuumRetentionError,
)
from .files import conform, read_data_file, write_data_file
from .log import CHECKPOINT_INTERVAL, DataFile, Snapshot
from .maintenance import SAFE_RETENTION_HOURS, compact, vacuum
from .paths import UnsafePathError, check_relative, inside
from .retries import with_retries
from .table import NCFTable, Transaction, prepare_write, to_epoch_ms

__all__ = [
    "CHECKPOINT_INTERVAL",
    "SAFE_RETENTION_HOURS",
    "ConcurrentModificationError",
    "CorruptTableError",
    "DataFile",
    "NCFTable",
    "NCFTableError",
    "NotATableError",
    "SchemaMismatchError",
    "Snapshot",
    "TimeTravelError",
    "Transaction",
    "UnsafePathError",
    "VacuumRetentionError",
    "check_relative",
    "compact",
    "conform",
    "inside",
    "prepare_write",
    "read_data_file",
    "to_epoch_ms",
    "vacuum",
    "with_retries",
    "write_data_file",
]
