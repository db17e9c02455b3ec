"""A careless operator on the Docker hosts of a ``crane serve --backend docker``: chatty cargos
whose logs must not fill the disk, and hands on dockerd behind Crane's back (containers removed,
stopped or renamed, networks removed, foreign containers wearing Crane's labels)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from crane.docker.hosts import HostSpec
from crane.docker.reconciler import _restarted
from tests.dockerd import IMAGE, DockerServer, cli, serving

ADMIN = "crane_dockhands_" + "h" * 43
LOG_MAX_SIZE = "10k"
LOG_MAX_FILE = 2
CHATTY = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; i=0; while [ $i -lt 4000 ]; do echo line-$i; i=$((i+1)); done; "
    "echo end; while true; do sleep 1; done",
]
"""4000 lines (some 300 kB of json-file log), then ``end``; ends on TERM."""
TICK = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


@pytest.fixture(scope="module")
def server(
    host_specs: list[HostSpec], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerServer]:
    """h0 (8 H100) alone, keeping two log files of 10 kB per container."""
    settings = {
        "CRANE_DOCKER_LOG_MAX_SIZE": LOG_MAX_SIZE,
        "CRANE_DOCKER_LOG_MAX_FILE": str(LOG_MAX_FILE),
    }
    with serving(
        tmp_path_factory.mktemp("hands"), ADMIN, host_specs[:1], settings=settings
    ) as running:
        yield running


@pytest.fixture(scope="module")
def h0(host_specs: list[HostSpec]) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=host_specs[0].url)
    yield client
    client.close()


@pytest.fixture
def crane(server: DockerServer, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``crane`` as the admin against the module's server."""
    return cli(server.url, ADMIN, tmp_path)


def _until(check: Callable[[], Any], what: str | Callable[[], str], seconds: float = 180) -> Any:
    """``check()`` once it is true; ``what`` (or what it returns) names it on a timeout."""
    deadline = time.monotonic() + seconds
    while not (got := check()):
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what() if callable(what) else what}"
        )
        time.sleep(0.3)
    return got


EXITS_3 = "while [ ! -f /tmp/go ]; do sleep 0.2; done; exit 3"
"""Waits to be told (``/tmp/go``), then exits 3."""


def _mc(api: httpx.Client, name: str, command: list[str], replicas: int = 1) -> None:
    template = {"spec": {"containers": [{"name": "main", "image": IMAGE, "command": command}]}}
    spec = {
        "gpuType": "H100",
        "gpus": {"min": replicas, "max": replicas},
        "replicas": 1,
        "template": {"replicas": replicas, "gpusPerReplica": 1, "template": template},
    }
    created = api.post("/v1/miniclusters", json={"name": name, "spec": spec})
    assert created.status_code == 201, created.text


def _phase(api: httpx.Client, cargo: str) -> str | None:
    got = api.get(f"/v1/cargos/{cargo}")
    return got.json()["status"]["phase"] if got.status_code == 200 else None


