"""Batch writes into NCF tables: task files, one atomic commit on the driver, cleanup on abort."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa
from pyspark.sql.datasource import DataSourceArrowWriter, WriterCommitMessage
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from ..table import DataFile, NCFTable, Snapshot, Transaction, conform, prepare_write, write_data_file
from ..table.table import check_table_folder

DEFAULT_ROWS_PER_FILE = 4 << 20


@dataclass
class NCFCommitMessage(WriterCommitMessage):
    """The data files one task wrote (``add`` actions in the log's JSON form)."""

    files: list[dict[str, Any]] = field(default_factory=list)


def task_prefix() -> str:
    """``part-<partition>-<attempt>`` of the running Spark task (``part-driver`` outside one)."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None:
        return "part-driver"
    return f"part-{ctx.partitionId():05d}-{ctx.attemptNumber()}"


def write_task_files(
    table_path: Path, batches: Iterable[pa.RecordBatch], schema: pa.Schema, sort_key: str | None, rows_per_file: int, **writer_options: Any
) -> list[DataFile]:
    """Write a task's batches (conformed to ``schema``) as files of at most ``rows_per_file`` rows.

    With a ``sort_key`` each file's rows are sorted first so the file gets a learned index.
    If anything fails, the files already written are deleted before the error propagates.
    """
    prefix = task_prefix()
    written: list[DataFile] = []

    def chunks() -> Iterator[list[pa.Table]]:
        pending, rows = [], 0
        for batch in batches:
            table = conform(pa.Table.from_batches([batch]), schema)
            while table.num_rows:
                take = min(table.num_rows, rows_per_file - rows)
                pending.append(table.slice(0, take))
                rows += take
                table = table.slice(take)
                if rows == rows_per_file:
                    yield pending
                    pending, rows = [], 0
        if pending:
            yield pending

    try:
        for pieces in chunks():
            if sort_key:
                pieces = [pa.concat_tables(pieces).sort_by(sort_key)]
            data_file = write_data_file(table_path, pieces, schema, prefix=prefix, sort_key=sort_key, **writer_options)
            if data_file is not None:
                written.append(data_file)
    except BaseException:
        for data_file in written:
            try:
                os.unlink(table_path / data_file.path)
            except FileNotFoundError:
                pass
        raise
    return written


class NCFBatchWriter(DataSourceArrowWriter):
    """``df.write.format("ncf")``: modes append and overwrite; one commit per job.

    Options: ``mergeSchema`` (add new columns), ``overwriteSchema`` (with overwrite: replace
    the schema), ``sortKey`` (when creating the table: sort each file by it and index it),
    ``maxRowsPerFile`` (default 4M), ``rowGroupSize``.
    """

    def __init__(self, path: str, schema: StructType, overwrite: bool, options: dict[str, str]):
        self.path = Path(path).absolute()
        self.overwrite = overwrite
        data_schema = to_arrow_schema(schema, timezone="UTC")
        merge = options.get("mergeschema", "false").lower() == "true"
        replace = overwrite and options.get("overwriteschema", "false").lower() == "true"
        self.rows_per_file = int(options.get("maxrowsperfile", DEFAULT_ROWS_PER_FILE))
        self.writer_options = {"row_group_size": int(options["rowgroupsize"])} if "rowgroupsize" in options else {}
        table = NCFTable(self.path)
        snapshot = table.snapshot() if NCFTable.is_table(self.path) else None
        if snapshot is None:
            check_table_folder(self.path)
        self.read_version = snapshot.version if snapshot is not None else None
        tx = self._transaction(table, None if replace else snapshot)
        self.schema = prepare_write(tx, data_schema, merge)
        self.new_metadata = tx.schema is not None
        requested_key = options.get("sortkey")
        self.sort_key = requested_key if snapshot is None or replace else snapshot.sort_key
        if self.sort_key and self.sort_key not in self.schema.names:
            from ..table import NCFTableError

            raise NCFTableError(f"{self.path}: sortKey {self.sort_key!r} is not a column")
        self.properties = {**(snapshot.properties if snapshot is not None and not replace else {}), **({"sort_key": self.sort_key} if self.sort_key else {})}

    def _transaction(self, table: NCFTable, snapshot: Snapshot | None) -> Transaction:
        return Transaction(table, "OVERWRITE" if self.overwrite else "APPEND", snapshot, {"mode": "overwrite" if self.overwrite else "append"})

    def write(self, iterator: Iterator[pa.RecordBatch]) -> NCFCommitMessage:
        self.path.mkdir(parents=True, exist_ok=True)
        files = write_task_files(self.path, iterator, self.schema, self.sort_key, self.rows_per_file, **self.writer_options)
        return NCFCommitMessage([f.to_json() for f in files])

    def commit(self, messages: list[NCFCommitMessage | None]) -> None:
        table = NCFTable(self.path)
        snapshot = table.snapshot(self.read_version) if self.read_version is not None else None
        tx = self._transaction(table, snapshot)
        if self.new_metadata or snapshot is None:
            tx.set_metadata(self.schema, self.properties)
        if self.overwrite and snapshot is not None:
            for f in snapshot.files.values():
                tx.remove(f)
        for message in messages:
            for f in (message.files if message else ()):
                tx.add(DataFile.from_json(f))
        tx.commit()

    def abort(self, messages: list[NCFCommitMessage | None]) -> None:
        for message in messages:
            for f in (message.files if message else ()):
                try:
                    os.unlink(self.path / f["path"])
                except FileNotFoundError:
                    pass
