"""NCF tables: a folder of NCF data files and a commit log, with optimistic concurrency.

Example::

    >>> import pyarrow as pa
    >>> from ncf_datasource.table import NCFTable
    >>> batch = pa.table({"id": [1, 2, 3], "status": ["new", "test", "new"]})
    >>> t = NCFTable.create("warehouse/events", schema=batch.schema, sort_key="id")
    >>> t.append(batch)                                   # version 1
    1
    >>> t.read(filter=("id", "<", 3)).to_pydict()         # a pyarrow.Table
    {'id': [1, 2], 'status': ['new', 'test']}
    >>> t.read(version=0).num_rows                        # time travel
    0
    >>> t.delete(("status", "=", "test"))                 # copy-on-write, one commit
    2
    >>> [(h["version"], h["operation"]) for h in t.history()]
    [(2, 'DELETE'), (1, 'APPEND'), (0, 'CREATE')]
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..format.filters import bind_filter
from ..format.types import schema_to_json
from .errors import ConcurrentModificationError, NCFTableError, NotATableError, SchemaMismatchError
from .files import conform, evolve_schema, read_data_file, write_data_file
from .log import CHECKPOINT_INTERVAL, LOG_DIR, CommitLog, DataFile, Snapshot
from .maintenance import compact, vacuum
from .retries import DEFAULT_RETRIES, with_retries


class Transaction:
    """Changes to commit atomically on top of the snapshot they were computed from.

    ``data_change`` false (compaction) marks a commit that rewrites rows without changing them.
    ``read_files`` are the files whose content the change depends on: if a concurrent commit
    removed one of them, committing raises :class:`ConcurrentModificationError`. Blind appends
    read nothing and never conflict. ``read_whole_table`` (e.g. a merge that inserts rows not
    found) also conflicts with files added concurrently.
    """

    def __init__(
        self,
        table: NCFTable,
        operation: str,
        snapshot: Snapshot | None,
        parameters: dict[str, Any] | None = None,
    ):
        self.table = table
        self.operation = operation
        self.snapshot = snapshot
        self.parameters = dict(parameters or {})
        self.added: list[DataFile] = []
        self.removed: list[DataFile] = []
        self.read_files: set[str] = set()
        self.read_whole_table = False
        self.data_change = True
        self.schema: pa.Schema | None = None
        self.properties: dict[str, str] | None = None
        self.txn: tuple[str, int] | None = None
        self.metrics: dict[str, Any] = {}

    @property
    def read_version(self) -> int | None:
        return self.snapshot.version if self.snapshot else None

    def add(self, data_file: DataFile | None) -> None:
        if data_file is not None:
            self.added.append(data_file)

    def remove(self, data_file: DataFile) -> None:
        self.removed.append(data_file)
        self.read_files.add(data_file.path)

    def set_metadata(self, schema: pa.Schema, properties: dict[str, str] | None = None) -> None:
        """Change the table schema (and properties) with this commit."""
        self.schema = schema
        self.properties = dict(
            properties if properties is not None else (self.snapshot.properties if self.snapshot else {})
        )

    def set_txn(self, app_id: str, version: int) -> None:
        """Record that ``app_id`` (e.g. a streaming query) committed its batch ``version``."""
        self.txn = (app_id, int(version))

    def abort(self) -> None:
        """Delete the data files written for this transaction (they were never committed)."""
        for data_file in self.added:
            try:
                os.unlink(self.table.path / data_file.path)
            except FileNotFoundError:
                pass
        self.added = []

    def _commit_body(self, timestamp: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "timestamp": timestamp,
            "operation": self.operation,
            "parameters": self.parameters,
            "read_version": self.read_version,
            "blind_append": not self.removed and not self.read_files and not self.read_whole_table,
            "commit_id": uuid.uuid4().hex,
        }
        if self.schema is not None:
            body["metadata"] = {"schema": schema_to_json(self.schema), "properties": self.properties or {}}
        body["add"] = [f.to_json() for f in self.added]
        body["remove"] = [
            {"path": f.path, "rows": f.rows, "size": f.size, "data_change": self.data_change}
            for f in self.removed
        ]
        if self.txn:
            body["txn"] = {"app_id": self.txn[0], "version": self.txn[1]}
        body["metrics"] = {
            "num_added_files": len(self.added),
            "num_removed_files": len(self.removed),
            "num_added_rows": sum(f.rows for f in self.added),
            "num_removed_rows": sum(f.rows for f in self.removed),
            "num_added_bytes": sum(f.size for f in self.added),
            **self.metrics,
        }
        return body

    def _check(self, version: int, winner: dict[str, Any]) -> None:
        """Raise when the concurrent commit ``winner`` invalidates what this transaction read."""
        where = (
            f"{self.table.path}: {self.operation} based on version {self.read_version} "
            f"conflicts with version {version} ({winner.get('operation')})"
        )
        removed = {r["path"] for r in winner.get("remove") or ()}
        lost = sorted(self.read_files & removed)
        if lost:
            raise ConcurrentModificationError(f"{where}: it removed file {lost[0]} that this operation read")
        if (
            self.read_whole_table
            and winner.get("add")
            and not all(not a.get("data_change", True) for a in winner["add"])
        ):
            raise ConcurrentModificationError(f"{where}: it added data this operation should have read")
        if self.schema is not None and winner.get("metadata"):
            if winner["metadata"]["schema"] != schema_to_json(self.schema):
                raise ConcurrentModificationError(f"{where}: both changed the table schema")
        if (
            self.txn
            and (winner.get("txn") or {}).get("app_id") == self.txn[0]
            and int(winner["txn"]["version"]) >= self.txn[1]
        ):
            raise ConcurrentModificationError(
                f"{where}: batch {self.txn[1]} of {self.txn[0]} was already committed"
            )

    def commit(self) -> int:
        """Write the commit; returns its version. Concurrent commits that do not conflict are
        skipped over (the version is retried); a conflict aborts this transaction."""
        log = self.table.log
        if self.snapshot is None and self.schema is None:
            raise NCFTableError(f"{self.table.path}: the first commit of a table needs a schema")
        checked = self.read_version if self.read_version is not None else -1
        try:
            while True:
                latest = log.latest_version()
                latest = -1 if latest is None else latest
                for version in range(checked + 1, latest + 1):
                    self._check(version, log.read(version))
                checked = latest
                previous = int(log.read(latest)["timestamp"]) if latest >= 0 else 0
                timestamp = max(int(time.time() * 1000), previous + 1)
                body = {"version": latest + 1, **self._commit_body(timestamp)}
                if latest < 0 and "metadata" not in body:
                    raise NCFTableError(f"{self.table.path}: the table was deleted while writing")
                if log.write(latest + 1, body):
                    break
        except BaseException:
            self.abort()
            raise
        version = latest + 1
        if version and version % CHECKPOINT_INTERVAL == 0:
            log.write_checkpoint(self.table.snapshot(version))
        return version


class NCFTable:
    """An NCF table at ``path``. See the module docstring for an example."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).absolute()
        self.log = CommitLog(self.path)
        self._cached: Snapshot | None = None

    # ------------------------------------------------------------ opening

    @staticmethod
    def is_table(path: str | os.PathLike) -> bool:
        """Whether ``path`` holds an NCF table (a commit log with at least one commit)."""
        return CommitLog(path).exists()

    @classmethod
    def open(cls, path: str | os.PathLike) -> NCFTable:
        """Open an existing table; raises :class:`NotATableError` when there is none."""
        table = cls(path)
        if not table.log.exists():
            if not table.path.exists():
                raise NotATableError(f"{table.path}: no such table (the path does not exist)")
            raise NotATableError(f"{table.path}: not an NCF table (no commits in {LOG_DIR}/)")
        return table

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        schema: pa.Schema,
        sort_key: str | None = None,
        properties: dict[str, str] | None = None,
    ) -> NCFTable:
        """Create an empty table with ``schema`` (version 0); fails if one exists."""
        table = cls(path)
        check_table_folder(table.path)
        if table.log.exists():
            raise NCFTableError(f"{table.path}: a table already exists here")
        table.path.mkdir(parents=True, exist_ok=True)
        tx = Transaction(table, "CREATE", None, {"sort_key": sort_key})
        tx.set_metadata(
            _plain(schema), {**(properties or {}), **({"sort_key": sort_key} if sort_key else {})}
        )
        tx.commit()
        return table

    # ------------------------------------------------------------ state

    @property
    def version(self) -> int:
        """The latest committed version."""
        latest = self.log.latest_version()
        if latest is None:
            raise NotATableError(f"{self.path}: not an NCF table (no commits in {LOG_DIR}/)")
        return latest

    def snapshot(self, version: int | None = None, timestamp: Any = None) -> Snapshot:
        """The table at ``version`` or as of ``timestamp`` (datetime, ISO text or epoch ms); default
        the latest."""
        if timestamp is not None:
            version = self.log.version_at(to_epoch_ms(timestamp))
        snapshot = self.log.snapshot(version, base=self._cached)
        if version is None or self._cached is None or snapshot.version >= self._cached.version:
            self._cached = snapshot
        return snapshot

    @property
    def schema(self) -> pa.Schema:
        return self.snapshot().schema

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits newest first: version, timestamp, operation, parameters, metrics."""
        latest = self.version
        stop = -1 if limit is None else max(latest - limit, -1)
        out = []
        for version in range(latest, stop, -1):
            c = self.log.read(version)
            out.append(
                {
                    "version": version,
                    "timestamp": c["timestamp"],
                    "operation": c["operation"],
                    "parameters": c.get("parameters") or {},
                    "read_version": c.get("read_version"),
                    "blind_append": c.get("blind_append", False),
                    "metrics": c.get("metrics") or {},
                    "txn": c.get("txn"),
                }
            )
        return out

    def find_commit(self, parameters: dict[str, Any], after: int = -1) -> int | None:
        """The newest version after ``after`` whose commit parameters include all of ``parameters``
        (e.g. a writer's ``commitInfo.*`` options): a writer finds its own commit, whatever other
        writers committed meanwhile. None when there is none."""
        for version in range(self.version, after, -1):
            recorded = self.log.read(version).get("parameters") or {}
            if all(recorded.get(key) == value for key, value in parameters.items()):
                return version
        return None

    def begin(
        self, operation: str, snapshot: Snapshot | None = None, parameters: dict[str, Any] | None = None
    ) -> Transaction:
        """A transaction on top of ``snapshot`` (default: the latest)."""
        return Transaction(self, operation, snapshot or self.snapshot(), parameters)

    # ------------------------------------------------------------ reads

    def read(
        self,
        columns: Sequence[str] | None = None,
        filter: Any = None,
        version: int | None = None,
        timestamp: Any = None,
    ) -> pa.Table:
        """The rows of a snapshot matching ``filter`` (any NCF filter form) as a pyarrow Table."""
        snapshot = self.snapshot(version, timestamp)
        expr = bind_filter(filter, snapshot.schema)
        columns = list(snapshot.schema.names if columns is None else columns)
        unknown = [c for c in columns if c not in snapshot.schema.names]
        if unknown:
            raise SchemaMismatchError(
                f"{self.path}: unknown columns {unknown}; the table has {snapshot.schema.names}"
            )
        parts = [
            read_data_file(snapshot.absolute(f), snapshot.schema, columns, expr) for f in snapshot.prune(expr)
        ]
        target = pa.schema([snapshot.schema.field(c).remove_metadata() for c in columns])
        return pa.concat_tables(parts) if parts else target.empty_table()

    # ------------------------------------------------------------ writes

    def write_file(
        self,
        data: pa.Table,
        snapshot: Snapshot,
        *,
        prefix: str = "part",
        data_change: bool = True,
        **options: Any,
    ) -> DataFile | None:
        """Write ``data`` (conformed to ``snapshot``'s schema) as one uncommitted data file."""
        sort_key = options.pop("sort_key", snapshot.sort_key)
        if sort_key and sort_key in data.column_names and data.num_rows > 1:
            data = data.sort_by(sort_key)
        return write_data_file(
            self.path,
            [data],
            data.schema,
            prefix=prefix,
            sort_key=sort_key,
            data_change=data_change,
            **options,
        )

    def append(
        self, data: pa.Table | pa.RecordBatch, merge_schema: bool = False, txn: tuple[str, int] | None = None
    ) -> int:
        """Append rows (a blind append: never conflicts); returns the committed version."""
        return self._write(data, "APPEND", merge_schema, txn)

    def overwrite(self, data: pa.Table | pa.RecordBatch, merge_schema: bool = False) -> int:
        """Replace all rows of the current version by ``data`` in one commit."""
        return self._write(data, "OVERWRITE", merge_schema, None)

    def _write(
        self, data: pa.Table | pa.RecordBatch, operation: str, merge_schema: bool, txn: tuple[str, int] | None
    ) -> int:
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        snapshot = self.snapshot()
        tx = self.begin(operation, snapshot, {"merge_schema": merge_schema})
        if txn:
            if snapshot.txns.get(txn[0], -1) >= txn[1]:
                return snapshot.version
            tx.set_txn(*txn)
        schema = prepare_write(tx, data.schema, merge_schema)
        if operation == "OVERWRITE":
            for f in snapshot.files.values():
                tx.remove(f)
        tx.add(self.write_file(conform(data, schema), snapshot))
        return tx.commit()

    # ------------------------------------------------------------ row-level operations

    def delete(self, filter: Any, retries: int = DEFAULT_RETRIES) -> int | None:
        """Delete rows matching ``filter`` (copy-on-write of the files that hold some).

        Returns the committed version, or None when no row matched. A conflicting concurrent
        commit makes the delete start again from the new version, ``retries`` times.
        """
        return with_retries(lambda: self._rewrite("DELETE", filter, None), retries)

    def update(self, filter: Any, assignments: dict[str, Any], retries: int = DEFAULT_RETRIES) -> int | None:
        """Set columns on rows matching ``filter``: ``{"status": "void"}`` (literals) or
        ``{"n": pc.add(pc.field("n"), 1)}`` (Arrow expressions over the row)."""
        return with_retries(lambda: self._rewrite("UPDATE", filter, assignments), retries)

    def _rewrite(self, operation: str, filter: Any, assignments: dict[str, Any] | None) -> int | None:
        snapshot = self.snapshot()
        expr = bind_filter(filter, snapshot.schema)
        unknown = sorted(set(assignments or {}) - set(snapshot.schema.names))
        if unknown:
            raise SchemaMismatchError(f"{self.path}: {operation.lower()} sets unknown columns {unknown}")
        tx = self.begin(operation, snapshot, {"predicate": repr(expr)})
        changed = 0
        try:
            for f in snapshot.prune(expr):
                data = read_data_file(snapshot.absolute(f), snapshot.schema)
                mask = (
                    pc.fill_null(_evaluate(data, expr.to_arrow()), False)
                    if expr is not None
                    else pa.array([True] * data.num_rows)
                )
                hits = pc.sum(mask).as_py() or 0
                if not hits:
                    continue
                changed += hits
                tx.remove(f)
                if assignments is None:
                    new = data.filter(pc.invert(mask))
                else:
                    new = apply_assignments(data, mask, assignments, snapshot.schema)
                tx.add(self.write_file(new, snapshot))
            if not changed:
                return None
            tx.metrics["num_affected_rows"] = changed
            return tx.commit()
        except BaseException:
            tx.abort()
            raise

    # ------------------------------------------------------------ maintenance

    def compact(
        self, target_file_mb: float = 128, sort_by: str | None = None, retries: int = DEFAULT_RETRIES
    ) -> int | None:
        """Bin-pack small files (see :func:`ncf_datasource.table.maintenance.compact`)."""
        return compact(self, target_file_mb=target_file_mb, sort_by=sort_by, retries=retries)

    def vacuum(
        self, retention_hours: float | None = None, force: bool = False, dry_run: bool = False
    ) -> list[str]:
        """Delete unreferenced files (see :func:`ncf_datasource.table.maintenance.vacuum`)."""
        return vacuum(self, retention_hours=retention_hours, force=force, dry_run=dry_run)


# ---------------------------------------------------------------- helpers


def _plain(schema: pa.Schema) -> pa.Schema:
    """A table schema: every column nullable (later files may lack a column), no schema metadata."""
    return pa.schema([f.with_nullable(True) for f in schema])


def check_table_folder(path: Path) -> None:
    """Refuse to create a table in a folder that holds other things than NCF data files."""
    if path.exists() and not path.is_dir():
        raise NotATableError(f"{path}: not an NCF table (it is a file)")
    if path.is_dir() and not (path / LOG_DIR).is_dir():
        # Data files without a log are the uncommitted output of a first write still going on.
        visible = [n for n in os.listdir(path) if not n.startswith((".", "_")) and not n.endswith(".ncf")]
        if visible:
            raise NotATableError(
                f"{path}: not an NCF table and not empty ({len(visible)} entries such as {visible[0]!r})"
            )


def prepare_write(tx: Transaction, data_schema: pa.Schema, merge_schema: bool) -> pa.Schema:
    """The schema written data must take; records a schema change (or the first schema) in ``tx``."""
    snapshot = tx.snapshot
    if snapshot is None:
        schema = _plain(data_schema)
        tx.set_metadata(schema, {})
        return schema
    schema = evolve_schema(snapshot.schema, data_schema, merge_schema, str(tx.table.path))
    if schema.names != snapshot.schema.names:
        tx.set_metadata(schema)
    return schema


def _evaluate(table: pa.Table, expression: pc.Expression) -> pa.ChunkedArray | pa.Array:
    import pyarrow.dataset as ds  # heavy (it imports pandas, seconds): only updates with expressions need it

    return ds.dataset(table).to_table(columns={"_v": expression}).column("_v")


def apply_assignments(data: pa.Table, mask: Any, assignments: dict[str, Any], schema: pa.Schema) -> pa.Table:
    """``data`` with ``assignments`` applied to the rows where ``mask`` is true."""
    columns = {}
    for name in data.column_names:
        if name not in assignments:
            columns[name] = data.column(name)
            continue
        value, t = assignments[name], schema.field(name).type
        new = _evaluate(data, value) if isinstance(value, pc.Expression) else pa.scalar(value, type=t)
        new = pc.cast(new, t) if not new.type.equals(t) else new
        columns[name] = pc.if_else(mask, new, data.column(name))
    return pa.table(columns, schema=data.schema)


def to_epoch_ms(value: Any) -> int:
    """Epoch milliseconds of a datetime/date, ISO-8601 text (UTC when naive) or a number of ms."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise NCFTableError(
                f"bad timestamp {value!r}: use ISO-8601 such as 2026-11-24T10:00:00Z"
            ) from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    raise NCFTableError(f"bad timestamp {value!r}: use a datetime, ISO-8601 text or epoch milliseconds")