def test_a_chatty_cargo_keeps_a_bounded_log_that_still_reads(
    admin: httpx.Client,
    h0: docker.DockerClient,
    crane: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """A replica printing 300 kB: its container's log was unbounded (json-file without
    max-size, so a chatty cargo filled the host's disk); now it is rotated at the configured
    size and count, and ``crane cargo logs`` (whole, --tail, --since, --all-replicas) reads
    the lines kept, across the rotated files, in order."""
    _mc(admin, "chatty", CHATTY, replicas=2)
    try:
        _until(lambda: _phase(admin, "chatty-0") == "Running", "chatty-0 running")
        for replica in (0, 1):
            container = h0.containers.get(f"crane.default.chatty-0-{replica}")
            assert container.attrs["HostConfig"]["LogConfig"] == {
                "Type": "json-file",
                "Config": {"max-size": LOG_MAX_SIZE, "max-file": str(LOG_MAX_FILE)},
            }
        _until(
            lambda: admin.get("/v1/cargos/chatty-0/logs", params={"tail": 1}).text == "end\n",
            "all 4000 lines written",
        )
        whole = admin.get("/v1/cargos/chatty-0/logs").text.splitlines()
        assert whole[-1] == "end"
        kept = [int(line.removeprefix("line-")) for line in whole[:-1]]
        # 2 files of 10 kB hold some 250 json-file entries: the oldest lines are gone
        assert 50 < len(kept) < 600, len(kept)
        assert kept == list(range(kept[0], 4000)), "the lines kept are the last, in order"
        tail = crane("cargo", "logs", "chatty-0", "--tail", "3")
        assert tail.returncode == 0, tail.stderr
        assert tail.stdout.splitlines() == ["line-3998", "line-3999", "end"]
        since = crane("cargo", "logs", "chatty-0", "--since", "10m")
        assert since.returncode == 0 and since.stdout.splitlines() == whole, since.stderr
        both = crane("cargo", "logs", "chatty-0", "--all-replicas", "--tail", "1")
        assert both.returncode == 0, both.stderr
        assert sorted(both.stdout.splitlines()) == ["[replica 0] end", "[replica 1] end"]
    finally:
        admin.delete("/v1/miniclusters/chatty")


def _gang(
    api: httpx.Client, name: str, command: list[str], replicas: int = 2, retry: bool = False
) -> bool:
    """A MiniCluster of one cargo ``<name>-0`` of ``replicas`` replicas (1 GPU each), Never
    restarted, stopped within 2 s; with ``retry``, False while a namesake is being deleted."""
    template = {
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "main", "image": IMAGE, "command": command}],
        }
    }
    spec = {
        "gpuType": "H100",
        "gpus": {"min": replicas, "max": replicas},
        "replicas": 1,
        "template": {"replicas": replicas, "gpusPerReplica": 1, "template": template},
    }
    created = api.post("/v1/miniclusters", json={"name": name, "spec": spec})
    if retry and created.status_code == 409:
        return False
    assert created.status_code == 201, created.text
    return True


def _status(api: httpx.Client, cargo: str) -> dict[str, Any]:
    got = api.get(f"/v1/cargos/{cargo}")
    assert got.status_code == 200, got.text
    status: dict[str, Any] = got.json()["status"]
    return status


def _no_gpu_twice(h0: docker.DockerClient, api: httpx.Client) -> None:
    """No GPU of h0 is labelled on two live containers of Crane's, nor listed twice on the map."""
    claims = [
        gpu
        for c in h0.containers.list()
        if c.labels.get("crane.io/managed") == "true" and c.name.startswith("crane.")
        for gpu in c.labels.get("crane.io/gpu-ids", "").split(",")
        if gpu
    ]
    assert len(claims) == len(set(claims)), claims
    on_map = [
        (node["name"], g["id"])
        for node in api.get("/v1/nodes").json()["items"]
        for g in node["gpus"]
        if g.get("cargo")
    ]
    assert len(on_map) == len(set(on_map)), on_map


def _gone_from_the_map(api: httpx.Client, cargo: str) -> bool:
    return not any(
        (g.get("cargo") or "").rpartition("/")[2] == cargo
        for node in api.get("/v1/nodes").json()["items"]
        for g in node["gpus"]
    )


def _seen_by_dockerd(h0: docker.DockerClient, name: str, server: DockerServer) -> str:
    """What h0 shows of the containers named like ``name`` and the server log's tail: what a
    wait that timed out needs to tell where the cargo stood."""
    shown = [
        f"{c.name} {c.status} attempt={c.labels.get('crane.io/attempt')}"
        for c in h0.containers.list(all=True, filters={"name": name})
    ]
    tail = server.log.read_text(errors="replace").splitlines()[-20:]
    return f"dockerd: {shown}; server log tail: {tail}"


