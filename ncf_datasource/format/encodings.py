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
import re
import struct
import threading
from dataclasses import dataclass

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
    DICT = 2  # indices into the column chunk's dictionary block (v1.0 writers)
    RLE = 3  # run values + run lengths
    FOR = 4  # frame of reference: value - min, in the narrowest byte width
    DELTA = 5  # first value + an inner integer stream of successive differences
    BITPACK = 6  # frame of reference packed to the exact bit width
    SPLIT = 7  # byte-stream split of floats (byte k of every value together)
    BITMAP = 8  # booleans packed 8 per byte, least significant bit first
    STRINGS = 9  # lengths (an integer stream) + concatenated bytes
    SCALED = 10  # floats that are integers / 10**e: e + an inner integer stream (v1.0 writers)
    CODES = 11  # an inner integer stream of indices into the chunk's dictionary block (v1.1)
    PATCHED = 12  # one byte per value, 255 escapes to an inner stream of larger values (v1.1)
    ALP = 13  # floats as integers / 10**e, with exceptions stored verbatim (v1.1)
    TOKENS = 14  # strings as codes of words in the chunk's token dictionary (v1.1)


DECODE_COST = {
    Encoding.PLAIN: 1.0,
    Encoding.BITMAP: 1.0,
    Encoding.STRINGS: 1.0,
    Encoding.FOR: 1.2,
    Encoding.SPLIT: 1.5,
    Encoding.DELTA: 1.5,
    Encoding.RLE: 1.5,
    Encoding.PATCHED: 1.5,
    Encoding.DICT: 2.0,
    Encoding.CODES: 2.0,
    Encoding.SCALED: 2.5,
    Encoding.ALP: 2.5,
    Encoding.TOKENS: 2.5,
    Encoding.BITPACK: 3.0,
}
"""Relative decode cost per value (PLAIN = 1), compared with the writer's ``max_decode_cost``;
a cascade costs as much as its most expensive encoding."""

_INT_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<i1"),
    2: np.dtype("<i2"),
    4: np.dtype("<i4"),
    8: np.dtype("<i8"),
}
_UINT_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<u1"),
    2: np.dtype("<u2"),
    4: np.dtype("<u4"),
    8: np.dtype("<u8"),
}
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
    """A parsed stream: its encoding and lazily decompressed buffers. ``depth`` counts the
    streams it is nested in (0 for a page's own streams)."""

    __slots__ = ("_bufs", "depth", "encoding")

    def __init__(self, encoding: int, bufs: list[tuple[int, int, memoryview]], depth: int = 0):
        self.encoding = encoding
        self._bufs = bufs
        self.depth = depth

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

    def nested(self, i: int, allowed: frozenset[int] | None = None) -> Stream:
        """Buffer ``i`` parsed as an inner stream whose encoding must be in ``allowed`` (default:
        the integer cascade); at most ``MAX_DEPTH`` streams deep."""
        if self.depth >= MAX_DEPTH:
            raise CorruptData(f"streams nested more than {MAX_DEPTH} deep")
        view = memoryview(self.data(i))
        stream, end = parse_stream(view, 0, self.depth + 1)
        if end != len(view):
            raise CorruptData("trailing bytes after a nested stream")
        if stream.encoding not in (CASCADE if allowed is None else allowed):
            raise CorruptData(
                f"{Encoding(stream.encoding).name} cannot be nested in {Encoding(self.encoding).name}"
            )
        return stream


def parse_stream(view: memoryview, pos: int, depth: int = 0) -> tuple[Stream, int]:
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
    return Stream(encoding, bufs, depth), pos


# ---------------------------------------------------------------- cascades

MAX_DEPTH = 4
CASCADE = frozenset(
    {Encoding.PLAIN, Encoding.FOR, Encoding.DELTA, Encoding.RLE, Encoding.BITPACK, Encoding.PATCHED}
)
"""Encodings a nested integer stream may use (v1.0 files use subsets of it)."""
MAX_SCALE = 6
MAX_ALP_EXPONENT = 18
_ZIGZAG = 1


