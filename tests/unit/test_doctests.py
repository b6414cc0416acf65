"""The ``>>>`` examples of the public API without Spark run and show what they give."""

import importlib
import types

import pytest

from tests.doctests import example_folder, run_examples

MODULES = [
    "ncf_datasource",
    "ncf_datasource.table",
    "ncf_datasource.table.table",
    "ncf_datasource.table.maintenance",
    "ncf_datasource.spark.options",
    "neurolake_spark",
    "neurolake_spark.parsing",
    "neurolake_spark.quality.pii",
    "neurolake_spark.run_model",
    "neurolake_spark.run_listeners",
    "neurolake_spark.lineage.transport_config",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name, tmp_path, monkeypatch):
    example_folder(tmp_path, monkeypatch)
    run_examples(importlib.import_module(name))


def test_an_example_that_shows_the_wrong_result_fails_naming_it():
    module = types.ModuleType("wrong_example", "Adds::\n\n    >>> 1 + 1\n    3\n")
    with pytest.raises(AssertionError, match=r"(?s)1 \+ 1.*Expected:\s+3.*Got:\s+2"):
        run_examples(module)
