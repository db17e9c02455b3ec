"""The API's Kubernetes backend end to end: ``crane operator`` and ``crane serve --backend kube``
as real processes on the session cluster, driven through the SDK and the CLI.

Each test places its cargos on simulated nodes of a GPU family no other e2e test uses, added
by the module fixture ``stack`` (conftest.py), so free capacity is its own.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from crane.client import Client, Conflict, Event, GrowOutcome, NotFound, Unauthorized
from crane.client import Forbidden as ForbiddenError
from tests.e2e.operator_support import FLOW, PRODUCT, RACE, USAGE, Stack, crane_env, poll

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
GPU_IDS = "crane.io/gpu-ids"
MC_LABEL = "crane.io/minicluster"


def wait_for(check: Callable[[], Any], what: str, stack: Stack, timeout: float = 60) -> Any:
    """:func:`poll` that prints the stack's logs on a timeout."""
    return poll(check, what, stack.logs, timeout, interval=0.3)


class Cli:
    """``python -m crane`` with its own config directory (after ``crane login``)."""

    def __init__(self, stack: Stack, token: str) -> None:
        self.env = {
            **crane_env(dict(os.environ)),
            "CRANE_CONFIG_DIR": tempfile.mkdtemp(prefix="cli-", dir=stack.tmp),
        }
        self.stack = stack
        done = self("login", stack.url, "--token", token)
        assert done.returncode == 0, done.stderr

    def __call__(
        self, *args: str, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        got = subprocess.run(
            [sys.executable, "-m", "crane", *args],
            env=self.env,
            cwd=REPO,
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check:
            assert got.returncode == 0, (
                f"crane {' '.join(args)} exited {got.returncode}\nstdout: {got.stdout}\n"
                f"stderr: {got.stderr}\n{self.stack.logs()}"
            )
        return got

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json", check=True).stdout)


def pods_of(core: client.CoreV1Api, namespace: str, mc: str) -> list[client.V1Pod]:
    return [
        p
        for p in core.list_namespaced_pod(namespace, label_selector=f"{MC_LABEL}={mc}").items
        if p.metadata.deletion_timestamp is None
    ]


def in_use(nodes: list[dict[str, Any]], mc: str) -> int:
    return sum(1 for n in nodes for g in n["gpus"] if g.get("miniCluster") == mc)


MANIFEST = """\
apiVersion: crane.io/v1alpha1
kind: MiniCluster
metadata: {name: %(name)s}
spec:
  gpuType: L40S
  gpus: {min: %(min)d, max: %(max)d}
  template:
    replicas: 2
    gpusPerReplica: 2
    template:
      spec:
        containers: [{name: train, image: trainer:1, command: [torchrun, train.py]}]
"""


def foreign_pod(core: client.CoreV1Api, namespace: str, node: str, gpus: int) -> None:
    """A pod that is not Crane's holding ``gpus`` GPUs of ``node``."""
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "not-crane"},
            "spec": {
                "nodeName": node,
                "tolerations": [{"key": "crane.io/managed", "operator": "Exists"}],
                "containers": [
                    {
                        "name": "c",
                        "image": "x",
                        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                    }
                ],
            },
        },
    )


def free_on(nodes: list[dict[str, Any]], name: str) -> int:
    node = next(n for n in nodes if n["name"] == name)
    return sum(
        1
        for g in node["gpus"]
        if not (g.get("reservedFor") or g.get("miniCluster") or g.get("busy"))
    )


