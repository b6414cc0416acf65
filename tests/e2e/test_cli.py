"""The ``neurolake`` command as a user runs it: one-line errors, non-zero exits, no tracebacks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEUROLAKE = [sys.executable, "-m", "neurolake_spark.cli"]


def run(*args, env=None, cwd=ROOT):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*NEUROLAKE, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=600
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("neurolake: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


@pytest.fixture
def warehouse_env(tmp_path):
    return {"NEUROLAKE__STORAGE__WAREHOUSE": str(tmp_path / "wh")}


def test_bad_date(warehouse_env):
    assert_one_line_error(run("generate", "--date", "2026-02-30", env=warehouse_env), "bad date '2026-02-30'")


def test_bad_config_key(tmp_path):
    conf = tmp_path / "conf.yaml"
    conf.write_text("spark:\n  mastr: local[1]\n")
    assert_one_line_error(run("tables", "--conf-file", str(conf)), str(conf), "unknown setting 'spark.mastr'")


def test_bad_env_override(warehouse_env):
    result = run("tables", env={**warehouse_env, "NEUROLAKE__SPARK__SHUFFLE_PARTITIONS": "lots"})
    assert_one_line_error(result, "NEUROLAKE__SPARK__SHUFFLE_PARTITIONS", "spark.shuffle_partitions")


def test_missing_config_file():
    assert_one_line_error(run("tables", "--conf-file", "/nonexistent.yaml"), "settings file not found")


def test_tables_lists_declared_tables(warehouse_env, tmp_path):
    result = run("tables", env=warehouse_env)
    assert result.returncode == 0, result.stderr
    assert f"silver.orders          delta  {tmp_path / 'wh' / 'silver' / 'orders'}" in result.stdout


def test_generate_then_missing_source_folder_and_unknown_step(warehouse_env, tmp_path):
    generated = run("generate", "--date", "2026-11-24", "--scale", "0.001", env=warehouse_env)
    assert generated.returncode == 0 and "generated 2026-11-24" in generated.stdout
    assert_one_line_error(
        run("step", "bronze", "--date", "2026-11-24", env=warehouse_env), "unknown step 'bronze'"
    )
    missing = run("step", "ingest", "--date", "2026-11-20", env=warehouse_env)
    assert_one_line_error(missing, "source 'customers' has no raw files for 2026-11-20")
    assert not (tmp_path / "wh" / "bronze").exists()
