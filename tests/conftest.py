"""Shared fixtures: one SparkSession per test process, warehouses in temp folders.

- ``spark``: the session, built by the project's own ``build_spark`` (Delta + ncf).
- ``make_lakehouse(tmp_path, **overrides)``: a Lakehouse on a fresh warehouse sharing
  that session, so tests never see each other's tables.
- ``nightly_warehouse``: a warehouse where the generator's data for two days
  (scale 0.02) went through the nightly pipeline once each; read-only for tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Test-only secrets: the pipeline reads them from env vars and has no defaults.
os.environ.setdefault("NEUROLAKE_PII_SALT", "test-only-pii-salt-5c1d")
os.environ.setdefault("NEUROLAKE_TOKEN_KEY", "test-only-token-key-9e07a3b1c2d4e5f6")
os.environ.setdefault("NEUROLAKE_BACKUP_KEY", "test-only-backup-key-41f6d2")

ROOT = Path(__file__).resolve().parents[1]
LOCAL_CONF = ROOT / "conf" / "local.yaml"
SCALE = 0.02
DAYS = ("2026-11-23", "2026-11-24")
TEST_OVERRIDES = {
    "spark.shuffle_partitions": 2,
    "spark.driver_memory": "3g",
    "metrics.enabled": True,
    "lineage.transports": [{"type": "catalog"}],
}


def pytest_collection_modifyitems(items):
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "spark" in parts:
            item.add_marker(pytest.mark.spark)
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


def settings_for(warehouse: Path, **overrides):
    from neurolake_spark.config import load_settings

    return load_settings(
        LOCAL_CONF, overrides={**TEST_OVERRIDES, "storage.warehouse": str(warehouse), **overrides}
    )


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from neurolake_spark.session import build_spark

    session = build_spark(settings_for(tmp_path_factory.mktemp("spark-home")))
    yield session
    session.stop()


@pytest.fixture
def make_lakehouse(spark):
    """Build a Lakehouse on a given warehouse folder, sharing the test session."""
    from neurolake_spark.lakehouse import Lakehouse

    def make(warehouse: Path, **overrides):
        return Lakehouse(settings_for(Path(warehouse), **overrides), spark=spark)

    return make


@pytest.fixture(scope="session")
def nightly_warehouse(spark, tmp_path_factory):
    """Two generated days run through the nightly pipeline; returns (lakehouse, results)."""
    from neurolake_spark.demo_data import generate_day
    from neurolake_spark.lakehouse import Lakehouse
    from neurolake_spark.pipeline import run_nightly

    warehouse = tmp_path_factory.mktemp("nightly")
    lh = Lakehouse(settings_for(warehouse), spark=spark)
    results = []
    for day in DAYS:
        generate_day(lh.settings.raw_dir, day, scale=SCALE, seed=lh.settings.generator.seed)
        results.append(run_nightly(lh, day))
    return lh, results
