"""The real client across Docker hosts (issue 13, item 4): ``torchrun`` (PyPI's torch, CPU, gloo)
runs ``examples/elastic/train.py`` in one world per MiniCluster over three dockerd, each in a
network namespace of its own (hack/dockerd-netns). ``crane mc grow`` adds a cargo and the
workers print the bigger world; ``crane mc shrink`` removes it and the world re-forms from the
last checkpoint: the step never goes back to 0 and the loss keeps falling. Grown again, the
third cargo (on borrowed GPUs) is preempted by a MiniCluster of higher priority, and the world
re-forms the same way.

The image is busybox plus links, made by ``docker import``; the torch environment
(hack/torch-env, built with Debian's python3) and this machine's ``/usr`` are read-only bind
mounts, the checkpoint a directory of this machine every host mounts (shared storage, on one
machine). With ``CI=true`` a missing torch environment fails the test; elsewhere it skips.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from crane.docker import labels as L
from crane.docker.containers import managed_containers
from tests.dockerd import (
    DockerServer,
    NetnsHost,
    clean,
    cli,
    import_busybox_image,
    serve_docker,
)
from tests.support import unavailable

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "crane_torchrun_" + "t" * 41
IMAGE = "crane-test:torch"
APPLETS = ("sh", "sleep", "echo", "cat", "ls", "env")
CHECKPOINT_EVERY = 100
LINE = re.compile(r"world=(\d+) step=(\d+) loss=([0-9.eE+-]+)")
TRAIN = (
    "exec torchrun --nnodes=$CRANE_NNODES --nproc-per-node=1 "
    "--rdzv-backend=$CRANE_RDZV_BACKEND --rdzv-endpoint=$CRANE_RDZV_ENDPOINT "
    "--rdzv-id=$CRANE_RDZV_ID --rdzv-conf=last_call_timeout=2 --max-restarts=100 "
    f"/app/train.py --checkpoint-every={CHECKPOINT_EVERY} --print-every={CHECKPOINT_EVERY}"
)


@pytest.fixture(scope="module")
def torch_env() -> Path:
    """The cached environment with torch (hack/torch-env builds it; .ci/run does)."""
    found = subprocess.run(
        [str(ROOT / "hack" / "torch-env"), "--check"], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        unavailable(f"no torch environment: {found.stderr.strip()} (hack/torch-env builds it)")
    return Path(found.stdout.strip())


@pytest.fixture(scope="module")
def server(
    separate_hosts: list[NetnsHost], torch_env: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DockerServer, Path, list[str]]]:
    """Hosts n0, n1, n2 with 4 H100 each and their addresses; the torch image on each; the
    mounts the template needs allowed. Yields the server, the checkpoint directory and the
    hosts' Docker URLs."""
    urls = [h.url for h in separate_hosts]
    clean(urls)
    import_busybox_image(
        urls,
        "crane-test",
        "torch",
        APPLETS,
        links={"lib": "usr/lib", "lib64": "usr/lib64"},
        changes=[f"ENV PATH={torch_env / 'bin'}:/usr/bin:/bin"],
    )
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    allowed = ["/usr", str(torch_env), str(ROOT / "examples" / "elastic"), f"{checkpoints}:rw"]
    wire = [
        {
            "name": f"n{i}",
            "dockerHost": h.url,
            "gpus": 4,
            "gpuType": "NVIDIA-H100-80GB-HBM3",
            "address": h.address,
        }
        for i, h in enumerate(separate_hosts)
    ]
    running = serve_docker(
        tmp_path_factory.mktemp("torchrun"),
        ADMIN,
        wire,
        CRANE_DOCKER_ALLOWED_MOUNTS=json.dumps(allowed),
    )
    yield running, checkpoints, urls
    running.stop()
    clean(urls)


