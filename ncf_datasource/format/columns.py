"""Column chunks: Arrow arrays <-> pages of encoded streams, and the per-chunk encoding choice.

An Arrow column is walked depth-first; every node contributes a validity stream, then its
own values stream (leaves: values; lists and maps: lengths), then its children's streams.
The order and number of streams depend only on the type, so a page needs no stream names.
"""

from __future__ import annotations

import dataclasses
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
WORD_BYTE = ord("0")  # tokens start at a byte from here up that follows a byte below it


@dataclass
class Choice:
    """The encoding of one stream position in a chunk: its ``plan`` (the cascade of
    encodings); for CODES the chunk ``dictionary`` (most frequent value first) and the chunk
    rows' ``indices`` into it; for TOKENS the chunk's :class:`Tokens`."""

    plan: Plan
    dictionary: Any = None
    indices: np.ndarray | None = None
    tokens: Tokens | None = None
    validity: bool = False

    @property
    def encoding(self) -> Encoding:
        return self.plan.encoding

    def name(self) -> str:
        return "validity" if self.validity else self.plan.name()


@dataclass
class Tokens:
    """A chunk of strings cut into words (see :func:`tokenize`): ``first[i]`` is row i's first
    token, ``codes`` index the token ``dictionary`` (most frequent first) and equal its size
    for literal tokens, ``tokens`` holds every token's bytes."""

    first: np.ndarray
    codes: np.ndarray
    tokens: pa.Array
    dictionary: pa.Array


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
        return encode_bytes(np.diff(offsets), data, level, FOR_PLAN)
    return encode_ints(dictionary, FOR_PLAN, level)


def _by_frequency(indices: np.ndarray, entries: int, valid: np.ndarray | None = None) -> tuple:
    """``(order, codes, counts)``: dictionary entries from most to least frequent, ``indices``
    renumbered in that order (so that small codes dominate; invalid rows get code 0), and the
    entries' counts in that order."""
    counts = np.bincount(indices if valid is None else indices[valid], minlength=entries)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty(entries, dtype=np.int32)
    rank[order] = np.arange(entries, dtype=np.int32)
    codes = np.take(rank, indices)
    if valid is not None:
        codes[~valid] = 0
    return order, codes, counts[order]


def _dictionary(arr: pa.Array, kind: str) -> Choice | None:
    """A CODES choice with the chunk's dictionary, or None when the chunk has too many
    distinct values (or none)."""
    if kind == BYTES:
        encoded = arr.dictionary_encode()
        entries = len(encoded.dictionary)
        if not 0 < entries <= DICT_MAX_ENTRIES:
            return None
        valid = _validity(arr)
        order, codes, _ = _by_frequency(encoded.indices.fill_null(0).to_numpy(), entries, valid)
        return Choice(Plan(Encoding.CODES), encoded.dictionary.take(pa.array(order)), codes)
    values = flatten(arr, [])[1][1]
    if len(values) != len(arr):
        return None  # decimals wider than 64 bits
    encoded = pa.array(values).dictionary_encode()
    entries = len(encoded.dictionary)
    if not 0 < entries <= DICT_MAX_ENTRIES:
        return None
    order, codes, _ = _by_frequency(encoded.indices.to_numpy(), entries)
    return Choice(Plan(Encoding.CODES), encoded.dictionary.to_numpy()[order], codes)


