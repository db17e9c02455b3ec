"""spec.appManager: the decider asks for pod <mc>-am (token Secret first) once the MiniCluster
is admitted and the operator has an API; otherwise a condition says which flags to set."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crane.kube.names import MINICLUSTERS
from crane.lifecycle import decide
from crane.lifecycle.decide import Decider, DecideSettings
from crane.lifecycle.plan import Applied, AppManagerLaunch, Plan, TokenRevocation
from crane.model.inventory import GPU_RESOURCE
from crane.operator.actions import Actuator
from crane.operator.metrics import Metrics
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

    def patch_status(self, plural: str, namespace: str, name: str, status: Any) -> bool:
        self.calls.append(("status", (plural, namespace, name, status)))
        return True

    def create_secret(self, body: dict[str, Any]) -> bool:
        self.calls.append(("secret", body))
        return not self.secret_exists

    def create_pod(self, body: dict[str, Any]) -> bool:
        self.calls.append(("pod", body["metadata"]["name"]))
        return True


def launch(secret_exists: bool, mint: bool = True) -> tuple[FakeKube, FakeMinter, Applied]:
    kube, minter = FakeKube(secret_exists), FakeMinter()
    actuator = Actuator(kube, Metrics(), minter=minter)  # type: ignore[arg-type]
    plan = Plan()
    meta = {"name": "mc", "namespace": "t", "uid": "uid-mc"}
    plan.app_managers.append(AppManagerLaunch(meta, {"metadata": {"name": "mc-am"}}, mint))
    applied = asyncio.run(actuator.apply(plan))
    actuator.close()
    return kube, minter, applied


def test_token_id_goes_into_status_then_the_token_into_the_secret_then_the_pod() -> None:
    kube, minter, applied = launch(secret_exists=False)
    assert minter.minted == ["t/mc"] and not minter.revoked
    status, (what, secret), pod = kube.calls
    assert status == ("status", (MINICLUSTERS, "t", "mc", {"appManagerTokenId": "id1"}))
    assert applied.minted == (("uid-mc", "id1"),)
    assert what == "secret" and pod == ("pod", "mc-am")
    assert secret["metadata"]["name"] == "mc-am-token"
    assert secret["stringData"] == {"token": "s3cret"}
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "MiniCluster"


def test_existing_secret_keeps_its_token_and_the_new_one_is_revoked() -> None:
    kube, minter, _ = launch(secret_exists=True)
    assert minter.revoked == ["id1"]
    assert kube.calls[-1] == ("pod", "mc-am")


def test_recorded_token_is_not_minted_again_when_the_pod_is_recreated() -> None:
    kube, minter, applied = launch(secret_exists=True, mint=False)
    assert not minter.minted and kube.calls == [("pod", "mc-am")] and not applied.minted


def deleted_with_token(decider: Decider) -> tuple[Any, Plan]:
    cache = new_cache(("nodes", node("n0")), ("miniclusters", with_am("mc")))
    settle(decider, cache, passes=1)
    body = cache.miniclusters["t/mc"]
    body["status"]["appManagerTokenId"] = "tok1"
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    return cache, decider.decide(cache)


def test_deleted_minicluster_waits_until_its_token_is_revoked() -> None:
    decider = Decider(Engine(), DecideSettings(api_url="http://crane-api:8080"))
    cache, plan = deleted_with_token(decider)
    assert plan.token_revocations == [TokenRevocation("uid-mc", "tok1")]
    assert not plan.finalizer_removals
    decider.learn(plan, Applied())  # the API did not answer: asked again after a backoff
    assert not decider.decide(cache).token_revocations
    decider.state.revocations["uid-mc"].next = 0.0
    plan = decider.decide(cache)
    assert plan.token_revocations and not plan.finalizer_removals
    decider.learn(plan, Applied(revoked=frozenset({"uid-mc"})))
    assert decider.decide(cache).finalizer_removals == [(MINICLUSTERS, "t", "mc", 0)]


def test_unrevocable_token_lets_the_minicluster_go_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decider = Decider(Engine(), DecideSettings(api_url="http://crane-api:8080"))
    cache, plan = deleted_with_token(decider)
    decider.learn(plan, Applied())
    monkeypatch.setattr(decide, "REVOKE_GIVE_UP_SECONDS", 0.0)
    plan = decider.decide(cache)
    assert plan.finalizer_removals == [(MINICLUSTERS, "t", "mc", 0)]
    (event,) = [e for e in plan.events if e.reason == "TokenNotRevoked"]
    assert event.type == "Warning" and "tok1" in event.message