def _spec(torch_env: Path, checkpoints: Path, name: str = "elastic") -> dict[str, Any]:
    mounts = {
        "usr": ("/usr", "/usr", True),
        "torch": (str(torch_env), str(torch_env), True),
        "app": (str(ROOT / "examples" / "elastic"), "/app", True),
        "ckpt": (str(checkpoints), "/ckpt", False),
    }
    container = {
        "name": "trainer",
        "image": IMAGE,
        "command": ["sh", "-c", TRAIN],
        "env": [{"name": "CRANE_CHECKPOINT", "value": f"/ckpt/{name}.pt"}],
        "volumeMounts": [
            {"name": name, "mountPath": target, "readOnly": ro}
            for name, (_, target, ro) in mounts.items()
        ],
    }
    volumes = [{"name": name, "hostPath": {"path": src}} for name, (src, _, _) in mounts.items()]
    return {
        "gpuType": "H100",
        "gpus": {"min": 8, "max": 12},
        "replicas": 2,
        "rendezvous": {"enabled": True},
        "template": {
            "replicas": 1,
            "gpusPerReplica": 4,
            "template": {"spec": {"containers": [container], "volumes": volumes}},
        },
    }


def _until(check: Callable[[], Any], what: str, seen: Callable[[], str], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}; {seen()}"
        time.sleep(0.5)
    return got


def test_torchrun_grows_and_shrinks_with_the_minicluster_across_hosts(
    server: tuple[DockerServer, Path, list[str]], torch_env: Path, tmp_path: Path
) -> None:
    api_server, checkpoints, urls = server
    engines = [docker.DockerClient(base_url=u) for u in urls]
    run = cli(api_server.url, ADMIN, tmp_path)

    def crane(*args: str) -> None:
        done = run(*args)
        assert done.returncode == 0, done.stderr

    def lines(cargo: str) -> list[tuple[int, int, float]]:
        for engine in engines:
            for c in managed_containers(engine):
                if c.labels.get(L.CARGO) == cargo:
                    text = c.logs().decode(errors="replace")
                    return [(int(w), int(s), float(x)) for w, s, x in LINE.findall(text)]
        return []

    def seen() -> str:
        return "; ".join(
            f"{c.name} {c.status}: {c.logs(tail=8).decode(errors='replace')!r}"
            for engine in engines
            for c in managed_containers(engine)
        )

    def printed(cargo: str, world: int, after: int = 0) -> Callable[[], bool]:
        return lambda: any(w == world for w, _, _ in lines(cargo)[after:])

    def grow() -> None:
        start = len(lines("elastic-0"))
        crane("mc", "grow", "elastic", "1")
        _until(printed("elastic-0", 3, start), "the world of 3 after the grow", seen, 300)
        _until(printed("elastic-2", 3), "the new cargo in the world of 3", seen, 120)
        grown = len(lines("elastic-0"))
        _until(
            lambda: len(lines("elastic-0")) >= grown + 2,
            "a checkpoint in the world of 3",
            seen,
            120,
        )

    def back_to_two(start: int, what: str) -> None:
        _until(printed("elastic-0", 2, start), f"the world of 2 after the {what}", seen, 300)
        _until(
            lambda: len([w for w, _, _ in lines("elastic-0")[start:] if w == 2]) >= 2,
            f"training going on in the world of 2 after the {what}",
            seen,
            120,
        )

    with api_server.client() as api:
        created = api.post(
            "/v1/miniclusters", json={"name": "elastic", "spec": _spec(torch_env, checkpoints)}
        )
        assert created.status_code == 201, created.text
        try:
            _until(printed("elastic-0", 2), "a world of 2 training", seen, 300)
            used = [any(c.labels.get(L.CARGO) for c in managed_containers(e)) for e in engines]
            assert sum(used) == 2, "the two cargos run on two hosts"
            grow()
            start = len(lines("elastic-0"))
            crane("mc", "shrink", "elastic", "1", "--yes", "--grace-period", "20")
            back_to_two(start, "shrink")
            grow()
            # the third cargo borrows the third host's GPUs: a MiniCluster of higher priority
            # that needs them preempts it, and the world re-forms without it
            start = len(lines("elastic-0"))
            urgent = {"gpuType": "H100", "gpus": {"min": 4, "max": 4}, "priority": 100}
            made = api.post("/v1/miniclusters", json={"name": "urgent", "spec": urgent})
            assert made.status_code == 201, made.text
            back_to_two(start, "preemption")
            status = api.get("/v1/miniclusters/urgent").json()["status"]
            admitted = next(c for c in status["conditions"] if c["type"] == "Admitted")
            assert admitted["status"] == "True", status
            third = api.get("/v1/cargos/elastic-2").json()["status"]
            assert third["phase"] == "Pending", third
            _check(lines("elastic-0"))
        finally:
            for name in ("urgent", "elastic"):
                api.delete(f"/v1/miniclusters/{name}")
    for engine in engines:
        engine.close()


