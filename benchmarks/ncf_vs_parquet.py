"""Benchmark: NCF v1 against Parquet (pyarrow, zstd at the same level) on a mixed dataset.

Dataset (deterministic, seed 20240601, default 1 000 000 rows):

* ``id``        int64, sorted, strictly increasing with gaps of 1-3 (the sort key)
* ``user_id``   int64, uniform in [0, 200 000)
* ``ts``        timestamp[us, UTC], non-decreasing, random gaps of 0-2 s from 2024-01-01
* ``amount``    float64, lognormal, rounded to cents, 2 % null
* ``price``     decimal(12,2), uniform 0.00-9 999.99
* ``quantity``  int32, uniform 1-100
* ``country``   string, 30 values, Zipf-like skew (low cardinality)
* ``status``    string, 5 values, 5 % null (low cardinality)
* ``email``     string, ``user<user_id>@<domain>`` (high cardinality)
* ``score``     float32, uniform, 10 % null
* ``active``    boolean, 20 % true

Measured, each as the median of ``--repeat`` runs (NCF and Parquet runs alternate, so that
background load affects both alike), then printed as NCF/Parquet ratios:
file size, write time, full read, a 2-column read (``user_id``, ``amount``), a selective
filter read (``quantity = 7 and country = 'DE'``, full rows) and a point lookup of one ``id``
(NCF: learned index via ``NCFFile.lookup``; Parquet: ``pyarrow.parquet.read_table`` with
``filters=[("id", "=", k)]``, i.e. row-group statistics). Both formats use the same row-group
size. Every timed read opens the file afresh.

Run: ``.venv/bin/python benchmarks/ncf_vs_parquet.py [--rows N] [--repeat R] [--level L]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import ncf_datasource as ncf

SEED = 20240601
TARGETS = {"size": 0.85, "write": 1.5, "full read": 1.0}
LOOKUP_TARGET = 10.0


def _decimal_cents(cents: np.ndarray) -> pa.Array:
    words = np.column_stack((cents, np.zeros_like(cents))).astype(np.int64)
    return pa.Array.from_buffers(pa.decimal128(12, 2), len(cents), [None, pa.py_buffer(words)])


def make_dataset(rows: int) -> pa.Table:
    rng = np.random.default_rng(SEED)
    countries = np.array(
        [
            "US",
            "DE",
            "FR",
            "GB",
            "IN",
            "BR",
            "JP",
            "CN",
            "IT",
            "ES",
            "NL",
            "SE",
            "PL",
            "MX",
            "CA",
            "AU",
            "KR",
            "CH",
            "BE",
            "AT",
            "NO",
            "DK",
            "FI",
            "IE",
            "PT",
            "GR",
            "CZ",
            "HU",
            "RO",
            "ZA",
        ]
    )
    weights = 1.0 / np.arange(1, len(countries) + 1)
    user = rng.integers(0, 200_000, rows)
    domains = np.array(["example.com", "mail.org", "corp.net", "inbox.io"])
    email = np.char.add(np.char.add("user", user.astype(str)), np.char.add("@", domains[user % 4]))
    amount = np.round(rng.lognormal(3, 1, rows), 2)
    status = np.array(["new", "paid", "shipped", "delivered", "returned"])[rng.integers(0, 5, rows)]
    return pa.table(
        {
            "id": pa.array(np.cumsum(rng.integers(1, 4, rows))),
            "user_id": pa.array(user),
            "ts": pa.array(
                1_704_067_200_000_000 + np.cumsum(rng.integers(0, 2_000_000, rows)),
                pa.timestamp("us", tz="UTC"),
            ),
            "amount": pa.array(amount, mask=rng.random(rows) < 0.02),
            "price": _decimal_cents(rng.integers(0, 1_000_000, rows)),
            "quantity": pa.array(rng.integers(1, 101, rows).astype(np.int32)),
            "country": pa.array(countries[rng.choice(len(countries), rows, p=weights / weights.sum())]),
            "status": pa.array(status, mask=rng.random(rows) < 0.05),
            "email": pa.array(email),
            "score": pa.array(rng.random(rows).astype(np.float32), mask=rng.random(rows) < 0.10),
            "active": pa.array(rng.random(rows) < 0.2),
        }
    )


def paired_medians(ncf_func, pq_func, repeat: int) -> tuple[float, float]:
    """Median wall times of the two functions, run alternately so that background load
    affects both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for func, sink in ((ncf_func, times[0]), (pq_func, times[1])):
            t0 = time.perf_counter()
            func()
            sink.append(time.perf_counter() - t0)
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--level", type=int, default=3, help="zstd level for both formats")
    parser.add_argument("--row-group-size", type=int, default=1 << 20)
    args = parser.parse_args(argv)

    table = make_dataset(args.rows)
    rg = args.row_group_size
    ids = table.column("id").to_numpy()
    probe_keys = [int(ids[i]) for i in np.random.default_rng(1).integers(0, len(ids), 20)]
    selective = [("quantity", "=", 7), ("country", "=", "DE")]

    with tempfile.TemporaryDirectory() as tmp:
        ncf_path, pq_path = os.path.join(tmp, "data.ncf"), os.path.join(tmp, "data.parquet")

        def write_ncf():
            ncf.write_table(table, ncf_path, zstd_level=args.level, row_group_size=rg, sort_key="id")

        def write_pq():
            pq.write_table(
                table, pq_path, compression="zstd", compression_level=args.level, row_group_size=rg
            )

        results = {}
        results["write"] = paired_medians(write_ncf, write_pq, args.repeat)
        results["size"] = (os.path.getsize(ncf_path), os.path.getsize(pq_path))
        assert ncf.read_table(ncf_path).equals(pq.read_table(pq_path)), "NCF and Parquet disagree"
        results["full read"] = paired_medians(
            lambda: ncf.read_table(ncf_path), lambda: pq.read_table(pq_path), args.repeat
        )
        two = ["user_id", "amount"]
        results["2-column read"] = paired_medians(
            lambda: ncf.read_table(ncf_path, columns=two),
            lambda: pq.read_table(pq_path, columns=two),
            args.repeat,
        )
        got = ncf.read_table(ncf_path, filter=selective)
        want = pq.read_table(pq_path, filters=selective)
        assert got.num_rows == want.num_rows, (got.num_rows, want.num_rows)
        results["filter read"] = paired_medians(
            lambda: ncf.read_table(ncf_path, filter=selective),
            lambda: pq.read_table(pq_path, filters=selective),
            args.repeat,
        )

        def lookup_ncf():
            for k in probe_keys:
                with ncf.NCFFile(ncf_path) as f:
                    assert f.lookup(k).num_rows == 1

        def lookup_pq():
            for k in probe_keys:
                assert pq.read_table(pq_path, filters=[("id", "=", k)]).num_rows == 1

        n_probe = len(probe_keys)
        results["point lookup"] = tuple(
            t / n_probe for t in paired_medians(lookup_ncf, lookup_pq, args.repeat)
        )
        info = ncf.inspect(ncf_path)

    print(
        f"rows={args.rows} repeat={args.repeat} zstd level={args.level} row_group_size={rg} "
        f"cpus={os.cpu_count()}"
    )
    print(f"{'measure':<16}{'NCF':>14}{'Parquet':>14}{'NCF/Parquet':>14}  target")
    for name, (a, b) in results.items():
        unit = "bytes" if name == "size" else "s"
        fmt = (lambda v: f"{v:,.0f}") if unit == "bytes" else (lambda v: f"{v * 1000:.2f} ms")
        ratio = a / b
        if name in TARGETS:
            target = f"<= {TARGETS[name]:.2f}x {'met' if ratio <= TARGETS[name] else 'MISSED'}"
        elif name == "point lookup":
            verdict = "met" if b / a >= LOOKUP_TARGET else "MISSED"
            target = f">= {LOOKUP_TARGET:.0f}x faster ({b / a:.1f}x) {verdict}"
        else:
            target = ""
        print(f"{name:<16}{fmt(a):>14}{fmt(b):>14}{ratio:>14.3f}  {target}")
    print("NCF encodings chosen:")
    for c in info["row_groups"][0]["columns"]:
        print(f"  {c['name']:<10} {'/'.join(c['encodings']):<28} {c['compressed_bytes']:>10,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