def test_user_grows_watches_shrinks_and_reads_usage(stack: Stack, namespace: str) -> None:
    tenant, token = stack.tenant()
    cli = Cli(stack, token)
    busy_node = stack.nodes[FLOW][0]
    foreign_pod(stack.core, namespace, busy_node, 2)
    wait_for(
        lambda: (
            sum(
                g.get("busy", False)
                for n in _items(cli.json("nodes"))
                if n["name"] == busy_node
                for g in n["gpus"]
            )
            == 2
        ),
        "the GPU map to show the other pod's 2 GPUs busy",
        stack,
    )
    cli(
        "mc",
        "create",
        "-f",
        "-",
        input=MANIFEST % {"name": "train", "min": 4, "max": 8},
        check=True,
    )
    with Client(stack.url, token) as api:
        wait_for(
            lambda: api.get_minicluster("train").status.reserved_gpus == 4,
            "the MiniCluster admitted with 4 reserved GPUs",
            stack,
        )
    assert in_use(_items(cli.json("nodes")), "train") == 0

    grown = cli("mc", "grow", "train", "2", "--wait", "--timeout", "120", check=True)
    assert "granted" in grown.stderr
    assert "train-0" in grown.stdout and "train-1" in grown.stdout
    assert grown.stdout.count("Running") == 2, grown.stdout

    pods = pods_of(stack.core, tenant, "train")
    assert len(pods) == 4
    for pod in pods:
        assert pod.status.phase == "Running"
        assert pod.spec.node_name in stack.nodes[FLOW]
        assert stack.core.read_node(pod.spec.node_name).metadata.labels[PRODUCT] == FLOW
        assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"

    assert in_use(_items(cli.json("nodes")), "train") == 8
    row = next(
        line.split()
        for line in cli("mc", "list", check=True).stdout.splitlines()
        if line.startswith("train ")
    )
    assert row[:8] == ["train", "L40S", "4", "8", "4", "8", "4", "2/2"], row
    # kwok nodes serve no logs: one line that says why, no traceback, no blame on the user
    logs = cli("cargo", "logs", "train-0")
    assert logs.returncode == 1 and "no log of pod 'train-0-0'" in logs.stderr, logs.stderr
    assert "Traceback" not in logs.stderr and "fix those fields" not in logs.stderr
    table = cli("nodes", check=True).stdout
    assert "train" in table

    with Client(stack.url, token) as api:
        assert {str(c.status.phase) for c in api.list_cargos("train")} == {"Running"}
        time.sleep(1.0)  # let GPU-seconds accrue
    shrunk = cli("mc", "shrink", "train", "1", "--yes", check=True)
    assert shrunk.stdout.split() == ["train-1"]
    wait_for(lambda: len(pods_of(stack.core, tenant, "train")) == 2, "train-1's pods gone", stack)
    wait_for(lambda: in_use(_items(cli.json("nodes")), "train") == 4, "the GPU map at 4", stack)

    usage = cli.json("usage")
    rows = [r for r in usage["items"] if r["miniCluster"] == "train"]
    assert rows and rows[0]["gpuSeconds"] > 0 and rows[0]["cargos"] == 2, usage

    # more than the cluster holds: refused at create, as in Docker mode (one rule, issue 12)
    refused = cli(
        "mc", "create", "-f", "-", input=MANIFEST % {"name": "huge", "min": 64, "max": 64}
    )
    assert refused.returncode == 2, refused.stderr
    assert "can never be admitted" in refused.stderr, refused.stderr
    cli(
        "mc",
        "create",
        "-f",
        "-",
        input=MANIFEST % {"name": "huge", "min": 14, "max": 14},
        check=True,
    )
    said: list[str] = []

    def explained() -> bool:
        said.append(cli("mc", "explain", "huge", check=True).stdout)
        return "waits" in said[-1] or "needs" in said[-1]

    wait_for(explained, "the operator to look at it", stack, timeout=30)
    # the engine's numbers, the same the GPU map shows
    assert "not admitted" in said[-1], said[-1]
    assert "needs 14 L40S" in said[-1], said[-1]
    best = re.search(r"best node (\S+) has (\d+) free", said[-1])
    assert best is not None, said[-1]
    assert int(best.group(2)) == free_on(_items(cli.json("nodes")), best.group(1)), said[-1]
    cli("mc", "delete", "huge", "train", "--yes", check=True)


def _items(shown: Any) -> list[dict[str, Any]]:
    return list(shown["items"] if isinstance(shown, dict) else shown)