@dataclass(frozen=True)
class Plan:
    """How to encode one integer stream: an encoding and the plans of its nested streams
    (DELTA: differences; RLE: run values, run lengths; PATCHED: the escaped values; CODES:
    the indices; ALP: the integers, exception positions, exception bit patterns; TOKENS: the
    token counts, the token codes). ``aligned`` rounds a BITPACK width up to 1, 2, 4 or 8
    bits (whole values per byte, which zstd compresses better); ``zigzag`` makes PATCHED
    store ``zigzag(value - median)`` instead of ``value - min``; ``exponent`` is ALP's."""

    encoding: Encoding
    children: tuple[Plan, ...] = ()
    aligned: bool = False
    zigzag: bool = False
    exponent: int = 0

    def child(self, i: int) -> Plan:
        return self.children[i] if i < len(self.children) else FOR_PLAN

    @property
    def cost(self) -> float:
        return max([DECODE_COST[self.encoding]] + [c.cost for c in self.children])

    def name(self) -> str:
        base = (
            self.encoding.name.lower()
            + ("-aligned" if self.aligned else "")
            + ("-zigzag" if self.zigzag else "")
        )
        return base + (f"[{','.join(c.name() for c in self.children)}]" if self.children else "")


FOR_PLAN = Plan(Encoding.FOR)
_ARITY = {
    Encoding.DELTA: 1,
    Encoding.RLE: 2,
    Encoding.PATCHED: 1,
    Encoding.CODES: 1,
    Encoding.ALP: 3,
    Encoding.TOKENS: 2,
    Encoding.STRINGS: 1,
}
_PLAN_TOKEN = re.compile(r"([a-z]+)(-aligned)?(-zigzag)?|[\[\],]")
ALIASES = {"dict": "codes", "scaled": "alp"}
"""The v1.0 writer's names of encodings the writer now expresses otherwise."""


def parse_plan(text: str) -> Plan:
    """The plan a name such as ``"codes[patched-zigzag[bitpack]]"`` describes (the footer's
    ``encodings`` use the same notation; omitted nested plans are FOR). ValueError if the
    text names no valid cascade."""
    parts = [m.group(0) for m in _PLAN_TOKEN.finditer(text.lower())]
    if "".join(parts) != text.lower().replace(" ", ""):
        raise ValueError(f"cannot parse encoding {text!r}")
    plan, end = _parse_plan(parts, 0, depth=0)
    if end != len(parts):
        raise ValueError(f"cannot parse encoding {text!r}")
    return plan


def _parse_plan(parts: list[str], i: int, depth: int) -> tuple[Plan, int]:
    if i >= len(parts) or parts[i] in "[],":
        raise ValueError("an encoding name is missing")
    if depth >= MAX_DEPTH:
        raise ValueError(f"encodings nest at most {MAX_DEPTH - 1} deep")
    top = depth == 0
    match = _PLAN_TOKEN.fullmatch(parts[i])
    if match is None:
        raise ValueError(f"cannot parse encoding {parts[i]!r}")
    name = ALIASES.get(match.group(1), match.group(1)) if top else match.group(1)
    if name.upper() not in Encoding.__members__ or name in ("none", "dict", "scaled"):
        raise ValueError(f"unknown encoding {name!r}")
    enc = Encoding[name.upper()]
    if not top and enc not in CASCADE:
        raise ValueError(f"{name} cannot be nested")
    aligned, zigzag = bool(match.group(2)), bool(match.group(3))
    if (aligned and enc != Encoding.BITPACK) or (zigzag and enc != Encoding.PATCHED):
        raise ValueError(f"{parts[i]} is not an encoding variant")
    i += 1
    children: list[Plan] = []
    if i < len(parts) and parts[i] == "[":
        while True:
            child, i = _parse_plan(parts, i + 1, depth + 1)
            children.append(child)
            if i < len(parts) and parts[i] == ",":
                continue
            if i >= len(parts) or parts[i] != "]":
                raise ValueError("unbalanced brackets")
            i += 1
            break
    if len(children) > _ARITY.get(enc, 0):
        raise ValueError(f"{name} takes {_ARITY.get(enc, 0)} nested encodings")
    return Plan(enc, tuple(children), aligned, zigzag), i


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


def _unfor(offsets: np.ndarray, base: int, dt: np.dtype) -> np.ndarray:
    """``base + offsets`` truncated to the width of ``dt`` (computed in that width: the low
    bytes of a sum depend only on the low bytes of its terms). May return ``offsets`` itself."""
    udt = _UINT_DTYPES[dt.itemsize]
    out = offsets.astype(udt, copy=False)
    base &= (1 << (8 * dt.itemsize)) - 1
    if base:
        out = out + udt.type(base)
    return out.view(dt)


