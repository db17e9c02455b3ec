"""Schemathesis over the served OpenAPI schema: no input makes the server answer 5xx.

Without a cluster, the operations that need the backend are fuzzed by the e2e variant in
test_kube_e2e.py; here every operation that the database alone serves is.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.api.conftest import ADMIN, Server

DB_ONLY_TAGS = {"access", "health"}
NEEDS_BACKEND = {"deleteTenant", "readyz"}
"""Deleting a tenant asks the backend whether MiniClusters are left; readyz is 503 by design
while the backend is not there."""


def test_database_routes_never_answer_5xx(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    for op in schema.get_all_operations():
        operation = op.ok()
        op_id = operation.definition.raw.get("operationId")
        if not DB_ONLY_TAGS & set(operation.tags or []) or op_id in NEEDS_BACKEND:
            continue

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
            case.validate_response(response, checks=[not_a_server_error])

        run()
    assert not failures
