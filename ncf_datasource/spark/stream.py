"""Structured Streaming on NCF tables: a source whose offsets are log positions, and a sink
with one commit per micro-batch, idempotent on the batch id.

Example::

    (spark.readStream.format("ncf").option("maxFilesPerTrigger", 10).load("/lake/events")
        .writeStream.format("ncf").option("checkpointLocation", "/chk/copy")
        .trigger(availableNow=True).start("/lake/events_copy"))

Source options: ``startingVersion`` (default: the table as it is when the query starts,
then every later commit; a number: every commit from that version on; ``latest``: only
commits made after the query starts), ``maxFilesPerTrigger``, ``maxRowsPerTrigger``,
``skipChangeCommits`` (a commit that deletes or rewrites rows is an error unless true, then
it is skipped). Compaction commits never produce rows. Sink options: those of the batch
writer, and ``txnAppId`` (default: the checkpoint location), the id under which batch ids
are recorded so a restarted query does not commit a batch twice.
"""

from __future__ import annotations

from typing import Any, Literal

from pyspark.sql.datasource import DataSourceStreamArrowWriter, DataSourceStreamReader
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadMaxFiles,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import StructType

from ..table import DataFile, NCFTable, NCFTableError, Transaction
from .options import NCFOptions
from .reader import FilePart, NCFBatchReader, pack
from .writer import NCFBatchWriter, NCFCommitMessage


class NCFStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """New data files of each commit become micro-batches.

    An offset is ``{"version": v, "file": n, "snapshot": s}``: with ``s`` true, the first
    ``n`` files of the snapshot at version ``v`` (the table as the query found it) have
    been read; otherwise every file of commits before ``v`` and the first ``n`` of commit ``v``.
    """

    def __init__(self, table: NCFTable, schema: StructType, options: NCFOptions):
        self.table = table
        snapshot = table.snapshot()
        self.batch = NCFBatchReader(snapshot, schema, options)
        self.max_rows_per_partition = self.batch.max_rows
        self.start = self._starting_offset(options.starting_version, snapshot.version)
        self.skip_changes = options.skip_change_commits
        self.max_files = options.max_files_per_trigger
        self.max_rows = options.max_rows_per_trigger
        self.target_version: int | None = None
        self._files: dict[tuple[int, bool], list[DataFile]] = {}

    @staticmethod
    def _starting_offset(option: int | Literal["latest"] | None, current: int) -> dict:
        if option is None:
            return {"version": current, "file": 0, "snapshot": True}
        if option == "latest":
            return {"version": current + 1, "file": 0, "snapshot": False}
        return {"version": option, "file": 0, "snapshot": False}

    def __getstate__(self) -> dict[str, Any]:
        return {"batch": self.batch}

    def initialOffset(self) -> dict:
        return self.start

    def getDefaultReadLimit(self):
        if self.max_files is not None:
            return ReadMaxFiles(self.max_files)
        if self.max_rows is not None:
            return ReadMaxRows(self.max_rows)
        return ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self.target_version = self.table.version

    def files_of(self, version: int, snapshot: bool = False) -> list[DataFile]:
        """The files of the snapshot at ``version`` (``snapshot``), else the new data files of
        commit ``version`` (none for compaction or skipped changes)."""
        key = (version, snapshot)
        if key not in self._files:
            if snapshot:
                files = self.table.snapshot(version).files
                self._files[key] = [files[p] for p in sorted(files)]
                return self._files[key]
            commit = self.table.log.read(version)
            changes = [r for r in commit.get("remove") or () if r.get("data_change", True)]
            if changes and not self.skip_changes:
                raise NCFTableError(
                    f"{self.table.path}: version {version} ({commit['operation']}) deletes or rewrites rows, "
                    "which a stream cannot replay; restart from a later startingVersion "
                    "or set skipChangeCommits=true"
                )
            added = [DataFile.from_json(a) for a in commit.get("add") or () if a.get("data_change", True)]
            self._files[key] = [] if changes else added
        return self._files[key]

    @staticmethod
    def _position(offset: dict) -> tuple[int, bool, int]:
        return int(offset["version"]), bool(offset.get("snapshot", False)), int(offset["file"])

    def _pending(self, start: dict, last: int):
        """``(version, snapshot, index, file)`` of every file after ``start`` up to commit ``last``."""
        version, snapshot, index = self._position(start)
        while version <= last:
            for i, f in enumerate(self.files_of(version, snapshot)[index:], index):
                yield version, snapshot, i, f
            version, snapshot, index = version + 1, False, 0

    def latestOffset(self, start: dict, limit) -> dict:
        last = self.table.version if self.target_version is None else self.target_version
        files = rows = 0
        for version, snapshot, index, f in self._pending(start, last):
            if files and (
                (isinstance(limit, ReadMaxFiles) and files >= limit.max_files)
                or (isinstance(limit, ReadMaxRows) and rows + f.rows > limit.max_rows)
            ):
                return {"version": version, "file": index, "snapshot": snapshot}
            files, rows = files + 1, rows + f.rows
        return self._offset_past(start, last)

    def _offset_past(self, start: dict, last: int) -> dict:
        """The offset once commit ``last`` is read: the start of commit ``last + 1``, or, when
        ``start`` is already beyond it, the first commit ``start`` has not read (never behind it)."""
        version, snapshot, _ = self._position(start)
        first_unread = version + 1 if snapshot else version
        return {"version": max(last + 1, first_unread), "file": 0, "snapshot": False}

    def partitions(self, start: dict, end: dict):
        stop_version, stop_snapshot, stop_index = self._position(end)
        last = stop_version if stop_snapshot or stop_index else stop_version - 1
        parts = []
        for version, snapshot, index, f in self._pending(start, last):
            if (version, snapshot) == (stop_version, stop_snapshot) and index >= stop_index:
                break
            parts.append(FilePart(self.batch.snapshot.absolute(f), None, f.rows, f.path))
        return pack(parts, self.max_rows_per_partition)

    def read(self, partition):
        return self.batch.read(partition)

    def commit(self, end: dict) -> None:
        for key in [k for k in self._files if k[0] < int(end["version"])]:
            del self._files[key]