def tokenize(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Cut every string of ``arr`` into words: a token starts at each string's start and
    wherever a byte from ``0`` (0x30) up follows a byte below it (space, punctuation such as
    ``,.-#/()``), so ``"slyly final, ideas"`` is ``"slyly "``, ``"final, "``, ``"ideas"``;
    UTF-8 sequences (bytes from 0x80) are never cut. Returns each row's first token (``n + 1``
    entries) and the tokens as a binary array over the same bytes."""
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
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    if not large:
        bounds = bounds.astype(np.int32)
    binary = pa.large_binary() if large else pa.binary()
    tokens = pa.Array.from_buffers(binary, len(bounds) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(data)])
    return first, tokens


def _tokens(arr: pa.Array) -> Choice | None:
    """A TOKENS choice: the chunk's tokens, coded against a dictionary of the tokens that
    occur at least twice (most frequent first, at most one per row and 65 536)."""
    first, tokens = tokenize(arr)
    encoded = tokens.dictionary_encode()
    entries = len(encoded.dictionary)
    if not entries:
        return None
    order, codes, counts = _by_frequency(encoded.indices.to_numpy(), entries)
    kept = int(min(np.count_nonzero(counts >= 2), DICT_MAX_ENTRIES, len(arr)))
    codes[codes >= kept] = kept
    dictionary = encoded.dictionary.take(pa.array(order[:kept])).view(_plain_bytes_type(arr.type))
    return Choice(Plan(Encoding.TOKENS), dictionary, tokens=Tokens(first, codes, tokens, dictionary))


def _plain_bytes_type(t: pa.DataType) -> pa.DataType:
    """The type tokens of a column of type ``t`` take (offsets as wide as ``t``'s)."""
    if pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return pa.large_string() if pa.types.is_large_string(t) else pa.large_binary()
    return pa.string() if pa.types.is_string(t) else pa.binary()


def _looks_tokenizable(samples: list[pa.Array]) -> bool:
    rows = sum(len(s) for s in samples)
    tokens = pa.concat_arrays([tokenize(s)[1] for s in samples])
    return len(tokens) >= TOKEN_MIN_PER_ROW * rows and (
        len(pc.unique(tokens)) <= TOKEN_MAX_DISTINCT * len(tokens)
    )


def _best_plan(values: list[np.ndarray], encodings, level: int, max_cost: float) -> Plan:
    """The plan among ``encodings`` (each with its own best nested plans) that stores
    ``values`` (one array per sample slice) smallest."""
    best: tuple[float, float, Plan] | None = None
    for plan in _plans(encodings, values, level, max_cost):
        if plan.cost > max_cost:
            continue
        size = sum(len(encode_ints(v, plan, level)) for v in values)
        key = (size * (1 + 0.02 * plan.cost), plan.cost)
        if best is None or key < best[:2]:
            best = (*key, plan)
    return best[2] if best else Plan(Encoding.PLAIN)


def _plans(encodings, values: list[np.ndarray], level: int, max_cost: float):
    """Candidate plans of ``encodings`` for ``values``, nested streams already chosen.
    Plans that cannot beat another candidate on these values are skipped: PLAIN when the
    range fits a narrower width (FOR is smaller), PATCHED when it fits one byte (FOR is the
    same), aligned BITPACK when the exact width is already aligned, RLE without runs."""
    joined = np.concatenate(values) if len(values) > 1 else values[0]
    v64 = joined.astype(np.int64, copy=False)
    span = int((v64 - v64.min()).view(np.uint64).max()) if len(v64) else 0
    bits = span.bit_length()
    for enc in encodings:
        if enc == Encoding.PLAIN and Encoding.FOR in encodings and bits < 8 * joined.dtype.itemsize:
            continue
        if enc == Encoding.BITPACK:
            yield Plan(enc)
            if bits < 8 and bits not in (1, 2, 4):
                yield Plan(enc, aligned=True)
        elif enc == Encoding.PATCHED:
            if bits > 8 or Encoding.FOR not in encodings:
                yield Plan(enc)
                yield Plan(enc, zigzag=True)
        elif enc == Encoding.DELTA:
            diffs = [np.diff(v.astype(np.int64, copy=False)) for v in values if len(v) > 1]
            inner = (Encoding.FOR, Encoding.BITPACK, Encoding.PATCHED)
            yield Plan(enc, (_best_plan(diffs, inner, level, max_cost),) if diffs else ())
        elif enc == Encoding.RLE:
            if 2 * sum(int(np.count_nonzero(v[1:] != v[:-1])) + 1 for v in values if len(v)) <= len(joined):
                yield Plan(enc, (FOR_PLAN, FOR_PLAN))
        elif enc == Encoding.ALP:
            yield from _alp_plans(values, level, max_cost)
        else:
            yield Plan(enc)


def _alp_plans(values: list[np.ndarray], level: int, max_cost: float):
    joined = np.concatenate(values)
    if not len(joined):
        return
    e, misses = alp_exponent(joined)
    if misses > len(joined) // 8:
        return
    ints = [alp_integers(v, e)[0] for v in values]
    yield Plan(Encoding.ALP, (_best_plan(ints, _NESTED, level, max_cost),), exponent=e)


def choose(
    arr: pa.Array,
    samples: list[pa.Array],
    level: int,
    max_decode_cost: float,
    override: Plan | None = None,
) -> list[Choice]:
    """Pick, per stream position, the cascade of encodings with the smallest projected size.

    Candidates are encoded on each of ``samples`` (slices of ``arr`` from
    :func:`sample_slices`), their sizes scaled to the chunk (plus the dictionary block for
    CODES and TOKENS), and those whose decode cost exceeds ``max_decode_cost`` are not tried.
    Nested streams (differences, dictionary codes, escapes...) are chosen the same way on
    the sample's nested values. CODES and TOKENS are first tried with a dictionary of the
    sample alone; only when that looks smallest is the chunk's dictionary built (a hash pass
    over the whole chunk). A cheaper encoding wins ties within 2 % per unit of cost.
    ``override`` forces the top-level values plan when its encoding applies to the type.
    """
    scale = len(arr) / max(sum(len(s) for s in samples), 1)
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
        chunk_wide: tuple[Encoding, ...] = ()
        if override is not None and pos == 1 and override.encoding in candidates:
            choices = _forced(override, kind, payloads, arr)
        else:
            candidates = tuple(c for c in candidates if DECODE_COST[c] <= max_decode_cost)
            chunk_wide = tuple(c for c in candidates if c in (Encoding.CODES, Encoding.TOKENS))
            choices = _choices(kind, candidates, payloads, level, max_decode_cost)

        best: tuple[float, float, Choice] | None = None
        for choice in choices:
            key = _key(kind, payloads, choice, starts, level, scale)
            if best is None or key < best[:2]:
                best = (*key, choice)
        joined = pa.concat_arrays(samples) if chunk_wide else None
        at = np.cumsum([0] + [len(s) for s in samples])[:-1].tolist()
        whole = len(samples) == 1 and len(samples[0]) == len(arr)  # the sample is the chunk
        for enc in (e for e in chunk_wide if _suits(e, kind, payloads)):
            if not whole:
                trial = _chunk_choice(enc, kind, joined, at, payloads, level, max_decode_cost)
                if trial is None or (
                    best is not None and _key(kind, payloads, trial, at, level, scale) >= best[:2]
                ):
                    continue
            choice = _chunk_choice(enc, kind, arr, starts, payloads, level, max_decode_cost)
            key = _key(kind, payloads, choice, starts, level, scale) if choice is not None else None
            if key is not None and (best is None or key < best[:2]):
                best = (*key, choice)
        plan.append(best[2] if best else Choice(Plan(Encoding.STRINGS if kind == BYTES else Encoding.PLAIN)))
    return plan


def _key(kind: str, payloads: list, choice: Choice, starts, level: int, scale: float) -> tuple[float, float]:
    """``(projected chunk size weighted by decode cost, cost)`` of ``choice`` on the sample."""
    size = sum(len(encode_stream(kind, p, choice, level, st)) for p, st in zip(payloads, starts)) * scale
    if choice.dictionary is not None:
        size += len(encode_dictionary(choice.dictionary, level))
    return size * (1 + 0.02 * choice.plan.cost), choice.plan.cost


def _suits(enc: Encoding, kind: str, payloads: list) -> bool:
    """Whether the sample makes CODES (few distinct values) or TOKENS (wordy text) worth a try."""
    if enc == Encoding.TOKENS:
        return _looks_tokenizable([p[2] for p in payloads])
    if kind == BYTES:
        return _few_distinct(pa.concat_arrays([p[2] for p in payloads]))
    return _few_distinct(pa.array(np.concatenate([p.astype(np.int64, copy=False) for p in payloads])))


def _chunk_choice(
    enc: Encoding, kind: str, source: pa.Array, starts, payloads, level, max_cost
) -> Choice | None:
    """A CODES or TOKENS choice whose dictionary comes from ``source`` (the chunk, or the
    joined sample for an estimate), with nested plans chosen on the sample; ``starts`` are
    the sample slices' positions in ``source``. None when there is no dictionary."""
    if enc == Encoding.CODES:
        choice = _dictionary(source, kind)
        return None if choice is None else _with_codes_plan(choice, starts, payloads, level, max_cost)
    choice = _tokens(source)
    return None if choice is None else _with_token_plans(choice, starts, payloads, level, max_cost)


def _forced(plan: Plan, kind: str, payloads: list, arr: pa.Array) -> list[Choice]:
    """The choice a user forced (none if the data cannot take it, e.g. no dictionary)."""
    if plan.encoding == Encoding.CODES:
        choice = _dictionary(arr, kind)
    elif plan.encoding == Encoding.TOKENS:
        choice = _tokens(arr)
    elif plan.encoding == Encoding.ALP:
        joined = np.concatenate(payloads)
        choice = Choice(dataclasses.replace(plan, exponent=alp_exponent(joined)[0] if len(joined) else 0))
    else:
        choice = Choice(plan)
    if choice is None:
        return []
    choice.plan = dataclasses.replace(choice.plan, children=plan.children)
    return [choice]


def _choices(kind, candidates, payloads, level, max_cost):
    """Candidate :class:`Choice` s of one stream position without a chunk dictionary."""
    if kind == BOOL:
        for enc in candidates:
            yield Choice(Plan(enc, (FOR_PLAN, FOR_PLAN)) if enc == Encoding.RLE else Plan(enc))
        return
    if kind == BYTES:
        if Encoding.STRINGS in candidates:
            lengths = [p[0] for p in payloads]
            yield Choice(
                Plan(
                    Encoding.STRINGS, (_best_plan(lengths, _WITH_RUNS + (Encoding.DELTA,), level, max_cost),)
                )
            )
        return
    for plan in _plans([c for c in candidates if c != Encoding.CODES], payloads, level, max_cost):
        if plan.cost <= max_cost:
            yield Choice(plan)


def _few_distinct(values: pa.Array) -> bool:
    return len(values) > 0 and len(pc.unique(values)) <= len(values) // 4


def _with_codes_plan(choice: Choice, starts, payloads, level: int, max_cost: float) -> Choice:
    codes = [choice.indices[st : st + _rows(p)] for p, st in zip(payloads, starts)]
    choice.plan = Plan(Encoding.CODES, (_best_plan(codes, _WITH_RUNS, level, max_cost),))
    return choice


def _with_token_plans(choice: Choice, starts, payloads, level: int, max_cost: float) -> Choice:
    tok = choice.tokens
    counts, codes = [], []
    for p, st in zip(payloads, starts):
        rows = tok.first[st : st + _rows(p) + 1]
        counts.append(np.diff(rows))
        codes.append(tok.codes[rows[0] : rows[-1]])
    choice.plan = Plan(
        Encoding.TOKENS,
        (_best_plan(counts, _WITH_RUNS, level, max_cost), _best_plan(codes, _NESTED, level, max_cost)),
    )
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
        return encode_ints(choice.indices[start : start + _rows(payload)], plan, level)
    if kind == BYTES:
        lengths, data, arr = payload
        if plan.encoding == Encoding.TOKENS:
            return _encode_tokens(choice, start, len(arr), level)
        return encode_bytes(lengths, data, level, plan.child(0))
    return encode_ints(payload, plan, level)


def _encode_tokens(choice: Choice, start: int, rows: int, level: int) -> bytes:
    tok = choice.tokens
    first = tok.first[start : start + rows + 1]
    a, b = int(first[0]), int(first[-1])
    codes = tok.codes[a:b]
    entries = len(tok.dictionary)
    literals = tok.tokens.slice(a, b - a).filter(pa.array(codes == entries))
    offsets = offsets_of(literals)
    data = np.frombuffer(literals.buffers()[2] or b"", dtype=np.uint8)[offsets[0] : offsets[-1]]
    literal_stream = encode_bytes(np.diff(offsets), data, level, FOR_PLAN)
    return encode_tokens(np.diff(first), codes, entries, literal_stream, level, choice.plan)


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
        values = decode_ints(r.next(), n, dictionary=dictionary)
        if values.dtype.itemsize * 8 != t.bit_width:
            raise CorruptData("value width does not match the column type")
        return pa.Array.from_buffers(t, n, [validity, pa.py_buffer(values)], null_count=nulls)
    if pa.types.is_decimal(t):
        values = decode_ints(r.next(), n, dictionary=dictionary, allow_wide=True)
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
