"""Deterministic demo data: a small e-commerce world, one day of raw files at a time.

``generate_day(raw_dir, date, scale, seed)`` writes, under ``raw_dir/<source>/date=D/``:

========== ====== ===================================================================
source     format rows at scale 1
========== ====== ===================================================================
customers  json   every customer that ordered that day (pool of 20,000 x scale)
products   csv    the whole catalogue (2,000 products)
orders     csv    100,000 x scale new orders + late updates of the 3 previous days
order_items csv   1-4 lines per new order
payments   json   one per new order that was not cancelled
========== ====== ===================================================================

Defects come in known proportions (the :data:`DEFECT_RATES`), and their exact counts are
written to ``raw_dir/_manifests/date=D.json`` so tests and gates can reconcile them.
The same (date, scale, seed) always gives byte-identical files. Work is done in chunks of
:data:`CHUNK_ORDERS` orders, so memory stays flat at any scale.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from neurolake_spark.errors import PipelineError
from neurolake_spark.parsing import parse_date

ORDERS_PER_SCALE = 100_000
CUSTOMERS_PER_SCALE = 20_000
PRODUCTS = 2_000
CHUNK_ORDERS = 100_000
EPOCH = date(2020, 1, 1)
LATE_UPDATE_DAYS = 3

DEFECT_RATES = {
    "malformed": 0.002,  # a row that cannot be parsed (bad number or timestamp, truncated JSON)
    "duplicate": 0.01,  # an order row sent twice
    "null_customer": 0.005,  # an order without customer_id
    "out_of_range": 0.003,  # an order line with quantity <= 0 or a negative unit price
    "late_update": 0.02,  # per previous day: share of its orders whose status changes today
}

FIRST = np.array(
    [
        "ana",
        "ben",
        "chloe",
        "dev",
        "emma",
        "felix",
        "grace",
        "hugo",
        "iris",
        "jon",
        "kai",
        "lena",
        "marco",
        "nora",
        "omar",
        "pia",
        "quinn",
        "rosa",
        "sam",
        "tara",
        "uma",
        "victor",
        "wen",
        "yara",
    ]
)
LAST = np.array(
    [
        "smith",
        "garcia",
        "muller",
        "rossi",
        "kim",
        "nguyen",
        "silva",
        "dubois",
        "novak",
        "tanaka",
        "cohen",
        "okafor",
        "larsen",
        "ivanova",
        "haddad",
        "patel",
    ]
)
STREETS = np.array(["Oak", "Maple", "Harbor", "Station", "Mill", "Church", "Lake", "Hill", "Park", "River"])
COUNTRIES = np.array(["US", "DE", "FR", "GB", "NL", "ES", "IT", "PL"])
COUNTRY_WEIGHTS = np.array([0.32, 0.16, 0.12, 0.12, 0.08, 0.08, 0.07, 0.05])
CATEGORIES = np.array(["books", "electronics", "garden", "grocery", "home", "sports", "toys", "fashion"])
STATUSES = np.array(["placed", "paid", "shipped", "cancelled"])
STATUS_WEIGHTS = np.array([0.15, 0.45, 0.35, 0.05])
METHODS = np.array(["card", "paypal", "bank_transfer", "gift_card"])


@dataclass
class DayManifest:
    """What one generated day holds: rows per source and defect counts."""

    date: str
    scale: float
    seed: int
    rows: dict[str, int]
    defects: dict[str, dict[str, int]]

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def _iso(seconds: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s"), "Z")


def _day_start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _orders_chunk(seed: int, day: date, chunk: int, count: int, customers: int) -> dict[str, np.ndarray]:
    """The ``chunk``-th block of ``day``'s new orders; a pure function of its arguments."""
    day_index = (day - EPOCH).days
    rng = _rng(seed, day_index, chunk, 1)
    seq = np.arange(chunk * CHUNK_ORDERS, chunk * CHUNK_ORDERS + count, dtype=np.int64)
    order_ts = _day_start(day) + np.sort(rng.integers(0, 86_400, count))
    return {
        "order_id": day_index * 100_000_000 + seq + 1,
        "customer_id": rng.integers(1, customers + 1, count),
        "order_ts": order_ts,
        "status": rng.choice(len(STATUSES), count, p=STATUS_WEIGHTS),
        "lines": rng.integers(1, 5, count),
        "product_seed": rng.integers(0, 2**31, count),
    }


