from pathlib import Path

import pytest

from neurolake_spark.config import load_settings
from neurolake_spark.errors import TableNameError
from neurolake_spark.tables import TableResolver, validate_table_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def resolver(tmp_path):
    settings = load_settings(
        ROOT / "conf" / "local.yaml", overrides={"storage.warehouse": str(tmp_path)}, env={}
    )
    return TableResolver(settings.warehouse, settings.pipeline_definition())


def test_resolves_inside_the_warehouse(resolver, tmp_path):
    ref = resolver.resolve("silver.orders")
    assert ref.path == tmp_path.resolve() / "silver" / "orders"
    assert ref.format == "delta" and ref.layer == "silver"


@pytest.mark.parametrize(
    "name",
    [
        "../etc.passwd",
        "silver/../../x.y",
        "silver.orders/..",
        "Silver.Orders",
        "silver",
        "a.b.c",
        "",
        "silver.orders; DROP TABLE x",
        "silver.or ders",
        "silver.\u00e9",
        None,
        "x" * 300 + ".y",
    ],
)
def test_hostile_or_malformed_names_are_rejected(resolver, name):
    with pytest.raises(TableNameError, match="invalid table name"):
        resolver.resolve(name)


def test_unknown_table_lists_known_ones(resolver):
    with pytest.raises(TableNameError, match=r"unknown table 'silver.nope' \(known tables: bronze.customers"):
        resolver.resolve("silver.nope")


def test_validate_table_name_returns_good_names():
    assert validate_table_name("gold.daily_revenue") == "gold.daily_revenue"


def test_names_by_layer(resolver):
    assert resolver.names("gold") == ["gold.customer_ltv", "gold.daily_revenue"]


def test_a_layer_folder_symlinked_out_of_the_warehouse_does_not_resolve(resolver, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    outside.mkdir()
    (tmp_path / "silver").symlink_to(outside, target_is_directory=True)
    with pytest.raises(TableNameError, match="resolves outside the warehouse"):
        resolver.resolve("silver.orders")
    assert resolver.resolve("gold.daily_revenue").path == tmp_path.resolve() / "gold" / "daily_revenue"
