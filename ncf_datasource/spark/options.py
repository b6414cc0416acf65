"""The options of the ``ncf`` data source, parsed once into one typed object.

Spark hands a data source its options as strings, keys in any case. :meth:`NCFOptions.parse`
reads them when the source is created; a bad value is an :class:`NCFOptionError` that names
the option, the value and what it must be, as ``versionAsOf`` always did::

    >>> NCFOptions.parse({"path": "/lake/events", "versionAsOf": "3"}).version_as_of
    3
    >>> NCFOptions.parse({"path": "/lake/events", "maxRowsPerFile": "many"})
    Traceback (most recent call last):
    ncf_datasource.spark.options.NCFOptionError: /lake/events: maxRowsPerFile must be a positive integer, ...

Options a read, a write or a stream does not use are parsed all the same (a misspelt value
fails early, whichever way the source is used).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..table import NCFTableError

COMMIT_INFO_PREFIX = "commitinfo."
DEFAULT_ROWS_PER_PARTITION = 1 << 21
"""Rows a read task takes at most (``maxRowsPerPartition``); see ``reader`` for why so many."""
DEFAULT_ROWS_PER_FILE = 4 << 20
"""Rows a written data file holds at most (``maxRowsPerFile``)."""


class NCFOptionError(NCFTableError):
    """An option of the ``ncf`` source has a value it cannot take."""

    def __init__(self, table: str, option: str, value: str, expected: str):
        super().__init__(f"{table}: {option} must be {expected}, got {value!r}")
        self.table, self.option, self.value, self.expected = table, option, value, expected


class _Reader:
    """Typed values of one source's options (keys compared in lower case)."""

    def __init__(self, options: Mapping[str, Any]):
        self.values = {str(k).lower(): str(v) for k, v in options.items()}
        self.table = self.values.get("path", "the ncf source")

    def text(self, name: str) -> str | None:
        return self.values.get(name.lower())

    def flag(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise NCFOptionError(self.table, name, value, "true or false")
        return value.lower() == "true"

    def integer(self, name: str, *, positive: bool = False) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or (positive and number < 1):
            raise NCFOptionError(self.table, name, value, "a positive integer" if positive else "an integer")
        return number


@dataclass(frozen=True)
class NCFOptions:
    """Every option of ``format("ncf")``, typed; see :class:`ncf_datasource.spark.NCFDataSource`."""

    path: str | None = None
    # reads
    version_as_of: int | None = None
    timestamp_as_of: str | None = None
    columns: list[str] | None = None
    file_column: str | None = None
    files: frozenset[str] | None = None
    max_rows_per_partition: int = DEFAULT_ROWS_PER_PARTITION
    batch_size: int | None = None
    filter_pushdown: bool | None = None
    """None: the source's default (:attr:`NCFDataSource.filter_pushdown`)."""
    # writes
    merge_schema: bool = False
    overwrite_schema: bool = False
    sort_key: str | None = None
    max_rows_per_file: int = DEFAULT_ROWS_PER_FILE
    row_group_size: int | None = None
    commit_info: dict[str, str] = field(default_factory=dict)
    # streams
    starting_version: int | Literal["latest"] | None = None
    max_files_per_trigger: int | None = None
    max_rows_per_trigger: int | None = None
    skip_change_commits: bool = False
    txn_app_id: str | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> NCFOptions:
        """The typed options of Spark's string options (raises :class:`NCFOptionError`)."""
        read = _Reader(options)
        if read.text("versionAsOf") is not None and read.text("timestampAsOf") is not None:
            raise NCFTableError(f"{read.table}: give versionAsOf or timestampAsOf, not both")
        columns = read.text("columns")
        files = read.text("files")
        return cls(
            path=read.text("path"),
            version_as_of=read.integer("versionAsOf"),
            timestamp_as_of=read.text("timestampAsOf"),
            columns=None if columns is None else [c.strip() for c in columns.split(",") if c.strip()],
            file_column=read.text("fileColumn"),
            files=frozenset(files.split(",")) if files else None,
            max_rows_per_partition=read.integer("maxRowsPerPartition", positive=True)
            or DEFAULT_ROWS_PER_PARTITION,
            batch_size=read.integer("batchSize", positive=True),
            filter_pushdown=read.flag("filterPushdown"),
            merge_schema=read.flag("mergeSchema") or False,
            overwrite_schema=read.flag("overwriteSchema") or False,
            sort_key=read.text("sortKey"),
            max_rows_per_file=read.integer("maxRowsPerFile", positive=True) or DEFAULT_ROWS_PER_FILE,
            row_group_size=read.integer("rowGroupSize", positive=True),
            commit_info={
                key[len(COMMIT_INFO_PREFIX) :]: value
                for key, value in read.values.items()
                if key.startswith(COMMIT_INFO_PREFIX)
            },
            starting_version=_starting_version(read),
            max_files_per_trigger=read.integer("maxFilesPerTrigger", positive=True),
            max_rows_per_trigger=read.integer("maxRowsPerTrigger", positive=True),
            skip_change_commits=read.flag("skipChangeCommits") or False,
            txn_app_id=read.text("txnAppId") or read.text("checkpointLocation"),
        )


def _starting_version(read: _Reader) -> int | Literal["latest"] | None:
    value = read.text("startingVersion")
    if value is None:
        return None
    if value == "latest":
        return "latest"
    try:
        return int(value)
    except ValueError:
        raise NCFOptionError(read.table, "startingVersion", value, "a version number or 'latest'") from None
