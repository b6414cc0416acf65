"""The learned index: an error-bounded piecewise-linear model from a sorted key to row position.

The model is fitted on the distinct keys of a sorted column, each paired with the position
of its first row. Segments are split (all at once, level by level, in numpy) until every
trained key is predicted within ``epsilon`` rows. A lookup predicts a position, reads only
the rows of a small window around it and binary-searches there; when the answer touches a
window edge (absent keys after long runs of duplicates, or keys between trained points) the
window grows geometrically, so the result is exact whatever the model's error.

Keys are mapped to float64 monotonically: integers, dates and timestamps by value, strings
and binary by their first 8 bytes read as a big-endian unsigned integer.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from .columns import offsets_of
from .encodings import Encoding, compress, pack_stream, parse_stream
from .errors import CorruptData

KIND = "piecewise_linear"
_HEAD = struct.Struct("<Q")


def indexable(t: pa.DataType) -> bool:
    """Whether a learned index can be built on a column of type ``t``."""
    return (
        pa.types.is_integer(t)
        or pa.types.is_date32(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    )


def is_bytes_type(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    )


def key_floats(arr: pa.Array) -> np.ndarray:
    """Monotone float64 image of a non-null key array (see module docstring)."""
    t = arr.type
    if is_bytes_type(t):
        offsets = offsets_of(arr)
        data = np.frombuffer(arr.buffers()[2] or b"", dtype=np.uint8)
        padded = np.concatenate((data, np.zeros(8, np.uint8)))
        idx = offsets[:-1, None] + np.arange(8)
        mask = np.arange(8) < np.diff(offsets)[:, None]
        prefix = np.where(mask, padded[np.minimum(idx, len(padded) - 1)], 0).astype(np.uint8)
        return np.ascontiguousarray(prefix).view(">u8").ravel().astype(np.float64)
    width = t.bit_width // 8
    return np.frombuffer(arr.buffers()[1], dtype=f"<i{width}")[arr.offset : arr.offset + len(arr)].astype(
        np.float64
    )


def query_float(q: Any) -> float:
    """Float image of a physical query key (int, str or bytes), as :func:`key_floats` maps it."""
    if isinstance(q, str):
        q = q.encode()
    if isinstance(q, (bytes, bytearray)):
        return float(int.from_bytes(bytes(q[:8]).ljust(8, b"\0"), "big"))
    return float(q)


FIT_POINTS = 1 << 18


def fit(keys: np.ndarray, epsilon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Fit segments on sorted float64 ``keys`` (row ``i`` holds ``keys[i]``).

    Beyond ``FIT_POINTS`` distinct keys the segments are fitted on an evenly strided subset;
    the returned max error is always measured over every distinct key.
    Returns ``(segment start keys, start positions, slopes, max error)``.
    """
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    all_first = np.concatenate(([0], change)).astype(np.float64)
    all_xs = keys[all_first.astype(np.int64)]
    stride = -(-len(all_xs) // FIT_POINTS)
    xs, first = (
        (all_xs, all_first)
        if stride == 1
        else (np.append(all_xs[:-1:stride], all_xs[-1]), np.append(all_first[:-1:stride], all_first[-1]))
    )
    x0, y0, slope = _segments(xs, first, epsilon)
    seg = np.maximum(np.searchsorted(x0, all_xs, "right") - 1, 0)
    err = np.abs(y0[seg] + slope[seg] * (all_xs - x0[seg]) - all_first)
    return x0, y0, slope, int(np.ceil(err.max())) if len(err) else 0


def _segments(xs: np.ndarray, first: np.ndarray, epsilon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = len(xs)
    starts = np.array([0], dtype=np.int64)
    while True:
        ends = np.append(starts[1:], m - 1)
        x0, y0, x1, y1 = xs[starts], first[starts], xs[ends], first[ends]
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(x1 > x0, (y1 - y0) / (x1 - x0), 0.0)
        seg = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, m)))
        err = np.abs(y0[seg] + slope[seg] * (xs - x0[seg]) - first)
        max_err = np.maximum.reduceat(err, starts)
        bad = (max_err > epsilon) & (ends - starts >= 2)
        if not bad.any():
            return x0, y0, slope
        mids = (starts[bad] + ends[bad]) // 2
        starts = np.union1d(starts, mids)


@dataclass
class LearnedIndex:
    """A fitted model over rows ``start..stop`` (the non-null span) of ``column``."""

    column: str
    start: int
    stop: int
    epsilon: int
    keys: np.ndarray
    positions: np.ndarray
    slopes: np.ndarray

    @classmethod
    def build(cls, column: str, keys: np.ndarray, start: int, epsilon: int) -> LearnedIndex:
        x0, y0, slope, max_err = fit(keys, epsilon)
        return cls(column, start, start + len(keys), max(max_err, 0), x0, y0 + start, slope)

    def predict(self, q: float) -> int:
        """Predicted row position of the first row holding float key ``q``."""
        if not len(self.keys):
            return self.start
        k = max(int(np.searchsorted(self.keys, q, "right")) - 1, 0)
        p = self.positions[k] + self.slopes[k] * (q - self.keys[k])
        return int(min(max(p, self.start), self.stop))

    def to_block(self, level: int) -> bytes:
        raw = (
            _HEAD.pack(len(self.keys))
            + self.keys.astype("<f8").tobytes()
            + self.positions.astype("<f8").tobytes()
            + self.slopes.astype("<f8").tobytes()
        )
        return pack_stream(Encoding.PLAIN, [compress(raw, level)])

    def describe(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": KIND,
            "epsilon": self.epsilon,
            "segments": len(self.keys),
            "rows": [self.start, self.stop],
        }

    @classmethod
    def from_block(cls, meta: dict[str, Any], block: memoryview) -> LearnedIndex:
        stream, end = parse_stream(block, 0)
        if end != len(block) or stream.encoding != Encoding.PLAIN or len(stream) != 1:
            raise CorruptData("malformed index block")
        segments = int(meta["segments"])
        raw = stream.data(0, _HEAD.size + 24 * segments)
        (n,) = _HEAD.unpack_from(raw, 0)
        if n != segments:
            raise CorruptData("index block does not match the footer")
        arrays = np.frombuffer(raw, dtype="<f8", offset=_HEAD.size).reshape(3, n)
        start, stop = (int(v) for v in meta["rows"])
        return cls(str(meta["column"]), start, stop, int(meta["epsilon"]), arrays[0], arrays[1], arrays[2])

    def bound(self, q: Any, side: Literal["left", "right"], read_keys: Callable[[int, int], Any]) -> int:
        """Row position where physical key ``q`` would be inserted on ``side`` ('left' or 'right').

        ``read_keys(lo, hi)`` returns the keys of rows ``lo..hi`` (numpy array or list).
        """
        p = self.predict(query_float(q))
        half = self.epsilon + 2
        lo, hi = max(self.start, p - half), min(self.stop, p + half)
        while True:
            keys = read_keys(lo, hi)
            if isinstance(keys, np.ndarray):
                i = int(np.searchsorted(keys, q, side))
            else:
                i = (bisect.bisect_left if side == "left" else bisect.bisect_right)(keys, q)
            width = max(hi - lo, 1)
            if i == 0 and lo > self.start:
                lo = max(self.start, lo - 2 * width)
            elif i == len(keys) and hi < self.stop:
                hi = min(self.stop, hi + 2 * width)
            else:
                return lo + i
