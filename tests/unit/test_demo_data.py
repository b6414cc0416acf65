import hashlib
import json

import pyarrow.csv as pacsv
import pytest

from neurolake_spark.demo_data import DEFECT_RATES, ORDERS_PER_SCALE, generate_day, read_manifest
from neurolake_spark.errors import PipelineError


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def count_lines(folder):
    return sum(
        len(p.read_text().splitlines()) - (1 if p.suffix == ".csv" else 0) for p in folder.glob("part-*")
    )


def test_same_inputs_give_identical_files(tmp_path):
    generate_day(tmp_path / "a", "2026-11-24", scale=0.05, seed=7)
    generate_day(tmp_path / "b", "2026-11-24", scale=0.05, seed=7)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    generate_day(tmp_path / "c", "2026-11-24", scale=0.05, seed=8)
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_manifest_counts_match_the_files_and_defect_rates(tmp_path):
    manifest = generate_day(tmp_path, "2026-11-24", scale=0.2, seed=1)
    assert read_manifest(tmp_path, "2026-11-24") == manifest
    for source, rows in manifest.rows.items():
        assert count_lines(tmp_path / source / "date=2026-11-24") == rows, source
    new_orders = ORDERS_PER_SCALE * 0.2
    orders = manifest.defects["orders"]
    for defect in ("duplicate", "null_customer", "malformed"):
        assert orders[defect] == pytest.approx(new_orders * DEFECT_RATES[defect], rel=0.35), defect
    assert orders["late_update"] == pytest.approx(new_orders * DEFECT_RATES["late_update"], rel=0.2)
    assert (
        manifest.rows["orders"]
        == new_orders + orders["duplicate"] + orders["malformed"] + orders["late_update"]
    )


def test_null_customers_and_out_of_range_lines_are_really_in_the_files(tmp_path):
    manifest = generate_day(tmp_path, "2026-11-24", scale=0.05, seed=3)
    convert = pacsv.ConvertOptions(
        column_types={"customer_id": "string"}, strings_can_be_null=True, null_values=[""]
    )
    orders = pacsv.read_csv(tmp_path / "orders/date=2026-11-24/part-00000.csv", convert_options=convert)
    null_orders = {
        o for o, c in zip(orders["order_id"].to_pylist(), orders["customer_id"].to_pylist()) if c is None
    }
    assert len(null_orders) == manifest.defects["orders"]["null_customer"]
    items = pacsv.read_csv(
        tmp_path / "order_items/date=2026-11-24/part-00000.csv",
        convert_options=pacsv.ConvertOptions(column_types={"quantity": "string", "unit_price": "string"}),
    )
    bad = sum(
        1
        for q, p in zip(items["quantity"].to_pylist(), items["unit_price"].to_pylist())
        if q.lstrip("-").isdigit() and (int(q) <= 0 or p.startswith("-"))
    )
    assert bad == manifest.defects["order_items"]["out_of_range"]


def test_customers_carry_pii(tmp_path):
    generate_day(tmp_path, "2026-11-24", scale=0.01, seed=3)
    first = json.loads((tmp_path / "customers/date=2026-11-24/part-00000.json").read_text().splitlines()[0])
    assert first["email"].endswith("@example.com") and first["phone"].startswith("+1-555-")


@pytest.mark.parametrize("bad", ["2026-02-30", "yesterday", "24/11/2026", ""])
def test_bad_date(tmp_path, bad):
    with pytest.raises(PipelineError, match="bad date"):
        generate_day(tmp_path, bad)


def test_bad_scale(tmp_path):
    with pytest.raises(PipelineError, match="bad scale"):
        generate_day(tmp_path, "2026-11-24", scale=0)


def test_missing_manifest(tmp_path):
    with pytest.raises(PipelineError, match="run `neurolake generate --date 2026-11-24` first"):
        read_manifest(tmp_path, "2026-11-24")


def test_every_malformed_csv_line_breaks_a_typed_field(tmp_path):
    manifest = generate_day(tmp_path, "2026-11-24", scale=0.2, seed=2)
    lines = (tmp_path / "orders/date=2026-11-24/part-00000.csv").read_text().splitlines()
    broken = [line for line in lines if "not-a-number" in line or "99:99" in line or "n/a" in line]
    assert len(broken) == manifest.defects["orders"]["malformed"]
    assert all(line.split(",")[3] == "text" for line in broken)