def _product_prices(seed: int) -> np.ndarray:
    rng = _rng(seed, 7)
    return np.round(rng.lognormal(3.0, 0.8, PRODUCTS), 2).clip(0.5, 5000)


def _customer_rows(seed: int, ids: np.ndarray, day: date) -> dict[str, np.ndarray]:
    rng = _rng(seed, 11)
    pool = int(ids.max()) + 1 if len(ids) else 1
    first = FIRST[rng.integers(0, len(FIRST), pool)][ids]
    last = LAST[rng.integers(0, len(LAST), pool)][ids]
    country = COUNTRIES[rng.choice(len(COUNTRIES), pool, p=COUNTRY_WEIGHTS)][ids]
    signup = rng.integers(0, (day - EPOCH).days + 1, pool)[ids]
    moved = _rng(seed, (day - EPOCH).days, 12).random(len(ids)) < 0.01
    house = (ids * 7919 + moved * (day - EPOCH).days) % 900 + 1
    sid = np.char.mod("%d", ids)
    return {
        "customer_id": ids,
        "name": np.char.add(np.char.add(np.char.capitalize(first), " "), np.char.capitalize(last)),
        "email": np.char.add(np.char.add(np.char.add(np.char.add(first, "."), last), sid), "@example.com"),
        "phone": np.char.add("+1-555-", np.char.zfill(np.char.mod("%d", (ids * 104729) % 10_000_000), 7)),
        "address": np.char.add(
            np.char.add(np.char.mod("%d ", house), STREETS[ids % len(STREETS)]), " Street"
        ),
        "country": country,
        "signup_date": np.datetime_as_string(
            (np.datetime64(EPOCH) + signup.astype("timedelta64[D]")), unit="D"
        ),
        "updated_at": np.where(moved, _day_start(day) + 3600, _day_start(EPOCH) + signup * 86_400),
    }


class _Sink:
    """Writes one source's part files and counts its rows."""

    def __init__(self, folder: Path, fmt: str):
        self.folder, self.fmt, self.rows, self.parts = folder, fmt, 0, 0
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, columns: dict[str, np.ndarray], bad_lines: list[str] = ()) -> None:
        table = pa.table({k: pa.array(v.tolist() if v.dtype.kind in "UO" else v) for k, v in columns.items()})
        path = self.folder / f"part-{self.parts:05d}.{self.fmt}"
        self.parts += 1
        if self.fmt == "csv":
            pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
        else:
            with open(path, "w", encoding="utf-8") as out:
                for row in table.to_pylist():
                    out.write(json.dumps(row, separators=(",", ":")) + "\n")
        if bad_lines:
            with open(path, "a", encoding="utf-8") as out:
                out.write("".join(line + "\n" for line in bad_lines))
        self.rows += table.num_rows + len(bad_lines)


def _malformed_csv(rng: np.random.Generator, template: list[str], count: int) -> list[str]:
    """CSV lines that cannot parse: one typed field of ``template`` (``None`` = a text field) broken."""
    breakers = ["not-a-number", "2026-13-45T99:99:99Z", "n/a"]
    typed = [i for i, value in enumerate(template) if value is not None]
    lines = []
    for i in range(count):
        fields = ["text" if value is None else value for value in template]
        fields[typed[rng.integers(0, len(typed))]] = breakers[i % len(breakers)]
        lines.append(",".join(fields))
    return lines


