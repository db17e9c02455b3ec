"""The Kubernetes backend's logs ``since`` and exec checks against a scripted CoreV1Api (the
e2e suite runs on kwok nodes, which serve no logs and run no commands)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from crane.api.errors import ExecUnsupported, Invalid, NotFound
from crane.api.kube import KubeBackend
from crane.api.schemas import CargoCreate, ExecRequest, MiniClusterPatch
from crane.api.settings import ApiSettings
from crane.kube.names import TEMPLATE_INDEX_LABEL


class _Log(list[bytes]):
    def stream(self, decode_content: bool = True) -> Iterator[bytes]:
        """urllib3's response body in chunks: here, the listed ones."""
        return iter(self)

    def release_conn(self) -> None:
        """What urllib3's response offers; nothing to release here."""


class _Core:
    """The CoreV1Api calls the backend makes, answering from a pod and its node."""

    def __init__(self, phase: str = "Running", kwok: bool = True) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.phase, self.kwok = phase, kwok

    def read_namespaced_pod_log(self, *args: Any, **kwargs: Any) -> _Log:
        self.calls.append(("log", args, kwargs))
        return _Log([b"recent\n"])

    def read_namespaced_pod(self, name: str, namespace: str, **_: Any) -> Any:
        self.calls.append(("pod", (name, namespace), {}))
        return SimpleNamespace(
            status=SimpleNamespace(phase=self.phase), spec=SimpleNamespace(node_name="n0")
        )

    def read_node(self, name: str, **_: Any) -> Any:
        annotations = {"kwok.x-k8s.io/node": "fake"} if self.kwok else {}
        return SimpleNamespace(metadata=SimpleNamespace(annotations=annotations))


def _backend(monkeypatch: pytest.MonkeyPatch, core: _Core) -> KubeBackend:
    backend = KubeBackend(ApiSettings(backend="kube"))
    backend._api = object()  # type: ignore[assignment]  # _call only checks it is set
    monkeypatch.setattr(KubeBackend, "_core", property(lambda _self: core))
    return backend


def test_logs_pass_since_seconds_and_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    core = _Core()
    backend = _backend(monkeypatch, core)

    async def read() -> list[str]:
        return [line async for line in backend.cargo_logs("t", "job", 1, False, 5, 600)]

    assert asyncio.run(read()) == ["recent\n"]
    ((_, args, kwargs),) = core.calls
    assert args == ("job-1", "t")
    assert kwargs["since_seconds"] == 600 and kwargs["tail_lines"] == 5


@pytest.mark.parametrize(
    ("core", "said"),
    [(_Core(kwok=True), "simulated by kwok"), (_Core(phase="Pending"), "is Pending")],
)
def test_exec_where_no_command_can_run_is_exec_unsupported(
    monkeypatch: pytest.MonkeyPatch, core: _Core, said: str
) -> None:
    backend = _backend(monkeypatch, core)
    with pytest.raises(ExecUnsupported, match=said) as raised:
        asyncio.run(backend.exec_replica("t", "job", ExecRequest(command=["true"])))
    assert raised.value.status == 409 and raised.value.problem == "exec-unsupported"


def test_exec_of_a_missing_pod_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    core = _Core()

    def missing(name: str, namespace: str, **_: Any) -> Any:
        raise ApiException(status=404, reason="Not Found")

    core.read_namespaced_pod = missing  # type: ignore[method-assign]
    backend = _backend(monkeypatch, core)
    with pytest.raises(NotFound):
        asyncio.run(backend.exec_replica("t", "job", ExecRequest(replica=3, command=["true"])))


