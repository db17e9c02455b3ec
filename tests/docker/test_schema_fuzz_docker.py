"""``crane serve --backend docker`` with a host on a real dockerd (its own daemon, so no other
suite's server removes its containers): no answer to a tenant names another tenant's cargos,
and schemathesis over every operation with all checks finds nothing (see tests/fuzz.py for the
one check left out where rules are cross-field)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dockerd import DockerServer, clean, daemons, serve_docker
from tests.fuzz import fuzz_every_operation

ADMIN = "crane_fuzzdock_" + "d" * 43
DAEMON = range(8, 9)
"""hack/dockerd daemon 8: no other suite uses it (tests/cli: 3-4, tests/browser: 6-7)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerServer]:
    [url] = daemons(DAEMON)
    clean([url])
    host = {"name": "f0", "dockerHost": url, "gpus": 8, "gpuType": "H100", "islands": "0-3,4-7"}
    running = serve_docker(tmp_path_factory.mktemp("fuzz-docker"), ADMIN, [host])
    yield running
    running.stop()
    clean([url])


SLEEP = {
    "spec": {
        "containers": [
            {"name": "main", "image": "crane-test:busybox", "command": ["sh", "-c", "sleep 300"]}
        ]
    }
}


def test_dry_run_and_explain_count_other_tenants_cargos_and_name_none(
    server: DockerServer,
) -> None:
    with server.client() as admin:
        for tenant in ("iso-a", "iso-b"):
            assert admin.post("/v1/tenants", json={"name": tenant}).status_code == 201
        lo = {"name": "lo", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 8}}}
        assert (
            admin.post("/v1/miniclusters", params={"tenant": "iso-a"}, json=lo).status_code == 201
        )
        shape = {"replicas": 1, "gpusPerReplica": 4, "template": SLEEP}
        grown = admin.post(
            "/v1/miniclusters/lo:grow",
            params={"tenant": "iso-a"},
            json={"cargos": [shape, shape], "wait": True, "timeoutSeconds": 120},
        )
        assert grown.status_code == 200 and grown.json()["added"] == 2, grown.text
        b_token = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": "iso-b"}).json()
        big = {"gpuType": "H100", "gpus": {"min": 8, "max": 8}, "priority": 100}
        as_admin = admin.post(
            "/v1/placement:dryrun", params={"tenant": "iso-b"}, json={"miniCluster": big}
        )
        assert as_admin.status_code == 200, as_admin.text
        assert {"iso-a/lo-0", "iso-a/lo-1"} <= set(
            as_admin.json()["explanation"]["preemptibleCargos"]
        )
    with server.client(b_token["token"]) as b:
        dry = b.post("/v1/placement:dryrun", json={"miniCluster": big})
        made = b.post("/v1/miniclusters", json={"name": "big", "spec": big})
        assert made.status_code == 201, made.text
        explained = b.get("/v1/miniclusters/big:explain")
        nodes = b.get("/v1/nodes")
    for answer in (dry, explained, nodes):
        assert answer.status_code == 200, answer.text
        assert "iso-a" not in answer.text and "lo-" not in answer.text, answer.text
    exp = dry.json()["explanation"]
    assert exp["preemptibleCargos"] == [] and exp["otherPreemptibleCargos"] == 2
    assert "preempting 2 borrowed cargos of another tenant" in dry.json()["message"]
    assert explained.json()["explanation"]["otherPreemptibleCargos"] == 2
    with server.client() as admin:
        for mc, tenant in (("lo", "iso-a"), ("big", "iso-b")):
            assert (
                admin.delete(f"/v1/miniclusters/{mc}", params={"tenant": tenant}).status_code == 204
            )


def test_every_operation_passes_every_check_on_docker(server: DockerServer) -> None:
    report = fuzz_every_operation(server.url, ADMIN)
    assert not report.failures, "\n\n".join(report.failures)
    assert report.operations >= 25
    print(f"schemathesis (docker): {report.operations} operations, {report.examples} examples")