def generate_day(raw_dir: Path, day: date | str, scale: float = 1.0, seed: int = 20261125) -> DayManifest:
    """Write one day of raw files (replacing that day's earlier files) and its manifest."""
    day = parse_date(day) if isinstance(day, str) else day
    if scale <= 0:
        raise PipelineError(f"bad scale {scale}: must be greater than 0")
    raw_dir = Path(raw_dir)
    stamp = f"date={day.isoformat()}"
    for source in ("customers", "products", "orders", "order_items", "payments"):
        shutil.rmtree(raw_dir / source / stamp, ignore_errors=True)
    sinks = {
        name: _Sink(raw_dir / name / stamp, fmt)
        for name, fmt in (
            ("customers", "json"),
            ("products", "csv"),
            ("orders", "csv"),
            ("order_items", "csv"),
            ("payments", "json"),
        )
    }
    defects = {
        name: {k: 0 for k in ("malformed", "duplicate", "null_customer", "out_of_range", "late_update")}
        for name in sinks
    }
    day_index = (day - EPOCH).days
    orders_total = max(1, round(ORDERS_PER_SCALE * scale))
    customers_pool = max(10, round(CUSTOMERS_PER_SCALE * scale))
    prices = _product_prices(seed)
    day_start = _day_start(day)

    product_ids = np.arange(1, PRODUCTS + 1)
    price_change = _rng(seed, day_index, 5).random(PRODUCTS) < 0.01
    list_price = np.round(prices * np.where(price_change, 1.1, 1.0), 2)
    sinks["products"].write(
        {
            "product_id": product_ids,
            "name": np.char.add("product-", np.char.mod("%05d", product_ids)),
            "category": CATEGORIES[product_ids % len(CATEGORIES)],
            "list_price": np.char.mod("%.2f", list_price),
            "updated_at": _iso(np.where(price_change, day_start + 60, _day_start(EPOCH))),
        }
    )

    seen_customers = np.zeros(customers_pool + 1, dtype=bool)
    for chunk in range((orders_total + CHUNK_ORDERS - 1) // CHUNK_ORDERS):
        count = min(CHUNK_ORDERS, orders_total - chunk * CHUNK_ORDERS)
        o = _orders_chunk(seed, day, chunk, count, customers_pool)
        rng = _rng(seed, day_index, chunk, 2)
        seen_customers[o["customer_id"]] = True

        customer_col = o["customer_id"].astype(object)
        nulls = rng.random(count) < DEFECT_RATES["null_customer"]
        customer_col[nulls] = None
        defects["orders"]["null_customer"] += int(nulls.sum())
        orders = {
            "order_id": o["order_id"],
            "customer_id": customer_col,
            "order_ts": _iso(o["order_ts"]),
            "status": STATUSES[o["status"]],
            "updated_at": _iso(o["order_ts"]),
        }
        dup = np.flatnonzero(rng.random(count) < DEFECT_RATES["duplicate"])
        defects["orders"]["duplicate"] += len(dup)
        orders = {k: np.concatenate([v, v[dup]]) for k, v in orders.items()}
        bad = int(rng.binomial(count, DEFECT_RATES["malformed"]))
        defects["orders"]["malformed"] += bad
        sinks["orders"].write(
            orders,
            _malformed_csv(rng, ["1", "1", "2026-01-01T00:00:00Z", None, "2026-01-01T00:00:00Z"], bad),
        )

        lines = o["lines"]
        n_items = int(lines.sum())
        item_order = np.repeat(o["order_id"], lines)
        line_no = np.arange(n_items) - np.repeat(np.cumsum(lines) - lines, lines) + 1
        product = (np.repeat(o["product_seed"], lines) + line_no * 31) % PRODUCTS + 1
        quantity = rng.integers(1, 6, n_items)
        unit_price = prices[product - 1].copy()
        out_of_range = rng.random(n_items) < DEFECT_RATES["out_of_range"]
        quantity[out_of_range & (np.arange(n_items) % 2 == 0)] *= -1
        unit_price[out_of_range & (np.arange(n_items) % 2 == 1)] *= -1
        defects["order_items"]["out_of_range"] += int(out_of_range.sum())
        bad_items = int(rng.binomial(n_items, DEFECT_RATES["malformed"]))
        defects["order_items"]["malformed"] += bad_items
        sinks["order_items"].write(
            {
                "order_id": item_order,
                "line_no": line_no,
                "product_id": product,
                "quantity": quantity,
                "unit_price": np.char.mod("%.2f", unit_price),
                "updated_at": _iso(np.repeat(o["order_ts"], lines)),
            },
            _malformed_csv(rng, ["1", "1", "1", "1", "1.00", "2026-01-01T00:00:00Z"], bad_items),
        )

        paid = STATUSES[o["status"]] != "cancelled"
        amounts = np.bincount(
            np.repeat(np.arange(count), lines), weights=quantity * unit_price, minlength=count
        )
        pay_rng = _rng(seed, day_index, chunk, 3)
        bad_pay = int(pay_rng.binomial(int(paid.sum()), DEFECT_RATES["malformed"]))
        defects["payments"]["malformed"] += bad_pay
        sinks["payments"].write(
            {
                "payment_id": o["order_id"][paid] * 10 + 1,
                "order_id": o["order_id"][paid],
                "amount": np.char.mod("%.2f", amounts[paid]),
                "method": METHODS[pay_rng.integers(0, len(METHODS), int(paid.sum()))],
                "paid_at": _iso(o["order_ts"][paid] + 120),
                "updated_at": _iso(o["order_ts"][paid] + 120),
            },
            ['{"payment_id": 1, "order_id": '] * bad_pay,
        )

    for back in range(1, LATE_UPDATE_DAYS + 1):
        past = day - timedelta(days=back)
        if past < EPOCH:
            continue
        rng = _rng(seed, day_index, back, 4)
        for chunk in range((orders_total + CHUNK_ORDERS - 1) // CHUNK_ORDERS):
            count = min(CHUNK_ORDERS, orders_total - chunk * CHUNK_ORDERS)
            o = _orders_chunk(seed, past, chunk, count, customers_pool)
            pick = np.flatnonzero(rng.random(count) < DEFECT_RATES["late_update"] / LATE_UPDATE_DAYS)
            defects["orders"]["late_update"] += len(pick)
            seen_customers[o["customer_id"][pick]] = True
            sinks["orders"].write(
                {
                    "order_id": o["order_id"][pick],
                    "customer_id": o["customer_id"][pick],
                    "order_ts": _iso(o["order_ts"][pick]),
                    "status": np.where(rng.random(len(pick)) < 0.5, "cancelled", "shipped"),
                    "updated_at": _iso(day_start + rng.integers(0, 86_400, len(pick))),
                }
            )

    ids = np.flatnonzero(seen_customers)
    for start in range(0, len(ids), CHUNK_ORDERS):
        part = ids[start : start + CHUNK_ORDERS]
        customers = _customer_rows(seed, part, day)
        customers["updated_at"] = _iso(customers["updated_at"])
        bad = int(_rng(seed, day_index, start, 6).binomial(len(part), DEFECT_RATES["malformed"]))
        defects["customers"]["malformed"] += bad
        sinks["customers"].write(customers, ['{"customer_id":'] * bad)

    manifest = DayManifest(
        date=day.isoformat(),
        scale=scale,
        seed=seed,
        rows={name: sink.rows for name, sink in sinks.items()},
        defects={name: {k: v for k, v in d.items() if v} for name, d in defects.items()},
    )
    manifest_path = raw_dir / "_manifests" / f"{stamp}.json"
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(manifest.to_json() + "\n", encoding="utf-8")
    return manifest


def read_manifest(raw_dir: Path, day: date | str) -> DayManifest:
    """The manifest :func:`generate_day` wrote for ``day``."""
    day = parse_date(day) if isinstance(day, str) else day
    path = Path(raw_dir) / "_manifests" / f"date={day.isoformat()}.json"
    try:
        return DayManifest(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise PipelineError(
            f"no generated data for {day}: run `neurolake generate --date {day}` first"
        ) from None
