"""Column chunks: Arrow arrays <-> pages of encoded streams, and the per-chunk encoding choice.

An Arrow column is walked depth-first; every node contributes a validity stream, then its
own values stream (leaves: values; lists and maps: lengths), then its children's streams.
The order and number of streams depend only on the type, so a page needs no stream names.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .encodings import (
    DECODE_COST,
    FOR_PLAN,
    Encoding,
    Plan,
    Stream,
    alp_exponent,
    alp_integers,
    approximate_median,
    compress,
    declared_count,
    decode_bitmap,
    decode_bytes,
    decode_codes,
    decode_ints,
    decode_tokens,
    encode_bitmap,
    encode_bytes,
    encode_ints,
    encode_tokens,
    pack_stream,
    parse_stream,
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

_INTEGERS = (Encoding.PLAIN, Encoding.FOR, Encoding.DELTA, Encoding.RLE, Encoding.BITPACK, Encoding.PATCHED)
CANDIDATES = {
    BOOL: (Encoding.BITMAP, Encoding.RLE),
    INT: (*_INTEGERS, Encoding.CODES),
    FLOAT: (Encoding.PLAIN, Encoding.SPLIT, Encoding.ALP, Encoding.RLE, Encoding.CODES),
    DECIMAL: (*_INTEGERS, Encoding.CODES),
    BYTES: (Encoding.STRINGS, Encoding.CODES, Encoding.TOKENS),
    LENGTHS: _INTEGERS,
}
"""Encodings the writer tries for the values stream of each kind (CODES and TOKENS only for
top-level columns); nested streams choose among :data:`_NESTED` the same way."""
_NESTED = (Encoding.FOR, Encoding.BITPACK, Encoding.PATCHED)
_WITH_RUNS = (*_NESTED, Encoding.RLE)
TOKEN_MIN_PER_ROW = 1.5
TOKEN_MAX_DISTINCT = 0.5
TOKEN_MAX_SIZE = 0.85
"""TOKENS must come out at most this fraction of the best choice without it: gathering tokens
costs about 100 ns per row of phone numbers against 17 for plain strings (c_phone: 6 % smaller
as TOKENS, 2.4 times Parquet's read time)."""
PAIR_MIN_WORDS = 12
PAIR_SIZE_TOLERANCE = 1.05  # pairs (half the tokens to gather) win unless 5 % larger than words
TOKEN_SAMPLE_ROWS = 1 << 16
DIRECT_ROWS = 1 << 16
WORD_BYTE = ord("0")  # tokens start at a byte from here up that follows a byte below it


@dataclass
class Choice:
    """The encoding of one stream position in a chunk: its ``plan`` (the cascade of
    encodings); for CODES the chunk ``dictionary`` (most frequent value first) and the chunk
    rows' ``indices`` into it; for TOKENS the chunk's :class:`Tokens`; ``block``, the encoded
    dictionary block, once measured."""

    plan: Plan
    dictionary: Any = None
    indices: np.ndarray | None = None
    tokens: Tokens | None = None
    validity: bool = False
    block: bytes | None = None

    @property
    def encoding(self) -> Encoding:
        return self.plan.encoding

    @property
    def codes(self) -> np.ndarray:
        """The chunk rows' dictionary indices (CODES)."""
        if self.indices is None:
            raise ValueError(f"a {self.name()} choice has no dictionary indices")
        return self.indices

    @property
    def coder(self) -> Tokens:
        """The chunk's :class:`Tokens` (TOKENS)."""
        if self.tokens is None:
            raise ValueError(f"a {self.name()} choice has no tokens")
        return self.tokens

    def name(self) -> str:
        return "validity" if self.validity else self.plan.name()


@dataclass
class Tokens:
    """How a chunk's strings become tokens: cut into words or pairs of words (see
    :func:`tokenize`), each looked up in ``dictionary`` (most frequent first; ``lookup`` holds
    the same tokens as binary); tokens not in it are literals. ``per_row``: tokens per row
    in the strings the dictionary was made from."""

    dictionary: pa.Array
    lookup: pa.Array
    pairs: bool
    per_row: float

    def code(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array]:
        """``(token counts per row, codes, literal tokens)`` of the strings ``arr``: code
        ``len(dictionary)`` marks a literal."""
        first, tokens = tokenize(arr, self.pairs)
        found = pc.index_in(tokens, value_set=self.lookup)
        codes = np.frombuffer(found.buffers()[1] or b"", np.int32, len(found), found.offset * 4)
        literals = tokens.slice(0, 0)
        if found.null_count:
            missing = found.is_null()
            codes = np.where(missing.to_numpy(zero_copy_only=False), np.int32(len(self.lookup)), codes)
            literals = tokens.filter(missing)
        return np.diff(first), codes, literals


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
    """A few evenly spaced contiguous slices of ``arr``, measured the way pages see them
    (ranges, runs and differences per slice)."""
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
        return encode_bytes(np.diff(offsets), data, level, FOR_PLAN)
    return encode_ints(dictionary, FOR_PLAN, level)


def _ranks(indices: np.ndarray, entries: int, valid: np.ndarray | None = None) -> tuple:
    """``(order, rank, counts)``: dictionary entries from most to least frequent, each entry's
    position in that order (int32) and the entries' counts in that order."""
    counts = np.bincount(indices if valid is None else indices[valid], minlength=entries)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty(entries, dtype=np.int32)
    rank[order] = np.arange(entries, dtype=np.int32)
    return order, rank, counts[order]


def _indices(encoded: pa.DictionaryArray) -> np.ndarray:
    """The int32 indices of a dictionary array (unspecified at null rows)."""
    indices = encoded.indices
    return np.frombuffer(indices.buffers()[1], np.int32, len(indices), indices.offset * 4)


def _dictionary(arr: pa.Array, kind: str, max_entries: int) -> Choice | None:
    """A CODES choice with ``arr``'s dictionary (most frequent value first; null rows get code
    0), or None when ``arr`` has more than ``max_entries`` distinct values (or none)."""
    if kind == BYTES:
        encoded = arr.dictionary_encode()
    else:
        values = flatten(arr, [])[1][1]
        if len(values) != len(arr):
            return None  # decimals wider than 64 bits
        encoded = pa.array(values).dictionary_encode()
    entries = len(encoded.dictionary)
    if not 0 < entries <= max_entries:
        return None
    valid = _validity(arr) if encoded.indices.null_count else None
    order, rank, _ = _ranks(_indices(encoded), entries, valid)
    codes = np.take(rank, _indices(encoded), mode="clip")
    if valid is not None:
        codes[~valid] = 0
    if kind == BYTES:
        return Choice(Plan(Encoding.CODES), encoded.dictionary.take(pa.array(order)), codes)
    return Choice(Plan(Encoding.CODES), encoded.dictionary.to_numpy()[order], codes)


def tokenize(arr: pa.Array, pairs: bool = False) -> tuple[np.ndarray, pa.Array]:
    """Cut every string of ``arr`` into words: a token starts at each string's start and
    wherever a byte from ``0`` (0x30) up follows a byte below it (space, punctuation such as
    ``,.-#/()``), so ``"slyly final, ideas"`` is ``"slyly "``, ``"final, "``, ``"ideas"``;
    UTF-8 sequences (bytes from 0x80) are never cut. With ``pairs`` a token is two words
    (``"slyly final, "``, ``"ideas"``): half as many tokens to hash and to gather. Returns
    each row's first token (``n + 1`` entries) and the tokens as a binary array over the same
    bytes."""
    offsets = offsets_of(arr)
    data = np.frombuffer(arr.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    word = data >= WORD_BYTE
    begins = np.empty(len(data) + 1, dtype=bool)  # the last entry closes the last token
    begins[0] = begins[-1] = True
    np.greater(word[1:], word[:-1], out=begins[1:-1])
    begins[offsets[:-1][np.diff(offsets) > 0]] = True
    bounds = np.flatnonzero(begins)
    first = np.searchsorted(bounds, offsets)
    if pairs:  # keep the starts of a string's words 0, 2, 4...: word j where j - first is even
        counts = np.diff(first)
        keep = np.empty(len(bounds), dtype=bool)
        keep[0::2] = True
        keep[1::2] = False
        keep[:-1] ^= np.repeat((first[:-1] & 1).astype(bool), counts)
        keep[-1] = True
        bounds = bounds[keep]
        first = np.zeros(len(first), dtype=np.int64)
        np.cumsum((counts + 1) // 2, out=first[1:])
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    if not large:
        bounds = bounds.astype(np.int32)
    binary = pa.large_binary() if large else pa.binary()
    tokens = pa.Array.from_buffers(binary, len(bounds) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(data)])
    return first, tokens


def _tokens(arr: pa.Array, max_entries: int, check: bool = True, pairs: bool = False) -> Choice | None:
    """A TOKENS choice whose dictionary holds the tokens (words, or pairs of words) that occur
    at least twice in ``arr`` (the chunk or a sample of it), most frequent first, at most
    ``max_entries``; None when there are no tokens or (with ``check``) the strings are not
    wordy: fewer than 1.5 tokens per row, or more than one distinct token in two."""
    _, tokens = tokenize(arr, pairs)
    if check and len(tokens) < TOKEN_MIN_PER_ROW * len(arr):
        return None
    counted = pc.value_counts(tokens)
    if not len(counted) or (check and len(counted) > TOKEN_MAX_DISTINCT * len(tokens)):
        return None
    counts = counted.field("counts").to_numpy()
    order = np.argsort(-counts, kind="stable")
    kept = min(int(np.count_nonzero(counts >= 2)), max_entries)
    lookup = counted.field("values").take(pa.array(order[:kept]))
    dictionary = lookup.view(_plain_bytes_type(arr.type))
    tokens_of = Tokens(dictionary, lookup, pairs, len(tokens) / max(len(arr), 1))
    return Choice(Plan(Encoding.TOKENS), dictionary, tokens=tokens_of)


def _plain_bytes_type(t: pa.DataType) -> pa.DataType:
    """The type tokens of a column of type ``t`` take (offsets as wide as ``t``'s)."""
    if pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return pa.large_string() if pa.types.is_large_string(t) else pa.large_binary()
    return pa.string() if pa.types.is_string(t) else pa.binary()


class _Sample:
    """The values of one integer stream in the sample slices, joined, and prepared the way
    pages see them: from each slice's minimum (frame of reference), around each slice's
    median (zigzag), and as each slice's differences (delta). Each candidate encoding is
    then measured with one call on the joined values."""

    def __init__(self, slices: list[np.ndarray]):
        self.slices = [s for s in slices if len(s)] or slices[:1]
        self.joined = np.concatenate(self.slices) if len(self.slices) > 1 else self.slices[0]

    @functools.cached_property
    def wide(self) -> list[np.ndarray]:
        return [s.astype(np.int64, copy=False) for s in self.slices]

    @functools.cached_property
    def from_min(self) -> np.ndarray:
        return np.concatenate([s - s.min() for s in self.wide if len(s)] or [np.zeros(0, np.int64)])

    @functools.cached_property
    def around_median(self) -> np.ndarray:
        parts = [s - approximate_median(s) for s in self.wide if len(s)]
        return np.concatenate(parts or [np.zeros(0, np.int64)])

    @functools.cached_property
    def bits(self) -> int:
        """Bits of the widest slice's range."""
        return int(self.from_min.view(np.uint64).max()).bit_length() if len(self.from_min) else 0

    @functools.cached_property
    def runs(self) -> int:
        return sum(int(np.count_nonzero(s[1:] != s[:-1])) + 1 for s in self.slices if len(s))

    @functools.cached_property
    def diffs(self) -> _Sample | None:
        parts = [np.diff(s) for s in self.wide if len(s) > 1]
        return _Sample(parts) if parts else None


_DELTA_HEADER = 40  # bytes a DELTA stream adds to its nested differences (per page)


def _best_plan(sample: _Sample, encodings, level: int, max_cost: float) -> tuple[Plan, float]:
    """``(plan, size)``: the plan among ``encodings`` (nested plans chosen the same way) that
    stores ``sample`` smallest, a cheaper encoding winning ties within 2 % per unit of cost."""
    best: tuple[tuple[float, float], Plan, float] | None = None
    for plan, size in _sized_plans(sample, encodings, level, max_cost):
        key = (size * (1 + 0.02 * plan.cost), plan.cost)
        if best is None or key < best[0]:
            best = (key, plan, size)
    if best is None:
        return Plan(Encoding.PLAIN), len(encode_ints(sample.joined, Plan(Encoding.PLAIN), level))
    return best[1], best[2]


def _sized_plans(sample: _Sample, encodings, level: int, max_cost: float):
    """``(plan, size on the sample)`` of each candidate in ``encodings``. Candidates that cannot
    beat another on these values are skipped: PLAIN when the range fits a narrower width (FOR
    is smaller), BITPACK at a whole byte width and PATCHED within one byte (FOR is the same),
    aligned BITPACK when the exact width is already aligned, RLE without runs, PLAIN and SPLIT
    when ALP reproduces every float of the sample (its integers are never larger)."""
    bits, width = sample.bits, 8 * sample.joined.dtype.itemsize
    has_for = Encoding.FOR in encodings and DECODE_COST[Encoding.FOR] <= max_cost
    alp = _alp_plan(sample, level, max_cost) if Encoding.ALP in encodings else None
    for enc in encodings:
        if DECODE_COST[enc] > max_cost or (alp is not None and alp[2] == 0 and enc in _RAW_FLOATS):
            continue
        if enc == Encoding.FOR:
            yield FOR_PLAN, len(encode_ints(sample.from_min, FOR_PLAN, level))
        elif enc == Encoding.PLAIN:
            if not has_for or bits >= width:
                yield Plan(enc), len(encode_ints(sample.joined, Plan(enc), level))
        elif enc == Encoding.BITPACK:
            if not has_for or bits not in (0, 8, 16, 32, 64):
                yield Plan(enc), len(encode_ints(sample.from_min, Plan(enc), level))
            if bits < 8 and bits not in (0, 1, 2, 4):
                plan = Plan(enc, aligned=True)
                yield plan, len(encode_ints(sample.from_min, plan, level))
        elif enc == Encoding.PATCHED:
            if bits > 8 or not has_for:
                yield Plan(enc), len(encode_ints(sample.from_min, Plan(enc), level))
                plan = Plan(enc, zigzag=True)
                yield plan, len(encode_ints(sample.around_median, plan, level))
        elif enc == Encoding.DELTA:
            diffs = sample.diffs
            if diffs is not None:
                inner, size = _best_plan(diffs, _NESTED, level, max_cost)
                yield Plan(enc, (inner,)), size + _DELTA_HEADER * len(sample.slices)
        elif enc == Encoding.RLE:
            if 2 * sample.runs <= len(sample.joined):
                plan = Plan(enc, (FOR_PLAN, FOR_PLAN))
                yield plan, len(encode_ints(sample.joined, plan, level))
        elif enc == Encoding.ALP:
            if alp is not None:
                yield alp[:2]
        else:
            yield Plan(enc), len(encode_ints(sample.joined, Plan(enc), level))


_RAW_FLOATS = (Encoding.PLAIN, Encoding.SPLIT)
_ALP_PROBE = 1024  # values on which the exponent is searched before it is checked on the sample


def _alp_plan(sample: _Sample, level: int, max_cost: float) -> tuple[Plan, float, int] | None:
    """``(plan, size, exceptions)`` of ALP on the float bit patterns of ``sample``, or None when
    more than one value in eight would be an exception."""
    joined = sample.joined
    if not len(joined):
        return None
    e, _ = alp_exponent(joined[:: max(1, len(joined) // _ALP_PROBE)])
    k, miss = alp_integers(joined, e)
    misses = int(np.count_nonzero(miss))
    if misses > len(joined) // 8:
        return None
    if misses:
        k[miss] = k[np.argmin(miss)]  # as the encoder stores them
    bounds = np.cumsum([len(s) for s in sample.slices])[:-1]
    inner, size = _best_plan(_Sample(np.split(k, bounds)), _NESTED, level, max_cost)
    exceptions = misses * (8 + joined.dtype.itemsize) // 2 + (40 if misses else 0)
    return Plan(Encoding.ALP, (inner,), exponent=e), size + exceptions, misses


def choose(
    arr: pa.Array,
    samples: list[pa.Array],
    level: int,
    max_decode_cost: float,
    override: Plan | None = None,
) -> list[Choice]:
    """Pick, per stream position, the cascade of encodings with the smallest projected size.

    Each candidate is encoded once on the joined ``samples`` (slices of ``arr`` from
    :func:`sample_slices`, prepared per slice as pages see them, see :class:`_Sample`), its
    size scaled to the chunk (plus the dictionary block for CODES and TOKENS); candidates
    whose decode cost exceeds ``max_decode_cost`` are not tried. Nested streams (differences,
    dictionary codes, escapes...) are chosen the same way on the sample's nested values.
    For chunks beyond DIRECT_ROWS rows CODES is first tried with a dictionary of the sample
    alone; only when that looks smallest is the chunk's dictionary built (a hash pass over
    the whole chunk). TOKENS code pages against a dictionary of a sample. A cheaper encoding
    wins ties within 2 % per unit of cost. ``override`` forces the
    top-level values plan when its encoding applies to the type.
    """
    rows = sum(len(s) for s in samples)
    scale = len(arr) / max(rows, 1)
    starts = [s.offset - arr.offset for s in samples]
    top_level = not pa.types.is_nested(arr.type)
    flat = [flatten(s, []) for s in samples]
    plan = []
    for pos, (kind, _) in enumerate(flat[0]):
        payloads = [f[pos][1] for f in flat]
        if kind == VALIDITY:
            plan.append(Choice(Plan(Encoding.BITMAP), validity=True))
            continue
        candidates = CANDIDATES[kind]
        if pos != 1 or not top_level:
            candidates = tuple(c for c in candidates if c not in (Encoding.CODES, Encoding.TOKENS))
        if override is not None and pos == 1 and override.encoding in candidates:
            forced = _forced(override, kind, payloads, arr)
            plan.append(forced or Choice(Plan(Encoding.STRINGS if kind == BYTES else Encoding.PLAIN)))
            continue
        candidates = tuple(c for c in candidates if DECODE_COST[c] <= max_decode_cost)
        best_choice, best_key = _plain_best(kind, candidates, payloads, level, max_decode_cost, scale)
        chunk_wide = [c for c in candidates if c in (Encoding.CODES, Encoding.TOKENS)]
        # a chunk up to DIRECT_ROWS rows: its own dictionary is cheap enough to try directly
        direct = len(arr) <= DIRECT_ROWS
        source = pa.concat_arrays(samples) if chunk_wide and not direct else arr
        at = np.cumsum([0] + [len(s) for s in samples])[:-1].tolist()
        for enc in chunk_wide:
            trial = _chunk_choice(enc, kind, source, len(source))
            if trial is None:
                continue
            if enc == Encoding.TOKENS:  # pages are coded against a dictionary of a sample
                found = _token_choice(trial, arr, samples, payloads, level, max_decode_cost, scale)
                if found[1][0] < best_key[0] * TOKEN_MAX_SIZE:
                    best_choice, best_key = found
                continue
            if not direct:
                key = _dictionary_key(trial, kind, payloads, at, level, max_decode_cost, scale)
                if key >= best_key:
                    continue
                trial = _chunk_choice(enc, kind, arr, len(arr))
                if trial is None:
                    continue
            key = _dictionary_key(trial, kind, payloads, starts, level, max_decode_cost, scale)
            if key < best_key:
                best_choice, best_key = trial, key
        plan.append(best_choice)
    return plan


def _plain_best(kind: str, candidates, payloads: list, level: int, max_cost: float, scale: float):
    """``(choice, key)``: the best choice without a chunk dictionary for one stream position,
    key = (projected chunk size weighted by decode cost, cost)."""
    size: float
    if kind == BOOL:
        sample = _Sample([p.view(np.int8) for p in payloads])
        sizes: list[tuple[int, Plan]] = []
        for enc in candidates:
            if enc == Encoding.RLE and 2 * sample.runs <= len(sample.joined):
                plan = Plan(enc, (FOR_PLAN, FOR_PLAN))
                sizes.append((len(encode_ints(sample.joined, plan, level)), plan))
            elif enc == Encoding.BITMAP:
                sizes.append((len(encode_bitmap(sample.joined.view(bool), level)), Plan(enc)))
        size, plan = min(
            sizes or [(0, Plan(Encoding.BITMAP))], key=lambda x: (x[0] * (1 + 0.02 * x[1].cost), x[1].cost)
        )
    elif kind == BYTES:
        lengths = _Sample([p[0] for p in payloads])
        inner, size = _best_plan(lengths, _WITH_RUNS + (Encoding.DELTA,), level, max_cost)
        data = np.concatenate([p[1] for p in payloads])
        size += len(compress(data, level)[2])
        plan = Plan(Encoding.STRINGS, (inner,))
    else:
        encodings = tuple(c for c in candidates if c != Encoding.CODES)
        plan, size = _best_plan(_Sample(payloads), encodings, level, max_cost)
    return Choice(plan), (size * scale * (1 + 0.02 * plan.cost), plan.cost)


def _chunk_choice(enc: Encoding, kind: str, source: pa.Array, rows: int) -> Choice | None:
    """A CODES or TOKENS choice with the dictionary of ``source`` (the chunk, or the joined
    sample), or None when its data does not suit it: CODES needs at most one distinct value
    in four rows of the sample, TOKENS wordy text (:func:`_tokens`)."""
    if enc == Encoding.CODES:
        return _dictionary(source, kind, min(DICT_MAX_ENTRIES, rows // 4))
    return _tokens(source, min(DICT_MAX_ENTRIES, rows))


def _token_choice(
    words: Choice, arr: pa.Array, samples: list, payloads: list, level: int, max_cost: float, scale: float
) -> tuple[Choice, tuple[float, float]]:
    """``(choice, key)`` of TOKENS for the chunk ``arr`` given ``words``, the word dictionary of
    the joined ``samples`` (pages are coded against it). Long text (PAIR_MIN_WORDS words per
    row and more) is cut into pairs of words instead, with a dictionary from a larger sample
    (TOKEN_SAMPLE_ROWS rows: pairs repeat less often than words), unless pairs come out more
    than PAIR_SIZE_TOLERANCE times the size of words."""
    at = np.cumsum([0] + [len(s) for s in samples])[:-1].tolist()
    best = (words, _dictionary_key(words, BYTES, payloads, at, level, max_cost, scale))
    if words.tokens is not None and words.tokens.per_row >= PAIR_MIN_WORDS:
        source = arr if len(arr) <= TOKEN_SAMPLE_ROWS else pa.concat_arrays(_spread(arr, TOKEN_SAMPLE_ROWS))
        pairs = _tokens(source, min(DICT_MAX_ENTRIES, len(arr)), check=False, pairs=True)
        if pairs is not None:
            key = _dictionary_key(pairs, BYTES, payloads, at, level, max_cost, scale)
            if key[0] < best[1][0] * PAIR_SIZE_TOLERANCE:
                best = (pairs, key)
    return best


def _spread(arr: pa.Array, rows: int) -> list[pa.Array]:
    """About ``rows`` rows of ``arr`` as evenly spaced slices of SAMPLE_SLICE_ROWS rows."""
    count = max(2, rows // SAMPLE_SLICE_ROWS)
    step = (len(arr) - SAMPLE_SLICE_ROWS) // (count - 1)
    return [arr.slice(i * step, SAMPLE_SLICE_ROWS) for i in range(count)]


def _dictionary_key(
    choice: Choice, kind: str, payloads: list, starts, level: int, max_cost: float, scale: float
) -> tuple[float, float]:
    """Choose the nested plans of a CODES or TOKENS ``choice`` on the sample rows at ``starts``
    in its source, and return its key (see :func:`_plain_best`), dictionary block included
    (kept on the choice for the writer)."""
    lengths = [_rows(p) for p in payloads]
    if choice.encoding == Encoding.CODES:
        codes = _Sample([choice.codes[st : st + n] for st, n in zip(starts, lengths)])
        inner, size = _best_plan(codes, _WITH_RUNS, level, max_cost)
        choice.plan = Plan(Encoding.CODES, (inner,))
    else:
        coded = [choice.coder.code(p[2]) for p in payloads]
        count_plan, count_size = _best_plan(_Sample([c[0] for c in coded]), _WITH_RUNS, level, max_cost)
        code_plan, code_size = _best_plan(_Sample([c[1] for c in coded]), _NESTED, level, max_cost)
        choice.plan = Plan(Encoding.TOKENS, (count_plan, code_plan))
        literals = np.concatenate([_bytes_of(c[2]) for c in coded])
        size = count_size + code_size + len(compress(literals, level)[2])
    choice.block = encode_dictionary(choice.dictionary, level)
    cost = choice.plan.cost
    return (size * scale + len(choice.block)) * (1 + 0.02 * cost), cost


def _bytes_of(arr: pa.Array) -> np.ndarray:
    """The bytes of a (possibly sliced) string or binary array, all values concatenated."""
    offsets = offsets_of(arr)
    return np.frombuffer(arr.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]


def _forced(plan: Plan, kind: str, payloads: list, arr: pa.Array) -> Choice | None:
    """The choice a user forced (None if the data cannot take it, e.g. no dictionary)."""
    choice: Choice | None
    if plan.encoding == Encoding.CODES:
        choice = _dictionary(arr, kind, DICT_MAX_ENTRIES)
    elif plan.encoding == Encoding.TOKENS:
        choice = _tokens(arr, min(DICT_MAX_ENTRIES, len(arr)), check=False)
    elif plan.encoding == Encoding.ALP:
        joined = np.concatenate(payloads)
        choice = Choice(dataclasses.replace(plan, exponent=alp_exponent(joined)[0] if len(joined) else 0))
    else:
        choice = Choice(plan)
    if choice is not None:
        choice.plan = dataclasses.replace(choice.plan, children=plan.children)
    return choice


def _rows(payload) -> int:
    return len(payload[2]) if isinstance(payload, tuple) else len(payload)


# ---------------------------------------------------------------- pages


def encode_stream(kind: str, payload, choice: Choice, level: int, start: int = 0) -> bytes:
    """Serialize one logical stream with ``choice``; ``start`` is the page's first row in
    the chunk (to slice chunk-level dictionary codes and tokens)."""
    plan = choice.plan
    if kind == VALIDITY:
        return pack_stream(Encoding.NONE, []) if payload is None else encode_bitmap(payload, level)
    if kind == BOOL:
        if plan.encoding == Encoding.RLE:
            return encode_ints(payload.view(np.int8), plan, level)
        return encode_bitmap(payload, level)
    if plan.encoding == Encoding.CODES:
        return encode_ints(choice.codes[start : start + _rows(payload)], plan, level)
    if kind == BYTES:
        lengths, data, arr = payload
        if plan.encoding == Encoding.TOKENS:
            return _encode_tokens(choice, arr, level)
        return encode_bytes(lengths, data, level, plan.child(0))
    return encode_ints(payload, plan, level)


def _encode_tokens(choice: Choice, arr: pa.Array, level: int) -> bytes:
    tok = choice.coder
    counts, codes, literals = tok.code(arr)
    literal_stream = encode_bytes(np.diff(offsets_of(literals)), _bytes_of(literals), level, FOR_PLAN)
    return encode_tokens(counts, codes, len(tok.dictionary), literal_stream, level, choice.plan)


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


def _joined_tokens(t: pa.DataType, n: int, stream: Stream, dictionary: pa.Array) -> pa.Array:
    """The ``n`` strings of a TOKENS stream: its tokens taken from the dictionary (or the
    page's literals) in one Arrow ``take``, whose bytes are the strings' bytes; the strings'
    offsets are the token offsets at each string's first token."""
    counts, indices, literal_stream, m = decode_tokens(stream, n, len(dictionary))
    if m:
        dictionary = pa.concat_arrays([dictionary, _bytes_array(t, m, None, literal_stream)])
    tokens = dictionary.take(pa.array(indices))
    large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
    token_offsets = np.frombuffer(tokens.buffers()[1], dtype=np.int64 if large else np.int32)
    rows = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=rows[1:])
    offsets = token_offsets[tokens.offset + rows]
    start = int(offsets[0])
    if start:
        offsets = offsets - offsets.dtype.type(start)
    data = tokens.buffers()[2]
    return pa.Array.from_buffers(
        t, n, [None, pa.py_buffer(offsets), data[start:] if data else pa.py_buffer(b"")], null_count=0
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
        numbers = decode_ints(r.next(), n, dictionary=dictionary)
        if numbers.dtype.itemsize * 8 != t.bit_width:
            raise CorruptData("value width does not match the column type")
        return pa.Array.from_buffers(t, n, [validity, pa.py_buffer(numbers)], null_count=nulls)
    if pa.types.is_decimal(t):
        words = decode_ints(r.next(), n, dictionary=dictionary, allow_wide=True)
        if words.dtype.itemsize != 8:
            raise CorruptData("decimal values must be 64-bit words")
        if len(words) == n:
            words = np.column_stack((words, words >> 63))
        return pa.Array.from_buffers(
            t, n, [validity, pa.py_buffer(np.ascontiguousarray(words))], null_count=nulls
        )
    if (
        pa.types.is_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_string(t)
        or pa.types.is_large_binary(t)
    ):
        stream = r.next()
        if stream.encoding in (Encoding.DICT, Encoding.CODES, Encoding.TOKENS):
            if dictionary is None:
                raise CorruptData("dictionary-encoded page without a dictionary")
            if stream.encoding == Encoding.TOKENS:
                taken = _joined_tokens(t, n, stream, dictionary)
            else:
                taken = dictionary.take(pa.array(decode_codes(stream, n, len(dictionary))))
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
