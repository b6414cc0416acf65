"""The run-state vocabulary maps to and from OpenLineage in one place."""

import pytest
from openlineage.client.event_v2 import RunState

from neurolake_spark.run_status import RunStatus


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        (RunStatus.SUCCESS, "COMPLETE"),
        (RunStatus.FAILED, "FAIL"),
        (RunStatus.ABORTED, "ABORT"),
        (RunStatus.RUNNING, "RUNNING"),
    ],
)
def test_each_final_or_running_state_round_trips_through_openlineage(status, event_type):
    assert status.openlineage == event_type
    assert RunState(event_type).value == event_type, "an eventType the OpenLineage client knows"
    assert RunStatus.from_openlineage(event_type) is status


def test_start_is_running_and_unknown_types_are_unknown():
    assert RunStatus.from_openlineage("START") is RunStatus.RUNNING
    assert RunStatus.from_openlineage("other") is RunStatus.UNKNOWN
    assert RunStatus.from_openlineage("PAUSED") is RunStatus.UNKNOWN


def test_only_ended_states_are_terminal_and_values_are_the_printed_words():
    assert {s for s in RunStatus if s.terminal} == {RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.ABORTED}
    assert f"{RunStatus.SUCCESS}" == "success", "metrics labels and run summaries print the value"
