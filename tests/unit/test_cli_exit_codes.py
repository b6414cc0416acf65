"""Exit codes are the command line's: the error classes below it carry none, the codes stay as they were."""

import pytest

from ncf_datasource import NCFCorruptFileError, NCFError, NCFFilterError, NCFVersionError
from ncf_datasource.table import NCFTableError, NotATableError, SchemaMismatchError
from neurolake_spark.catalog.errors import CatalogError, UnknownAssetError
from neurolake_spark.cli import exit_code, main
from neurolake_spark.errors import (
    ConfigError,
    EnvironmentSetupError,
    NeuroLakeError,
    PipelineError,
    TableNameError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NCFError("x"), 1),
        (NCFFilterError("x"), 1),
        (NCFCorruptFileError("x"), 2),
        (NCFVersionError("x"), 2),
        (NCFTableError("x"), 1),
        (SchemaMismatchError("x"), 1),
        (NotATableError("x"), 2),
        (NeuroLakeError("x"), 1),
        (PipelineError("x"), 1),
        (ConfigError("x"), 2),
        (TableNameError("x"), 2),
        (CatalogError("x"), 2),
        (UnknownAssetError("x"), 2),
        (EnvironmentSetupError("x"), 3),
    ],
)
def test_each_error_class_keeps_its_exit_code(error, code):
    assert exit_code(error) == code


@pytest.mark.parametrize(
    "error_class",
    [NCFError, NCFCorruptFileError, NCFVersionError, NotATableError, NeuroLakeError, ConfigError],
)
def test_the_data_layer_knows_no_exit_codes(error_class):
    assert not hasattr(error_class, "exit_code")


def test_the_command_exits_with_the_code_of_the_error(tmp_path, capsys):
    not_ncf = tmp_path / "x.ncf"
    not_ncf.write_bytes(b"abc")
    assert main(["ncf", "inspect", str(not_ncf)]) == 2
    assert main(["ncf", "history", str(tmp_path)]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        f"neurolake: error: {not_ncf}: file too short (3 bytes) to be an NCF file, truncated?",
        f"neurolake: error: {tmp_path}: not an NCF table (no commits in _ncf_log/)",
    ]
