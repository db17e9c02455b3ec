"""The Docker backend end to end on three real dockerd: SQL rows in, containers out."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from sqlmodel import Session

from crane.api.db import make_engine, migrate
from crane.api.errors import Invalid
from crane.api.schemas import CargoCreate, MiniClusterCreate
from crane.api.settings import ApiSettings, BackendKind
from crane.docker import labels as L
from crane.docker.api_backend import DockerBackend
from crane.docker.containers import managed_containers, managed_networks
from crane.docker.hosts import HostSpec
from crane.docker.reconciler import Reconciler
from crane.docker.store import HostRow
from crane.model import CargoPhase, CargoSpec, MiniClusterSpec

IMAGE = "crane-test:busybox"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _backend(url: str) -> DockerBackend:
    db = make_engine(url)
    return DockerBackend(
        ApiSettings(database_url=url, backend=BackendKind.DOCKER),
        Reconciler(db, interval=0.3),
    )


@pytest.fixture
def db_url(tmp_path: Path, host_specs: list[HostSpec]) -> str:
    url = f"sqlite:///{tmp_path / 'crane.db'}"
    db = make_engine(url)
    migrate(db)
    with Session(db) as s:
        for spec in host_specs:
            s.add(HostRow(name=spec.name, spec=spec.model_dump_json()))
        s.commit()
    db.dispose()
    return url


@pytest.fixture
def backend(db_url: str, clients: dict[str, docker.DockerClient]) -> Iterator[DockerBackend]:
    b = _backend(db_url)
    yield b
    b.reconciler.stop()


def _mc(backend: DockerBackend, name: str, gpu_type: str, gpus: int, **topology: str) -> None:
    spec = MiniClusterSpec(
        gpu_type=gpu_type, gpus={"min": gpus, "max": gpus}, topology=topology or {}
    )
    run(backend.create_minicluster("t1", MiniClusterCreate(name=name, spec=spec)))


def _cargo(
    backend: DockerBackend,
    mc: str,
    name: str,
    replicas: int,
    gpus: int,
    command: str = "sleep 300",
    **extra: Any,
) -> Any:
    main = {"name": "main", "image": IMAGE, "command": ["sh", "-c", command]}
    template = {"spec": {"containers": [main]}}
    spec = CargoSpec(
        mini_cluster=mc, replicas=replicas, gpus_per_replica=gpus, template=template, **extra
    )
    return run(backend.create_cargo("t1", CargoCreate(name=name, spec=spec)))


def _everywhere(clients: dict[str, docker.DockerClient]) -> dict[str, list[Any]]:
    return {name: managed_containers(c) for name, c in clients.items()}


def _until(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"condition not met within {seconds}s")


def test_gangs_land_on_hosts_of_their_gpu_type_and_rack(
    backend: DockerBackend, clients: dict[str, docker.DockerClient]
) -> None:
    _mc(backend, "a100", "A100", 4)
    _mc(backend, "h100", "H100", 8, level="rack", mode="Required")
    _cargo(backend, "a100", "a100-0", replicas=2, gpus=2, topology={"level": "rack"})
    _cargo(backend, "h100", "h100-0", replicas=2, gpus=4)
    backend.reconciler.reconcile_once()
    a = run(backend.get_cargo("t1", "a100-0"))
    h = run(backend.get_cargo("t1", "h100-0"))
    assert {p.node for p in a.status.placement} == {"h2"}
    h_nodes = {p.node for p in h.status.placement}
    assert len(h_nodes) == 1 and h_nodes <= {"h0", "h1"}
    on = _everywhere(clients)
    assert sorted(c.name for c in on["h2"]) == ["crane.t1.a100-0-0", "crane.t1.a100-0-1"]
    (h_host,) = h_nodes
    gpu_sets = sorted(c.labels[L.GPU_IDS] for c in on[h_host])
    assert gpu_sets == ["0,1,2,3", "4,5,6,7"]


def test_a_gang_that_does_not_fit_starts_no_container(
    backend: DockerBackend, clients: dict[str, docker.DockerClient]
) -> None:
    spec = MiniClusterSpec(gpu_type="H100", gpus={"min": 0, "max": 16})
    run(backend.create_minicluster("t1", MiniClusterCreate(name="big", spec=spec)))
    with pytest.raises(Invalid, match="the largest rack has 8 H100 GPUs in all"):
        _cargo(
            backend,
            "big",
            "big-0",
            replicas=2,
            gpus=8,
            topology={"level": "rack", "mode": "Required"},
        )
    _cargo(backend, "big", "fill", replicas=2, gpus=5)  # leaves 3 free on each H100 host
    backend.reconciler.reconcile_once()
    _cargo(backend, "big", "big-1", replicas=1, gpus=4)
    backend.reconciler.reconcile_once()
    cargo = run(backend.get_cargo("t1", "big-1"))
    assert cargo.status.phase is CargoPhase.PENDING
    assert "needs 4 H100" in cargo.status.message
    names = [c.name for cs in _everywhere(clients).values() for c in cs]
    assert not [n for n in names if "big-1" in n]


def test_deleting_a_minicluster_removes_its_containers_and_networks(
    backend: DockerBackend, clients: dict[str, docker.DockerClient]
) -> None:
    _mc(backend, "gone", "H100", 16)
    _cargo(backend, "gone", "gone-0", replicas=2, gpus=8)
    backend.reconciler.reconcile_once()
    assert sum(len(cs) for cs in _everywhere(clients).values()) == 2
    assert any(managed_networks(c) for c in clients.values())
    with Session(backend.db) as s:
        from crane.docker import store

        row = store.cargo(s, "t1", "gone-0")
        assert row is not None
        row.grace_seconds = 0
        s.add(row)
        s.commit()
    run(backend.delete_minicluster("t1", "gone"))

    def gone() -> bool:
        backend.reconciler.reconcile_once()
        containers = any(_everywhere(clients).values())
        return not containers and not any(managed_networks(c) for c in clients.values())

    _until(gone, 10)
    assert run(backend.list_miniclusters("t1")) == []


def _grace_zero(backend: DockerBackend, name: str) -> None:
    from crane.docker import store

    with Session(backend.db) as s:
        row = store.cargo(s, "t1", name)
        assert row is not None
        row.grace_seconds = 0
        s.add(row)
        s.commit()


@pytest.mark.parametrize(("policy", "phase"), [("OnFailure", "Running"), ("Never", "Failed")])
def test_a_container_killed_from_outside_is_handled_per_restart_policy(
    backend: DockerBackend, clients: dict[str, docker.DockerClient], policy: str, phase: str
) -> None:
    _mc(backend, "k", "A100", 4)
    _cargo(backend, "k", "k-0", replicas=2, gpus=1, restart_policy=policy)
    _grace_zero(backend, "k-0")
    backend.reconciler.reconcile_once()
    victim = clients["h2"].containers.get("crane.t1.k-0-1")
    backend.reconciler.start()
    victim.kill()

    def handled() -> bool:
        cargo = run(backend.get_cargo("t1", "k-0"))
        return cargo.status.phase.value == phase and (
            policy == "Never" or cargo.status.restarts == 1
        )

    _until(handled)
    cargo = run(backend.get_cargo("t1", "k-0"))
    if policy == "Never":
        assert "replica 1 exited with code 137" in cargo.status.message
    else:  # placed again, the restart message cleared (test_lifecycle_parity.py reads it)
        assert cargo.status.message == ""
    running = [c for c in managed_containers(clients["h2"]) if c.status == "running"]
    if policy == "OnFailure":
        _until(
            lambda: (
                len([c for c in managed_containers(clients["h2"]) if c.status == "running"]) == 2
            )
        )
        assert clients["h2"].containers.get("crane.t1.k-0-1").id != victim.id
    else:
        assert running == []


def test_a_restarted_reconciler_adopts_containers_and_starts_nothing_twice(
    db_url: str, clients: dict[str, docker.DockerClient]
) -> None:
    first = _backend(db_url)
    spec = MiniClusterSpec(gpu_type="H100", gpus={"min": 16, "max": 24})
    run(first.create_minicluster("t1", MiniClusterCreate(name="keep", spec=spec)))
    _cargo(first, "keep", "keep-0", replicas=2, gpus=8)
    first.reconciler.reconcile_once()
    before = {c.name: c.id for cs in _everywhere(clients).values() for c in cs}
    placement = run(first.get_cargo("t1", "keep-0")).status.placement
    first.db.dispose()

    second = _backend(db_url)
    for _ in range(3):
        second.reconciler.reconcile_once()
    after = {c.name: c.id for cs in _everywhere(clients).values() for c in cs}
    assert after == before and len(after) == 2
    cargo = run(second.get_cargo("t1", "keep-0"))
    assert cargo.status.phase is CargoPhase.RUNNING
    assert cargo.status.placement == placement
    _cargo(second, "keep", "keep-1", replicas=1, gpus=8)
    second.reconciler.reconcile_once()
    assert run(second.get_cargo("t1", "keep-1")).status.phase is CargoPhase.PENDING


@pytest.mark.parametrize(
    ("container", "said"),
    [
        ({"command": ["/no-such-binary"]}, "no such file or directory"),
        ({"command": ["sh", "-c", "true"], "workingDir": "relative/dir"}, "absolute path"),
    ],
)
def test_a_replica_dockerd_refuses_fails_its_cargo_and_frees_its_gpus(
    backend: DockerBackend,
    clients: dict[str, docker.DockerClient],
    container: dict[str, Any],
    said: str,
) -> None:
    """dockerd refused the container for good (400) and the cargo stayed Placed, holding its
    GPUs and asking again every pass; as on Kubernetes it fails with dockerd's own words."""
    _mc(backend, "refused", "H100", 8)
    main = {"name": "main", "image": IMAGE, **container}
    spec = CargoSpec(
        mini_cluster="refused",
        replicas=1,
        gpus_per_replica=8,
        template={"spec": {"containers": [main]}},
    )
    run(backend.create_cargo("t1", CargoCreate(name="bad", spec=spec)))
    _until(
        lambda: (
            backend.reconciler.reconcile_once() is None
            and run(backend.get_cargo("t1", "bad")).status.phase is CargoPhase.FAILED
        )
    )
    bad = run(backend.get_cargo("t1", "bad"))
    assert said in bad.status.message and bad.status.message.startswith("InvalidSpec")
    reasons = {c.type: c.reason for c in bad.status.conditions}
    assert reasons["Failed"] == "InvalidSpec" and reasons["Ready"] == "InvalidSpec"
    _cargo(backend, "refused", "good", replicas=1, gpus=8)
    _until(
        lambda: (
            backend.reconciler.reconcile_once() is None
            and run(backend.get_cargo("t1", "good")).status.phase is CargoPhase.RUNNING
        )
    )
    _until(lambda: not [c for cs in _everywhere(clients).values() for c in cs if "bad" in c.name])


