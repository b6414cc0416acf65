"""Encodings of value streams, each followed by zstd (see SPEC.md, "Streams").

A *stream* is one encoded array of values: ``u8 encoding | u8 buffer count | per buffer
(u8 codec, u64 raw length, u64 stored length) | buffer bytes``. Encoders take numpy arrays
and return the serialized stream; decoders take a parsed :class:`Stream` and the expected
value count, validate every length before allocating, and return numpy arrays.

Integer-like values (ints, dates, timestamps, decimals, the bit pattern of floats, lengths)
go through the same integer encoders; they are lossless for any bit pattern because all
arithmetic wraps modulo 2**64.
"""

from __future__ import annotations

import enum
import functools
import struct
import threading

import numpy as np
import zstandard

from .errors import CorruptData, NCFVersionError

CODEC_RAW = 0
CODEC_ZSTD = 1
MAX_BUFFERS = 8
MAX_ZSTD_RATIO = 32768  # a valid zstd frame never expands more than this (RLE blocks)
_BUF = struct.Struct("<BQQ")
_HEAD = struct.Struct("<BB")


class Encoding(enum.IntEnum):
    """Encoding ids as stored in a stream's first byte."""

    NONE = 0  # validity only: no nulls in this page
    PLAIN = 1  # raw little-endian values
    DICT = 2  # indices into the column chunk's dictionary block
    RLE = 3  # run values + run lengths
    FOR = 4  # frame of reference: value - min, in the narrowest byte width
    DELTA = 5  # first value + an inner integer stream of successive differences
    BITPACK = 6  # frame of reference packed to the exact bit width
    SPLIT = 7  # byte-stream split of floats (byte k of every value together)
    BITMAP = 8  # booleans packed 8 per byte, least significant bit first
    STRINGS = 9  # lengths (an integer stream) + concatenated bytes
    SCALED = 10  # floats that are integers / 10**e: e + an inner integer stream


DECODE_COST = {
    Encoding.PLAIN: 1.0,
    Encoding.BITMAP: 1.0,
    Encoding.STRINGS: 1.0,
    Encoding.FOR: 1.2,
    Encoding.SPLIT: 1.5,
    Encoding.DELTA: 1.5,
    Encoding.RLE: 1.5,
    Encoding.DICT: 2.0,
    Encoding.SCALED: 2.5,
    Encoding.BITPACK: 3.0,
}
"""Relative decode cost per value (PLAIN = 1), compared with the writer's ``max_decode_cost``."""

_INT_DTYPES = {1: np.dtype("<i1"), 2: np.dtype("<i2"), 4: np.dtype("<i4"), 8: np.dtype("<i8")}
_UINT_DTYPES = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")}
_MASK64 = (1 << 64) - 1

_local = threading.local()


def _cctx(level: int) -> zstandard.ZstdCompressor:
    cache = getattr(_local, "cctx", None)
    if cache is None:
        cache = _local.cctx = {}
    c = cache.get(level)
    if c is None:
        c = cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return c


def _dctx() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "dctx", None)
    if d is None:
        d = _local.dctx = zstandard.ZstdDecompressor()
    return d


def compress(raw, level: int) -> tuple[int, int, bytes]:
    """``(codec, raw length, stored bytes)``: zstd when it saves space, else raw."""
    raw = memoryview(raw).cast("B") if not isinstance(raw, bytes) else raw
    n = len(raw)
    if n >= 32:
        packed = _cctx(level).compress(raw)
        if len(packed) < n:
            return CODEC_ZSTD, n, packed
    return CODEC_RAW, n, bytes(raw)


def decompress(codec: int, raw_len: int, payload) -> bytes:
    """Inverse of :func:`compress`, refusing any size that does not match ``raw_len``."""
    if codec == CODEC_RAW:
        return payload
    if codec != CODEC_ZSTD:
        raise NCFVersionError(f"unknown compression codec {codec}")
    if raw_len > (len(payload) + 1) * MAX_ZSTD_RATIO:
        raise CorruptData(f"compressed buffer claims an impossible size {raw_len}")
    try:
        if zstandard.frame_content_size(payload) != raw_len:
            raise CorruptData("zstd frame size does not match the buffer header")
        out = _dctx().decompress(payload, max_output_size=raw_len)
    except zstandard.ZstdError as exc:
        raise CorruptData(f"zstd: {exc}") from None
    if len(out) != raw_len:
        raise CorruptData("zstd buffer decompressed to the wrong size")
    return out