@pytest.mark.parametrize("hand", ["rm", "stop", "rename"])
def test_a_replica_taken_by_hand_ends_its_cargo_and_says_so(
    hand: str, admin: httpx.Client, h0: docker.DockerClient, server: DockerServer
) -> None:
    """``docker rm -f``, ``docker stop`` or ``docker rename`` of one replica of a running
    cargo: the cargo (restartPolicy Never) fails saying what happened to which replica, the
    other replica is stopped, its GPUs are free again and none is held twice. A renamed replica
    ran on unseen (Crane kept finding it by its labels, so the cargo stayed Running while `crane
    logs` and `crane exec` answered that it had no container), and is now stopped."""
    name = f"hand-{hand}"
    _gang(admin, name, ["sh", "-c", "while true; do sleep 1; done"])
    try:
        _until(lambda: _phase(admin, f"{name}-0") == "Running", f"{name}-0 running")
        victim = h0.containers.get(f"crane.default.{name}-0-1")
        if hand == "rm":
            victim.remove(force=True)
            said = "replica 1 failed: its container is gone"
        elif hand == "stop":
            victim.stop(timeout=1)
            said = "replica 1 exited with code 137"
        else:
            victim.rename(f"by-hand-{name}")
            said = "replica 1 failed: its container is gone"
        seen: list[dict[str, Any]] = []
        status = _until(
            lambda: (
                (seen.append(got := _status(admin, f"{name}-0")) or got)["phase"] == "Failed"
                and got
            ),
            lambda: (
                f"{name}-0 failed; last seen: {seen[-1:]}; {_seen_by_dockerd(h0, name, server)}"
            ),
        )
        assert said in status["message"], status
        _no_gpu_twice(h0, admin)
        _until(lambda: _gone_from_the_map(admin, f"{name}-0"), "its GPUs free again")
        _until(
            lambda: not [c for c in h0.containers.list() if name in c.name],
            "every container of the cargo stopped, the renamed one too",
        )
        _no_gpu_twice(h0, admin)
    finally:
        admin.delete(f"/v1/miniclusters/{name}")
        for c in h0.containers.list(all=True, filters={"name": f"by-hand-{name}"}):
            c.remove(force=True)