def test_a_minicluster_being_deleted_keeps_its_namespace_a_tenants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``has_miniclusters`` counts a MiniCluster whose deletion waits on its finalizer (left
    out of the list users see), so its tenant cannot be deleted under it; a namespace the API
    server does not know has none."""
    answers: list[Any] = [
        {"items": [{"metadata": {"name": "old", "deletionTimestamp": "2026-12-02T00:00:00Z"}}]},
        {"items": []},
        ApiException(status=404, reason="Not Found"),
    ]

    def listed(*_: Any, **__: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    backend = _backend(monkeypatch, _Core())
    custom = SimpleNamespace(list_namespaced_custom_object=listed)
    monkeypatch.setattr(KubeBackend, "_custom", property(lambda _self: custom))
    assert [asyncio.run(backend.has_miniclusters("t")) for _ in range(3)] == [True, False, False]


def test_template_cargos_the_operator_has_not_made_yet_count_against_gpus_max(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """spec.replicas 8 of a 1-GPU template under gpus.max 8, one template cargo made so far:
    a 6-GPU cargo is refused (it was created: 7 asked for by the cargos listed), and so is
    raising replicas past gpus.max beside it (it was merge-patched in)."""
    template = {"replicas": 1, "gpusPerReplica": 1, "template": {}}
    mc: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "t"},
        "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 8}, "template": template},
    }
    made = {
        "metadata": {"name": "p-0", "namespace": "t", "labels": {TEMPLATE_INDEX_LABEL: "0"}},
        "spec": {"miniCluster": "p", "gpusPerReplica": 1},
    }
    patched: list[Any] = []
    custom = SimpleNamespace(
        get_namespaced_custom_object=lambda *_, **__: mc,
        list_namespaced_custom_object=lambda *_, **__: {"items": [made]},
        patch_namespaced_custom_object=lambda *args, **__: patched.append(args) or mc,
    )
    backend = KubeBackend(ApiSettings(backend="kube", database_url=f"sqlite:///{tmp_path}/l.db"))
    backend._api = object()  # type: ignore[assignment]  # _call only checks it is set
    monkeypatch.setattr(KubeBackend, "_custom", property(lambda _self: custom))

    mc["spec"]["replicas"] = 8
    big = CargoCreate.model_validate({"spec": {"miniCluster": "p", "gpusPerReplica": 6}})
    with pytest.raises(Invalid, match=r"14 GPUs, over gpus\.max"):
        asyncio.run(backend.create_cargo("t", big))
    mc["spec"]["replicas"] = 1
    made["spec"]["gpusPerReplica"] = 6  # as if made of a larger template before
    with pytest.raises(Invalid, match="replicas 4 would take MiniCluster p to 9 GPUs"):
        asyncio.run(backend.patch_minicluster("t", "p", MiniClusterPatch(replicas=4)))
    assert patched == []


@pytest.mark.parametrize(
    ("finalizers", "refused"),
    [(["crane.io/finalizer", "foregroundDeletion"], True), (["foregroundDeletion"], False)],
)
def test_a_cargo_being_deleted_counts_against_gpus_max_until_its_gpus_are_released(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, finalizers: list[str], refused: bool
) -> None:
    """A shrunk 4-GPU cargo of a MiniCluster with gpus.max 6 lingers while its pods stop (Crane's
    finalizer on it), then for the garbage collector's foreground deletion once the operator
    released its GPUs and took its finalizer off (the MiniCluster's inUseGpus then no longer
    counts it): a 4-GPU cargo is refused only in the first case. The grow after a shrink was
    denied "over gpus.max 6 (6 in use)" while inUseGpus read 4 (the parity suite's free-cargo
    test, on a loaded machine)."""
    mc: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "t"},
        "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 6}},
    }
    created: list[Any] = []
    going = {
        "metadata": {
            "name": "p-b",
            "namespace": "t",
            "deletionTimestamp": "2026-12-03T00:00:00Z",
            "finalizers": finalizers,
        },
        "spec": {"miniCluster": "p", "gpusPerReplica": 4},
        "status": {
            "phase": "Running",
            "placement": [{"replica": 0, "node": "n0", "gpuIds": [0, 1, 2, 3]}],
        },
    }
    custom = SimpleNamespace(
        get_namespaced_custom_object=lambda *_, **__: mc,
        list_namespaced_custom_object=lambda *_, **__: {"items": [going]},
        create_namespaced_custom_object=lambda *args, **__: created.append(args),
    )
    backend = KubeBackend(ApiSettings(backend="kube", database_url=f"sqlite:///{tmp_path}/l.db"))
    backend._api = object()  # type: ignore[assignment]  # _call only checks it is set
    monkeypatch.setattr(KubeBackend, "_custom", property(lambda _self: custom))
    new = CargoCreate.model_validate({"spec": {"miniCluster": "p", "gpusPerReplica": 4}})
    if refused:
        with pytest.raises(Invalid, match=r"to 8 GPUs, over gpus\.max \(6"):
            asyncio.run(backend.create_cargo("t", new))
        assert created == []
        return

    async def past_the_check(_self: KubeBackend) -> None:
        raise LookupError("past gpus.max: the placement check's snapshot is asked for")

    monkeypatch.setattr(KubeBackend, "_snapshot", past_the_check)
    with pytest.raises(LookupError, match=r"past gpus\.max"):
        asyncio.run(backend.create_cargo("t", new))


def test_an_exec_cut_off_names_its_own_problem() -> None:
    """Past its output limit (or its timeout) an exec is a 409 ``exec-unfinished`` on
    Kubernetes as in Docker mode, so the CLI prints the server's remedy alone."""
    from crane.api.kube import _too_long

    cut = _too_long()
    assert cut.status == 409 and cut.problem == "exec-unfinished"