class NCFStreamWriter(NCFBatchWriter, DataSourceStreamArrowWriter):
    """One commit per micro-batch, recording ``(txnAppId, batch id)``: a batch already
    committed (a restarted query replaying it) is dropped instead of committed twice."""

    def __init__(self, path: str, schema: StructType, overwrite: bool, options: NCFOptions):
        super().__init__(path, schema, overwrite, options)
        app_id = options.txn_app_id
        if not app_id:
            raise NCFTableError(
                f"{self.path}: a streaming write needs a checkpointLocation (or the txnAppId option)"
            )
        self.app_id: str = app_id

    def commit(self, messages: list[NCFCommitMessage | None], batchId: int) -> None:  # type: ignore[override]
        table = NCFTable(self.path)
        snapshot = table.snapshot() if NCFTable.is_table(self.path) else None
        if snapshot is not None and snapshot.txns.get(self.app_id, -1) >= batchId:
            self.abort(messages, batchId)
            return
        tx = Transaction(
            table,
            "STREAMING UPDATE",
            snapshot,
            {"batch_id": batchId, "mode": "complete" if self.overwrite else "append", **self.commit_info},
        )
        if snapshot is None or snapshot.schema.names != self.schema.names:
            tx.set_metadata(self.schema, self.properties)
        if self.overwrite and snapshot is not None:
            for f in snapshot.files.values():
                tx.remove(f)
        tx.set_txn(self.app_id, batchId)
        for message in messages:
            for entry in message.files if message else ():
                tx.add(DataFile.from_json(entry))
        tx.commit()

    def abort(self, messages: list[NCFCommitMessage | None], batchId: int | None = None) -> None:  # type: ignore[override]
        super().abort(messages)
