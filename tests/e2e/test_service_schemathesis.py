"""Schemathesis over the whole OpenAPI document of the real server: no 5xx, every response in its schema.

Requests carry an admin key, so every operation is reached past authentication (the route x
role table is walked in ``test_service_api.py``). Writes land in the session's copy of the
catalog only.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance


@pytest.fixture(scope="module")
def service_schema(served):
    return schemathesis.openapi.from_url(f"{served.url}/api/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("service_schema")


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema(case, service_site):
    case.call_and_validate(
        headers=service_site.headers("admin"),
        checks=[not_a_server_error, response_schema_conformance],
    )