@pytest.mark.parametrize("other_pass_is_slow", [False, True], ids=["prompt", "slow"])
def test_a_cargo_a_grow_denies_never_runs_though_another_server_places_it_meanwhile(
    db_url: str,
    backend: DockerBackend,
    clients: dict[str, docker.DockerClient],
    monkeypatch: pytest.MonkeyPatch,
    other_pass_is_slow: bool,
) -> None:
    """Two servers on one database: a grow without allowPending on one denies (and deletes) a
    cargo its own pass left Pending, while the other server's pass, run in that moment, places
    it. The cargo a user was told is denied must not run, no container may hold GPUs that no
    cargo row records, and no GPU is held twice. Slow: the other server's pass holds the pass
    lock past the grow's wait (an image pull), then places the cargo: the grow grants it."""
    from types import SimpleNamespace

    from crane.api.schemas import CargoShape, GrowRequest
    from crane.docker import api_backend
    from crane.docker import store as real_store

    other = _backend(db_url)  # a second server on the same database
    holding, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_pass_lock, args=(other, holding, release))
    try:
        spec = MiniClusterSpec(gpu_type="A100", gpus={"min": 0, "max": 8})
        run(backend.create_minicluster("t1", MiniClusterCreate(name="m", spec=spec)))
        _cargo(backend, "m", "fill", replicas=1, gpus=4, command="sleep 2")
        assert run(backend.get_cargo("t1", "fill")).status.phase in (
            CargoPhase.PLACED,
            CargoPhase.RUNNING,
        )

        def fill_exited() -> bool:
            found = [c for c in managed_containers(clients["h2"]) if "fill" in c.name]
            return all(c.status == "exited" for c in found)

        raced = threading.Event()

        def cargo(s: Session, tenant: str, name: str) -> Any:
            """The grow's read of its new cargo; then, before it acts on what it read, the
            other server's pass runs (the A100 host is free by then) if it may."""
            row = real_store.cargo(s, tenant, name)
            if name == "late" and not raced.is_set():
                raced.set()
                release.set()
                if other_pass_is_slow:
                    holder.join()
                _until(fill_exited)
                worker = threading.Thread(target=other.reconciler.reconcile_once)
                worker.start()
                worker.join()
            return row

        monkeypatch.setattr(
            api_backend, "store", SimpleNamespace(**{**vars(real_store), "cargo": cargo})
        )
        if other_pass_is_slow:
            monkeypatch.setattr(api_backend, "GROW_PASS_WAIT_SECONDS", 0.5)
            holder.start()
            assert holding.wait(30)
        main = {"name": "main", "image": IMAGE, "command": ["sleep", "300"]}
        shape = CargoShape(
            name="late", gpus_per_replica=4, template={"spec": {"containers": [main]}}
        )
        result = run(backend.grow("t1", "m", GrowRequest(cargos=[shape])))
        assert raced.is_set()
        monkeypatch.setattr(api_backend, "store", real_store)
        (grant,) = result.cargos
        late = [c for c in managed_containers(clients["h2"]) if "late" in c.name]
        _cargo(backend, "m", "next", replicas=1, gpus=4)  # wants the GPUs 'late' would hold
        held: dict[str, list[str]] = {}
        for c in managed_containers(clients["h2"]):
            if c.status == "running":
                for gpu in filter(None, c.labels.get(L.GPU_IDS, "").split(",")):
                    held.setdefault(gpu, []).append(c.name)
        assert not {g: n for g, n in held.items() if len(n) > 1}, f"GPUs held twice: {held}"
        if grant.added or other_pass_is_slow:  # the other pass won: granted as it placed it
            assert grant.added and grant.phase in ("Placed", "Running"), grant
            assert run(backend.get_cargo("t1", "late")).status.placement
        else:  # denied: the cargo is gone and never ran
            assert late == [], f"{[c.name for c in late]} run though the grow denied 'late'"
        for reconciler in (backend.reconciler, other.reconciler):
            reconciler.reconcile_once()
        rows = {c.name for c in run(backend.list_cargos("t1"))}
        live = [c for c in managed_containers(clients["h2"]) if c.status == "running"]
        strays = [c.name for c in live if c.labels.get(L.CARGO) not in rows]
        assert strays == [], f"containers outlive their rows: {strays}"
    finally:
        release.set()
        if holder.is_alive():
            holder.join()
        other.reconciler.stop()


def _hold_pass_lock(
    server: DockerBackend, holding: threading.Event, release: threading.Event
) -> None:
    """Hold the database's pass lock, as a server's long pass does, until ``release``."""
    with server.reconciler.pass_lock.held(wait=30) as mine:
        if mine:
            holding.set()
            release.wait(60)
