"""Column chunks: Arrow arrays <-> pages of encoded streams, and the per-chunk encoding choice.

An Arrow column is walked depth-first; every node contributes a validity stream, then its
own values stream (leaves: values; lists and maps: lengths), then its children's streams.
The order and number of streams depend only on the type, so a page needs no stream names.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .encodings import (
    DECODE_COST,
    Encoding,
    Stream,
    declared_count,
    decode_bitmap,
    decode_bytes,
    decode_ints,
    encode_bitmap,
    encode_bytes,
    encode_ints,
    pack_stream,
    parse_stream,
    scale_of,
)
from .errors import CorruptData

_COUNT = struct.Struct("<H")
SAMPLE_SLICES = 4
SAMPLE_SLICE_ROWS = 4096
DICT_MAX_ENTRIES = 1 << 16

# stream kinds
VALIDITY, BOOL, INT, FLOAT, DECIMAL, BYTES, LENGTHS = (
    "validity",
    "bool",
    "int",
    "float",
    "decimal",
    "bytes",
    "lengths",
)

CANDIDATES = {
    BOOL: (Encoding.BITMAP, Encoding.RLE),
    INT: (Encoding.PLAIN, Encoding.FOR, Encoding.DELTA, Encoding.RLE, Encoding.BITPACK, Encoding.DICT),
    FLOAT: (Encoding.PLAIN, Encoding.SPLIT, Encoding.SCALED, Encoding.RLE, Encoding.DICT),
    DECIMAL: (Encoding.PLAIN, Encoding.FOR, Encoding.DELTA, Encoding.RLE, Encoding.BITPACK),
    BYTES: (Encoding.STRINGS, Encoding.DICT),
    LENGTHS: (Encoding.FOR, Encoding.DELTA, Encoding.RLE, Encoding.PLAIN),
}
_LENGTH_ENCODINGS = (Encoding.FOR, Encoding.DELTA, Encoding.RLE)
_INNER_ENCODINGS = (Encoding.FOR, Encoding.BITPACK)


@dataclass
class Choice:
    """The encoding of one stream position in a chunk: ``sub`` is the inner encoding of
    STRINGS (lengths), DELTA (differences) and SCALED (integers), ``scale`` the exponent
    SCALED found on the sample, ``dictionary`` the chunk dictionary of DICT and, for
    strings, ``indices`` the chunk's rows encoded against it (one hash pass per chunk)."""

    encoding: Encoding
    sub: Encoding = Encoding.FOR
    dictionary: Any = None
    indices: np.ndarray | None = None
    scale: int = 0
    validity: bool = False

    def name(self) -> str:
        if self.validity:
            return "validity"
        if self.encoding in (Encoding.STRINGS, Encoding.DELTA, Encoding.SCALED):
            return f"{self.encoding.name.lower()}[{self.sub.name.lower()}]"
        return self.encoding.name.lower()


def _validity(arr: pa.Array) -> np.ndarray | None:
    if arr.null_count == 0:
        return None
    return arr.is_valid().to_numpy(zero_copy_only=False)


def _fixed(arr: pa.Array, dtype: str, valid: np.ndarray | None, width: int = 1) -> np.ndarray:
    values = np.frombuffer(arr.buffers()[1], dtype=dtype)[
        arr.offset * width : (arr.offset + len(arr)) * width
    ]
    if valid is not None:
        values = np.where(np.repeat(valid, width) if width > 1 else valid, values, 0).astype(
            dtype, copy=False
        )
    return values


def offsets_of(arr: pa.Array) -> np.ndarray:
    """The int64 offsets of a (possibly sliced) string, binary or list array."""
    t = arr.type
    large = pa.types.is_large_string(t) or pa.types.is_large_binary(t) or pa.types.is_large_list(t)
    dt = "<i8" if large else "<i4"
    return np.frombuffer(arr.buffers()[1], dtype=dt)[arr.offset : arr.offset + len(arr) + 1].astype(np.int64)


