"""Property-based requests generated from the served OpenAPI spec (schemathesis, bounded
examples per operation): no request, however odd, gets a 5xx from the /api/v1 routes."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from server_helpers import ApiServer

EXAMPLES_PER_OPERATION = 12


def test_no_server_errors(api: ApiServer) -> None:
    schema = (
        # A generous timeout: building the spec is CPU work, slow on a loaded 2-core machine.
        schemathesis.openapi.from_url(f"{api.url}/api/v1/openapi.json", timeout=120)
        .include(path_regex=r"^/api/v1/")
        # The event stream is long-lived by design (it has its own tests).
        .exclude(path_regex=r"/stream$")
    )
    headers = {"Authorization": f"Bearer {api.admin}"}
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers=headers, timeout=60)
            case.validate_response(response, checks=[not_a_server_error])

        check()
        tested.append(operation.label)
    assert len(tested) >= 15, tested  # the spec really listed the API's operations
