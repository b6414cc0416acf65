"""The ``>>>`` examples of the public API on Spark run on the shared session and show what they give."""

import importlib

import pytest

from tests.doctests import example_folder, run_examples

MODULES = ["neurolake_spark.lakehouse", "neurolake_spark.bulk", "neurolake_spark.table_formats"]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name, spark, tmp_path, monkeypatch):
    example_folder(tmp_path, monkeypatch)
    run_examples(importlib.import_module(name))