def flatten(arr: pa.Array, out: list) -> list:
    """Append ``(kind, payload)`` logical streams of ``arr`` (depth-first) to ``out``."""
    t = arr.type
    if pa.types.is_null(t):
        out.append((VALIDITY, None))
        return out
    valid = _validity(arr)
    out.append((VALIDITY, valid))
    if pa.types.is_boolean(t):
        out.append((BOOL, arr.fill_null(False).to_numpy(zero_copy_only=False)))
    elif pa.types.is_integer(t) or pa.types.is_date32(t) or pa.types.is_timestamp(t):
        out.append((INT, _fixed(arr, f"<i{t.bit_width // 8}", valid)))
    elif pa.types.is_floating(t):
        out.append((FLOAT, _fixed(arr, f"<i{t.bit_width // 8}", valid)))
    elif pa.types.is_decimal(t):
        pairs = _fixed(arr, "<i8", valid, width=2)
        lo, hi = pairs[0::2], pairs[1::2]
        out.append((DECIMAL, lo if np.array_equal(hi, lo >> 63) else pairs))
    elif (
        pa.types.is_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_string(t)
        or pa.types.is_large_binary(t)
    ):
        offsets = offsets_of(arr)
        data = np.frombuffer(arr.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
        out.append((BYTES, (np.diff(offsets), data, arr)))
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        offsets = offsets_of(arr)
        out.append((LENGTHS, np.diff(offsets)))
        flatten(arr.values.slice(offsets[0], offsets[-1] - offsets[0]), out)
    elif pa.types.is_struct(t):
        for i in range(t.num_fields):
            flatten(arr.field(i), out)
    else:
        raise TypeError(f"unsupported type {t}")
    return out


def stream_count(t: pa.DataType) -> int:
    """Number of streams a page of type ``t`` holds."""
    if pa.types.is_struct(t):
        return 1 + sum(stream_count(f.type) for f in t)
    if pa.types.is_map(t):
        return 2 + stream_count(t.field(0).type)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return 2 + stream_count(t.value_type)
    return 1 if pa.types.is_null(t) else 2


# ---------------------------------------------------------------- choosing encodings


def sample_slices(arr: pa.Array) -> list[pa.Array]:
    """A few evenly spaced contiguous slices of ``arr``; each is encoded on its own, so runs,
    deltas and value ranges are measured as pages will see them."""
    n = len(arr)
    if n <= SAMPLE_SLICES * SAMPLE_SLICE_ROWS:
        return [arr]
    step = (n - SAMPLE_SLICE_ROWS) // (SAMPLE_SLICES - 1)
    return [arr.slice(i * step, SAMPLE_SLICE_ROWS) for i in range(SAMPLE_SLICES)]


def encode_dictionary(dictionary, level: int) -> bytes:
    """The chunk dictionary block: a STRINGS stream (Arrow array) or a FOR stream (numpy)."""
    if isinstance(dictionary, pa.Array):
        offsets = offsets_of(dictionary)
        data = np.frombuffer(dictionary.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
        return encode_bytes(np.diff(offsets), data, level, Encoding.FOR)
    return encode_ints(dictionary, Encoding.FOR, level)


def choose(
    arr: pa.Array,
    samples: list[pa.Array],
    level: int,
    max_decode_cost: float,
    override: Encoding | None = None,
) -> list[Choice]:
    """Pick, per stream position, the encoding with the smallest projected chunk size.

    Candidates are encoded on each of ``samples`` (from :func:`sample_slices`), their sizes
    scaled to the chunk, and those whose decode cost exceeds ``max_decode_cost`` are not
    tried. A cheaper encoding wins ties within 2 % per unit of cost. ``override`` forces the
    top-level values encoding when it applies to the type.
    """
    scale = len(arr) / max(sum(len(s) for s in samples), 1)
    allow_dict = not pa.types.is_nested(arr.type)
    flat = [flatten(s, []) for s in samples]
    plan = []
    for pos, (kind, _) in enumerate(flat[0]):
        payloads = [f[pos][1] for f in flat]
        if kind == VALIDITY:
            plan.append(Choice(Encoding.BITMAP, validity=True))
            continue
        candidates = [c for c in CANDIDATES[kind] if DECODE_COST[c] <= max_decode_cost]
        if pos != 1 or not allow_dict:
            candidates = [c for c in candidates if c != Encoding.DICT]
        if override is not None and pos == 1 and override in CANDIDATES[kind]:
            candidates = [override]
        best: tuple[float, float, Choice] | None = None
        for enc in candidates:
            for choice in _expand(enc, kind, payloads, arr, max_decode_cost):
                sized = Choice(choice.encoding, choice.sub, choice.dictionary, None, choice.scale)
                size = sum(len(encode_stream(kind, p, sized, level)) for p in payloads) * scale
                if choice.dictionary is not None:
                    size += len(encode_dictionary(choice.dictionary, level))
                key = (size * (1 + 0.02 * DECODE_COST[enc]), DECODE_COST[enc])
                if best is None or key < best[:2]:
                    best = (*key, choice)
        plan.append(best[2] if best else Choice(Encoding.STRINGS if kind == BYTES else Encoding.PLAIN))
    return plan


def _expand(enc: Encoding, kind: str, payloads: list, arr: pa.Array, max_decode_cost: float) -> list[Choice]:
    if enc == Encoding.STRINGS:
        return [Choice(enc, sub) for sub in _LENGTH_ENCODINGS]
    if enc in (Encoding.DELTA, Encoding.SCALED):
        subs = [sub for sub in _INNER_ENCODINGS if max(DECODE_COST[sub], DECODE_COST[enc]) <= max_decode_cost]
        if enc == Encoding.DELTA:
            return [Choice(enc, sub) for sub in subs]
        found = scale_of(np.concatenate(payloads), 0)
        return [] if found is None else [Choice(enc, sub, scale=found[0]) for sub in subs]
    if enc != Encoding.DICT:
        return [Choice(enc)]
    values = (
        pa.concat_arrays([p[2] for p in payloads]) if kind == BYTES else pa.array(np.concatenate(payloads))
    )
    distinct = len(pc.unique(values))
    if not len(values) or distinct > len(values) // 4 or distinct > DICT_MAX_ENTRIES:
        return []
    if kind == BYTES:
        encoded = arr.dictionary_encode()
        dictionary = encoded.dictionary
        if 0 < len(dictionary) <= DICT_MAX_ENTRIES:
            indices = encoded.indices.fill_null(0).to_numpy().astype(np.int64, copy=False)
            return [Choice(enc, dictionary=dictionary, indices=indices)]
        return []
    dictionary = np.sort(pc.unique(pa.array(flatten(arr, [])[1][1])).to_numpy())
    return [Choice(enc, dictionary=dictionary)] if 0 < len(dictionary) <= DICT_MAX_ENTRIES else []


# ---------------------------------------------------------------- pages


def encode_stream(kind: str, payload, choice: Choice, level: int, start: int = 0) -> bytes:
    """Serialize one logical stream with ``choice``; ``start`` is the page's first row in
    the chunk (to slice chunk-level dictionary indices)."""
    if kind == VALIDITY:
        return pack_stream(Encoding.NONE, []) if payload is None else encode_bitmap(payload, level)
    if kind == BOOL:
        if choice.encoding == Encoding.RLE:
            return encode_ints(payload.view(np.int8), Encoding.RLE, level)
        return encode_bitmap(payload, level)
    if kind == BYTES:
        lengths, data, arr = payload
        if choice.encoding == Encoding.DICT:
            if choice.indices is not None:
                indices = choice.indices[start : start + len(arr)]
            else:
                indices = (
                    pc.index_in(arr, value_set=choice.dictionary).fill_null(0).to_numpy().astype(np.int64)
                )
            return encode_ints(indices, Encoding.DICT, level)
        return encode_bytes(lengths, data, level, choice.sub)
    return encode_ints(payload, choice.encoding, level, choice.dictionary, choice.sub, choice.scale)


def encode_page(arr: pa.Array, plan: list[Choice], level: int, start: int = 0) -> bytes:
    """One page: a u16 stream count followed by the streams of ``arr`` (the chunk's rows from
    ``start``) encoded per ``plan``."""
    logical = flatten(arr, [])
    parts = [_COUNT.pack(len(logical))]
    parts += [
        encode_stream(kind, payload, choice, level, start) for (kind, payload), choice in zip(logical, plan)
    ]
    return b"".join(parts)


def decode_dictionary(t: pa.DataType, view: memoryview, max_entries: int):
    """Decode a chunk dictionary block for a top-level column of type ``t``."""
    stream, end = parse_stream(view, 0)
    if end != len(view):
        raise CorruptData("trailing bytes after the dictionary")
    n = declared_count(stream)
    if n > max_entries:
        raise CorruptData(f"dictionary claims {n} entries")
    if stream.encoding == Encoding.STRINGS:
        return _bytes_array(t, n, None, stream)
    return decode_ints(stream, n)


class _PageReader:
    def __init__(self, view: memoryview, dictionary):
        self.view = view
        self.pos = _COUNT.size
        self.dictionary = dictionary

    def next(self) -> Stream:
        stream, self.pos = parse_stream(self.view, self.pos)
        return stream


def decode_page(t: pa.DataType, view: memoryview, n: int, dictionary=None) -> pa.Array:
    """Decode a page of ``n`` top-level rows of type ``t`` into an Arrow array."""
    if len(view) < _COUNT.size:
        raise CorruptData("page too short")
    (count,) = _COUNT.unpack_from(view, 0)
    if count != stream_count(t):
        raise CorruptData(f"page holds {count} streams, type needs {stream_count(t)}")
    reader = _PageReader(view, dictionary)
    arr = _decode_node(t, n, reader, top=True)
    if reader.pos != len(view):
        raise CorruptData("trailing bytes after the last stream of a page")
    return arr


def _validity_buffer(stream: Stream, n: int):
    if stream.encoding == Encoding.NONE:
        return None
    return pa.py_buffer(decode_bitmap(stream, n))


def _offsets_from_lengths(lengths: np.ndarray, large: bool) -> np.ndarray:
    offsets = np.empty(len(lengths) + 1, dtype=np.int64)
    offsets[0] = 0
    np.cumsum(lengths, out=offsets[1:])
    if len(lengths) and lengths.min() < 0:
        raise CorruptData("negative list length")
    if not large and offsets[-1] >= 1 << 31:
        raise CorruptData("offsets overflow 32 bits")
    return offsets if large else offsets.astype(np.int32)


def _bytes_array(t: pa.DataType, n: int, validity, stream: Stream) -> pa.Array:
    lengths, data = decode_bytes(stream, n)
    large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
    offsets = _offsets_from_lengths(lengths, large)
    return pa.Array.from_buffers(
        t, n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=-1 if validity else 0
    )


def _decode_node(t: pa.DataType, n: int, r: _PageReader, top: bool = False) -> pa.Array:
    if pa.types.is_null(t):
        if r.next().encoding != Encoding.NONE:
            raise CorruptData("a void column holds values")
        return pa.nulls(n)
    validity = _validity_buffer(r.next(), n)
    nulls = -1 if validity is not None else 0
    dictionary = r.dictionary if top else None
    if pa.types.is_boolean(t):
        values = decode_bitmap(r.next(), n)
        return pa.Array.from_buffers(t, n, [validity, pa.py_buffer(values)], null_count=nulls)
    if pa.types.is_integer(t) or pa.types.is_date32(t) or pa.types.is_timestamp(t) or pa.types.is_floating(t):
        values = decode_ints(r.next(), n, dictionary=dictionary)
        if values.dtype.itemsize * 8 != t.bit_width:
            raise CorruptData("value width does not match the column type")
        return pa.Array.from_buffers(t, n, [validity, pa.py_buffer(values)], null_count=nulls)
    if pa.types.is_decimal(t):
        values = decode_ints(r.next(), n, allow_wide=True)
        if values.dtype.itemsize != 8:
            raise CorruptData("decimal values must be 64-bit words")
        if len(values) == n:
            values = np.column_stack((values, values >> 63))
        return pa.Array.from_buffers(
            t, n, [validity, pa.py_buffer(np.ascontiguousarray(values))], null_count=nulls
        )
    if (
        pa.types.is_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_string(t)
        or pa.types.is_large_binary(t)
    ):
        stream = r.next()
        if stream.encoding == Encoding.DICT:
            if dictionary is None:
                raise CorruptData("dictionary-encoded page without a dictionary")
            indices = decode_ints(stream, n, dictionary=np.arange(len(dictionary)))
            taken = dictionary.take(pa.array(indices))
            if validity is None:
                return taken
            return pa.Array.from_buffers(t, n, [validity, *taken.buffers()[1:]], null_count=-1)
        return _bytes_array(t, n, validity, stream)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        lengths = decode_ints(r.next(), n).astype(np.int64, copy=False)
        offsets = _offsets_from_lengths(lengths, pa.types.is_large_list(t))
        child_type = t.field(0).type if pa.types.is_map(t) else t.value_type
        child = _decode_node(child_type, int(offsets[-1]) if n else 0, r)
        return pa.Array.from_buffers(
            t, n, [validity, pa.py_buffer(offsets)], null_count=nulls, children=[child]
        )
    if pa.types.is_struct(t):
        children = [_decode_node(f.type, n, r) for f in t]
        return pa.Array.from_buffers(t, n, [validity], null_count=nulls, children=children)
    raise CorruptData(f"unsupported type {t}")
