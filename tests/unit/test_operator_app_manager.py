"""spec.appManager: the decider asks for pod <mc>-am (token Secret first) once the MiniCluster
is admitted and the operator has an API; otherwise a condition says which flags to set."""

from __future__ import annotations

import asyncio
from typing import Any

from crane.model.inventory import GPU_RESOURCE
from crane.operator.actions import Actuator
from crane.operator.decide import Decider, DecideSettings
from crane.operator.metrics import Metrics
from crane.operator.plan import AppManagerLaunch, Plan
from crane.placement import Engine
from tests.unit.test_operator_decide import minicluster, new_cache, node, settle


def with_am(name: str) -> dict[str, Any]:
    body = minicluster(name, 8, 8)
    body["spec"]["appManager"] = {"image": "busybox", "args": ["sleep", "1d"], "env": {"A": "1"}}
    return body


def condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in body["status"]["conditions"] if c["type"] == type_)


def test_without_api_the_condition_says_which_flags_to_set() -> None:
    cache = new_cache(("nodes", node("n0")), ("miniclusters", with_am("mc")))
    plans = settle(Decider(Engine()), cache)
    cond = condition(cache.miniclusters["t/mc"], "AppManagerReady")
    assert (cond["status"], cond["reason"]) == ("False", "ApiNotConfigured")
    assert "--api-url" in cond["message"] and "--api-token" in cond["message"]
    assert not any(p.app_managers for p in plans)


def test_admitted_minicluster_gets_its_app_manager_pod_once() -> None:
    cache = new_cache(("nodes", node("n0")), ("miniclusters", with_am("mc")))
    decider = Decider(Engine(), DecideSettings(api_url="http://crane-api:8080"))
    plans = settle(decider, cache)
    launches = [a for p in plans for a in p.app_managers]
    assert len(launches) == 1
    pod = launches[0].pod
    assert pod["metadata"]["name"] == "mc-am"
    assert pod["metadata"]["labels"] == {
        "crane.io/minicluster": "mc",
        "crane.io/app-manager": "true",
    }
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "uid-mc"
    assert "nodeName" not in pod["spec"] and "tolerations" not in pod["spec"]
    container = pod["spec"]["containers"][0]
    assert GPU_RESOURCE not in str(container)
    env = {e["name"]: e for e in container["env"]}
    assert env["CRANE_API_URL"]["value"] == "http://crane-api:8080"
    assert env["CRANE_MINICLUSTER"]["value"] == "mc" and env["CRANE_NAMESPACE"]["value"] == "t"
    assert env["CRANE_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "mc-am-token",
        "key": "token",
    }
    assert env["A"]["value"] == "1"
    running = {**pod, "spec": {**pod["spec"], "nodeName": "cpu-0"}}
    running["metadata"] = {**pod["metadata"], "uid": "uid-am"}
    running["status"] = {"phase": "Running", "containerStatuses": [{"ready": True}]}
    cache.apply("pods", "ADDED", running)
    plans = settle(decider, cache)
    assert not any(p.app_managers for p in plans), "not launched twice"
    cond = condition(cache.miniclusters["t/mc"], "AppManagerReady")
    assert (cond["status"], cond["reason"]) == ("True", "Running")
    assert cache.miniclusters["t/mc"]["status"]["reservedGpus"] == 8


class FakeMinter:
    def __init__(self) -> None:
        self.minted: list[str] = []
        self.revoked: list[str] = []

    def mint(self, namespace: str, minicluster: str) -> tuple[str, str]:
        self.minted.append(f"{namespace}/{minicluster}")
        return f"id{len(self.minted)}", "s3cret"

    def revoke(self, token_id: str) -> None:
        self.revoked.append(token_id)


class FakeKube:
    def __init__(self, secret_exists: bool) -> None:
        self.secret_exists = secret_exists
        self.calls: list[tuple[str, Any]] = []

    def create_secret(self, body: dict[str, Any]) -> bool:
        self.calls.append(("secret", body))
        return not self.secret_exists

    def create_pod(self, body: dict[str, Any]) -> bool:
        self.calls.append(("pod", body["metadata"]["name"]))
        return True


def launch(secret_exists: bool) -> tuple[FakeKube, FakeMinter]:
    kube, minter = FakeKube(secret_exists), FakeMinter()
    actuator = Actuator(kube, Metrics(), minter=minter)  # type: ignore[arg-type]
    plan = Plan()
    meta = {"name": "mc", "namespace": "t", "uid": "uid-mc"}
    plan.app_managers.append(AppManagerLaunch(meta, {"metadata": {"name": "mc-am"}}))
    asyncio.run(actuator.apply(plan))
    actuator.close()
    return kube, minter


def test_token_goes_into_the_secret_before_the_pod() -> None:
    kube, minter = launch(secret_exists=False)
    assert minter.minted == ["t/mc"] and not minter.revoked
    (what, secret), pod = kube.calls
    assert what == "secret" and pod == ("pod", "mc-am")
    assert secret["metadata"]["name"] == "mc-am-token"
    assert secret["stringData"] == {"token": "s3cret"}
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "MiniCluster"


def test_existing_secret_keeps_its_token_and_the_new_one_is_revoked() -> None:
    kube, minter = launch(secret_exists=True)
    assert minter.revoked == ["id1"]
    assert kube.calls[-1] == ("pod", "mc-am")
