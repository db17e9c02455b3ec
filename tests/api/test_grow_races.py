"""Grows of one MiniCluster at once, on two Docker-mode servers of one database (a second
``crane serve`` for availability): together they never grant more than ``gpus.max``, never
the same cargo name twice, and never answer 500.

Servers without hosts: the grown cargos wait (``allowPending``), which needs no Docker daemon.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from crane.api.db import make_engine, migrate
from crane.api.schemas import CargoShape, GrowRequest, MiniClusterCreate, ShrinkRequest
from crane.api.settings import ApiSettings, BackendKind
from crane.docker import store
from crane.docker.api_backend import DockerBackend
from crane.docker.pass_lock import PassLock
from crane.docker.reconciler import Reconciler
from crane.lifecycle import service
from crane.model import CargoPhase
from tests.dockerd import DockerServer

MAX = 8
TEMPLATE = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}
MC = {
    "name": "g",
    "spec": {
        "gpuType": "H100",
        "gpus": {"min": 0, "max": MAX},
        "template": {"gpusPerReplica": 1, "template": TEMPLATE},
    },
}
GROWS = 24


def _grow(server: DockerServer, body: dict[str, Any]) -> httpx.Response:
    with server.client() as api:
        return api.post("/v1/miniclusters/g:grow", json={**body, "allowPending": True})


def test_grows_on_two_servers_at_once_stay_within_gpus_max(
    two_servers: list[DockerServer],
) -> None:
    """24 one-GPU grows, by template count and by shape, half on each server: 8 granted at
    most, each cargo granted once, and the MiniCluster lists no more than gpus.max."""
    with two_servers[0].client() as api:
        assert api.post("/v1/miniclusters", json=MC).status_code == 201
    bodies = [
        {"count": 1} if i % 2 else {"cargos": [{"gpusPerReplica": 1, "template": TEMPLATE}]}
        for i in range(GROWS)
    ]
    with ThreadPoolExecutor(GROWS) as pool:
        answers = list(pool.map(lambda i: _grow(two_servers[i % 4 // 2], bodies[i]), range(GROWS)))
    assert [a.status_code for a in answers] == [200] * GROWS, [a.text for a in answers]
    granted = Counter(
        cargo["name"] for a in answers for cargo in a.json()["cargos"] if cargo["added"]
    )
    assert sum(granted.values()) == MAX, granted
    assert max(granted.values()) == 1, granted
    for server in two_servers:
        with server.client() as api:
            listed = api.get("/v1/cargos", params={"miniCluster": "g"}).json()["items"]
            assert sorted(c["name"] for c in listed) == sorted(granted)
            assert sum(c["spec"]["gpusPerReplica"] for c in listed) <= MAX


def _two_grows_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grows: list[tuple[str, str]]
) -> list[int | str]:
    """Two in-process Docker backends on one SQLite database (two servers) grow MiniClusters
    ``g`` and ``h``: ``grows`` are (MiniCluster, cargo name), one per backend, each a cargo of
    gpus.max GPUs. The first decides while the second arrives: the second's decision comes
    in at once unless it waits for the first. The cargos added by each, or the error raised."""
    url = f"sqlite:///{tmp_path / 'crane.db'}"
    settings = ApiSettings(database_url=url, backend=BackendKind.DOCKER)
    migrate(make_engine(url))
    servers = [DockerBackend(settings, Reconciler(make_engine(url))) for _ in range(2)]
    for name in ("g", "h"):
        body = MiniClusterCreate.model_validate({**MC, "name": name})
        asyncio.run(servers[0].create_minicluster("t", body))
    deciding, second = threading.Event(), threading.Event()
    plan = service.plan_grow

    def paused(*args: Any, **kwargs: Any) -> service.GrowPlan:
        if deciding.is_set():
            second.set()
        else:
            deciding.set()
            second.wait(5)  # the second grow comes in now, unless it waits for this one
        return plan(*args, **kwargs)

    monkeypatch.setattr(service, "plan_grow", paused)

    def grow(backend: DockerBackend, minicluster: str, cargo: str) -> int | str:
        shape = CargoShape(name=cargo, gpus_per_replica=MAX, template=TEMPLATE)
        request = GrowRequest(cargos=[shape], allow_pending=True)
        try:
            return asyncio.run(backend.grow("t", minicluster, request)).added
        except Exception as err:
            return type(err).__name__

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(grow, servers[0], *grows[0])
        assert deciding.wait(30), "the first grow never decided"
        later = pool.submit(grow, servers[1], *grows[1])
        return [first.result(60), later.result(60)]


def test_a_grow_on_another_server_waits_for_one_deciding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: of two grows of gpus.max GPUs each, on two servers at once, one is
    granted and one denied (both were granted)."""
    added = _two_grows_at_once(tmp_path, monkeypatch, [("g", "one"), ("g", "two")])
    assert sorted(added, key=str) == [0, 1], added


