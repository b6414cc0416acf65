"""One dispatch per table format, and one way to tag a commit with its run."""

import inspect
import json
from pathlib import Path

import pytest

from neurolake_spark.pipeline_config import TableDefinition
from neurolake_spark.table_formats import CommitTag, DeltaFormat, NCFFormat, TableFormat, table_format
from neurolake_spark.tables import TableRef


@pytest.mark.parametrize(("fmt", "implementation"), [("delta", DeltaFormat), ("ncf", NCFFormat)])
def test_a_table_gets_the_format_of_its_definition_which_does_every_operation(fmt, implementation):
    chosen = table_format(TableRef("silver.orders", Path("/lake/silver/orders"), TableDefinition(format=fmt)))
    assert isinstance(chosen, implementation)
    wanted = {
        name for name, _ in inspect.getmembers(TableFormat, inspect.isfunction) if not name.startswith("_")
    }
    assert {
        "insert",
        "upsert",
        "update",
        "delete",
        "erase_keys",
        "overwrite_where",
        "current_version",
    } <= wanted
    for name in wanted:
        assert inspect.signature(getattr(implementation, name)) == inspect.signature(
            getattr(TableFormat, name)
        )


def test_a_commit_tag_is_the_run_id_and_an_id_of_its_own_under_one_key_each_for_every_format():
    tag = CommitTag("run-1")
    assert tag.fields == {"neurolake_run_id": "run-1", "neurolake_commit": tag.commit}
    assert json.loads(tag.user_metadata) == tag.fields
    assert tag.marks(json.loads(tag.user_metadata)) and not CommitTag("run-1").marks(tag.fields)
    untagged = CommitTag()
    assert (
        untagged.fields == {"neurolake_commit": untagged.commit} and len({untagged.commit, tag.commit}) == 2
    )
