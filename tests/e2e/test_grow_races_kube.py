"""Two API servers on Kubernetes (``api.replicas`` > 1, one database) growing one MiniCluster
at once: together they never grant more than ``gpus.max``. A patch that runs while a grow
raises ``spec.replicas`` does not undo the grow.

Two in-process Kubernetes backends against the test cluster, without an operator: the grown
cargos wait (``allowPending``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from crane.api.kube import KubeBackend
from crane.api.schemas import (
    CargoShape,
    GrowRequest,
    MiniCluster,
    MiniClusterCreate,
    MiniClusterPatch,
)
from crane.api.settings import ApiSettings
from crane.lifecycle import service

PRODUCT = "NVIDIA-RACELOCK"
MAX = 8
TEMPLATE = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}


def test_a_grow_on_another_api_server_waits_for_one_deciding(
    kubeconfig: Path,
    crane_crds: str,
    core_v1: client.CoreV1Api,
    nodes: Callable[..., list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deterministic: the first grow decides while the second server's grow arrives; of two
    grows of gpus.max GPUs each, one is granted and one denied (both were granted)."""
    suffix = uuid.uuid4().hex[:5]
    nodes(f"racelock-{suffix}", PRODUCT, 1, 1, MAX)
    tenant = f"racelock-{suffix}"
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path / 'crane.db'}", kubeconfig=str(kubeconfig)
    )
    servers = [KubeBackend(settings) for _ in range(2)]
    for server in servers:
        asyncio.run(server.start())
    body = MiniClusterCreate.model_validate(
        {"name": "g", "spec": {"gpuType": PRODUCT, "gpus": {"min": 0, "max": MAX}}}
    )
    try:
        asyncio.run(servers[0].create_minicluster(tenant, body))
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

        def grow(backend: KubeBackend, cargo: str) -> int:
            shape = CargoShape(name=cargo, gpus_per_replica=MAX, template=TEMPLATE)
            request = GrowRequest(cargos=[shape], allow_pending=True, timeout_seconds=1)
            return asyncio.run(backend.grow(tenant, "g", request)).added

        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(grow, servers[0], "one")
            assert deciding.wait(60), "the first grow never decided"
            later = pool.submit(grow, servers[1], "two")
            added = [first.result(60), later.result(60)]
        assert sorted(added) == [0, 1], added
    finally:
        for server in servers:
            asyncio.run(server.close())
        try:
            core_v1.delete_namespace(tenant, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise


def test_a_patch_while_a_grow_raises_replicas_keeps_the_grow(
    kubeconfig: Path,
    crane_crds: str,
    core_v1: client.CoreV1Api,
    nodes: Callable[..., list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deterministic: a patch of the priority read the spec, then a grow by count raised
    spec.replicas 1 -> 2 (answered added), then the patch wrote the spec it had read: replicas
    went back to 1 and the granted cargo was never kept."""
    suffix = uuid.uuid4().hex[:5]
    nodes(f"racepatch-{suffix}", PRODUCT, 1, 1, MAX)
    tenant = f"racepatch-{suffix}"
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path / 'crane.db'}", kubeconfig=str(kubeconfig)
    )
    backend = KubeBackend(settings)
    asyncio.run(backend.start())
    template = {"gpusPerReplica": 1, "template": TEMPLATE}
    body = MiniClusterCreate.model_validate(
        {
            "name": "g",
            "spec": {
                "gpuType": PRODUCT,
                "gpus": {"min": 0, "max": MAX},
                "template": template,
                "replicas": 1,
            },
        }
    )
    try:
        asyncio.run(backend.create_minicluster(tenant, body))
        read, grown = asyncio.Event(), asyncio.Event()
        get = KubeBackend.get_minicluster

        async def paused(self: KubeBackend, tenant: str, name: str) -> MiniCluster:
            current = await get(self, tenant, name)
            if not read.is_set():  # the patch's read of the spec
                read.set()
                with contextlib.suppress(TimeoutError):  # unless the grow waits for the patch
                    await asyncio.wait_for(grown.wait(), 5)
            return current

        monkeypatch.setattr(KubeBackend, "get_minicluster", paused)

        async def both() -> int:
            patch = asyncio.create_task(
                backend.patch_minicluster(tenant, "g", MiniClusterPatch(priority=5))
            )
            await asyncio.wait_for(read.wait(), 60)
            request = GrowRequest(count=1, allow_pending=True, timeout_seconds=1)
            added = (await backend.grow(tenant, "g", request)).added
            grown.set()
            await patch
            return added

        added = asyncio.run(both())
        assert added == 1
        spec = asyncio.run(backend.get_minicluster(tenant, "g")).spec
        assert (spec.priority, spec.replicas) == (5, 2)
    finally:
        asyncio.run(backend.close())
        try:
            core_v1.delete_namespace(tenant, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise
