"""Schemathesis over the whole OpenAPI document of the real server: no 5xx, every response in its schema.

Requests carry an admin key, so every operation is reached past authentication (the route x
role table is walked in ``test_service_api.py``). Writes land in the session's copy of the
catalog only. Each operation gets its own Hypothesis run; every failing operation is reported.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

EXAMPLES = 30


def test_every_operation_answers_within_its_schema(served, service_site):
    schema = schemathesis.openapi.from_url(f"{served.url}/api/v1/openapi.json")
    headers = service_site.headers("admin")
    failures, operations = {}, 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    assert operations >= 20
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