@functools.lru_cache(maxsize=16)
def _bit_positions(n: int, bits: int) -> tuple[np.ndarray, ...]:
    """For value i of a ``bits``-wide packing: its 64-bit word, the next word, the shift
    inside the word and ``63 - shift``; then the first value of each word and that word
    (cached: every full page has the same layout)."""
    offsets = np.arange(n, dtype=np.uint64) * np.uint64(bits)
    word = (offsets >> np.uint64(6)).astype(np.intp)
    shift = offsets & np.uint64(63)
    starts = np.flatnonzero(np.diff(word, prepend=-1))
    arrays = (word, word + 1, shift, np.uint64(63) - shift, starts, word[starts])
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned ``values`` (each < 2**bits) LSB-first into a little-endian bit stream."""
    n = len(values)
    if 8 % bits == 0:
        per = 8 // bits
        padded = np.zeros(-(-n // per) * per, dtype=np.uint8)
        padded[:n] = values
        lanes = padded.reshape(-1, per)
        out = lanes[:, 0].copy()
        for j in range(1, per):
            out |= lanes[:, j] << np.uint8(j * bits)
        return out
    _, _, shift, inverse, starts, targets = _bit_positions(n, bits)
    words = np.zeros((n * bits + 63) // 64 + 1, dtype="<u8")
    words[targets] |= np.bitwise_or.reduceat(values << shift, starts)
    spill = (values >> np.uint64(1)) >> inverse  # values >> (64 - shift), 0 when shift == 0
    words[targets + 1] |= np.bitwise_or.reduceat(spill, starts)
    return words.view(np.uint8)[: (n * bits + 7) // 8]


def _unpack_bits(data: bytes, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`_pack_bits`: ``n`` unsigned values of ``bits`` bits each (uint8 for
    widths of 1, 2, 4 and 8 bits, else uint64)."""
    if 8 % bits == 0:
        packed = np.frombuffer(data, dtype=np.uint8)
        if bits == 8:
            return packed[:n]
        per = 8 // bits
        lanes = np.empty((len(packed), per), dtype=np.uint8)
        mask = np.uint8((1 << bits) - 1)
        for j in range(per):
            np.bitwise_and(packed >> np.uint8(j * bits), mask, out=lanes[:, j])
        return lanes.reshape(-1)[:n]
    words = np.zeros((n * bits + 63) // 64 + 1, dtype="<u8")
    words.view(np.uint8)[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    word, following, shift, inverse, _, _ = _bit_positions(n, bits)
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


def _unscale(ints: np.ndarray, e: int, dtype: np.dtype) -> np.ndarray:
    return (ints.astype(np.float64) / 10.0**e).astype(dtype, copy=False)


def alp_exponent(values: np.ndarray) -> tuple[int, int]:
    """``(e, exceptions)``: the smallest exponent with the fewest values that ``round(x * 10**e)
    / 10**e`` does not reproduce bit for bit (``values`` are float bit patterns as ints)."""
    best = (len(values) + 1, 0)
    for e in range(MAX_ALP_EXPONENT + 1):
        misses = int(np.count_nonzero(alp_integers(values, e)[1]))
        if misses < best[0]:
            best = (misses, e)
        if misses == 0:
            break
    return best[1], best[0]


def alp_integers(values: np.ndarray, e: int) -> tuple[np.ndarray, np.ndarray]:
    """``(k, miss)``: the integers ALP stores for float bit patterns ``values`` at exponent
    ``e``, and where they do not reproduce the value (the exceptions)."""
    floats = values.view(np.float32 if values.dtype.itemsize == 4 else np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.round(floats.astype(np.float64) * 10.0**e)
        fits = np.abs(scaled) < 2.0**53
        k = np.where(fits, scaled, 0).astype(np.int64)
        miss = ~fits | (_unscale(k, e, floats.dtype).view(values.dtype) != values)
    return k, miss


_MEDIAN_PROBE = 1024


def approximate_median(values: np.ndarray) -> int:
    """The median of ``values`` (of an evenly strided subset of about 1 024 of them when there
    are more: any centre is valid, this one is cheap)."""
    probe = values[:: max(1, len(values) // _MEDIAN_PROBE)]
    return int(np.partition(probe, len(probe) // 2)[len(probe) // 2])


def _zigzag(x: np.ndarray) -> np.ndarray:
    return ((x << np.int64(1)) ^ (x >> np.int64(63))).view(np.uint64)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    return (u >> np.uint64(1)) ^ (np.uint64(0) - (u & np.uint64(1)))


_UNZIGZAG_BYTE = _unzigzag(np.arange(256, dtype=np.uint64))
_UNZIGZAG_BYTE.flags.writeable = False


def encode_ints(values: np.ndarray, plan: Plan, level: int) -> bytes:
    """Encode a 1-d signed integer array (any width) with ``plan``.

    The bit patterns of floats are given as same-width integers; CODES takes the dictionary
    indices as ``values``.
    """
    encoding = plan.encoding
    n = len(values)
    size = values.dtype.itemsize
    if encoding == Encoding.PLAIN or (n == 0 and encoding != Encoding.CODES):
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
        inner = encode_ints(np.diff(v64), plan.child(0), level)
        return pack_stream(Encoding.DELTA, [_params("<BQq", size, n, int(v64[0])), _nest(inner)])
    if encoding == Encoding.BITPACK:
        base, _, offsets = _for_parts(v64)
        bits = int(offsets.max()).bit_length()
        if plan.aligned and 0 < bits < 8:
            bits = 1 << (bits - 1).bit_length()
        bufs = [_params("<BQqB", size, n, base, bits)]
        if bits:
            bufs.append(compress(_pack_bits(offsets, bits), level))
        return pack_stream(Encoding.BITPACK, bufs)
    if encoding == Encoding.RLE:
        starts = np.flatnonzero(v64[1:] != v64[:-1]) + 1
        starts = np.concatenate(([0], starts))
        lengths = np.diff(np.append(starts, n))
        run_values = encode_ints(v64[starts], plan.child(0), level)
        run_lengths = encode_ints(lengths.astype(np.int64), plan.child(1), level)
        return pack_stream(
            Encoding.RLE, [_params("<BQQ", size, n, len(starts)), _nest(run_values), _nest(run_lengths)]
        )
    if encoding == Encoding.PATCHED:
        if plan.zigzag:
            base = approximate_median(v64)
            unsigned = _zigzag(v64 - np.int64(base))
        else:
            base = int(v64.min())
            unsigned = (v64 - np.int64(base)).view(np.uint64)
        low = np.minimum(unsigned, np.uint64(255)).astype(np.uint8)
        bufs = [_params("<BQqB", size, n, base, _ZIGZAG if plan.zigzag else 0), compress(low, level)]
        escaped = unsigned[low == 255]
        if len(escaped):
            bufs.append(_nest(encode_ints((escaped - np.uint64(255)).view(np.int64), plan.child(0), level)))
        return pack_stream(Encoding.PATCHED, bufs)
    if encoding == Encoding.SPLIT:
        return pack_stream(
            Encoding.SPLIT,
            [_params("<BQ", size, n), compress(_transpose(values.view(np.uint8).reshape(n, size)), level)],
        )
    if encoding == Encoding.CODES:
        inner = encode_ints(v64, plan.child(0), level)
        return pack_stream(Encoding.CODES, [_params("<BQ", size, n), _nest(inner)])
    if encoding == Encoding.ALP:
        e = plan.exponent
        k, miss = alp_integers(values, e)
        positions = np.flatnonzero(miss)
        if len(positions) < n:
            k[positions] = k[np.argmin(miss)]  # a kept value: exceptions do not widen the range
        bufs = [_params("<BQBQ", size, n, e, len(positions)), _nest(encode_ints(k, plan.child(0), level))]
        if len(positions):
            bufs.append(_nest(encode_ints(positions.astype(np.int64), plan.child(1), level)))
            bufs.append(_nest(encode_ints(values[positions], plan.child(2), level)))
        return pack_stream(Encoding.ALP, bufs)
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
        return _unfor(offsets, base, dt)
    if enc == Encoding.DELTA:
        size, n, first = _read_params(stream, "<BQq")
        check(n)
        dt = _dtype_of(size)
        if n == 0:
            raise CorruptData("empty DELTA stream")
        out = np.empty(n, dtype=np.int64)
        out[0] = first
        out[1:] = decode_ints(stream.nested(1), n - 1)
        return np.cumsum(out, out=out).astype(dt, copy=False)
    if enc == Encoding.SCALED:
        size, n, e = _read_params(stream, "<BQB")
        check(n)
        if size not in (4, 8) or e > MAX_SCALE:
            raise CorruptData("bad SCALED parameters")
        ints = decode_ints(stream.nested(1), n).astype(np.int64, copy=False)
        return _unscale(ints, e, np.dtype(f"<f{size}")).view(_dtype_of(size))
    if enc == Encoding.ALP:
        return _decode_alp(stream, check)
    if enc == Encoding.RLE:
        size, n, runs = _read_params(stream, "<BQQ")
        check(n)
        dt = _dtype_of(size)
        if runs > n or (n and not runs):
            raise CorruptData("bad run count")
        values = decode_ints(stream.nested(1), runs)
        lengths = decode_ints(stream.nested(2), runs)
        if runs and (lengths.min() <= 0 or int(lengths.sum()) != n):
            raise CorruptData("run lengths do not add up")
        return np.repeat(values, lengths).astype(dt, copy=False)
    if enc == Encoding.PATCHED:
        size, n, base, flags = _read_params(stream, "<BQqB")
        check(n)
        dt = _dtype_of(size)
        if flags & ~_ZIGZAG:
            raise CorruptData(f"bad PATCHED flags {flags}")
        low = np.frombuffer(stream.data(1, n), dtype=np.uint8)
        # without zigzag only the low bytes matter (see _unfor); zigzag's shift needs 64 bits
        zigzag = bool(flags & _ZIGZAG)
        wide = np.dtype(np.uint64) if zigzag else _UINT_DTYPES[dt.itemsize]
        if len(stream) == 3:
            escaped = np.flatnonzero(low == 255)
            extra = decode_ints(stream.nested(2), len(escaped)).astype(np.int64, copy=False).view(np.uint64)
        elif len(stream) != 2 or (n and low.max() == 255):
            raise CorruptData("PATCHED escapes do not match its buffers")
        else:
            escaped = None
        if zigzag:  # a byte's zigzag value from a table; escapes (rare) computed in 64 bits
            unsigned = np.take(_UNZIGZAG_BYTE, low)
            if escaped is not None:
                unsigned[escaped] = _unzigzag(extra + np.uint64(255))
        else:
            unsigned = low.astype(wide) if escaped is not None else low
            if escaped is not None:
                unsigned[escaped] += extra.astype(wide, copy=False)
        return _unfor(unsigned, base, dt)
    if enc == Encoding.SPLIT:
        size, n = _read_params(stream, "<BQ")
        check(n)
        dt = _dtype_of(size)
        split = np.frombuffer(stream.data(1, n * size), dtype=np.uint8).reshape(size, n)
        return _transpose(split).reshape(-1).view(dt)
    if enc in (Encoding.DICT, Encoding.CODES):
        if dictionary is None:
            raise CorruptData("dictionary-encoded page without a dictionary")
        indices = decode_codes(stream, count, len(dictionary))
        return dictionary[indices]
    raise CorruptData(f"{Encoding(enc).name} is not an integer encoding")


def decode_codes(stream: Stream, count: int, entries: int) -> np.ndarray:
    """The dictionary indices of a DICT or CODES stream of ``count`` values, each checked to
    be below ``entries``."""
    if stream.encoding == Encoding.DICT:
        _, n, width = _read_params(stream, "<BQB")
        _check_count(n, count)
        if width not in _UINT_DTYPES:
            raise CorruptData(f"bad dictionary index width {width}")
        indices = np.frombuffer(stream.data(1, n * width), dtype=_UINT_DTYPES[width])
    elif stream.encoding == Encoding.CODES:
        _, n = _read_params(stream, "<BQ")
        _check_count(n, count)
        indices = decode_ints(stream.nested(1), n).astype(np.int64, copy=False).view(np.uint64)
    else:
        raise CorruptData(f"{Encoding(stream.encoding).name} is not a dictionary encoding")
    if count and int(indices.max()) >= entries:
        raise CorruptData("dictionary index out of range")
    return indices


def _decode_alp(stream: Stream, check) -> np.ndarray:
    size, n, e, m = _read_params(stream, "<BQBQ")
    check(n)
    if size not in (4, 8) or e > MAX_ALP_EXPONENT or m > n:
        raise CorruptData("bad ALP parameters")
    if len(stream) != (4 if m else 2):
        raise CorruptData("ALP exceptions do not match its buffers")
    ints = decode_ints(stream.nested(1), n).astype(np.int64, copy=False)
    out = _unscale(ints, e, np.dtype(f"<f{size}")).view(_dtype_of(size))
    if m:
        positions = decode_ints(stream.nested(2), m).astype(np.int64, copy=False)
        if positions.min() < 0 or positions.max() >= n or np.any(np.diff(positions) <= 0):
            raise CorruptData("bad ALP exception positions")
        patterns = decode_ints(stream.nested(3), m)
        if patterns.dtype.itemsize != size:
            raise CorruptData("ALP exceptions have the wrong width")
        out[positions] = patterns
    return out


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


def encode_bytes(lengths: np.ndarray, data: np.ndarray, level: int, lengths_plan: Plan) -> bytes:
    """Encode variable-length values as an integer stream of lengths plus their bytes."""
    lens = encode_ints(lengths.astype(np.int64, copy=False), lengths_plan, level)
    return pack_stream(Encoding.STRINGS, [(CODEC_RAW, len(lens), lens), compress(data, level)])


def declared_count(stream: Stream) -> int:
    """The value count a STRINGS or integer stream declares (checked by its decoder later)."""
    if stream.encoding == Encoding.STRINGS:
        return declared_count(stream.nested(0))
    raw = stream.data(0)
    if stream.encoding not in CASCADE | {Encoding.DICT, Encoding.SPLIT, Encoding.SCALED} or len(raw) < 9:
        raise CorruptData("stream has no value count")
    return struct.unpack_from("<Q", raw, 1)[0]


def decode_bytes(stream: Stream, count: int) -> tuple[np.ndarray, bytes]:
    """``(lengths as int64, data bytes)`` of a STRINGS stream, lengths checked against the data."""
    if stream.encoding != Encoding.STRINGS:
        raise CorruptData(f"{Encoding(stream.encoding).name} is not a string encoding")
    lengths = decode_ints(stream.nested(0), count).astype(np.int64, copy=False)
    if count and lengths.min() < 0:
        raise CorruptData("negative string length")
    total = int(lengths.sum())
    return lengths, stream.data(1, total)


def encode_tokens(
    counts: np.ndarray, codes: np.ndarray, entries: int, literals: bytes, level: int, plan: Plan
) -> bytes:
    """A TOKENS stream: per string its token count, per token its code in the chunk's token
    dictionary of ``entries`` tokens (``entries`` itself marks a literal), and the literal
    tokens as a STRINGS stream (``literals``, already encoded)."""
    n, t = len(counts), len(codes)
    m = int(np.count_nonzero(codes == entries))
    return pack_stream(
        Encoding.TOKENS,
        [
            _params("<QQQ", n, t, m),
            _nest(encode_ints(counts, plan.child(0), level)),
            _nest(encode_ints(codes, plan.child(1), level)),
            _nest(literals),
        ],
    )


def decode_tokens(stream: Stream, count: int, entries: int) -> tuple[np.ndarray, np.ndarray, Stream, int]:
    """``(token counts per string, token indices, literal STRINGS stream, literal count)`` of
    a TOKENS stream of ``count`` strings over a dictionary of ``entries`` tokens: index
    ``entries + j`` is the page's literal j. Indices keep the stored integer width and are not
    range-checked here: the caller's Arrow ``take`` refuses any outside the dictionary and the
    literals."""
    n, t, m = _read_params(stream, "<QQQ")
    _check_count(n, count)
    counts = decode_ints(stream.nested(1), n)
    if n and (counts.min() < 0 or int(counts.sum(dtype=np.int64)) != t):
        raise CorruptData("token counts do not add up")
    codes = decode_ints(stream.nested(2), t)
    if m:
        literals = np.flatnonzero(codes == entries)
        if len(literals) != m:
            raise CorruptData("literal tokens do not match the codes")
        wide = np.promote_types(codes.dtype, np.min_scalar_type(-(entries + m)))
        if codes.dtype != wide or not codes.flags.writeable:
            codes = codes.astype(wide)
        codes[literals] = entries + np.arange(m)
    return counts, codes, stream.nested(3, frozenset({Encoding.STRINGS})), m
