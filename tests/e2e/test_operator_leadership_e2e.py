"""Two operator processes and one Lease on a real control plane: the leader is paused with
SIGSTOP past its lease, a standby leads meanwhile and is killed, then the first one resumes. What
the standby did must stand: the resumed operator neither moves nor kills the cargo the standby
placed, and gives no GPU twice.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.operator_support import (
    GROUP,
    VERSION,
    OperatorProcess,
    apply,
    assert_no_gpu_double_booked,
    cargo_yaml,
    crane_pods,
    delete_all,
    get,
    mc_yaml,
    running,
    wait,
)
from tests.support import LEASE_NAMESPACE

pytestmark = pytest.mark.e2e


def lease_lapsed(kube_api: client.ApiClient) -> bool:
    lease = client.CoordinationV1Api(kube_api).read_namespaced_lease(
        "crane-operator", LEASE_NAMESPACE
    )
    spec = lease.spec
    renewed = spec.renew_time or spec.acquire_time
    return bool(
        renewed is None
        or datetime.now(UTC) - renewed > timedelta(seconds=spec.lease_duration_seconds + 1)
    )


def lease_holder(kube_api: client.ApiClient) -> str | None:
    lease = client.CoordinationV1Api(kube_api).read_namespaced_lease(
        "crane-operator", LEASE_NAMESPACE
    )
    return lease.spec.holder_identity


def pod_of(core: client.CoreV1Api, ns: str, name: str) -> client.V1Pod | None:
    return next((p for p in crane_pods(core, ns) if p.metadata.name == name), None)


def test_an_operator_resumed_after_another_led_never_undoes_its_placements(
    operator: OperatorProcess,
    kube_cluster: Any,
    kube_api: client.ApiClient,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
    tmp_path: Path,
) -> None:
    nodes("leadp100", "NVIDIA-P100", racks=1, per_rack=1)
    apply(kube_cluster, namespace, mc_yaml("mc", "P100", 4, 8))
    apply(kube_cluster, namespace, cargo_yaml("a", "mc", 1, 4))
    wait(lambda: running(crane_pods(core_v1, namespace), 1), "a Running", operator)
    assert operator.proc is not None
    first = lease_holder(kube_api)
    standby = OperatorProcess(kube_cluster.env, tmp_path / "standby.log")
    os.kill(operator.proc.pid, signal.SIGSTOP)
    try:
        standby.start()
        wait(lambda: lease_holder(kube_api) not in (None, first), "the standby leads", standby)
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "cargos", "a")
        wait(lambda: get(custom, "cargos", namespace, "a") is None, "a gone", standby)
        wait(lambda: not crane_pods(core_v1, namespace), "a's pod gone", standby)
        apply(kube_cluster, namespace, cargo_yaml("b", "mc", 1, 4))
        wait(lambda: running(crane_pods(core_v1, namespace), 1), "b Running", standby)
        standby.kill()
        wait(lambda: lease_lapsed(kube_api), "the standby's lease to lapse", standby)
    finally:
        standby.kill()
        os.kill(operator.proc.pid, signal.SIGCONT)
    b0 = pod_of(core_v1, namespace, "b-0")
    assert b0 is not None
    apply(kube_cluster, namespace, cargo_yaml("c", "mc", 1, 4))
    wait(
        lambda: running(crane_pods(core_v1, namespace), 2),
        "c placed by the resumed operator beside b",
        operator,
    )
    now = pod_of(core_v1, namespace, "b-0")
    assert now is not None and now.metadata.uid == b0.metadata.uid, (
        "b's pod, placed by the other leader, was deleted by the resumed one"
    )
    placement = (get(custom, "cargos", namespace, "b") or {})["status"]["placement"]
    ids = b0.metadata.annotations["crane.io/gpu-ids"]
    assert [",".join(map(str, r["gpuIds"])) for r in placement] == [ids], (
        "b's status says the GPUs its pod holds"
    )
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, namespace, operator)
