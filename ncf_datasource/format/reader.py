"""The NCF reader: footer validation, row-group/page reads, filters and learned-index lookups."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import zstandard

from .columns import decode_dictionary, decode_page
from .encodings import CODEC_RAW, CODEC_ZSTD
from .errors import (
    CorruptData,
    NCFCorruptFileError,
    NCFError,
    NCFFilterError,
    NCFSchemaError,
    NCFVersionError,
)
from .filters import Expr, bind_filter
from .index import LearnedIndex, is_bytes_type
from .layout import (
    HEADER,
    KNOWN_FEATURES,
    MAGIC,
    TRAILER,
    VERSION_MAJOR,
    crc32c,
    footer_limit,
    parse_footer,
)
from .parallel import threads_pay
from .stats import physical
from .types import column_tags_of, schema_from_json

PAGE_CACHE_SIZE = 64
INDEX_READ_FRACTION = 0.25  # beyond this share of the rows, whole row groups decode faster than pages
_DECODE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    pa.ArrowException,
    zstandard.ZstdError,
)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="ncf-read")
        return _pool


@dataclass(frozen=True)
class ColumnChunk:
    """Footer entry of one column chunk (statistics in the stored JSON form)."""

    column: str
    offset: int
    length: int
    crc32c: int
    pages: tuple[tuple[int, ...], ...]  # (relative offset, length, crc) each
    dictionary: tuple[int, int, int, int] | None
    encodings: tuple[str, ...]
    stats: dict[str, Any]
    uncompressed_bytes: int


@dataclass(frozen=True)
class RowGroup:
    """Footer entry of one row group: rows ``first_row .. first_row + num_rows``."""

    index: int
    num_rows: int
    first_row: int
    page_rows: int
    columns: dict[str, ColumnChunk] = field(repr=False)

    def stats(self, column: str) -> dict[str, Any] | None:
        """Statistics of ``column`` in this row group, or None."""
        chunk = self.columns.get(column)
        return chunk.stats if chunk else None


def _int(value: Any, lo: int, hi: int, what: str) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise CorruptData(f"bad {what} {value!r}")
    return value


class NCFFile:
    """An open NCF file: schema, row groups with statistics, learned indexes, and reads.

    Example::

        with NCFFile("users.ncf") as f:
            f.schema, f.num_rows, [rg.num_rows for rg in f.row_groups]
            f.read_row_groups([0, 1], columns=["id", "email"])
            f.lookup(42)                    # rows whose sort key is 42
            f.range(date(2024, 1, 1), date(2024, 1, 31), column="day")

    Attributes: ``schema`` (Arrow, tags in field metadata), ``num_rows``, ``row_groups``
    (:class:`RowGroup` with per-column :class:`ColumnChunk` statistics), ``metadata``
    (file key/value), ``column_tags``, ``index_meta`` (learned indexes by column),
    ``version``, ``file_size``, ``footer`` (the raw footer document).
    ``verify_checksums=False`` skips page and chunk CRCs (the footer's is always checked).
    """

    def __init__(self, path: str | os.PathLike, *, verify_checksums: bool = True, use_threads: bool = True):
        self.path = os.fspath(path)
        self.verify_checksums = verify_checksums
        self.use_threads = use_threads
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise NCFError(f"{self.path}: cannot open: {exc.strerror}") from None
        self._dictionaries: dict[tuple[int, int], Any] = {}
        self._pages: OrderedDict[tuple[int, int, int], pa.Array] = OrderedDict()
        self._indexes: dict[str, LearnedIndex] = {}
        self._lock = threading.Lock()
        try:
            self._open()
        except BaseException:
            os.close(self._fd)
            raise

    # ------------------------------------------------------------ opening

    def _corrupt(self, problem: str) -> NCFCorruptFileError:
        return NCFCorruptFileError(f"{self.path}: {problem}")

    def _read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise self._corrupt(f"unexpected end of file at byte {offset + len(data)}")
        return data

    def _open(self) -> None:
        self.file_size = size = os.fstat(self._fd).st_size
        if size == 0:
            raise self._corrupt("empty file (0 bytes), not an NCF file")
        if size < HEADER.size + TRAILER.size:
            raise self._corrupt(f"file too short ({size} bytes) to be an NCF file, truncated?")
        magic, major, minor = HEADER.unpack(self._read(0, HEADER.size))
        if magic != MAGIC:
            raise self._corrupt(f"not an NCF file (magic {magic!r}, expected {MAGIC!r})")
        footer_len, footer_crc, t_major, t_minor, codec, t_magic = TRAILER.unpack(
            self._read(size - TRAILER.size, TRAILER.size)
        )
        if t_magic != MAGIC:
            raise self._corrupt("bad trailing magic: truncated or not an NCF file")
        if (t_major, t_minor) != (major, minor):
            raise self._corrupt(
                f"header version {major}.{minor} differs from trailer version {t_major}.{t_minor}"
            )
        if major > VERSION_MAJOR:
            raise NCFVersionError(
                f"{self.path}: NCF format version {major}.{minor} is newer than this reader "
                f"({VERSION_MAJOR}.x)"
            )
        if major != VERSION_MAJOR:
            raise NCFVersionError(
                f"{self.path}: NCF format version {major}.{minor} is not supported by this reader"
            )
        self.data_end = size - TRAILER.size - footer_len
        if footer_len == 0 or self.data_end < HEADER.size:
            raise self._corrupt(f"footer length {footer_len} does not fit in the file ({size} bytes)")
        if codec not in (CODEC_RAW, CODEC_ZSTD):
            raise self._corrupt(f"unknown footer codec {codec}")
        payload = self._read(self.data_end, footer_len)
        if crc32c(payload) != footer_crc:
            raise self._corrupt("footer checksum mismatch")
        try:
            footer = parse_footer(payload, codec, footer_limit(size))
            self._load_footer(footer, minor)
        except NCFVersionError as exc:
            raise NCFVersionError(f"{self.path}: {exc}") from None
        except (CorruptData, *_DECODE_ERRORS, AttributeError, RecursionError) as exc:
            raise self._corrupt(f"invalid footer: {exc}") from None

    def _load_footer(self, footer: dict[str, Any], minor: int) -> None:
        if not isinstance(footer, dict) or footer.get("format") != "NCF":
            raise CorruptData("footer is not an NCF footer")
        unknown = set(footer.get("required_features") or []) - KNOWN_FEATURES
        if unknown:
            raise NCFVersionError(f"file requires features unknown to this reader: {sorted(unknown)}")
        self.footer = footer
        self.version = f"{VERSION_MAJOR}.{minor}"
        metadata = footer.get("metadata") or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise CorruptData("file metadata must map text to text")
        self.metadata: dict[str, str] = dict(metadata)
        self.schema: pa.Schema = schema_from_json(footer["schema"], self.metadata)
        self.column_tags = column_tags_of(self.schema)
        self.num_rows = _int(footer["num_rows"], 0, 1 << 62, "row count")
        names = self.schema.names
        groups, row = [], 0
        for gi, g in enumerate(footer["row_groups"]):
            n = _int(g["num_rows"], 0, 1 << 62, "row group size")
            page_rows = _int(g["page_rows"], 8, 1 << 40, "page size")
            if _int(g["first_row"], 0, 1 << 62, "first row") != row or len(g["columns"]) != len(names):
                raise CorruptData(f"row group {gi} does not match the schema or row count")
            n_pages = -(-n // page_rows)
            chunks = {}
            for name, c in zip(names, g["columns"]):
                offset = _int(c["offset"], HEADER.size, self.data_end, "chunk offset")
                length = _int(c["length"], 0, self.data_end - offset, "chunk length")
                pages = tuple(
                    tuple(_int(x, 0, 1 << 32 if i == 2 else length, "page entry") for i, x in enumerate(p))
                    for p in c["pages"]
                )
                if len(pages) != n_pages or any(len(p) != 3 or p[0] + p[1] > length for p in pages):
                    raise CorruptData(f"bad page table for column {name!r} in row group {gi}")
                d = c.get("dictionary")
                if d is not None:
                    d = (
                        _int(d[0], 0, length, "dictionary offset"),
                        _int(d[1], 0, length, "dictionary length"),
                        _int(d[2], 0, 1 << 32, "dictionary crc"),
                        _int(d[3], 0, n, "dictionary size"),
                    )
                    if d[0] + d[1] > length:
                        raise CorruptData(f"bad dictionary entry for column {name!r}")
                stats = c.get("stats") or {}
                if not isinstance(stats, dict):
                    raise CorruptData("bad statistics")
                chunks[name] = ColumnChunk(
                    name,
                    offset,
                    length,
                    _int(c["crc32c"], 0, 1 << 32, "crc"),
                    pages,
                    d,
                    tuple(map(str, c.get("encodings") or ())),
                    stats,
                    int(c.get("uncompressed_bytes") or 0),
                )
            groups.append(RowGroup(gi, n, row, page_rows, chunks))
            row += n
        if row != self.num_rows:
            raise CorruptData("row groups do not add up to the row count")
        self.row_groups: list[RowGroup] = groups
        self.index_meta: dict[str, dict[str, Any]] = {}
        for meta in footer.get("indexes") or []:
            if meta.get("kind") != "piecewise_linear" or meta.get("column") not in names:
                continue  # an index kind this reader does not know is skipped, never fatal
            off, length = (_int(x, 0, self.data_end, "index block") for x in meta["block"][:2])
            _int(meta["block"][2], 0, 1 << 32, "index crc")
            start, stop = (_int(x, 0, self.num_rows, "index rows") for x in meta["rows"])
            if (
                off + length > self.data_end
                or start > stop
                or _int(meta["segments"], 0, 1 << 40, "segments") > length
            ):
                raise CorruptData("bad index entry")
            self.index_meta[meta["column"]] = meta

    # ------------------------------------------------------------ basic properties

    @property
    def num_row_groups(self) -> int:
        return len(self.row_groups)

    @property
    def sort_key(self) -> str | None:
        """The declared sort key, if the writer was given one."""
        return (self.footer.get("options") or {}).get("sort_key")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> NCFFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"NCFFile({self.path!r}, rows={self.num_rows}, row_groups={self.num_row_groups})"

    # ------------------------------------------------------------ decoding

    def _columns(self, columns: Sequence[str] | None) -> list[str]:
        if columns is None:
            return list(self.schema.names)
        columns = list(columns)
        unknown = [c for c in columns if c not in self.schema.names]
        if unknown:
            raise NCFSchemaError(f"{self.path}: unknown columns {unknown}; the file has {self.schema.names}")
        return columns

    def _where(self, rg: int, column: str) -> str:
        return f"{self.path}: column {column!r}, row group {rg}"

    def _dictionary(self, rg: RowGroup, column: str, chunk_bytes: bytes | None = None):
        key = (rg.index, self.schema.get_field_index(column))
        cached = self._dictionaries.get(key)
        if cached is not None:
            return cached
        chunk = rg.columns[column]
        if chunk.dictionary is None:
            return None
        off, length, crc, count = chunk.dictionary
        if chunk_bytes is not None:
            block = chunk_bytes[off : off + length]
        else:
            block = self._read(chunk.offset + off, length)
            if self.verify_checksums and crc32c(block) != crc:
                raise CorruptData("dictionary checksum mismatch")
        t = self.schema.field(column).type
        dictionary = decode_dictionary(t, memoryview(block), count)
        if len(dictionary) != count:
            raise CorruptData("dictionary size differs from the footer")
        self._dictionaries[key] = dictionary
        return dictionary

    def _chunk_pages(self, rg: RowGroup, column: str) -> list[tuple]:
        """One column chunk read and checked, as jobs for :meth:`_decode_page_job` (one per page)."""
        with self._context(rg, column):
            chunk = rg.columns[column]
            data = self._read(chunk.offset, chunk.length)
            if self.verify_checksums and crc32c(data) != chunk.crc32c:
                raise CorruptData("column chunk checksum mismatch")
            t = self.schema.field(column).type
            dictionary = self._dictionary(rg, column, data)
            view = memoryview(data)
            return [
                (
                    rg,
                    column,
                    t,
                    view[off : off + length],
                    min(rg.page_rows, rg.num_rows - i * rg.page_rows),
                    dictionary,
                )
                for i, (off, length, _) in enumerate(chunk.pages)
            ]

    def _decode_page_job(self, job: tuple) -> pa.Array:
        rg, column, t, view, n, dictionary = job
        with self._context(rg, column):
            return decode_page(t, view, n, dictionary)

    @contextlib.contextmanager
    def _context(self, rg: RowGroup, column: str):
        """Re-raise decoding errors as one-line errors naming the file, column and row group."""
        try:
            yield
        except NCFVersionError as exc:
            raise NCFVersionError(f"{self._where(rg.index, column)}: {exc}") from None
        except (CorruptData, *_DECODE_ERRORS) as exc:
            raise NCFCorruptFileError(f"{self._where(rg.index, column)}: {exc}") from None

    def _page(self, rg: RowGroup, column: str, i: int) -> pa.Array:
        """One decoded page (cached: lookups read the same pages repeatedly)."""
        key = (rg.index, self.schema.get_field_index(column), i)
        with self._lock:
            cached = self._pages.get(key)
            if cached is not None:
                self._pages.move_to_end(key)
                return cached
        with self._context(rg, column):
            chunk = rg.columns[column]
            off, length, crc = chunk.pages[i]
            data = self._read(chunk.offset + off, length)
            if self.verify_checksums and crc32c(data) != crc:
                raise CorruptData(f"page {i} checksum mismatch")
            n = min(rg.page_rows, rg.num_rows - i * rg.page_rows)
            arr = decode_page(
                self.schema.field(column).type, memoryview(data), n, self._dictionary(rg, column)
            )
        with self._lock:
            self._pages[key] = arr
            while len(self._pages) > PAGE_CACHE_SIZE:
                self._pages.popitem(last=False)
        return arr

    def _map(self, func, items: list, threads: bool = True) -> list:
        if threads and self.use_threads and len(items) > 1:
            return list(_shared_pool().map(func, items))
        return [func(x) for x in items]

    def _table(self, groups: list[RowGroup], columns: list[str]) -> pa.Table:
        tasks = [(rg, c) for c in columns for rg in groups]
        threads = threads_pay(sum(rg.columns[c].length for rg, c in tasks))
        jobs = [job for chunk in self._map(lambda t: self._chunk_pages(*t), tasks, threads) for job in chunk]
        decoded = iter(self._map(self._decode_page_job, jobs, threads))  # pages in parallel: big columns too
        per_column = len(jobs) // max(len(columns), 1)
        arrays = [
            pa.chunked_array([next(decoded) for _ in range(per_column)], type=self.schema.field(c).type)
            for c in columns
        ]
        return pa.Table.from_arrays(
            arrays, schema=pa.schema([self.schema.field(c) for c in columns], metadata=self.schema.metadata)
        )

    def _empty(self, columns: list[str]) -> pa.Table:
        return pa.schema([self.schema.field(c) for c in columns], metadata=self.schema.metadata).empty_table()

    # ------------------------------------------------------------ reads

    def read(self, columns: Sequence[str] | None = None, filter: Any = None) -> pa.Table:
        """Read the whole file (or ``columns``), keeping only rows that match ``filter``."""
        return self.read_row_groups(range(self.num_row_groups), columns, filter)

    def read_row_groups(
        self, indices: Sequence[int], columns: Sequence[str] | None = None, filter: Any = None
    ) -> pa.Table:
        """Read the given row groups, in the given order.

        With a ``filter`` (any form of :mod:`ncf_datasource.format.filters`) row groups whose
        statistics exclude a match are skipped, a learned index on a filtered key narrows the
        rows read, and the result holds exactly the matching rows.
        """
        columns = self._columns(columns)
        groups = []
        for i in indices:
            if not isinstance(i, (int, np.integer)) or not 0 <= i < self.num_row_groups:
                raise NCFError(f"{self.path}: no row group {i!r} (the file has {self.num_row_groups})")
            groups.append(self.row_groups[i])
        expr = self._bind(filter)
        if expr is None:
            return self._table(groups, columns) if groups else self._empty(columns)
        needed = columns + sorted(expr.columns() - set(columns))
        spans = self._index_spans(expr, groups)
        if spans is not None and sum(b - a for a, b in spans) <= INDEX_READ_FRACTION * sum(
            rg.num_rows for rg in groups
        ):
            tables = [self.read_rows(a, b, needed) for a, b in spans]
        else:
            kept = [rg for rg in groups if expr.might_match(rg.stats)]
            tables = [self._table(kept, needed)] if kept else []
        table = pa.concat_tables(tables) if tables else self._empty(needed)
        return self._apply(table, expr).select(columns)

    def _bind(self, filter: Any) -> Expr | None:
        try:
            return bind_filter(filter, self.schema)
        except NCFFilterError as exc:
            raise NCFFilterError(f"{self.path}: {exc}") from None

    def _apply(self, table: pa.Table, expr: Expr) -> pa.Table:
        try:
            return table.filter(expr.to_arrow())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise NCFFilterError(f"{self.path}: cannot evaluate filter {expr!r}: {exc}") from None

    def iter_batches(
        self,
        batch_size: int | None = None,
        columns: Sequence[str] | None = None,
        filter: Any = None,
        row_groups: Sequence[int] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Yield record batches row group by row group (at most ``batch_size`` rows each)."""
        for i in range(self.num_row_groups) if row_groups is None else row_groups:
            table = self.read_row_groups([i], columns, filter)
            yield from table.to_batches(max_chunksize=batch_size)

    def read_rows(self, start: int, stop: int, columns: Sequence[str] | None = None) -> pa.Table:
        """Rows ``start .. stop`` (file positions), decoding only the pages that hold them."""
        columns = self._columns(columns)
        start, stop = max(0, start), min(self.num_rows, stop)
        if start >= stop:
            return self._empty(columns)
        arrays = [self._column_rows(c, start, stop) for c in columns]
        return pa.Table.from_arrays(
            arrays, schema=pa.schema([self.schema.field(c) for c in columns], metadata=self.schema.metadata)
        )

    def _column_rows(self, column: str, start: int, stop: int) -> pa.ChunkedArray:
        parts = []
        for rg in self.row_groups:
            lo, hi = max(start, rg.first_row), min(stop, rg.first_row + rg.num_rows)
            if lo >= hi:
                continue
            for p in range((lo - rg.first_row) // rg.page_rows, (hi - 1 - rg.first_row) // rg.page_rows + 1):
                page_start = rg.first_row + p * rg.page_rows
                page = self._page(rg, column, p)
                a, b = max(lo, page_start) - page_start, min(hi, page_start + len(page)) - page_start
                parts.append(page.slice(a, b - a))
        return pa.chunked_array(parts, type=self.schema.field(column).type)

    # ------------------------------------------------------------ learned index

    def index(self, column: str | None = None) -> LearnedIndex | None:
        """The learned index of ``column`` (default: the sort key, else the first index)."""
        if column is None:
            column = self.sort_key if self.sort_key in self.index_meta else next(iter(self.index_meta), None)
        if column is None or column not in self.index_meta:
            return None
        with self._lock:
            cached = self._indexes.get(column)
        if cached is not None:
            return cached
        meta = self.index_meta[column]
        off, length, crc = meta["block"]
        block = self._read(off, length)
        try:
            if crc32c(block) != crc:
                raise CorruptData("index block checksum mismatch")
            index = LearnedIndex.from_block(meta, memoryview(block))
        except (CorruptData, *_DECODE_ERRORS) as exc:
            raise NCFCorruptFileError(f"{self.path}: learned index of {column!r}: {exc}") from None
        with self._lock:
            self._indexes[column] = index
        return index

    def _read_keys(self, column: str):
        t = self.schema.field(column).type

        def read(lo: int, hi: int):
            arr = self._column_rows(column, lo, hi).combine_chunks()
            if is_bytes_type(t):
                return arr.to_pylist()
            return np.frombuffer(arr.buffers()[1], dtype=f"<i{t.bit_width // 8}")[
                arr.offset : arr.offset + len(arr)
            ]

        return read

    def _key_column(self, column: str | None) -> str:
        if column is not None:
            self._columns([column])
            return column
        if self.sort_key is not None:
            return self.sort_key
        if self.index_meta:
            return next(iter(self.index_meta))
        raise NCFError(f"{self.path}: the file has no sort key; pass column=")

    def _span(self, index: LearnedIndex, lo: Any, hi: Any) -> tuple[int, int]:
        read = self._read_keys(index.column)
        a = index.start if lo is None else index.bound(self._key(index.column, lo), "left", read)
        b = index.stop if hi is None else index.bound(self._key(index.column, hi), "right", read)
        return a, max(a, b)

    def _key(self, column: str, value: Any) -> Any:
        """``value`` in the physical form of ``column``'s keys; NCFFilterError if it does not fit."""
        t = self.schema.field(column).type
        try:
            pa.scalar(value, type=t)
            return physical(value, t)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise NCFFilterError(
                f"{self.path}: key {value!r} does not fit column {column!r} of type {t}: {exc}"
            ) from None

    def lookup(self, key: Any, column: str | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Rows whose ``column`` (default: the sort key) equals ``key``; ``None`` finds nulls.

        Uses the learned index when there is one, else a filtered scan.
        """
        column = self._key_column(column)
        if key is None:
            return self.read(columns, (column, "is null"))
        self._key(column, key)
        index = self.index(column)
        if index is None:
            return self.read(columns, (column, "=", key))
        a, b = self._span(index, key, key)
        return self.read_rows(a, b, columns)

    def range(
        self, lo: Any, hi: Any, column: str | None = None, columns: Sequence[str] | None = None
    ) -> pa.Table:
        """Rows with ``lo <= column <= hi`` (either bound may be None), in file order."""
        column = self._key_column(column)
        index = self.index(column)
        if index is None:
            parts = [(column, ">=", lo)] if lo is not None else []
            parts += [(column, "<=", hi)] if hi is not None else []
            return self.read(columns, parts or (column, "is not null"))
        a, b = self._span(index, lo, hi)
        return self.read_rows(a, b, columns)

    def _index_spans(self, expr: Expr, groups: list[RowGroup]) -> list[tuple[int, int]] | None:
        """Row spans (restricted to ``groups``) that a learned index proves hold all matches."""
        for column in self.index_meta:
            intervals = expr.intervals(column)
            if intervals is None:
                continue
            index = self.index(column)
            if index is None:
                continue
            try:
                spans = sorted(self._span(index, lo, hi) for lo, hi in intervals)
            except NCFFilterError:
                continue
            merged: list[list[int]] = []
            for a, b in spans:
                if merged and a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                elif a < b:
                    merged.append([a, b])
            out = []
            for rg in groups:
                for a, b in merged:
                    lo, hi = max(a, rg.first_row), min(b, rg.first_row + rg.num_rows)
                    if lo < hi:
                        out.append((lo, hi))
            return out
        return None


def read_table(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    filter: Any = None,
    *,
    verify_checksums: bool = True,
    use_threads: bool = True,
) -> pa.Table:
    """Read an NCF file into a :class:`pyarrow.Table` (like ``pyarrow.parquet.read_table``).

    ``filter`` takes tuples, DNF lists or expressions (see :mod:`ncf_datasource.format.filters`)::

        read_table("users.ncf", columns=["id", "email"], filter=[("id", ">=", 10), ("country", "in", ["FR"])])
    """
    with NCFFile(path, verify_checksums=verify_checksums, use_threads=use_threads) as f:
        return f.read(columns, filter)


def iter_batches(
    path: str | os.PathLike,
    batch_size: int | None = 65536,
    columns: Sequence[str] | None = None,
    filter: Any = None,
    *,
    verify_checksums: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Yield the (filtered) rows of an NCF file as record batches of at most ``batch_size`` rows."""
    with NCFFile(path, verify_checksums=verify_checksums) as f:
        yield from f.iter_batches(batch_size, columns, filter)