def pack_stream(encoding: Encoding, buffers: list[tuple[int, int, bytes]]) -> bytes:
    """Serialize a stream from its encoding and ``(codec, raw_len, stored)`` buffers."""
    head = [_HEAD.pack(encoding, len(buffers))]
    head += [_BUF.pack(c, r, len(s)) for c, r, s in buffers]
    return b"".join(head + [s for _, _, s in buffers])


class Stream:
    """A parsed stream: its encoding and lazily decompressed buffers."""

    __slots__ = ("_bufs", "encoding")

    def __init__(self, encoding: int, bufs: list[tuple[int, int, memoryview]]):
        self.encoding = encoding
        self._bufs = bufs

    def __len__(self) -> int:
        return len(self._bufs)

    def raw_len(self, i: int) -> int:
        return self._bufs[i][1]

    def data(self, i: int, expected: int | None = None):
        """Bytes of buffer ``i``; ``expected`` (when known) is checked before decompressing."""
        if i >= len(self._bufs):
            raise CorruptData(f"{Encoding(self.encoding).name} stream lacks buffer {i}")
        codec, raw_len, payload = self._bufs[i]
        if expected is not None and raw_len != expected:
            raise CorruptData(f"buffer holds {raw_len} bytes, expected {expected}")
        return decompress(codec, raw_len, payload)

    def nested(self, i: int, allowed: frozenset[int]) -> Stream:
        """Buffer ``i`` parsed as an inner stream whose encoding must be in ``allowed``
        (run values, deltas, string lengths); ``allowed`` bounds the nesting depth."""
        view = memoryview(self.data(i))
        stream, end = parse_stream(view, 0)
        if end != len(view):
            raise CorruptData("trailing bytes after a nested stream")
        if stream.encoding not in allowed:
            raise CorruptData(
                f"{Encoding(stream.encoding).name} cannot be nested in {Encoding(self.encoding).name}"
            )
        return stream


def parse_stream(view: memoryview, pos: int) -> tuple[Stream, int]:
    """Parse the stream starting at ``view[pos]``; returns it and the position after it."""
    end = len(view)
    if pos + _HEAD.size > end:
        raise CorruptData("stream header runs past the end of its block")
    encoding, nbuf = _HEAD.unpack_from(view, pos)
    if encoding not in Encoding._value2member_map_:
        raise NCFVersionError(f"unknown encoding id {encoding} (file written by a newer NCF version?)")
    if nbuf > MAX_BUFFERS:
        raise CorruptData(f"stream claims {nbuf} buffers")
    pos += _HEAD.size
    if pos + nbuf * _BUF.size > end:
        raise CorruptData("stream header runs past the end of its block")
    descs = [_BUF.unpack_from(view, pos + i * _BUF.size) for i in range(nbuf)]
    pos += nbuf * _BUF.size
    bufs = []
    for codec, raw_len, stored in descs:
        if stored > end - pos:
            raise CorruptData("stream buffer runs past the end of its block")
        if codec == CODEC_RAW and raw_len != stored:
            raise CorruptData("raw buffer length mismatch")
        bufs.append((codec, raw_len, view[pos : pos + stored]))
        pos += stored
    return Stream(encoding, bufs), pos


# ---------------------------------------------------------------- integer helpers

_FLAT = frozenset({Encoding.PLAIN, Encoding.FOR, Encoding.BITPACK})
_INNER = _FLAT | {Encoding.DELTA}
_LENGTHS = _INNER | {Encoding.RLE}
MAX_SCALE = 6


def _params(fmt: str, *values) -> tuple[int, int, bytes]:
    raw = struct.pack(fmt, *values)
    return CODEC_RAW, len(raw), raw


def _read_params(stream: Stream, fmt: str) -> tuple:
    st = struct.Struct(fmt)
    raw = stream.data(0, st.size)
    return st.unpack(raw)


def _width(max_value: int) -> int:
    for w in (1, 2, 4, 8):
        if max_value < (1 << (8 * w)):
            return 0 if max_value == 0 else w
    return 8


def _for_parts(values: np.ndarray) -> tuple[int, int, np.ndarray]:
    """Frame of reference of int64 ``values``: (base, byte width, unsigned offsets)."""
    base = int(values.min())
    offsets = (values - np.int64(base)).view(np.uint64)
    width = _width(int(offsets.max()))
    return base, width, offsets