def test_a_container_passing_for_a_replica_is_not_taken_for_one(
    admin: httpx.Client,
    h0: docker.DockerClient,
    crane: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """A container made by hand with a running cargo's labels (its uid, replica 1 of a
    one-replica cargo, all 8 GPUs) that exits 3: it failed the cargo ('replica 1 exited with
    code 3'); now it is not the cargo's, claims no GPU, and the cargo runs on."""
    _gang(admin, "real", TICK, replicas=1)
    spoof = None
    try:
        _until(lambda: _phase(admin, "real-0") == "Running", "real-0 running")
        uid = admin.get("/v1/cargos/real-0").json()["uid"]
        genuine = h0.containers.get("crane.default.real-0-0")
        labels = {**genuine.labels, "crane.io/replica": "1", "crane.io/gpu-ids": "0,1,2,3,4,5,6,7"}
        assert labels["crane.io/cargo-uid"] == uid
        spoof = h0.containers.run(
            IMAGE, ["sh", "-c", "sleep 3; exit 3"], name="spoof-real", labels=labels, detach=True
        )
        _until(lambda: (spoof.reload(), spoof.status)[1] == "exited", "the spoof exited")
        _gang(admin, "after", TICK, replicas=4)
        _until(lambda: _phase(admin, "after-0") == "Running", "4 more GPUs placed beside it")
        status = _status(admin, "real-0")
        assert status["phase"] == "Running", status
        _no_gpu_twice(h0, admin)
        logs = crane("cargo", "logs", "real-0", "--tail", "1")
        assert logs.returncode == 0, logs.stderr
    finally:
        admin.delete("/v1/miniclusters/real")
        admin.delete("/v1/miniclusters/after")
        if spoof is not None:
            spoof.remove(force=True)


def test_a_container_squatting_a_replica_name_is_not_adopted(
    admin: httpx.Client, h0: docker.DockerClient
) -> None:
    """A container without Crane's labels under the name Crane gives replica 0: it was adopted
    (the cargo 'Running' in a stranger's container); now the cargo says the name is taken,
    and runs once that container is removed."""
    squat = h0.containers.run(IMAGE, TICK, name="crane.default.squat-0-0", detach=True)
    try:
        _gang(admin, "squat", TICK, replicas=1)
        status = _until(
            lambda: "is taken" in (got := _status(admin, "squat-0"))["message"] and got,
            "the cargo says the name is taken",
        )
        assert status["phase"] != "Running", status
        assert squat.short_id in status["message"]
        squat.remove(force=True)
        _until(lambda: _phase(admin, "squat-0") == "Running", "squat-0 running once it is gone")
        mine = h0.containers.get("crane.default.squat-0-0")
        assert mine.id != squat.id and mine.labels["crane.io/cargo"] == "squat-0"
    finally:
        admin.delete("/v1/miniclusters/squat")
        with contextlib.suppress(docker.errors.NotFound):
            squat.remove(force=True)


def test_a_minicluster_network_removed_by_hand_fails_the_gang_saying_so(
    admin: httpx.Client, h0: docker.DockerClient
) -> None:
    """``docker network rm`` of a running MiniCluster's network (dockerd refuses it while
    containers are on it, so its replicas are disconnected first): the replicas ran on, cut off
    from each other and their store, with the cargo Running; now the cargo fails saying so,
    its GPUs come free, and a MiniCluster made again gets a network again and runs."""
    _gang(admin, "cut", ["sh", "-c", "while true; do sleep 1; done"])
    try:
        _until(lambda: _phase(admin, "cut-0") == "Running", "cut-0 running")
        [network] = h0.networks.list(names=["crane.default.cut"])
        for replica in (0, 1):
            network.disconnect(f"crane.default.cut-0-{replica}", force=True)
        network.remove()
        status = _until(
            lambda: (got := _status(admin, "cut-0"))["phase"] == "Failed" and got, "cut-0 failed"
        )
        assert "cut off" in status["message"] and "crane.default.cut" in status["message"], status
        _until(lambda: _gone_from_the_map(admin, "cut-0"), "its GPUs free again")
        _no_gpu_twice(h0, admin)
        admin.delete("/v1/miniclusters/cut")
        _until(lambda: not h0.networks.list(names=["crane.default.cut"]), "the old one gone")
        _until(lambda: _gang(admin, "cut", TICK, replicas=1, retry=True), "cut made again")
        _until(lambda: _phase(admin, "cut-0") == "Running", "cut-0 running again")
        assert h0.networks.list(names=["crane.default.cut"])
    finally:
        admin.delete("/v1/miniclusters/cut")


def _gpu_ids(container: Any) -> set[str]:
    return set(container.labels.get("crane.io/gpu-ids", "").split(","))


def test_a_look_alike_replica_of_an_older_cargo_takes_no_gpu_from_a_running_one(
    admin: httpx.Client, h0: docker.DockerClient, server: DockerServer
) -> None:
    """A container made by hand under the name Crane gives replica 1 of an older one-replica
    cargo, with that cargo's labels and the GPU ids of a newer cargo that runs (an operator
    'putting back' a replica, or passing a job off as one): the newer cargo was preempted, its
    containers stopped, because the older cargo's claim came first; now a cargo whose
    containers and record agree keeps its GPUs, the look-alike's cargo is the one stopped
    and placed again, and no GPU is held by two live containers."""
    _gang(admin, "elder", TICK, replicas=1)
    forged = None
    try:
        _until(lambda: _phase(admin, "elder-0") == "Running", "elder-0 running")
        _gang(admin, "younger", TICK, replicas=2)
        _until(lambda: _phase(admin, "younger-0") == "Running", "younger-0 running")
        genuine = h0.containers.get("crane.default.younger-0-0")
        taken = sorted(_gpu_ids(genuine) | _gpu_ids(h0.containers.get("crane.default.younger-0-1")))
        elder = h0.containers.get("crane.default.elder-0-0")
        labels = {**elder.labels, "crane.io/replica": "1", "crane.io/gpu-ids": ",".join(taken)}
        forged = h0.containers.run(
            IMAGE, TICK, name="crane.default.elder-0-1", labels=labels, detach=True
        )

        def live() -> set[str]:
            return {str(c.id) for c in h0.containers.list()}

        _until(
            lambda: forged.id not in (ids := live()) or genuine.id not in ids,
            lambda: f"the look-alike stopped; {_seen_by_dockerd(h0, 'elder', server)}",
        )
        assert genuine.id in live(), _seen_by_dockerd(h0, "younger", server)
        status = _status(admin, "younger-0")
        assert status["phase"] == "Running" and status.get("restarts", 0) == 0, status
        assert genuine.id == h0.containers.get("crane.default.younger-0-0").id
        genuine.reload()
        assert genuine.status == "running"
        _no_gpu_twice(h0, admin)
        _until(lambda: _phase(admin, "elder-0") == "Running", "elder-0 placed and running again")
        _no_gpu_twice(h0, admin)
    finally:
        admin.delete("/v1/miniclusters/elder")
        admin.delete("/v1/miniclusters/younger")
        if forged is not None:
            with contextlib.suppress(docker.errors.NotFound):
                forged.remove(force=True)


EXITS_3_ONCE = "if [ -f /tmp/once ]; then exec sleep 300; fi; touch /tmp/once; " + EXITS_3
"""Exits 3 when told, then runs on once Docker has started it again."""


def test_the_code_of_an_exit_docker_hid_by_a_restart_is_still_known(
    h0: docker.DockerClient,
) -> None:
    """A container Docker started again after it exited 3 (a restart policy set by hand), that
    now runs: Docker's inspect says exit code 0 then. Crane read it as "it exited and Docker
    started it again", without the code; it now finds the code in the daemon's events. (Under
    load the cargo's pass met the replica at that moment: ``replica 1 exited with code 3``
    was missing from its message in a fresh-clone CI run.)"""
    container = h0.containers.run(
        IMAGE,
        ["sh", "-c", "touch /tmp/go; " + EXITS_3_ONCE],
        detach=True,
        restart_policy={"Name": "always"},
    )
    try:

        def again() -> bool:
            container.reload()
            return container.status == "running" and container.attrs["RestartCount"] >= 1

        _until(again, "the container running again after its exit", seconds=60)
        assert container.attrs["State"]["ExitCode"] == 0, "Docker forgot the code"
        assert _restarted(container) == (3, "")
    finally:
        container.remove(force=True)


@pytest.mark.parametrize("program", [EXITS_3, EXITS_3_ONCE], ids=["exits-again", "runs-on"])
def test_a_restart_policy_set_by_hand_hides_no_failure(
    admin: httpx.Client, h0: docker.DockerClient, server: DockerServer, program: str
) -> None:
    """``docker update --restart always`` on a replica of a running cargo (restartPolicy
    Never), whose program then exits 3: Docker started it again and again (or once, after
    which it ran on) and the cargo read Running for good, its failure never seen; now the
    cargo fails saying so, with the code, Docker's restart policy is Crane's again (``no``),
    and nothing of it runs on."""
    mc = "policy" if program == EXITS_3 else "policy-once"
    waits = ["sh", "-c", program]
    _gang(admin, mc, waits, replicas=2)
    try:
        _until(lambda: _phase(admin, f"{mc}-0") == "Running", f"{mc}-0 running")
        victim = h0.containers.get(f"crane.default.{mc}-0-1")
        victim.update(restart_policy={"Name": "always"})
        assert victim.exec_run(["sh", "-c", "echo > /tmp/go"]).exit_code == 0
        status = _until(
            lambda: (got := _status(admin, f"{mc}-0"))["phase"] == "Failed" and got,
            lambda: f"{mc}-0 failed; {_seen_by_dockerd(h0, mc, server)}",
            seconds=90,
        )
        assert "replica 1 exited with code 3" in status["message"], status
        _until(
            lambda: not [c for c in h0.containers.list() if f".{mc}-" in c.name],
            lambda: f"nothing of it runs; {_seen_by_dockerd(h0, mc, server)}",
        )
        victim.reload()
        assert victim.attrs["HostConfig"]["RestartPolicy"]["Name"] in ("no", "")
        _no_gpu_twice(h0, admin)
    finally:
        admin.delete(f"/v1/miniclusters/{mc}")
