"""Schemathesis over every operation of a running server, all checks, for every backend."""

from __future__ import annotations

from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

CROSS_FIELD = {
    "createMiniCluster",
    "patchMiniCluster",
    "dryRunPlacement",
    "growMiniCluster",
    "createCargo",
    "createHost",
    "getUsage",
    "putTenantShares",
    "createToken",
}
"""Operations whose valid input obeys rules JSON Schema cannot state (gpus.min <= gpus.max,
a GPU type of a known family, since before until, islands covering the GPU ids, a share's
lendingLimit <= nominal and one share per GPU type, a token's expiry in the future): their
schema-valid data may be refused with a 422 naming the rule, so the positive-data-acceptance
check is the one check left out for them. Every other check runs on every operation."""

PROBES = {"readyz"}
"""Readiness answers 503 by design while the backend cannot serve (every Docker host down, a
kubeconfig that does not work): the not-a-server-error check is left out for it alone."""

MAX_EXAMPLES = 8
"""Per operation and generation mode: small, so a backend's run fits CI in a couple of
minutes, yet every operation is exercised with valid and invalid data."""


@dataclass
class Report:
    operations: int = 0
    examples: int = 0
    failures: list[str] = field(default_factory=list)


def fuzz_every_operation(url: str, token: str, max_examples: int = MAX_EXAMPLES) -> Report:
    """Fuzz each operation of ``url``'s OpenAPI as the admin ``token``; collect failures."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    report = Report()
    headers = {"Authorization": f"Bearer {token}"}
    for result in schema.get_all_operations():
        operation = result.ok()
        report.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=max_examples,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:  # type: ignore[no-untyped-def]
                report.examples += 1
                op_id = case.operation.definition.raw.get("operationId")
                if op_id == "streamEvents":  # a 200 streams forever: ask for a 404
                    case.query = {**(case.query or {}), "tenant": "no-such-tenant"}
                response = case.call(base_url=url, headers=headers, timeout=60)
                try:
                    excluded = [positive_data_acceptance] if op_id in CROSS_FIELD else []
                    if op_id in PROBES:
                        excluded.append(not_a_server_error)
                    case.validate_response(response, excluded_checks=excluded)
                except BaseException as err:  # a check failed: keep going, report all
                    report.failures.append(f"{case.method} {case.formatted_path}: {err}"[:1500])

            try:
                run()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # nothing to negate: the operation takes no input
    return report
