"""The NCF writer: streaming, atomic, choosing encodings per column chunk from the data."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import columns as colmod
from .encodings import Encoding, Plan, parse_plan
from .errors import NCFSchemaError, NCFWriterError
from .index import LearnedIndex, indexable, key_floats
from .layout import VERSION_MAJOR, VERSION_MINOR, crc32c, footer_bytes, header
from .parallel import threads_pay
from .stats import chunk_stats
from .types import apply_tags, schema_to_json

DEFAULT_ROW_GROUP_SIZE = 1 << 20
DEFAULT_PAGE_SIZE = 1 << 15
DEFAULT_ZSTD_LEVEL = 3
DEFAULT_EPSILON = 32
DEFAULT_MAX_DECODE_COST = 3.0
MAX_AUTO_INDEXES = 4
SORT_PROBE = 1024  # values checked before a whole column is checked for order
CREATED_BY = "ncf_datasource 0.1 (NeuroLake on Spark)"


class _KeyTracker:
    """Follows one candidate key column across row groups: still sorted? nulls only at the ends?"""

    def __init__(self, name: str):
        self.name = name
        self.sorted = True
        self.phase = 0  # 0: leading nulls, 1: values, 2: trailing nulls
        self.start = 0
        self.rows = 0
        self.chunks: list[pa.Array] = []
        self.last = None

    def update(self, arr: pa.Array) -> None:
        offset, self.rows = self.rows, self.rows + len(arr)
        if not self.sorted or not len(arr):
            return
        if arr.null_count:
            nn = np.flatnonzero(arr.is_valid().to_numpy(zero_copy_only=False))
            if not len(nn):
                self.phase = 2 if self.phase else 0
                return
            a, b, valid = int(nn[0]), int(nn[-1]), len(nn)
        else:
            a, b, valid = 0, len(arr) - 1, len(arr)
        if b - a + 1 != valid or self.phase == 2 or (a > 0 and self.phase == 1):
            self._drop()
            return
        if self.phase == 0:
            self.start = offset + a
        values = arr.slice(a, b - a + 1)
        # an evenly strided subset first: unsorted columns are mostly told apart by it cheaply
        probe = values.take(np.arange(0, len(values), max(1, len(values) // SORT_PROBE)))
        ordered = _non_decreasing(probe) and _non_decreasing(values)
        if not ordered or (self.last is not None and pc.less(values[0], self.last).as_py()):
            self._drop()
            return
        self.last = values[-1]
        self.chunks.append(values)
        self.phase = 2 if b < len(arr) - 1 else 1

    def _drop(self) -> None:
        self.sorted, self.chunks = False, []

    def build(self, epsilon: int) -> LearnedIndex | None:
        if not self.sorted or not self.chunks:
            return None
        keys = np.concatenate([key_floats(c) for c in self.chunks])
        return LearnedIndex.build(self.name, keys, self.start, epsilon)


class NCFWriter:
    """Write an NCF file from Arrow batches; the file appears under ``path`` only on close.

    Rows are buffered up to ``row_group_size`` and then encoded as one row group. Options:

    * ``row_group_size`` (rows, default 1 048 576), ``page_size`` (rows per page, multiple
      of 8, default 32 768): the read units of row groups and of partial reads;
    * ``zstd_level`` (default 3) applied after every encoding;
    * ``max_decode_cost`` (default 3.0): encodings whose relative decode cost exceeds it are
      not tried (PLAIN=1, FOR=1.2, DELTA/RLE/SPLIT/PATCHED=1.5, CODES=2, ALP/TOKENS=2.5,
      BITPACK=3);
    * ``encodings``: ``{column: "plain"|"for"|"bitpack"|"delta"|"rle"|"patched"|"codes"|"split"|
      "alp"|"strings"|"tokens"|"bitmap"}`` forces a top-level column's value encoding where it
      applies ("dict" and "scaled", the v1.0 names, mean "codes" and "alp"); nested streams
      are still chosen from the data;
    * ``sort_key``: column declared sorted, indexed by a learned index when it really is;
      ``learned_index`` (default True) also indexes up to 4 columns detected as sorted;
      ``index_epsilon`` (default 32) is the model's error bound in rows;
    * ``column_tags``: ``{column: {"pii": "email", "owner": "crm", "description": ...}}``;
    * ``metadata``: file-level ``{key: value}`` text metadata;
    * ``use_threads`` (default True): encode columns and pages in parallel, for row groups of
      at least 1 MiB while the machine has idle cores (see :func:`.parallel.threads_pay`).

    Example::

        with NCFWriter("events.ncf", table.schema, sort_key="id") as w:
            for batch in batches:
                w.write_batch(batch)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        schema: pa.Schema,
        *,
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        page_size: int = DEFAULT_PAGE_SIZE,
        zstd_level: int = DEFAULT_ZSTD_LEVEL,
        max_decode_cost: float = DEFAULT_MAX_DECODE_COST,
        encodings: dict[str, str] | None = None,
        sort_key: str | None = None,
        learned_index: bool = True,
        index_epsilon: int = DEFAULT_EPSILON,
        column_tags: dict[str, dict[str, str]] | None = None,
        metadata: dict[str, str] | None = None,
        use_threads: bool = True,
    ):
        if not isinstance(row_group_size, int) or row_group_size < 1:
            raise NCFWriterError(f"row_group_size must be a positive integer, got {row_group_size!r}")
        if not isinstance(page_size, int) or page_size < 8 or page_size % 8:
            raise NCFWriterError(f"page_size must be a positive multiple of 8, got {page_size!r}")
        if not -7 <= zstd_level <= 22:
            raise NCFWriterError(f"zstd_level must be in -7..22, got {zstd_level!r}")
        if index_epsilon < 1:
            raise NCFWriterError(f"index_epsilon must be at least 1, got {index_epsilon!r}")
        self.path = os.fspath(path)
        self.schema = apply_tags(schema, column_tags)
        self._fields = schema_to_json(self.schema)
        self._row_group_size, self._page_size, self._level = row_group_size, page_size, zstd_level
        self._max_cost, self._epsilon = max_decode_cost, index_epsilon
        self._overrides = self._parse_overrides(encodings or {})
        self._metadata = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
        self._metadata.update({str(k): str(v) for k, v in (metadata or {}).items()})
        self._sort_key = sort_key
        self._notes: list[str] = []
        if sort_key is not None:
            if sort_key not in self.schema.names:
                raise NCFWriterError(f"sort_key {sort_key!r} is not a column")
            if not indexable(self.schema.field(sort_key).type):
                raise NCFWriterError(
                    f"sort_key {sort_key!r} has type {self.schema.field(sort_key).type}, "
                    "which cannot be indexed"
                )
            self._trackers = [_KeyTracker(sort_key)]
        elif learned_index:
            self._trackers = [_KeyTracker(f.name) for f in self.schema if indexable(f.type)]
        else:
            self._trackers = []
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1) if use_threads else None
        self._parallel = False
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._row_groups: list[dict[str, Any]] = []
        self._rows = 0
        self._closed = False
        directory = os.path.dirname(os.path.abspath(self.path))
        self._tmp = os.path.join(directory, f".{os.path.basename(self.path)}.{uuid.uuid4().hex}.tmp")
        try:
            self._file = open(self._tmp, "xb")  # noqa: SIM115 (open until close() or abort())
        except OSError as exc:
            raise NCFWriterError(f"{self.path}: cannot create the file: {exc.strerror}") from None
        self._file.write(header())
        self._pos = len(header())

    def _parse_overrides(self, encodings: dict[str, str]) -> dict[str, Plan]:
        out = {}
        for column, name in encodings.items():
            if column not in self.schema.names:
                raise NCFWriterError(f"encodings names unknown column {column!r}")
            try:
                out[column] = parse_plan(name)
            except ValueError as exc:
                raise NCFWriterError(f"encoding {name!r} for column {column!r}: {exc}") from None
        return out

    # ------------------------------------------------------------ public

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """Buffer a record batch; full row groups are encoded and written as they fill."""
        self.write_table(pa.Table.from_batches([batch]))

    def write_table(self, table: pa.Table) -> None:
        """Buffer a table; full row groups are encoded and written as they fill."""
        if self._closed:
            raise NCFWriterError(f"{self.path}: write after close")
        if table.schema.names != self.schema.names or table.schema.types != self.schema.types:
            raise NCFSchemaError(
                f"{self.path}: batch schema {table.schema.types} does not match "
                f"the writer schema {self.schema.types}"
            )
        try:
            self._pending.append(table)
            self._pending_rows += table.num_rows
            while self._pending_rows >= self._row_group_size:
                self._flush(self._row_group_size)
        except BaseException:
            self.abort()
            raise

    def close(self) -> None:
        """Write the remaining rows, indexes and footer, fsync, and rename into place."""
        if self._closed:
            return
        try:
            if self._pending_rows:
                self._flush(self._pending_rows)
            indexes = self._write_indexes()
            footer = {
                "format": "NCF",
                "version": [VERSION_MAJOR, VERSION_MINOR],
                "required_features": [],
                "created_by": CREATED_BY,
                "num_rows": self._rows,
                "schema": self._fields,
                "metadata": self._metadata,
                "options": {
                    "row_group_size": self._row_group_size,
                    "page_size": self._page_size,
                    "zstd_level": self._level,
                    "sort_key": self._sort_key,
                },
                "row_groups": self._row_groups,
                "indexes": indexes,
                "notes": self._notes,
            }
            payload, trailer = footer_bytes(footer, self._level, self._pos)
            self._file.write(payload)
            self._file.write(trailer)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.path)
            fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        except BaseException:
            self.abort()
            raise
        finally:
            self._shutdown()

    def abort(self) -> None:
        """Drop everything written so far; the final path is never touched."""
        self._closed = True
        self._file.close()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass
        self._shutdown()

    def _shutdown(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> NCFWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # ------------------------------------------------------------ internals

    def _flush(self, rows: int) -> None:
        table = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
        group, rest = table.slice(0, rows), table.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows
        arrays = [group.column(i).combine_chunks() for i in range(group.num_columns)]
        self._parallel = self._pool is not None and threads_pay(sum(a.nbytes for a in arrays))
        jobs = [(arr, self._overrides.get(name)) for arr, name in zip(arrays, group.schema.names)]
        plans = self._map(lambda job: self._plan_chunk(*job), jobs)
        # every page of every column is one task, so that one big column uses every core
        pages = [(arr, plan, start) for arr, (plan, _) in zip(arrays, plans) for start in self._starts(arr)]
        encoded = iter(self._map(self._encode_page, pages))
        chunks = []
        for arr, (_, meta) in zip(arrays, plans):
            parts = [meta.pop("block")] if meta["dictionary"] else []
            pos = len(parts[0]) if parts else 0
            for _ in self._starts(arr):
                page = next(encoded)
                parts.append(page)
                meta["pages"].append([pos, len(page), crc32c(page)])
                pos += len(page)
            blob = b"".join(parts)
            meta.update(offset=self._pos, length=len(blob), crc32c=crc32c(blob), compressed_bytes=len(blob))
            self._file.write(blob)
            self._pos += len(blob)
            chunks.append(meta)
        for tracker in self._trackers:
            tracker.update(arrays[group.schema.get_field_index(tracker.name)])
        self._row_groups.append(
            {"num_rows": rows, "first_row": self._rows, "page_rows": self._page_size, "columns": chunks}
        )
        self._rows += rows

    def _map(self, func, items: list) -> list:
        if self._parallel and self._pool is not None and len(items) > 1:
            return list(self._pool.map(func, items))
        return [func(x) for x in items]

    def _encode_page(self, job: tuple) -> bytes:
        arr, plan, start = job
        return colmod.encode_page(arr.slice(start, self._page_size), plan, self._level, start)

    def _starts(self, arr: pa.Array) -> range:
        return range(0, len(arr), self._page_size)

    def _plan_chunk(self, arr: pa.Array, override: Plan | None) -> tuple[list, dict[str, Any]]:
        """The encodings of one column chunk, its dictionary block and its footer entry
        (positions, sizes and pages are filled in once its pages are encoded)."""
        samples = colmod.sample_slices(arr)
        plan = colmod.choose(arr, samples, self._level, self._max_cost, override)
        values = plan[1] if len(plan) > 1 else None
        meta: dict[str, Any] = {"dictionary": None}
        if values is not None and values.dictionary is not None:
            block = values.block or colmod.encode_dictionary(values.dictionary, self._level)
            meta["block"] = block
            meta["dictionary"] = [0, len(block), crc32c(block), len(values.dictionary)]
        meta.update(
            encodings=[c.name() for c in plan],
            pages=[],
            stats=chunk_stats(
                arr,
                pa.concat_arrays(samples),
                values.dictionary if values is not None and values.encoding == Encoding.CODES else None,
            ),
            uncompressed_bytes=arr.nbytes,
        )
        return plan, meta

    def _write_indexes(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for tracker in self._trackers:
            declared = tracker.name == self._sort_key
            if not tracker.sorted:
                if declared:
                    self._notes.append(f"sort_key {tracker.name!r} is not sorted: no learned index")
                continue
            if not declared and (
                len(out) >= MAX_AUTO_INDEXES or not tracker.chunks or _constant(tracker.chunks)
            ):
                continue
            index = tracker.build(self._epsilon)
            if index is None:
                continue
            block = index.to_block(self._level)
            meta = index.describe()
            meta["block"] = [self._pos, len(block), crc32c(block)]
            meta["declared"] = declared
            self._file.write(block)
            self._pos += len(block)
            out.append(meta)
        return out


def _non_decreasing(values: pa.Array) -> bool:
    return len(values) < 2 or pc.all(pc.less_equal(values[:-1], values[1:])).as_py()


def _constant(chunks: list[pa.Array]) -> bool:
    return pc.equal(chunks[0][0], chunks[-1][-1]).as_py()


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a folder's entries to disk (after a rename into it); best effort where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_table(table: pa.Table, path: str | os.PathLike, **options: Any) -> None:
    """Write ``table`` to ``path`` atomically as one NCF file (options: see :class:`NCFWriter`).

    Example::

        ncf_datasource.write_table(t, "users.ncf", sort_key="id",
                                   column_tags={"email": {"pii": "email", "owner": "crm"}},
                                   metadata={"source": "crm export"})
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    with NCFWriter(path, table.schema, **options) as writer:
        writer.write_table(table)