def test_one_cargo_name_grown_on_two_servers_at_once_is_409_not_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cargo names are the tenant's: two servers growing two MiniClusters by one cargo name
    at once grant it once and answer the other 409 (it was a 500, an IntegrityError)."""
    added = _two_grows_at_once(tmp_path, monkeypatch, [("g", "same"), ("h", "same")])
    assert sorted(added, key=str) == [1, "Conflict"], added


def _one_server_with_g(tmp_path: Path) -> tuple[DockerBackend, str]:
    """A Docker backend in this process (one server, no hosts) on a new SQLite database with
    MiniCluster ``g``, and the database's URL."""
    url = f"sqlite:///{tmp_path / 'crane.db'}"
    migrate(make_engine(url))
    backend = DockerBackend(
        ApiSettings(database_url=url, backend=BackendKind.DOCKER), Reconciler(make_engine(url))
    )
    asyncio.run(backend.create_minicluster("t", MiniClusterCreate.model_validate(MC)))
    return backend, url


@contextmanager
def _another_servers_pass(url: str) -> Iterator[None]:
    """Hold the database's pass lock, as another server's pass does: passes here are skipped."""
    with PassLock(make_engine(url)).held() as held:
        assert held
        yield


def test_a_waiting_grow_never_calls_a_template_cargo_another_servers_pass_makes_deleted(
    tmp_path: Path,
) -> None:
    """A ``grow --wait`` by template while another server's pass holds the database (so the
    grow's own pass is skipped and the cargo is made by the next one): the answer said at once
    that the cargo was 'Deleted ... deleted while the grow waited', though it is made a moment
    later and runs. It waits for it as Pending (in Kubernetes mode, for an operator restarting)."""
    backend, url = _one_server_with_g(tmp_path)
    request = GrowRequest(count=1, allow_pending=True, wait=True, timeout_seconds=1)
    with _another_servers_pass(url):
        answer = asyncio.run(backend.grow("t", "g", request))
    backend.reconciler.reconcile_once()  # the next pass, on either server
    made = asyncio.run(backend.get_cargo("t", "g-0"))
    said = [(c.name, c.phase, c.reason) for c in answer.cargos]
    assert said == [("g-0", "Pending", "")], f"the grow answered {said}; {made.name} exists"
    assert answer.timed_out


def test_a_template_cargo_a_grow_grants_is_listed_at_once_while_another_server_passes(
    tmp_path: Path,
) -> None:
    """A grow by template count answered ``added: g-0`` while another server's pass held the
    database (so the grow's own pass was skipped); ``crane cargo list`` right after did not
    show ``g-0`` until some later pass made it (seen as a granted cargo missing from the list
    after grows on two servers at once). The grow stores the cargos it grants."""
    backend, url = _one_server_with_g(tmp_path)
    with _another_servers_pass(url):
        answer = asyncio.run(backend.grow("t", "g", GrowRequest(count=2, allow_pending=True)))
        listed = [c.name for c in asyncio.run(backend.list_cargos("t", "g"))]
    assert [c.name for c in answer.cargos if c.added] == ["g-0", "g-1"]
    assert listed == ["g-0", "g-1"]
    backend.reconciler.reconcile_once()  # the next pass keeps them, and makes no other
    assert [c.name for c in asyncio.run(backend.list_cargos("t", "g"))] == ["g-0", "g-1"]


@pytest.mark.parametrize("wait", [False, True])
def test_a_grow_never_answers_with_the_phase_of_a_cargo_being_deleted_under_that_name(
    tmp_path: Path, wait: bool
) -> None:
    """Shrink ``g`` by one while ``g-0`` runs, then grow by one before its container has
    stopped (its grace period): the grow answered ``g-0 Running``, the old cargo's phase
    (with ``--wait``: ``Deleted``, at once), though the new ``g-0`` is made once the old one
    is gone. It says Pending (with ``--wait``: until its timeout)."""
    backend, url = _one_server_with_g(tmp_path)
    asyncio.run(backend.grow("t", "g", GrowRequest(count=1, allow_pending=True)))
    with Session(backend.db) as s:  # as a pass leaves a cargo whose container started
        row = store.cargo(s, "t", "g-0")
        assert row is not None
        row.phase = CargoPhase.RUNNING.value
        s.add(row)
        s.commit()
    asyncio.run(backend.shrink("t", "g", ShrinkRequest(count=1)))
    with Session(backend.db) as s:
        row = store.cargo(s, "t", "g-0")
        assert row is not None and row.deleting, "the shrink marks g-0 deleting"
    with _another_servers_pass(url):
        request = GrowRequest(count=1, allow_pending=True, wait=wait, timeout_seconds=1)
        answer = asyncio.run(backend.grow("t", "g", request))
    said = [(c.name, c.phase) for c in answer.cargos if c.added]
    assert said == [("g-0", "Pending")], said
    assert answer.timed_out is wait
