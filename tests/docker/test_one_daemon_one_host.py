"""One Docker daemon is one host: the same machine added under a second name (another URL
to the same daemon, a copy-pasted `crane node add`) would have its GPUs handed out twice.

A real ``crane serve --backend docker`` on one real dockerd, reached through two URLs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from crane.api.db import make_engine
from crane.docker.hosts import HostSpec
from crane.docker.store import HostRow
from tests.dockerd import SLEEP, DockerServer, serving

ADMIN = "crane_onedaemon_" + "a" * 43
GPUS = 4


@pytest.fixture
def server(host_specs: list[HostSpec], tmp_path: Path) -> Iterator[DockerServer]:
    wire = [{"name": "h0", "dockerHost": host_specs[0].url, "gpus": GPUS, "gpuType": "H100"}]
    with serving(tmp_path, ADMIN, host_specs[:1], wire) as running:
        yield running


def _second_url(first: str, tmp_path: Path) -> str:
    """Another URL of the same daemon: a symlink to its socket."""
    socket = first.removeprefix("unix://")
    link = tmp_path / "same.sock"
    link.symlink_to(socket)
    return f"unix://{link}"


def test_a_host_added_twice_under_another_name_is_refused(
    server: DockerServer, host_specs: list[HostSpec], tmp_path: Path
) -> None:
    with server.client() as api:
        for url in (host_specs[0].url, _second_url(host_specs[0].url, tmp_path)):
            body = {"name": "twin", "dockerHost": url, "gpus": GPUS, "gpuType": "H100"}
            added = api.post("/v1/hosts", json=body)
            assert added.status_code == 409, added.text
            assert "same Docker daemon as host 'h0'" in added.json()["detail"], added.text
            # Nothing was stored: no `crane node remove twin` (it was the remedy; a 404).
            assert "it is not added" in added.json()["detail"], added.text
            assert "crane node remove" not in added.json()["detail"], added.text
        assert [h["name"] for h in api.get("/v1/hosts").json()["items"]] == ["h0"]


def test_a_stored_second_name_of_a_daemon_takes_no_work(
    server: DockerServer, host_specs: list[HostSpec], tmp_path: Path
) -> None:
    """A twin already in the database (stored before this check, or added while the daemon was
    down) stays not ready, saying why, and no cargo goes there."""
    twin = HostSpec(
        name="twin",
        url=_second_url(host_specs[0].url, tmp_path),
        gpu_product="H100",
        gpu_count=GPUS,
    )
    with Session(make_engine(f"sqlite:///{tmp_path / 'crane.db'}")) as s:
        s.add(HostRow(name="twin", spec=twin.model_dump_json()))
        s.commit()
    with server.client() as api:
        deadline = time.monotonic() + 60
        while (host := api.get("/v1/hosts/twin").json())["ready"]:
            assert time.monotonic() < deadline, host
        assert "same Docker daemon as host 'h0'" in host["message"], host
        made = api.post(
            "/v1/miniclusters",
            json={"name": "two", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 8}}},
        )
        assert made.status_code == 201, made.text
        for name in ("a", "b"):
            spec = {"miniCluster": "two", "replicas": 1, "gpusPerReplica": GPUS, "template": SLEEP}
            assert api.post("/v1/cargos", json={"name": name, "spec": spec}).status_code == 201
        _until_running(api, 1)
        for _ in range(5):  # passes that would place the second cargo on the twin
            api.get("/v1/nodes")
        cargos = {c["name"]: c["status"] for c in api.get("/v1/cargos").json()["items"]}
        phases = sorted(s["phase"] for s in cargos.values())
        assert phases == ["Pending", "Running"], cargos
        nodes = {p["node"] for s in cargos.values() for p in s.get("placement") or []}
        assert nodes == {"h0"}, cargos


def _until_running(api: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        items = api.get("/v1/cargos").json()["items"]
        if sum(c["status"]["phase"] == "Running" for c in items) >= count:
            return
        assert time.monotonic() < deadline, items
        api.get("/v1/nodes")