def _unfor(offsets: np.ndarray, base: int) -> np.ndarray:
    return (offsets.astype(np.uint64) + np.uint64(base & _MASK64)).view(np.int64)


@functools.lru_cache(maxsize=16)
def _bit_positions(n: int, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For value i of a ``bits``-wide packing: its 64-bit word, the next word, the shift
    inside the word and ``63 - shift`` (cached: every full page has the same layout)."""
    offsets = np.arange(n, dtype=np.uint64) * np.uint64(bits)
    word = (offsets >> np.uint64(6)).astype(np.intp)
    shift = offsets & np.uint64(63)
    arrays = (word, word + 1, shift, np.uint64(63) - shift)
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned ``values`` (each < 2**bits) LSB-first into a little-endian bit stream."""
    n = len(values)
    word, _, shift, inverse = _bit_positions(n, bits)
    words = np.zeros((n * bits + 63) // 64 + 1, dtype="<u8")
    starts = np.flatnonzero(np.diff(word, prepend=-1))
    targets = word[starts]
    words[targets] |= np.bitwise_or.reduceat(values << shift, starts)
    spill = (values >> np.uint64(1)) >> inverse  # values >> (64 - shift), 0 when shift == 0
    words[targets + 1] |= np.bitwise_or.reduceat(spill, starts)
    return words.view(np.uint8)[: (n * bits + 7) // 8]


def _unpack_bits(data: bytes, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`_pack_bits`: ``n`` unsigned values of ``bits`` bits each."""
    words = np.zeros((n * bits + 63) // 64 + 1, dtype="<u8")
    words.view(np.uint8)[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    word, following, shift, inverse = _bit_positions(n, bits)
    values = words[word]
    values >>= shift
    high = words[following]
    high <<= np.uint64(1)
    high <<= inverse
    values |= high
    if bits < 64:
        values &= np.uint64((1 << bits) - 1)
    return values


def _transpose(matrix: np.ndarray) -> np.ndarray:
    """Contiguous transpose of a narrow byte matrix (one column at a time: much faster than
    numpy's generic transpose copy for 4 or 8 columns)."""
    rows, cols = matrix.shape
    out = np.empty((cols, rows), dtype=matrix.dtype)
    if rows <= cols:
        for k in range(rows):
            out[:, k] = matrix[k]
    else:
        for k in range(cols):
            out[k] = matrix[:, k]
    return out


def _check_count(count: int, expected: int) -> None:
    if count != expected:
        raise CorruptData(f"stream holds {count} values, expected {expected}")


def _dtype_of(itemsize: int) -> np.dtype:
    dt = _INT_DTYPES.get(itemsize)
    if dt is None:
        raise CorruptData(f"bad value width {itemsize}")
    return dt


def _nest(stream: bytes) -> tuple[int, int, bytes]:
    return CODEC_RAW, len(stream), stream


def scale_of(values: np.ndarray, hint: int) -> tuple[int, np.ndarray] | None:
    """``(e, ints)`` with ``values == ints / 10**e`` bit for bit, or None."""
    floats = values.view(np.float32 if values.dtype.itemsize == 4 else np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        for e in dict.fromkeys((hint, *range(MAX_SCALE + 1))):
            scaled = np.round(floats.astype(np.float64) * 10.0**e)
            if not np.all(np.abs(scaled) < 2.0**53):
                return None
            ints = scaled.astype(np.int64)
            if np.array_equal(_unscale(ints, e, floats.dtype).view(values.dtype), values):
                return e, ints
    return None


def _unscale(ints: np.ndarray, e: int, dtype: np.dtype) -> np.ndarray:
    return (ints.astype(np.float64) / 10.0**e).astype(dtype, copy=False)


def encode_ints(
    values: np.ndarray,
    encoding: Encoding,
    level: int,
    dictionary: np.ndarray | None = None,
    sub: Encoding = Encoding.FOR,
    scale: int = 0,
) -> bytes:
    """Encode a 1-d signed integer array (any width) with an integer ``encoding``.

    DICT looks values up in the sorted ``dictionary`` (None: ``values`` are the indices).
    ``sub`` is the inner encoding of DELTA and SCALED; ``scale`` the first exponent SCALED
    tries (the bit patterns of floats are given as same-width integers). A page SCALED cannot
    represent exactly is written PLAIN.
    """
    n = len(values)
    size = values.dtype.itemsize
    if encoding == Encoding.PLAIN or n == 0:
        return pack_stream(
            Encoding.PLAIN, [_params("<BQ", size, n), compress(np.ascontiguousarray(values), level)]
        )
    v64 = values.astype(np.int64, copy=False)
    if encoding == Encoding.FOR:
        base, width, offsets = _for_parts(v64)
        bufs = [_params("<BQqB", size, n, base, width)]
        if width:
            bufs.append(compress(offsets.astype(_UINT_DTYPES[width]), level))
        return pack_stream(Encoding.FOR, bufs)
    if encoding == Encoding.DELTA:
        inner = encode_ints(np.diff(v64), sub, level)
        return pack_stream(Encoding.DELTA, [_params("<BQq", size, n, int(v64[0])), _nest(inner)])
    if encoding == Encoding.SCALED:
        found = scale_of(values, scale)
        if found is None:
            return encode_ints(values, Encoding.PLAIN, level)
        e, ints = found
        return pack_stream(
            Encoding.SCALED, [_params("<BQB", size, n, e), _nest(encode_ints(ints, sub, level))]
        )
    if encoding == Encoding.BITPACK:
        base, _, offsets = _for_parts(v64)
        bits = int(offsets.max()).bit_length()
        bufs = [_params("<BQqB", size, n, base, bits)]
        if bits:
            bufs.append(compress(_pack_bits(offsets, bits), level))
        return pack_stream(Encoding.BITPACK, bufs)
    if encoding == Encoding.RLE:
        starts = np.flatnonzero(v64[1:] != v64[:-1]) + 1
        starts = np.concatenate(([0], starts))
        lengths = np.diff(np.append(starts, n))
        run_values = encode_ints(v64[starts], Encoding.FOR, level)
        run_lengths = encode_ints(lengths.astype(np.int64), Encoding.FOR, level)
        return pack_stream(
            Encoding.RLE, [_params("<BQQ", size, n, len(starts)), _nest(run_values), _nest(run_lengths)]
        )
    if encoding == Encoding.SPLIT:
        return pack_stream(
            Encoding.SPLIT,
            [_params("<BQ", size, n), compress(_transpose(values.view(np.uint8).reshape(n, size)), level)],
        )
    if encoding == Encoding.DICT:
        indices = values if dictionary is None else np.searchsorted(dictionary, values)
        width = max(_width(int(indices.max())), 1)
        return pack_stream(
            Encoding.DICT,
            [_params("<BQB", size, n, width), compress(indices.astype(_UINT_DTYPES[width]), level)],
        )
    raise ValueError(f"{encoding!r} is not an integer encoding")


def decode_ints(
    stream: Stream, count: int, dictionary: np.ndarray | None = None, allow_wide: bool = False
) -> np.ndarray:
    """Decode an integer stream holding ``count`` values (or ``2*count`` when ``allow_wide``)."""
    enc = stream.encoding

    def check(n: int) -> None:
        if n != count and not (allow_wide and n == 2 * count):
            _check_count(n, count)

    if enc == Encoding.PLAIN:
        size, n = _read_params(stream, "<BQ")
        check(n)
        dt = _dtype_of(size)
        return np.frombuffer(stream.data(1, n * size), dtype=dt)
    if enc in (Encoding.FOR, Encoding.BITPACK):
        size, n, base, width = _read_params(stream, "<BQqB")
        check(n)
        dt = _dtype_of(size)
        if width == 0:
            return np.full(n, base, dtype=np.int64).astype(dt, copy=False)
        if enc == Encoding.FOR:
            if width not in _UINT_DTYPES:
                raise CorruptData(f"bad frame-of-reference width {width}")
            offsets = np.frombuffer(stream.data(1, n * width), dtype=_UINT_DTYPES[width])
        else:
            if width > 64:
                raise CorruptData(f"bad bit width {width}")
            offsets = _unpack_bits(stream.data(1, (n * width + 7) // 8), n, width)
        return _unfor(offsets, base).astype(dt, copy=False)
    if enc == Encoding.DELTA:
        size, n, first = _read_params(stream, "<BQq")
        check(n)
        dt = _dtype_of(size)
        if n == 0:
            raise CorruptData("empty DELTA stream")
        out = np.empty(n, dtype=np.int64)
        out[0] = first
        out[1:] = decode_ints(stream.nested(1, _FLAT), n - 1)
        return np.cumsum(out, out=out).astype(dt, copy=False)
    if enc == Encoding.SCALED:
        size, n, e = _read_params(stream, "<BQB")
        check(n)
        if size not in (4, 8) or e > MAX_SCALE:
            raise CorruptData("bad SCALED parameters")
        ints = decode_ints(stream.nested(1, _INNER), n).astype(np.int64, copy=False)
        return _unscale(ints, e, np.dtype(f"<f{size}")).view(_dtype_of(size))
    if enc == Encoding.RLE:
        size, n, runs = _read_params(stream, "<BQQ")
        check(n)
        dt = _dtype_of(size)
        if runs > n or (n and not runs):
            raise CorruptData("bad run count")
        values = decode_ints(stream.nested(1, _FLAT), runs)
        lengths = decode_ints(stream.nested(2, _FLAT), runs)
        if runs and (lengths.min() <= 0 or int(lengths.sum()) != n):
            raise CorruptData("run lengths do not add up")
        return np.repeat(values, lengths).astype(dt, copy=False)
    if enc == Encoding.SPLIT:
        size, n = _read_params(stream, "<BQ")
        check(n)
        dt = _dtype_of(size)
        split = np.frombuffer(stream.data(1, n * size), dtype=np.uint8).reshape(size, n)
        return _transpose(split).reshape(-1).view(dt)
    if enc == Encoding.DICT:
        if dictionary is None:
            raise CorruptData("dictionary-encoded page without a dictionary")
        size, n, width = _read_params(stream, "<BQB")
        check(n)
        if width not in _UINT_DTYPES:
            raise CorruptData(f"bad dictionary index width {width}")
        indices = np.frombuffer(stream.data(1, n * width), dtype=_UINT_DTYPES[width])
        if n and int(indices.max()) >= len(dictionary):
            raise CorruptData("dictionary index out of range")
        return dictionary[indices]
    raise CorruptData(f"{Encoding(enc).name} is not an integer encoding")


# ---------------------------------------------------------------- bitmaps and bytes


def encode_bitmap(values: np.ndarray, level: int) -> bytes:
    """Encode a boolean array as a little-endian bitmap."""
    packed = np.packbits(values, bitorder="little")
    return pack_stream(Encoding.BITMAP, [_params("<Q", len(values)), compress(packed, level)])


def decode_bitmap(stream: Stream, count: int) -> bytes:
    """Packed bitmap bytes (Arrow's validity/boolean layout) of a BITMAP or RLE stream."""
    if stream.encoding == Encoding.RLE:
        return np.packbits(decode_ints(stream, count).astype(bool), bitorder="little").tobytes()
    if stream.encoding != Encoding.BITMAP:
        raise CorruptData(f"{Encoding(stream.encoding).name} is not a boolean encoding")
    (n,) = _read_params(stream, "<Q")
    _check_count(n, count)
    return stream.data(1, (n + 7) // 8)


def encode_bytes(lengths: np.ndarray, data: np.ndarray, level: int, length_encoding: Encoding) -> bytes:
    """Encode variable-length values as an integer stream of lengths plus their bytes."""
    lens = encode_ints(lengths.astype(np.int64, copy=False), length_encoding, level)
    return pack_stream(Encoding.STRINGS, [(CODEC_RAW, len(lens), lens), compress(data, level)])


def declared_count(stream: Stream) -> int:
    """The value count a STRINGS or integer stream declares (checked by its decoder later)."""
    if stream.encoding == Encoding.STRINGS:
        return declared_count(stream.nested(0, _LENGTHS))
    raw = stream.data(0)
    if stream.encoding not in _LENGTHS | {Encoding.DICT, Encoding.SPLIT, Encoding.SCALED} or len(raw) < 9:
        raise CorruptData("stream has no value count")
    return struct.unpack_from("<Q", raw, 1)[0]


def decode_bytes(stream: Stream, count: int) -> tuple[np.ndarray, bytes]:
    """``(lengths as int64, data bytes)`` of a STRINGS stream, lengths checked against the data."""
    if stream.encoding != Encoding.STRINGS:
        raise CorruptData(f"{Encoding(stream.encoding).name} is not a string encoding")
    lengths = decode_ints(stream.nested(0, _LENGTHS), count).astype(np.int64, copy=False)
    if count and lengths.min() < 0:
        raise CorruptData("negative string length")
    total = int(lengths.sum())
    return lengths, stream.data(1, total)