def test_tenants_see_only_their_own_objects(stack: Stack) -> None:
    tenant_a, token_a = stack.tenant()
    tenant_b, token_b = stack.tenant()
    spec = {
        "gpuType": "L40S",
        "gpus": {"min": 0, "max": 4},
        "template": {
            "replicas": 1,
            "gpusPerReplica": 1,
            "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }
    with Client(stack.url, token_a) as a, Client(stack.url, token_b) as b:
        a.create_minicluster("mine", spec)
        a.create_minicluster("other", spec)
        b.create_minicluster("theirs", spec)
        assert stack.core.read_namespace(tenant_a).metadata.name == tenant_a
        assert [m.name for m in b.list_miniclusters()] == ["theirs"]
        assert {m.name for m in a.list_miniclusters()} == {"mine", "other"}
        with pytest.raises(NotFound):
            a.get_minicluster("theirs")
        with pytest.raises(NotFound):
            a.grow("theirs", 1)
        with pytest.raises(NotFound):
            b.explain("mine")
        assert b.list_cargos() == []

        scoped = a.create_token(
            {"scope": "minicluster", "tenant": tenant_a, "miniCluster": "mine"}
        ).token
    with Client(stack.url, scoped) as app:
        assert [m.name for m in app.list_miniclusters()] == ["mine"]
        grown = app.grow("mine", 1, wait=True, timeout=60)
        assert grown.result is GrowOutcome.GRANTED, grown
        with pytest.raises(NotFound):
            app.get_minicluster("other")
        with pytest.raises(NotFound):
            app.grow("other", 1)
        with pytest.raises(NotFound):
            app.get_minicluster("theirs")
        with pytest.raises(ForbiddenError):
            app.create_minicluster("more", spec)
        assert [c.name for c in app.list_cargos()] == ["mine-0"]
    # nothing of tenant B's namespace was touched
    assert stack.core.list_namespaced_pod(tenant_b).items == []
    with Client(stack.url, "") as anonymous, pytest.raises(Unauthorized):
        anonymous.list_miniclusters()
    assert httpx.get(f"{stack.url}/v1/miniclusters").status_code == 401
    with Client(stack.url, token_a) as a:
        a.delete_minicluster("mine")
        a.delete_minicluster("other")


def _race(stack: Stack, token: str, name: str) -> list[Any]:
    def grow(i: int) -> Any:
        with Client(stack.url, token, timeout=300) as one:
            return one.grow(name, 1, idempotency_key=f"{name}-{i}-{uuid.uuid4().hex}")

    with ThreadPoolExecutor(50) as pool:
        return list(pool.map(grow, range(50)))


def _check_pods(stack: Stack, tenant: str, name: str, cargos: int) -> None:
    """Every cargo's pod on a node of the family, no GPU id twice, no node over capacity."""
    pods = pods_of(stack.core, tenant, name)
    assert len(pods) == cargos
    per_node: dict[str, int] = defaultdict(int)
    ids: dict[str, list[str]] = defaultdict(list)
    for pod in pods:
        node = pod.spec.node_name
        assert node in stack.nodes[RACE]
        per_node[node] += int(pod.spec.containers[0].resources.limits["nvidia.com/gpu"])
        ids[node] += pod.metadata.annotations[GPU_IDS].split(",")
    for node, used in per_node.items():
        capacity = int(stack.core.read_node(node).status.capacity["nvidia.com/gpu"])
        assert used <= capacity
        assert len(ids[node]) == len(set(ids[node])), f"GPU given twice on {node}: {ids[node]}"
        assert len(ids[node]) == used


def test_fifty_concurrent_grows_never_exceed_max_nor_double_place(stack: Stack) -> None:
    tenant, token = stack.tenant()
    maximum, capacity = 12, 16  # two H800 nodes of 8
    spec = {
        "gpuType": "H800",
        "gpus": {"min": 0, "max": maximum},
        "template": {
            "replicas": 1,
            "gpusPerReplica": 2,
            "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }
    with Client(stack.url, token) as api:
        api.create_minicluster("race", spec)

    # max binds: 6 cargos of 2 GPUs
    results = _race(stack, token, "race")
    outcomes = Counter(r.result for r in results)
    granted = [g.name for r in results for g in r.cargos if g.added]
    assert outcomes[GrowOutcome.GRANTED] == len(granted) == maximum // 2, (outcomes, stack.logs())
    assert len(set(granted)) == len(granted)
    for r in results:
        if r.result is GrowOutcome.DENIED:
            assert "gpus.max" in " ".join(r.reasons), r.reasons
    with Client(stack.url, token) as api:
        cargos = api.list_cargos("race")
        assert sorted(c.name for c in cargos) == sorted(granted)
        assert sum(c.spec.gpus for c in cargos) <= maximum
        api.wait_for_cargos([c.name for c in cargos], timeout=120)
    _check_pods(stack, tenant, "race", len(granted))

    # capacity binds: with max raised, 2 more cargos fit on the 16 GPUs, the rest are denied
    with Client(stack.url, token) as api:
        api.patch_minicluster("race", {"gpus": {"min": 0, "max": 40}})
    results = _race(stack, token, "race")
    more = [g.name for r in results for g in r.cargos if g.added]
    assert len(more) == (capacity - maximum) // 2, ([r.reasons for r in results], stack.logs())
    for r in results:
        if r.result is GrowOutcome.DENIED:
            assert "cannot be placed now" in " ".join(r.reasons), r.reasons
    with Client(stack.url, token) as api:
        live = wait_for(
            lambda: (lambda cs: cs if len(cs) == len(granted) + len(more) else None)(
                api.list_cargos("race")
            ),
            "the cargos taken back to be gone",
            stack,
        )
        assert sorted(c.name for c in live) == sorted(granted + more)
        api.wait_for_cargos([c.name for c in live], timeout=120)
    _check_pods(stack, tenant, "race", len(granted) + len(more))
    with Client(stack.url, token) as api:
        api.delete_minicluster("race")


def test_event_stream_delivers_the_placement_of_a_grow(stack: Stack) -> None:
    _, token = stack.tenant()
    spec = {
        "gpuType": "V100",
        "gpus": {"min": 0, "max": 8},
        "template": {
            "replicas": 2,
            "gpusPerReplica": 2,
            "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }
    got: queue.Queue[Event] = queue.Queue()
    listener = Client(stack.url, token, timeout=120)

    def listen() -> None:
        try:
            for event in listener.events():
                got.put(event)
        except Exception:  # the client is closed at the end of the test
            return

    with Client(stack.url, token) as api:
        api.create_minicluster("ev", spec)
        threading.Thread(target=listen, daemon=True).start()
        time.sleep(1.0)  # subscribed before the grow
        grown = api.grow("ev", 1)
        assert grown.result is GrowOutcome.GRANTED
        deadline = time.monotonic() + 60
        seen: list[Event] = []
        while not any(e.type == "Placed" and e.cargo == "ev-0" for e in seen):
            assert time.monotonic() < deadline, f"no Placed event for ev-0: {seen}\n{stack.logs()}"
            try:
                seen.append(got.get(timeout=1))
            except queue.Empty:
                continue
        placed = next(e for e in seen if e.type == "Placed")
        assert placed.mini_cluster == "ev" and placed.gpus == 4
        api.delete_minicluster("ev")
    listener.close()


def test_optuna_example_runs_a_study(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import optuna

    from examples.optuna_hpo import main

    tenant, token = stack.tenant()
    monkeypatch.setenv("CRANE_API_URL", stack.url)
    monkeypatch.setenv("CRANE_TOKEN", token)
    study = main(
        [
            "--minicluster",
            "hpo",
            "--trials",
            "3",
            "--parallel",
            "2",
            "--steps",
            "3",
            "--pause",
            "0.3",
            "--gpu-type",
            "A40",
            "--max-gpus",
            "2",
            "--timeout",
            "120",
            "--simulate",
        ]
    )
    assert len(study.trials) == 3
    assert {t.state for t in study.trials} <= {
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
    }
    assert optuna.trial.TrialState.COMPLETE in {t.state for t in study.trials}
    assert study.best_value < float("inf")
    with Client(stack.url, token) as api:
        wait_for(lambda: api.list_cargos("hpo") == [], "the trial cargos gone", stack)
        usage = api.usage()
        assert any(r.mini_cluster == "hpo" and r.cargos == 3 for r in usage.items), usage
        api.delete_minicluster("hpo")
    assert pods_of(stack.core, tenant, "hpo") == []


def test_usage_survives_a_server_restart(stack: Stack) -> None:
    """Cargos placed before the server stops keep their intervals; one deleted while it was down
    is closed, one placed while it was down counts from its placement."""
    tenant, token = stack.tenant()
    template = {
        "replicas": 1,
        "gpusPerReplica": 2,
        "template": {"spec": {"containers": [{"name": "c", "image": "trainer:1"}]}},
    }
    spec = {"gpuType": USAGE, "gpus": {"min": 2, "max": 2}, "template": template}
    with Client(stack.url, token) as api:
        for mc in ("keep", "gone", "late"):
            api.create_minicluster(mc, spec)
        for mc in ("keep", "gone", "late"):
            wait_for(
                lambda mc=mc: api.get_minicluster(mc).status.reserved_gpus == 2,
                f"{mc} admitted",
                stack,
            )
        for mc in ("keep", "gone"):
            grown = api.grow(mc, 1, wait=True, timeout=60)
            assert grown.result == GrowOutcome.GRANTED, grown
        placed = {mc: api.get_cargo(f"{mc}-0").status.placed_at for mc in ("keep", "gone")}

    cargos = client.CustomObjectsApi(stack.core.api_client)

    def cargo(name: str) -> dict[str, Any]:
        return dict(
            cargos.get_namespaced_custom_object("crane.io", "v1alpha1", tenant, "cargos", name)
        )

    def meanwhile() -> None:
        time.sleep(3)
        # grow made gone-0 a template cargo (spec.replicas 1): scaling to 0 deletes it for good
        cargos.patch_namespaced_custom_object(
            "crane.io", "v1alpha1", tenant, "miniclusters", "gone", {"spec": {"replicas": 0}}
        )
        wait_for(lambda: not _exists(lambda: cargo("gone-0")), "gone-0 deleted", stack)
        placed["gone-end"] = datetime.now(UTC)
        cargos.create_namespaced_custom_object(
            "crane.io",
            "v1alpha1",
            tenant,
            "cargos",
            {
                "apiVersion": "crane.io/v1alpha1",
                "kind": "Cargo",
                "metadata": {"name": "late-0"},
                "spec": {"miniCluster": "late", **template},
            },
        )
        wait_for(
            lambda: (cargo("late-0").get("status") or {}).get("phase") == "Running",
            "late-0 running",
            stack,
        )
        placed["late"] = datetime.fromisoformat(cargo("late-0")["status"]["placedAt"])
        time.sleep(3)

    stack.restart_server(meanwhile)
    time.sleep(1.0)  # the server's first list and reconcile
    with Client(stack.url, token) as api:
        first = {r.mini_cluster: r for r in api.usage().items}
        noticed = datetime.now(UTC)
        time.sleep(2.0)
        second = {r.mini_cluster: r for r in api.usage().items}
    now = datetime.now(UTC)
    assert {mc: r.cargos for mc, r in second.items()} == {"keep": 1, "gone": 1, "late": 1}
    # deleted while the server was down: closed when the restarted server noticed, no later
    assert first["gone"].gpu_seconds == second["gone"].gpu_seconds, "gone-0's interval is open"
    deleted = 2 * (placed["gone-end"] - placed["gone"]).total_seconds()
    until_noticed = 2 * (noticed - placed["gone"]).total_seconds()
    assert deleted < second["gone"].gpu_seconds <= until_noticed, (second["gone"], deleted)
    for mc in ("keep", "late"):
        since_placed = 2 * (now - placed[mc]).total_seconds()
        assert since_placed - 3 < second[mc].gpu_seconds <= since_placed + 1, (mc, second[mc])
    with sqlite3.connect(stack.tmp / "crane.db") as db:
        rows = db.execute(
            "SELECT cargo, count(*) FROM usage_intervals WHERE tenant = ? GROUP BY cargo", (tenant,)
        ).fetchall()
    assert dict(rows) == {"keep-0": 1, "gone-0": 1, "late-0": 1}


def _exists(get: Callable[[], Any]) -> bool:
    try:
        get()
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def _am_spec(lo: int) -> dict[str, Any]:
    return {
        "gpuType": "L4",
        "gpus": {"min": lo, "max": 4},
        "template": {
            "replicas": 1,
            "gpusPerReplica": 1,
            "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
        "appManager": {"image": "crane-am:e2e", "env": {"MODE": "e2e"}},
    }


def _app_manager(stack: Stack, tenant: str, mc: str) -> tuple[client.V1Pod, str]:
    """The Running pod ``<mc>-am`` and the token in its Secret ``<mc>-am-token``."""

    def running() -> client.V1Pod | None:
        try:
            pod = stack.core.read_namespaced_pod(f"{mc}-am", tenant)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return pod if pod.status.phase == "Running" else None

    pod = wait_for(running, f"pod {mc}-am Running", stack)
    secret = stack.core.read_namespaced_secret(f"{mc}-am-token", tenant)
    return pod, base64.b64decode(secret.data["token"]).decode()


def test_app_manager_pod_gets_a_token_for_its_minicluster_only(stack: Stack) -> None:
    tenant, token = stack.tenant()
    with Client(stack.url, token) as api:
        api.create_minicluster("am", _am_spec(lo=1))
        api.create_minicluster("other", {**_am_spec(lo=0), "appManager": None})
    pod, am_token = _app_manager(stack, tenant, "am")

    node = stack.core.read_node(pod.spec.node_name)
    assert "crane.io/managed" not in (node.metadata.labels or {}), pod.spec.node_name
    assert not pod.spec.containers[0].resources.limits
    assert pod.metadata.labels == {"crane.io/minicluster": "am", "crane.io/app-manager": "true"}
    assert [o.kind for o in pod.metadata.owner_references] == ["MiniCluster"]
    env = {e.name: e for e in pod.spec.containers[0].env}
    assert env["CRANE_API_URL"].value == stack.url
    assert env["CRANE_MINICLUSTER"].value == "am"
    assert env["CRANE_NAMESPACE"].value == tenant
    assert env["MODE"].value == "e2e"
    ref = env["CRANE_TOKEN"].value_from.secret_key_ref
    assert (ref.name, ref.key) == ("am-am-token", "token")

    custom = client.CustomObjectsApi(stack.core.api_client)

    def am_ready() -> dict[str, Any] | None:
        mc = custom.get_namespaced_custom_object(
            "crane.io", "v1alpha1", tenant, "miniclusters", "am"
        )
        conds = {c["type"]: c for c in (mc.get("status") or {}).get("conditions") or []}
        ready = conds.get("AppManagerReady")
        return ready if ready and ready["status"] == "True" else None

    assert wait_for(am_ready, "AppManagerReady=True", stack)["reason"] == "Running"
    others = stack.core.list_namespaced_pod(tenant, label_selector="crane.io/minicluster=other")
    assert others.items == []

    with Client(stack.url, am_token) as app:
        me = app.whoami()
        assert (me.scope, me.tenant, me.mini_cluster) == ("minicluster", tenant, "am"), me
        grown = app.grow("am", 1, wait=True, timeout=60)
        assert grown.result is GrowOutcome.GRANTED, (grown, stack.logs())
        with pytest.raises(NotFound):
            app.get_minicluster("other")
        with pytest.raises(NotFound):
            app.grow("other", 1)
        with pytest.raises(ForbiddenError):
            app.create_minicluster("more", _am_spec(lo=0))


def test_deleting_the_minicluster_revokes_its_app_manager_token(stack: Stack) -> None:
    tenant, token = stack.tenant()
    with Client(stack.url, token) as api:
        api.create_minicluster("gone", _am_spec(lo=0))
    _, am_token = _app_manager(stack, tenant, "gone")
    with Client(stack.url, am_token) as app:
        assert app.whoami().mini_cluster == "gone"
    with Client(stack.url, token) as api:
        api.delete_minicluster("gone")

        def made_again() -> bool:
            try:
                api.create_minicluster("gone", {**_am_spec(lo=0), "appManager": None})
            except Conflict:  # "is being deleted" until its finalizer lets go
                return False
            return True

        wait_for(made_again, "MiniCluster gone and made again", stack)
    with Client(stack.url, am_token) as app, pytest.raises(Unauthorized):
        app.get_minicluster("gone")


def test_app_manager_secret_deleted_by_hand_is_minted_again(stack: Stack) -> None:
    tenant, token = stack.tenant()
    with Client(stack.url, token) as api:
        api.create_minicluster("lost", _am_spec(lo=0))
    pod, old = _app_manager(stack, tenant, "lost")
    stack.core.delete_namespaced_secret("lost-am-token", tenant)

    def new_token() -> str | None:
        try:
            secret = stack.core.read_namespaced_secret("lost-am-token", tenant)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        fresh = base64.b64decode(secret.data["token"]).decode()
        return fresh if fresh != old else None

    fresh = wait_for(new_token, "a new token in Secret lost-am-token", stack, 45)
    wait_for(
        lambda: _app_manager(stack, tenant, "lost")[0].metadata.uid != pod.metadata.uid,
        "pod lost-am made again to read the new token",
        stack,
    )
    with Client(stack.url, fresh) as app:
        assert app.whoami().mini_cluster == "lost"
    with Client(stack.url, old) as app, pytest.raises(Unauthorized):
        app.get_minicluster("lost")
    with Client(stack.url, token) as api:
        api.delete_minicluster("lost")


def test_template_grow_and_shrink_change_replicas_as_in_docker_mode(stack: Stack) -> None:
    """The same behaviour as tests/docker/test_lifecycle_parity.py (issue 12)."""
    _, token = stack.tenant()
    spec = _one_replica_of_one_v100(4)
    with Client(stack.url, token) as api:
        api.create_minicluster("tjob", spec)
        wait_for(lambda: _phase(api, "tjob-0") == "Running", "tjob-0 running", stack, timeout=120)
        grown = api.grow("tjob", 1, wait=True, timeout=120)
        assert grown.result is GrowOutcome.GRANTED, grown
        assert [c.name for c in grown.cargos] == ["tjob-1"]
        assert api.get_minicluster("tjob").spec.replicas == 2
        shrunk = api.shrink("tjob", 1)
        assert shrunk.removed == ["tjob-1"]
        wait_for(lambda: _phase(api, "tjob-1") is None, "tjob-1 gone", stack, timeout=120)
        assert api.get_minicluster("tjob").spec.replicas == 1
        assert _phase(api, "tjob-1") is None and _phase(api, "tjob-0") == "Running"
        api.delete_minicluster("tjob")


@pytest.mark.parametrize("wait", [False, True])
def test_a_grow_never_answers_with_the_phase_of_a_cargo_being_deleted_under_that_name(
    stack: Stack, wait: bool
) -> None:
    """As tests/api/test_grow_races.py does in Docker mode: shrink ``regrow`` by one while
    ``regrow-0`` runs, then grow by one while the old ``regrow-0`` is still being deleted
    (here kept by a finalizer): the grow answered the old cargo's phase, Running (with
    ``--wait``: Deleted, at once), though the new ``regrow-0`` is made only once the old one
    is gone. It says Pending (with ``--wait``: until its timeout)."""
    tenant, token = stack.tenant()
    custom = client.CustomObjectsApi(stack.core.api_client)
    spec = _one_replica_of_one_v100(2)
    with Client(stack.url, token) as api:
        api.create_minicluster("regrow", spec)
        wait_for(lambda: _phase(api, "regrow-0") == "Running", "regrow-0 running", stack, 120)
        _hold(custom, tenant, "cargos", "regrow-0", True)
        try:
            assert api.shrink("regrow", 1).removed == ["regrow-0"]
            wait_for(
                lambda: custom.get_namespaced_custom_object(
                    "crane.io", "v1alpha1", tenant, "cargos", "regrow-0"
                )["metadata"].get("deletionTimestamp"),
                "regrow-0 being deleted",
                stack,
                120,
            )
            grown = api.grow("regrow", 1, allow_pending=True, wait=wait, timeout=3)
            said = [(c.name, c.phase) for c in grown.cargos if c.added]
            assert said == [("regrow-0", "Pending")], said
            assert grown.timed_out is wait
        finally:
            _hold(custom, tenant, "cargos", "regrow-0", False)
        api.delete_minicluster("regrow")


def _one_replica_of_one_v100(most: int) -> dict[str, Any]:
    """A MiniCluster spec of up to ``most`` V100s, one template cargo of one V100 kept."""
    return {
        "gpuType": "V100",
        "gpus": {"min": 0, "max": most},
        "replicas": 1,
        "template": {
            "replicas": 1,
            "gpusPerReplica": 1,
            "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }


def _phase(api: Client, cargo: str) -> str | None:
    try:
        return str(api.get_cargo(cargo).status.phase)
    except NotFound:
        return None


def test_cargo_over_max_is_refused_at_create(stack: Stack) -> None:
    """Issue 14: POST /v1/cargos did not check gpus.max; a cargo larger than max was created
    and stayed Pending forever."""
    _, token = stack.tenant()
    with Client(stack.url, token) as api:
        api.create_minicluster("capped", {"gpuType": "H800", "gpus": {"min": 0, "max": 8}})
    headers = {"Authorization": f"Bearer {token}"}
    pod = {"spec": {"containers": [{"name": "c", "image": "x"}]}}
    body = {
        "name": "capped-big",
        "spec": {"miniCluster": "capped", "replicas": 2, "gpusPerReplica": 8, "template": pod},
    }
    refused = httpx.post(f"{stack.url}/v1/cargos", json=body, headers=headers, timeout=30)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "gpus.max (8)" in refused.json()["detail"]
    with Client(stack.url, token) as api:
        assert [c.name for c in api.list_cargos("capped")] == []
        api.delete_minicluster("capped")


def _admitted(api: Client, mc: str) -> tuple[str, str] | None:
    conditions = api.get_minicluster(mc).status.conditions
    cond = next((c for c in conditions if c.type == "Admitted"), None)
    return (str(cond.status), cond.reason) if cond else None


def test_hold_releases_the_gpus_to_the_queue_and_release_regrows(
    stack: Stack, kubectl: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """Issue 15: `crane mc hold` (spec.suspend) stops the cargos and gives the GPUs to the next
    in the queue, keeping the object; `crane mc release` queues it again; exec on kwok is 409."""
    tenant, token = stack.tenant()
    cli = Cli(stack, token)
    pod = {"spec": {"containers": [{"name": "c", "image": "x"}]}}
    template = {"replicas": 1, "gpusPerReplica": 4, "template": pod}
    with Client(stack.url, token) as api:
        api.create_minicluster(
            "keep",
            {"gpuType": "A2", "gpus": {"min": 4, "max": 4}, "replicas": 1, "template": template},
        )
        wait_for(lambda: _phase(api, "keep-0") == "Running", "keep-0 running", stack, timeout=120)
        api.create_minicluster("next", {"gpuType": "A2", "gpus": {"min": 4, "max": 4}})
        wait_for(lambda: _admitted(api, "next") == ("False", "Queued"), "next queued", stack)
        headers = {"Authorization": f"Bearer {token}"}
        kwok = httpx.post(
            f"{stack.url}/v1/cargos/keep-0:exec",
            json={"command": ["true"]},
            headers=headers,
            timeout=30,
        )
        assert kwok.status_code == 409, kwok.text
        assert kwok.headers["content-type"] == "application/problem+json"
        assert kwok.json()["type"].endswith("/exec-unsupported") and "kwok" in kwok.json()["detail"]
        cli("mc", "hold", "keep", check=True)
        wait_for(lambda: _phase(api, "keep-0") is None, "keep-0 deleted", stack, timeout=120)
        wait_for(lambda: _admitted(api, "next") == ("True", "Admitted"), "next admitted", stack)
        held = api.get_minicluster("keep")
        assert held.spec.suspend and held.spec.gpus.min == 4 and held.spec.replicas == 1
        assert _admitted(api, "keep") == ("False", "Held")
        assert held.status.reserved_gpus == 0 and "crane mc release keep" in held.status.message
        shown = kubectl("get", "mc", "keep", "-n", tenant)
        assert shown.returncode == 0, shown.stderr
        header, row = shown.stdout.splitlines()[:2]
        assert row.split()[header.split().index("HELD")] == "true", shown.stdout
        assert "Held" in cli("mc", "get", "keep", check=True).stdout
        cli("mc", "release", "keep", check=True)
        wait_for(lambda: _admitted(api, "keep") == ("False", "Queued"), "keep queued", stack)
        api.delete_minicluster("next")
        wait_for(lambda: _phase(api, "keep-0") == "Running", "keep-0 again", stack, timeout=120)
        assert _admitted(api, "keep") == ("True", "Admitted")
        api.delete_minicluster("keep")


def test_a_minicluster_being_deleted_is_gone_from_the_api_as_in_docker_mode(stack: Stack) -> None:
    """Issue 12: on Kubernetes a MiniCluster kept by a finalizer after DELETE could still be
    read, listed, grown and deleted again; Docker mode answered 404 at once. Now both: 404,
    absent from the list, and creating it (or the cargo) again says it is being deleted."""
    tenant, token = stack.tenant()
    custom = client.CustomObjectsApi(stack.core.api_client)
    spec = {"gpuType": "V100", "gpus": {"min": 0, "max": 2}}
    with Client(stack.url, token) as api:
        api.create_minicluster("lingers", spec)
        template = {"spec": {"containers": [{"name": "c", "image": "x"}]}}
        api.create_cargo(
            {"miniCluster": "lingers", "replicas": 0, "template": template}, name="stays"
        )
        for plural, name in (("cargos", "stays"), ("miniclusters", "lingers")):
            _hold(custom, tenant, plural, name, True)
        api.delete_cargo("stays")
        with pytest.raises(NotFound, match="'stays' not found"):
            api.get_cargo("stays")
        assert "stays" not in {c.name for c in api.list_cargos()}
        with pytest.raises(NotFound):
            api.delete_cargo("stays")
        with pytest.raises(Conflict, match=r"'stays' of tenant .* is being deleted: create it"):
            api.create_cargo(
                {"miniCluster": "lingers", "replicas": 0, "template": template}, name="stays"
            )
        _hold(custom, tenant, "cargos", "stays", False)
        api.delete_minicluster("lingers")
        body = custom.get_namespaced_custom_object(
            "crane.io", "v1alpha1", tenant, "miniclusters", "lingers"
        )
        assert body["metadata"].get("deletionTimestamp"), body["metadata"]
        try:
            with pytest.raises(NotFound, match="'lingers' not found"):
                api.get_minicluster("lingers")
            assert "lingers" not in {m.name for m in api.list_miniclusters()}
            with pytest.raises(NotFound):
                api.grow("lingers", 1)
            with pytest.raises(NotFound):
                api.delete_minicluster("lingers")
            with pytest.raises(Conflict, match="is being deleted"):
                api.create_minicluster("lingers", spec)
        finally:
            _hold(custom, tenant, "miniclusters", "lingers", False)


def _hold(custom: client.CustomObjectsApi, tenant: str, plural: str, name: str, on: bool) -> None:
    """Add (or take away) a finalizer of the test's own, keeping the object after DELETE."""
    mine = "tests.crane.io/hold"
    body = custom.get_namespaced_custom_object("crane.io", "v1alpha1", tenant, plural, name)
    others = [f for f in body["metadata"].get("finalizers") or [] if f != mine]
    finalizers = [*others, mine] if on else others
    custom.patch_namespaced_custom_object(
        "crane.io",
        "v1alpha1",
        tenant,
        plural,
        name,
        {"metadata": {"finalizers": finalizers or None}},
    )
