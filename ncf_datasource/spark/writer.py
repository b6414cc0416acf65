"""Batch writes into NCF tables: task files, one atomic commit on the driver, cleanup on abort."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql.datasource import DataSourceArrowWriter, WriterCommitMessage
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from ..format.writer import NCFWriter
from ..table import DataFile, NCFTable, NCFTableError, Snapshot, Transaction, conform, prepare_write
from ..table.files import data_file_name, describe_file
from ..table.table import check_table_folder
from .options import NCFOptions


@dataclass
class NCFCommitMessage(WriterCommitMessage):
    """The data files one task wrote (``add`` actions in the log's JSON form)."""

    files: list[dict[str, Any]] = field(default_factory=list)


def task_prefix() -> str:
    """``part-<partition>-<attempt>`` of the running Spark task (``part-driver`` outside one)."""
    ctx = TaskContext.get()
    if ctx is None:
        return "part-driver"
    return f"part-{ctx.partitionId():05d}-{ctx.attemptNumber()}"


class TaskFiles:
    """The data files one task writes: batches stream into the current file, which is closed
    at ``rows_per_file`` rows. With a ``sort_key`` a file's rows are buffered and sorted
    first so the file gets a learned index on it."""

    def __init__(
        self,
        table_path: Path,
        schema: pa.Schema,
        sort_key: str | None,
        rows_per_file: int,
        **writer_options: Any,
    ):
        self.table_path, self.schema, self.sort_key = table_path, schema, sort_key
        self.rows_per_file, self.writer_options = rows_per_file, writer_options
        self.prefix = task_prefix()
        self.written: list[DataFile] = []
        self.writer: NCFWriter | None = None
        self.pending: list[pa.Table] = []
        self.rows = 0

    def _open(self) -> NCFWriter:
        if self.writer is None:
            self.rel = data_file_name(self.prefix)
            self.writer = NCFWriter(
                self.table_path / self.rel, self.schema, sort_key=self.sort_key, **self.writer_options
            )
        return self.writer

    def add(self, table: pa.Table) -> None:
        while table.num_rows:
            take = min(table.num_rows, self.rows_per_file - self.rows)
            piece, table = table.slice(0, take), table.slice(take)
            if self.sort_key:
                self.pending.append(piece)
            else:
                self._open().write_table(piece)
            self.rows += take
            if self.rows == self.rows_per_file:
                self.finish()

    def finish(self) -> None:
        """Close the current file (if it has rows) and record it."""
        if self.pending:
            self._open().write_table(pa.concat_tables(self.pending).sort_by(self.sort_key))
        if self.writer is not None:
            self.writer.close()
            self.written.append(describe_file(self.table_path, self.rel))
        self.writer, self.pending, self.rows = None, [], 0

    def abort(self) -> None:
        """Drop the open file and delete the files already closed."""
        if self.writer is not None:
            self.writer.abort()
        for data_file in self.written:
            try:
                os.unlink(self.table_path / data_file.path)
            except FileNotFoundError:
                pass
        self.writer, self.pending, self.written = None, [], []


def write_task_files(
    table_path: Path,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    sort_key: str | None,
    rows_per_file: int,
    **writer_options: Any,
) -> list[DataFile]:
    """Write a task's batches (conformed to ``schema``); on failure nothing of it is left."""
    files = TaskFiles(table_path, schema, sort_key, rows_per_file, **writer_options)
    try:
        for batch in batches:
            files.add(conform(pa.Table.from_batches([batch]), schema))
        files.finish()
    except BaseException:
        files.abort()
        raise
    return files.written


class NCFBatchWriter(DataSourceArrowWriter):
    """``df.write.format("ncf")``: modes append and overwrite; one commit per job.

    Options: ``mergeSchema`` (add new columns), ``overwriteSchema`` (with overwrite: replace
    the schema), ``sortKey`` (when creating the table: sort each file by it and index it),
    ``maxRowsPerFile`` (default 4M), ``rowGroupSize``, ``commitInfo.<key>`` (recorded in the
    commit's parameters, e.g. ``commitInfo.neurolake_run_id``).
    """

    def __init__(self, path: str, schema: StructType, overwrite: bool, options: NCFOptions):
        self.path = Path(path).absolute()
        self.overwrite = overwrite
        self.commit_info = dict(options.commit_info)
        data_schema = to_arrow_schema(schema, timezone="UTC")
        merge = options.merge_schema
        replace = overwrite and options.overwrite_schema
        self.rows_per_file = options.max_rows_per_file
        self.writer_options = (
            {"row_group_size": options.row_group_size} if options.row_group_size is not None else {}
        )
        table = NCFTable(self.path)
        snapshot = table.snapshot() if NCFTable.is_table(self.path) else None
        if snapshot is None:
            check_table_folder(self.path)
        self.read_version = snapshot.version if snapshot is not None else None
        tx = self._transaction(table, None if replace else snapshot)
        self.schema = prepare_write(tx, data_schema, merge)
        self.new_metadata = tx.schema is not None
        requested_key = options.sort_key
        self.sort_key = requested_key if snapshot is None or replace else snapshot.sort_key
        if self.sort_key and self.sort_key not in self.schema.names:
            raise NCFTableError(f"{self.path}: sortKey {self.sort_key!r} is not a column")
        self.properties = {
            **(snapshot.properties if snapshot is not None and not replace else {}),
            **({"sort_key": self.sort_key} if self.sort_key else {}),
        }

    def _transaction(self, table: NCFTable, snapshot: Snapshot | None) -> Transaction:
        parameters = {"mode": "overwrite" if self.overwrite else "append", **self.commit_info}
        return Transaction(table, "OVERWRITE" if self.overwrite else "APPEND", snapshot, parameters)

    def write(self, iterator: Iterator[pa.RecordBatch]) -> NCFCommitMessage:
        self.path.mkdir(parents=True, exist_ok=True)
        files = write_task_files(
            self.path, iterator, self.schema, self.sort_key, self.rows_per_file, **self.writer_options
        )
        return NCFCommitMessage([f.to_json() for f in files])

    def commit(self, messages: list[NCFCommitMessage | None]) -> None:  # type: ignore[override]
        table = NCFTable(self.path)
        snapshot = table.snapshot(self.read_version) if self.read_version is not None else None
        tx = self._transaction(table, snapshot)
        if self.new_metadata or snapshot is None:
            tx.set_metadata(self.schema, self.properties)
        if self.overwrite and snapshot is not None:
            for f in snapshot.files.values():
                tx.remove(f)
        for message in messages:
            for entry in message.files if message else ():
                tx.add(DataFile.from_json(entry))
        tx.commit()

    def abort(self, messages: list[NCFCommitMessage | None]) -> None:  # type: ignore[override]
        for message in messages:
            for f in message.files if message else ():
                try:
                    os.unlink(self.path / f["path"])
                except FileNotFoundError:
                    pass
