"""The ``ncf`` source's options, parsed once: typed values, defaults, and worded errors naming the option."""

import pytest

from ncf_datasource.spark.options import (
    DEFAULT_ROWS_PER_FILE,
    DEFAULT_ROWS_PER_PARTITION,
    NCFOptionError,
    NCFOptions,
)
from ncf_datasource.table import NCFTableError


def test_options_are_typed_whatever_the_case_of_their_keys():
    options = NCFOptions.parse(
        {
            "path": "/lake/t",
            "VERSIONASOF": "3",
            "columns": "id, ts,",
            "fileColumn": "_f",
            "files": "a.ncf,b.ncf",
            "maxRowsPerPartition": "10",
            "batchSize": "5",
            "filterPushdown": "False",
            "mergeSchema": "true",
            "sortKey": "id",
            "rowGroupSize": "1000",
            "commitInfo.neurolake_run_id": "r1",
            "startingVersion": "latest",
            "maxFilesPerTrigger": "2",
            "skipChangeCommits": "TRUE",
            "checkpointLocation": "/chk",
        }
    )
    assert (options.path, options.version_as_of, options.columns) == ("/lake/t", 3, ["id", "ts"])
    assert (options.file_column, options.files) == ("_f", frozenset({"a.ncf", "b.ncf"}))
    assert (options.max_rows_per_partition, options.batch_size, options.filter_pushdown) == (10, 5, False)
    assert (options.merge_schema, options.overwrite_schema, options.sort_key) == (True, False, "id")
    assert (options.row_group_size, options.commit_info) == (1000, {"neurolake_run_id": "r1"})
    assert (options.starting_version, options.max_files_per_trigger, options.skip_change_commits) == (
        "latest",
        2,
        True,
    )
    assert options.txn_app_id == "/chk"
    assert (
        NCFOptions.parse(
            {"startingVersion": "7", "txnAppId": "app", "checkpointLocation": "/c"}
        ).starting_version
        == 7
    )
    assert NCFOptions.parse({"txnAppId": "app", "checkpointLocation": "/c"}).txn_app_id == "app"


def test_defaults():
    options = NCFOptions.parse({"path": "/lake/t"})
    assert options.max_rows_per_partition == DEFAULT_ROWS_PER_PARTITION
    assert options.max_rows_per_file == DEFAULT_ROWS_PER_FILE
    assert options.filter_pushdown is None and options.columns is None and options.files is None
    assert options.commit_info == {} and not options.merge_schema and not options.skip_change_commits


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("versionAsOf", "x", "/lake/t: versionAsOf must be an integer, got 'x'"),
        ("maxRowsPerFile", "many", "/lake/t: maxRowsPerFile must be a positive integer, got 'many'"),
        ("maxRowsPerPartition", "0", "/lake/t: maxRowsPerPartition must be a positive integer, got '0'"),
        ("batchSize", "-5", "/lake/t: batchSize must be a positive integer, got '-5'"),
        ("rowGroupSize", "1e6", "/lake/t: rowGroupSize must be a positive integer, got '1e6'"),
        ("maxFilesPerTrigger", "", "/lake/t: maxFilesPerTrigger must be a positive integer, got ''"),
        ("mergeSchema", "yes", "/lake/t: mergeSchema must be true or false, got 'yes'"),
        (
            "startingVersion",
            "yesterday",
            "/lake/t: startingVersion must be a version number or 'latest', got 'yesterday'",
        ),
    ],
)
def test_a_bad_value_is_an_error_naming_the_option_and_the_value(option, value, message):
    with pytest.raises(NCFOptionError) as error:
        NCFOptions.parse({"path": "/lake/t", option: value})
    assert str(error.value) == message
    assert (error.value.option, error.value.value) == (option, value)
    assert isinstance(error.value, NCFTableError)


def test_version_and_timestamp_together_are_refused():
    with pytest.raises(NCFTableError, match="give versionAsOf or timestampAsOf, not both"):
        NCFOptions.parse({"path": "/lake/t", "versionAsOf": "1", "timestampAsOf": "2026-11-24"})
