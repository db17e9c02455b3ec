"""Schemathesis over EVERY operation of the served OpenAPI, positive and negative data, all
checks (no 5xx, status codes, content types and bodies as documented, valid data accepted,
invalid data refused, ``Allow`` on 405): zero failures.

Here the server runs the Docker backend without hosts (no daemon needed);
tests/docker/test_schema_fuzz_docker.py runs the same with a host on a real dockerd.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dockerd import DockerServer, serve_docker
from tests.fuzz import fuzz_every_operation

ADMIN = "crane_fuzzadmin_" + "f" * 43


@pytest.fixture(scope="module")
def docker_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerServer]:
    running = serve_docker(tmp_path_factory.mktemp("fuzz"), ADMIN, [])
    yield running
    running.stop()


def test_every_operation_passes_every_check(docker_server: DockerServer) -> None:
    report = fuzz_every_operation(docker_server.url, ADMIN)
    assert not report.failures, "\n\n".join(report.failures)
    print(f"schemathesis: {report.operations} operations, {report.examples} examples")