def test_a_shrink_under_gpus_min_leaves_a_world_that_trains_on(
    server: tuple[DockerServer, Path, list[str]], torch_env: Path, tmp_path: Path
) -> None:
    """A world of two cargos that are its whole ``gpus.min`` (8 GPUs, 4 a cargo), shrunk by one
    with ``crane mc shrink``: the cargo left trains on, alone, from the checkpoint. Before, the
    reservation's cargos were torchrun's min nodes (``CRANE_NNODES=2:3``): the node left waited
    for a second one that never came, and training stopped."""
    api_server, checkpoints, urls = server
    engines = [docker.DockerClient(base_url=u) for u in urls]
    run = cli(api_server.url, ADMIN, tmp_path)

    def lines(cargo: str) -> list[tuple[int, int, float]]:
        for engine in engines:
            for c in managed_containers(engine):
                if c.labels.get(L.CARGO) == cargo and c.labels.get(L.MINICLUSTER) == "under":
                    text = c.logs().decode(errors="replace")
                    return [(int(w), int(s), float(x)) for w, s, x in LINE.findall(text)]
        return []

    def seen() -> str:
        return "; ".join(
            f"{c.name} {c.status}: {c.logs(tail=8).decode(errors='replace')!r}"
            for engine in engines
            for c in managed_containers(engine)
        )

    with api_server.client() as api:
        spec = _spec(torch_env, checkpoints, "under")
        created = api.post("/v1/miniclusters", json={"name": "under", "spec": spec})
        assert created.status_code == 201, created.text
        try:
            _until(lambda: any(w == 2 for w, _, _ in lines("under-0")), "a world of 2", seen, 400)
            shrunk = run("mc", "shrink", "under", "1", "--yes", "--grace-period", "20")
            assert shrunk.returncode == 0, shrunk.stderr
            _until(
                lambda: len([w for w, _, _ in lines("under-0") if w == 1]) >= 2,
                "the cargo left training on in a world of 1",
                seen,
                300,
            )
            worlds = [w for w, _, _ in lines("under-0")]
            assert worlds[-1] == 1 and 2 in worlds, worlds
        finally:
            api.delete("/v1/miniclusters/under")
    for engine in engines:
        engine.close()


def _check(printed: list[tuple[int, int, float]]) -> None:
    """Worlds 2, 3, 2, 3, 2 in turn; each world resumes from a checkpoint (never from step 0, at
    most one checkpoint interval back); the loss of the end is below the start's."""
    phases: list[list[tuple[int, int, float]]] = []
    for line in printed:
        if not phases or phases[-1][-1][0] != line[0]:
            phases.append([])
        phases[-1].append(line)
    if len(phases) > 1 and phases[0][0][0] == 1:
        phases = phases[1:]  # the first cargo alone, before the second joined (min one cargo)
    worlds = [p[0][0] for p in phases]
    assert worlds == [2, 3, 2, 3, 2], worlds
    for before, after in itertools.pairwise(phases):
        first, last = after[0][1], before[-1][1]
        assert first > CHECKPOINT_EVERY, (first, printed)
        assert first >= last - CHECKPOINT_EVERY, f"resumed at {first} after {last}"
    assert phases[-1][-1][2] < phases[0][0][2], f"loss did not fall: {printed}"
