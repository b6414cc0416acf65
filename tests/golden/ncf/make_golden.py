"""Regenerate the NCF v1 golden files and their expected content. NOT run by the tests.

Run only when deliberately adding a golden file:
``.venv/bin/python tests/golden/ncf/make_golden.py [name ...]`` writes the named files, or
(without names) only those that do not exist yet: files written by an older format version
are never rewritten, they prove that the current code still reads them. Each
``<name>.ncf`` is written with
``write_options`` from the table of :func:`golden_tables`; ``<name>.json`` records the rows
written (converted by :func:`jsonable`, from the input table, not from reading the file
back), the schema, the tags/metadata and, for indexed files, expected lookups. The test
``tests/unit/test_ncf_golden.py`` reads the committed files with the current code and
compares; a change that breaks reading v1 files fails it.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
import os
import struct
import sys

import pyarrow as pa

HERE = os.path.dirname(os.path.abspath(__file__))
UTC = datetime.timezone.utc


def jsonable(value):
    """A JSON form of a Python value from ``to_pylist`` that keeps float bits, types and nulls apart."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return {"float_bits": struct.pack("<d", value).hex()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, datetime.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"date": value.isoformat()}
    if isinstance(value, dict):
        return {"struct": {k: jsonable(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    raise TypeError(f"no JSON form for {value!r}")


def rows_of(table: pa.Table) -> dict:
    return {name: jsonable(table.column(name).to_pylist()) for name in table.column_names}


def golden_tables() -> dict[str, tuple[pa.Table, dict]]:
    """name -> (table, write options)."""
    n = 60
    floats = [math.nan, -0.0, 0.0, math.inf, -math.inf, None, 1.5, -2.25, 5e-324, 1e300]
    primitives = pa.table(
        {
            "bool": pa.array([None if i % 7 == 0 else i % 3 == 0 for i in range(n)]),
            "byte": pa.array([(i * 37) % 256 - 128 for i in range(n)], pa.int8()),
            "short": pa.array([None if i % 5 == 0 else i * 1000 - 30000 for i in range(n)], pa.int16()),
            "int": pa.array([i * 65537 - 2**31 if i % 2 else 2**31 - 1 - i for i in range(n)], pa.int32()),
            "long": pa.array([None if i == 3 else (i * 7919) ** 3 - 2**62 for i in range(n)], pa.int64()),
            "float": pa.array([floats[i % len(floats)] for i in range(n)], pa.float32()),
            "double": pa.array(
                [floats[i % len(floats)] if i % 4 else i / 10 for i in range(n)], pa.float64()
            ),
            "dec": pa.array(
                [None if i % 9 == 0 else decimal.Decimal(i * 12345 - 300000).scaleb(-2) for i in range(n)],
                pa.decimal128(12, 2),
            ),
            "dec38": pa.array(
                [
                    decimal.Context(prec=50).scaleb(decimal.Decimal((-1) ** i * (10**37 + i)), -10)
                    for i in range(n)
                ],
                pa.decimal128(38, 10),
            ),
            "str": pa.array(
                [None if i % 6 == 0 else ("" if i % 6 == 1 else f"naïve-{i % 4}") for i in range(n)]
            ),
            "lstr": pa.array([f"long string {i}" * (i % 3) for i in range(n)], pa.large_string()),
            "bin": pa.array([bytes([i, 255 - i]) if i % 3 else (None if i % 2 else b"") for i in range(n)]),
            "date": pa.array(
                [datetime.date(1970, 1, 1) + datetime.timedelta(days=i * 397 - 9000) for i in range(n)]
            ),
            "ts": pa.array(
                [
                    datetime.datetime(2024, 1, 1, tzinfo=UTC)
                    + datetime.timedelta(seconds=i * 3601, microseconds=i)
                    for i in range(n)
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "ntz": pa.array(
                [
                    None
                    if i % 4 == 0
                    else datetime.datetime(1999, 12, 31, 23) + datetime.timedelta(minutes=i)
                    for i in range(n)
                ],
                pa.timestamp("us"),
            ),
            "void": pa.nulls(n),
        }
    )
    nested = pa.table(
        {
            "tags": pa.array(
                [None if i % 5 == 0 else [f"t{j}" for j in range(i % 4)] for i in range(n)],
                pa.list_(pa.string()),
            ),
            "matrix": pa.array(
                [[[i, None], []] if i % 3 else [] for i in range(n)], pa.large_list(pa.list_(pa.int32()))
            ),
            "address": pa.array(
                [
                    None
                    if i % 7 == 0
                    else {
                        "city": f"c{i % 5}",
                        "zip": None if i % 2 else i,
                        "geo": {"lat": i / 3, "lon": -i / 7},
                    }
                    for i in range(n)
                ],
                pa.struct(
                    [
                        ("city", pa.string()),
                        ("zip", pa.int32()),
                        ("geo", pa.struct([("lat", pa.float64()), ("lon", pa.float64())])),
                    ]
                ),
            ),
            "attrs": pa.array(
                [
                    None if i % 8 == 0 else [(f"k{j}", None if j == 1 else j * i) for j in range(i % 3)]
                    for i in range(n)
                ],
                pa.map_(pa.string(), pa.int64()),
            ),
        }
    )
    m = 400
    encodings = pa.table(
        {
            "plain": pa.array([(i * 2654435761) % 2**32 for i in range(m)], pa.int64()),
            "for": pa.array([1_000_000 + (i * 31) % 200 for i in range(m)], pa.int64()),
            "delta": pa.array([i * 3 + (i % 2) for i in range(m)], pa.int64()),
            "bitpack": pa.array([(i * 7) % 1000 for i in range(m)], pa.int32()),
            "rle": pa.array([i // 50 for i in range(m)], pa.int16()),
            "rle_bool": pa.array([(i // 30) % 2 == 0 for i in range(m)]),
            "dict_int": pa.array([[7, 70, 700][i % 3] for i in range(m)], pa.int64()),
            "dict_str": pa.array(
                [None if i % 11 == 0 else ["red", "green", "blue"][i % 3] for i in range(m)]
            ),
            "split": pa.array([math.sin(i) for i in range(m)], pa.float64()),
            "scaled": pa.array([round(i * 0.37, 2) for i in range(m)], pa.float64()),
            "strings": pa.array([f"s{i * i}" for i in range(m)]),
            "dec_wide": pa.array([decimal.Decimal(10**30 + i) for i in range(m)], pa.decimal128(38, 0)),
        }
    )
    forced = {
        "plain": "plain",
        "for": "for",
        "delta": "delta",
        "bitpack": "bitpack",
        "rle": "rle",
        "rle_bool": "rle",
        "dict_int": "dict",
        "dict_str": "dict",
        "split": "split",
        "scaled": "scaled",
        "strings": "strings",
        "dec_wide": "plain",
    }
    k = 500
    indexed = pa.table(
        {
            "id": pa.array([None] * 5 + [i // 3 * 2 for i in range(k - 5)], pa.int64()),
            "email": pa.array([f"user{i}@example.com" for i in range(k)]),
            "name": pa.array([f"Name {i}" for i in range(k)]),
        }
    )
    v11 = pa.table(
        {
            "codes_int": pa.array([[7, 70, 700, 7000, -1][min(i % 13, 4)] for i in range(m)], pa.int64()),
            "codes_str": pa.array(
                [None if i % 17 == 0 else ["AIR", "RAIL", "TRUCK", "SHIP"][(i * i) % 4] for i in range(m)]
            ),
            "codes_dec": pa.array(
                [decimal.Decimal((i * 7) % 50 + 1) for i in range(m)], pa.decimal128(15, 2)
            ),
            "codes_runs": pa.array(["F"] * 150 + ["O"] * 250),
            "patched": pa.array([(i * 5) % 9 if i % 37 else i * 100_003 for i in range(m)], pa.int32()),
            "patched_zz": pa.array(
                [1000 + (-1) ** i * ((i * 3) % 7) + (500_000 if i % 41 == 0 else 0) for i in range(m)],
                pa.int64(),
            ),
            "delta_dates": pa.array(
                [
                    datetime.date(1995, 1, 1) + datetime.timedelta(days=(i // 4) * 3 + (i * 7) % 11)
                    for i in range(m)
                ]
            ),
            "alp": pa.array(
                [
                    None
                    if i % 23 == 0
                    else (
                        math.nan
                        if i == 5
                        else (
                            1 / 3 if i == 9 else (-0.0 if i == 11 else round((i * 7919) % 100_000 / 100, 2))
                        )
                    )
                    for i in range(m)
                ],
                pa.float64(),
            ),
            "alp32": pa.array([(i % 50) / 10 if i != 3 else math.inf for i in range(m)], pa.float32()),
            "tokens": pa.array(
                [
                    None
                    if i % 19 == 0
                    else (
                        ""
                        if i % 19 == 1
                        else " ".join(
                            ["carefully", "final", "deposits", "sleep", "quickly", f"zébra{i}", "ironic"][
                                (i + j) % 7
                            ]
                            for j in range(i % 6 + 1)
                        )
                    )
                    for i in range(m)
                ]
            ),
            "tokens_large": pa.array(
                [f"furiously even pinto beans {i % 3} nag" for i in range(m)], pa.large_string()
            ),
            "bitpack_aligned": pa.array([(i * i) % 5 for i in range(m)], pa.int16()),
        }
    )
    forced11 = {
        "codes_int": "codes[patched-zigzag]",
        "codes_str": "codes[bitpack-aligned]",
        "codes_dec": "dict",
        "codes_runs": "codes[rle[bitpack,for]]",
        "patched": "patched[bitpack]",
        "patched_zz": "patched-zigzag[delta]",
        "delta_dates": "delta[patched-zigzag]",
        "alp": "alp[for,delta,plain]",
        "alp32": "scaled[patched]",
        "tokens": "tokens[for,patched[plain]]",
        "tokens_large": "tokens[rle,bitpack-aligned]",
        "bitpack_aligned": "bitpack-aligned",
    }
    return {
        "primitives": (primitives, {"row_group_size": 25, "page_size": 8}),
        "nested": (nested, {"row_group_size": 40, "page_size": 16}),
        "encodings": (encodings, {"row_group_size": 256, "page_size": 64, "encodings": forced}),
        "indexed": (
            indexed,
            {
                "row_group_size": 128,
                "page_size": 32,
                "sort_key": "id",
                "index_epsilon": 4,
                "column_tags": {
                    "email": {"pii": "email", "owner": "crm"},
                    "name": {"pii": "name", "description": "full name"},
                },
                "metadata": {"source": "golden", "purpose": "format compatibility"},
            },
        ),
        "encodings_v1_1": (v11, {"row_group_size": 256, "page_size": 64, "encodings": forced11}),
    }


def main() -> int:
    sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "..")))
    import ncf_datasource as ncf
    from ncf_datasource.format.layout import VERSION_MAJOR, VERSION_MINOR

    wanted = sys.argv[1:]
    for name, (table, options) in golden_tables().items():
        path = os.path.join(HERE, f"{name}.ncf")
        if (name not in wanted) if wanted else os.path.exists(path):
            continue
        ncf.write_table(table, path, **options)
        expected = {
            "format_version": f"{VERSION_MAJOR}.{VERSION_MINOR}",
            "num_rows": table.num_rows,
            "types": [str(f.type) for f in table.schema],
            "columns": table.column_names,
            "rows": rows_of(table),
            "options": {k: v for k, v in options.items() if k in ("row_group_size", "page_size", "sort_key")},
        }
        if "column_tags" in options:
            expected["column_tags"] = options["column_tags"]
            expected["metadata"] = options["metadata"]
        if "sort_key" in options:
            keys = table.column(options["sort_key"]).to_pylist()
            expected["lookups"] = {
                str(q): [i for i, v in enumerate(keys) if v == q] for q in (0, 2, 3, 100, 330, 331, 10**6)
            }
        with open(os.path.join(HERE, f"{name}.json"), "w") as fh:
            json.dump(expected, fh, indent=1, sort_keys=True)
            fh.write("\n")
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
