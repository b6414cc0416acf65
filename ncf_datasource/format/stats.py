"""Column chunk statistics: computed by the writer, stored in the footer, used to skip row groups.

Min and max are stored in *physical* JSON form per type (see SPEC.md, "Statistics"):
integers and booleans as JSON numbers/booleans, floats as numbers (``"Infinity"`` /
``"-Infinity"`` strings for infinities, NaN never counted in min/max but in ``nan_count``),
decimals as decimal strings, strings as text, binary as hex, dates as days since
1970-01-01 and timestamps as integers in the column's unit since the epoch (UTC).
"""

from __future__ import annotations

import datetime
import decimal
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_STAT_BYTES = 64
_EPOCH = datetime.date(1970, 1, 1)


def has_min_max(t: pa.DataType) -> bool:
    """Whether min/max statistics are kept for columns of type ``t``."""
    return not (pa.types.is_nested(t) or pa.types.is_null(t))


def _to_json(value: Any, t: pa.DataType) -> Any:
    if pa.types.is_floating(t):
        return value if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if pa.types.is_decimal(t):
        return str(value)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return value.hex() if len(value) <= MAX_STAT_BYTES else None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return value if len(value.encode()) <= MAX_STAT_BYTES else None
    return value


def from_json(value: Any, t: pa.DataType) -> Any:
    """Physical Python value of a stored statistic (see :func:`physical`)."""
    if value is None:
        return None
    if pa.types.is_floating(t):
        return float(value)
    if pa.types.is_decimal(t):
        return decimal.Decimal(value)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return bytes.fromhex(value)
    return value


def physical(value: Any, t: pa.DataType) -> Any:
    """A filter literal in the physical form statistics use, comparable with them."""
    if pa.types.is_date32(t):
        if isinstance(value, datetime.datetime):
            value = value.date()
        return (value - _EPOCH).days if isinstance(value, datetime.date) else int(value)
    if pa.types.is_timestamp(t):
        if isinstance(value, int):
            return value
        return pa.scalar(value, type=t).value
    if pa.types.is_decimal(t):
        return value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    if pa.types.is_floating(t):
        return float(value)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return bytes(value)
    return value


def _physical_array(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_date32(t):
        return arr.view(pa.int32())
    if pa.types.is_timestamp(t):
        return arr.view(pa.int64())
    return arr


def chunk_stats(arr: pa.Array, sample: pa.Array, dictionary=None) -> dict[str, Any]:
    """Statistics of one column chunk: null count, min/max, NaN count, distinct estimate.

    ``dictionary`` (the chunk dictionary, when DICT was chosen) gives the exact distinct
    count and, for strings, a cheap min/max.
    """
    t = arr.type
    stats: dict[str, Any] = {"num_values": len(arr), "null_count": arr.null_count}
    if not has_min_max(t):
        return stats
    phys = _physical_array(arr)
    if pa.types.is_floating(t):
        stats["nan_count"] = int(pc.sum(pc.is_nan(arr)).as_py() or 0)
    if arr.null_count < len(arr) and stats.get("nan_count", 0) < len(arr) - arr.null_count:
        mm = pc.min_max(dictionary if isinstance(dictionary, pa.Array) else phys)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        stats["min"], stats["max"] = _to_json(lo, t), _to_json(hi, t)
    stats["distinct_estimate"] = (
        len(dictionary) if dictionary is not None else estimate_distinct(sample, len(arr) - arr.null_count)
    )
    return stats


def estimate_distinct(sample: pa.Array, population: int) -> int:
    """Haas-Stokes "Duj1" estimate of the number of distinct values from a sample:
    ``d / (1 - (1 - r/N) * f1 / r)`` with ``d`` distinct and ``f1`` singleton values among
    ``r`` sampled of ``N`` (exact when the sample is the whole population)."""
    values = sample.drop_null()
    r = len(values)
    if r == 0:
        return 0
    counts = pc.value_counts(values).field("counts").to_numpy()
    if r >= population:
        return len(counts)
    singletons = int(np.count_nonzero(counts == 1))
    denominator = 1 - (1 - r / population) * singletons / r
    return int(min(population, round(len(counts) / denominator)))
