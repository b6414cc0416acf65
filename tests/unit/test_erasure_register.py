"""The erasure register keeps each request once, in order, and never skips a damaged one."""

from __future__ import annotations

import pytest

from neurolake_spark.erasure import ErasureRegister
from neurolake_spark.errors import PipelineError


def test_requests_are_kept_once_each_and_read_back_oldest_first(tmp_path):
    register = ErasureRegister(tmp_path)
    first = register.record("silver.customers", "customer_id", [1042, 2077], "neurolake erase", "run-1")
    register.record("silver.customers", "email_hash", ["ab12"], "fix gdpr-7.json of 2026-11-24", "run-2")
    again = register.record("silver.customers", "customer_id", [1042, 2077], "neurolake erase", "run-3")
    requests = register.requests()
    # recording the same request again replaces it (now the newest), it is not a second one
    assert [(r.key, r.values, r.origin, r.run_id) for r in requests] == [
        ("email_hash", ["ab12"], "fix gdpr-7.json of 2026-11-24", "run-2"),
        ("customer_id", [1042, 2077], "neurolake erase", "run-3"),
    ]
    assert first.values == again.values
    assert ErasureRegister(tmp_path / "empty").requests() == []


def test_a_damaged_request_file_is_an_error_not_a_skipped_request(tmp_path):
    register = ErasureRegister(tmp_path)
    register.record("silver.customers", "customer_id", [1], "neurolake erase", "run-1")
    (register.dir / "broken.json").write_text("{not json")
    with pytest.raises(PipelineError, match="erasure register .*broken.json: not a valid request"):
        register.requests()
