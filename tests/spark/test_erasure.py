"""Erasure erases (issue 20, item 5), on a real nightly warehouse.

A generated day gets two extra customers: 990001 (well-formed, and a malformed copy that lands
in the quarantine) and 990002. A pipeline table in NCF (``gold.customer_contacts``) holds their
e-mails too, and ten more appends of 990001 to bronze give its Delta log a checkpoint. Then
``neurolake erase --vacuum`` erases 990001 and a fix file erases 990002 (date 1, no vacuum); date 2
re-sends both. The raw zone is outside the warehouse (the runbook handles it), so the warehouse and a
backup taken afterwards are searched for the erased e-mails' bytes: raw bytes of every file,
and the decoded values of every Parquet and NCF file (whose pages are compressed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from ncf_datasource.format import read_table
from neurolake_spark import bulk
from neurolake_spark.cli import main
from neurolake_spark.demo_data import generate_day
from neurolake_spark.lakehouse import Lakehouse
from neurolake_spark.pipeline import run_nightly
from tests.conftest import LOCAL_CONF, SCALE, settings_for

DAYS = ("2026-11-23", "2026-11-24")
ERASED = {990001: "erin.erased990001@example.com", 990002: "fix.erased990002@example.com"}
CONTACTS = "gold.customer_contacts"


def customer_line(customer_id: int) -> str:
    return json.dumps(
        {
            "customer_id": customer_id,
            "name": "Erin Erased",
            "email": ERASED[customer_id],
            "phone": "+1-555-0990001",
            "address": "1 Erasure Street",
            "country": "DE",
            "signup_date": "2024-01-02",
            "updated_at": "2024-01-02T00:00:00Z",
        },
        separators=(",", ":"),
    )


def land_day(lh: Lakehouse, day: str) -> None:
    """The generated day plus both erased customers, a malformed record of 990001, and a
    malformed order (CSV) of 990001."""
    generate_day(lh.settings.raw_dir, day, scale=SCALE, seed=lh.settings.generator.seed)
    malformed = customer_line(990001).replace('"2024-01-02"', '"not a date"')
    lines = [customer_line(990001), customer_line(990002), malformed]
    (lh.settings.raw_dir / "customers" / f"date={day}" / "part-erasure.json").write_text(
        "\n".join(lines) + "\n"
    )
    orders = (
        "order_id,customer_id,order_ts,status,updated_at\n880001,990001,not a time,paid,2026-11-23 10:00:00\n"
    )
    (lh.settings.raw_dir / "orders" / f"date={day}" / "part-erasure.csv").write_text(orders)


def cli(lh: Lakehouse, *args: str) -> int:
    return main(
        [
            *args,
            "--set",
            f"storage.warehouse={lh.settings.warehouse}",
            "--set",
            f"storage.raw={lh.settings.raw_dir}",
            "--set",
            f"pipeline={lh.settings.pipeline}",
        ]
    )


@pytest.fixture(scope="module")
def erased(spark, tmp_path_factory):
    """The warehouse after date 1, ``erase --vacuum`` of 990001 and the fix file erasing 990002,
    and a backup of every table taken afterwards; returns (lakehouse, backup folder)."""
    root = tmp_path_factory.mktemp("erasure")
    pipeline = root / "pipeline.yaml"
    shutil.copy(LOCAL_CONF.parent / "pipeline.yaml", pipeline)
    with open(pipeline, "a", encoding="utf-8") as out:
        out.write(f"  {CONTACTS}: {{format: ncf, owner: crm, description: 'Contact e-mails.'}}\n")
    settings = settings_for(
        root / "warehouse", **{"storage.raw": str(root / "raw"), "pipeline": str(pipeline)}
    )
    lh = Lakehouse(settings, spark=spark)
    land_day(lh, DAYS[0])
    run_nightly(lh, DAYS[0])

    contacts = lh.resolve(CONTACTS)
    for customer_id, email in [(1, "someone@example.com"), *ERASED.items()]:  # one file (and stats) each
        bulk.insert(
            spark, contacts, spark.createDataFrame([(customer_id, email)], "customer_id BIGINT, email STRING")
        )
    bronze = lh.resolve("bronze.customers")
    resent = lh.table("bronze.customers").where(F.col("customer_id") == 990001).localCheckpoint()
    for _ in range(10):  # a checkpoint of the Delta log, its file statistics included
        bulk.insert(spark, bronze, resent)
    assert list((bronze.path / "_delta_log").glob("*.checkpoint.parquet"))
    assert quarantined(lh, 990001) == 1 and quarantined_order(lh) == 1

    erase = ["erase", "--table", "silver.customers", "--key", "customer_id", "--values", "990001", "--vacuum"]
    assert cli(lh, *erase) == 0
    fixes = lh.settings.raw_dir / "fixes" / f"date={DAYS[0]}"
    fixes.mkdir(parents=True)
    fix = {"op": "erase", "table": "silver.customers", "key": "customer_id", "values": [990002]}
    (fixes / "gdpr-7.json").write_text(json.dumps(fix))
    assert cli(lh, "fixes", "--date", DAYS[0]) == 0
    backup = root / "backup"
    assert cli(lh, "backup", "--all", "--to", str(backup)) == 0
    return lh, backup


def rows_of(lh: Lakehouse, name: str, customer_id: int) -> int:
    return lh.table(name).where(F.col("customer_id") == customer_id).count()


def quarantined(lh: Lakehouse, customer_id: int) -> int:
    return lh.table("quarantine.ingest").where(F.col("raw_record").contains(ERASED[customer_id])).count()


def quarantined_order(lh: Lakehouse) -> int:
    """The malformed CSV order of customer 990001 in the quarantine."""
    return lh.table("quarantine.ingest").where(F.col("raw_record").startswith("880001,990001,")).count()


def test_erase_reaches_ncf_tables(erased):
    lh, _ = erased
    assert rows_of(lh, CONTACTS, 990001) == 0 and rows_of(lh, CONTACTS, 990002) == 0
    assert rows_of(lh, CONTACTS, 1) == 1


def test_erase_reaches_quarantined_raw_records_by_their_key(erased):
    lh, _ = erased
    assert quarantined(lh, 990001) == 0  # a JSON record: its key read by JSON path
    assert quarantined_order(lh) == 0  # a CSV record: its key read at its position in the schema
    assert lh.table("quarantine.ingest").count() > 0  # the other malformed records stay


def decoded(path: Path) -> bytes:
    """What a file holds: its bytes, plus the decoded values of Parquet and NCF files."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        data += json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
    if path.suffix == ".ncf":
        data += json.dumps(read_table(path).to_pylist(), default=str).encode()
    return data


def holding(folder: Path, value: str) -> list[str]:
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and value.encode() in decoded(p)
    )


def test_no_byte_of_an_erased_value_remains_in_the_warehouse_or_a_later_backup(erased):
    lh, backup = erased
    email = ERASED[990001]
    assert holding(lh.settings.warehouse, email) == []
    assert holding(backup, email) == []
    assert holding(lh.settings.warehouse, "someone@example.com"), "the search finds what is there"


def test_every_later_night_erases_the_registered_keys_again_from_re_sent_rows(erased):
    lh, _ = erased
    land_day(lh, DAYS[1])
    run_nightly(lh, DAYS[1])
    assert rows_of(lh, "bronze.customers", 990002) == 1  # re-sent, and landed
    assert cli(lh, "fixes", "--date", DAYS[1]) == 0  # no fix file of its own that day
    for customer_id in ERASED:
        for name in ("bronze.customers", "silver.customers", CONTACTS):
            assert rows_of(lh, name, customer_id) == 0, (name, customer_id)
        assert quarantined(lh, customer_id) == 0
