"""The chart against a real API server: server-side dry-run, install, and RBAC as the API
server decides it (`kubectl auth can-i --as=system:serviceaccount:NS:SA`)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helm.chart import CHART, Helm, Rule, find, load_all, one, rules_of

pytestmark = pytest.mark.e2e

PSA_RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    objects: list[dict[str, Any]]
    install_output: str


def _kubectl(
    kube_cluster: Any, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return kube_cluster.kubectl(*args, input=input, check=check)


def _create_namespace(kube_cluster: Any, name: str) -> None:
    labels = {**PSA_RESTRICTED, "crane.io/e2e": "true"}
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    _kubectl(kube_cluster, "create", "-f", "-", input=json.dumps(body))


@pytest.fixture(scope="module")
def release(kube_cluster: Any, helm: Helm) -> Iterator[Release]:
    """The chart installed once, into a namespace that enforces Pod Security `restricted`."""
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"crane-{suffix}", f"crane-helm-{suffix}"
    _create_namespace(kube_cluster, namespace)
    env = {**kube_cluster.env}
    try:
        out = helm.run(
            "install",
            name,
            str(CHART),
            "--namespace",
            namespace,
            "--set",
            "image.pullPolicy=Never",
            env=env,
        ).stdout
        manifest = helm.run("get", "manifest", name, "--namespace", namespace, env=env).stdout
        yield Release(name, namespace, load_all(manifest), out)
    finally:
        helm.run(
            "uninstall",
            name,
            "--namespace",
            namespace,
            "--wait",
            "--timeout",
            "120s",
            env=env,
            check=False,
        )
        _kubectl(kube_cluster, "delete", "namespace", namespace, "--wait=false", check=False)


def test_server_side_dry_run(kube_cluster: Any, helm: Helm) -> None:
    """Every object of the chart, CRDs included, passes the API server's validation and
    admission (a dry-run changes nothing)."""
    namespace = f"crane-dry-{uuid.uuid4().hex[:6]}"
    _create_namespace(kube_cluster, namespace)
    try:
        rendered = helm.run(
            *helm.template_args(
                "api.database.url=postgresql+psycopg://u:p@db/crane",
                "api.replicas=2",
                "api.persistence.enabled=true",
                "operator.verbose=true",
                namespace=namespace,
                extra=["--include-crds"],
            )
        ).stdout
        proc = _kubectl(
            kube_cluster,
            "apply",
            "--dry-run=server",
            "--server-side",
            "--field-manager=crane-helm-test",
            "-f",
            "-",
            input=rendered,
        )
        applied = [line for line in proc.stdout.splitlines() if line.strip()]
        assert len(applied) == len(load_all(rendered)), proc.stdout
    finally:
        _kubectl(kube_cluster, "delete", "namespace", namespace, "--wait=false", check=False)


def test_install_creates_every_object(kube_cluster: Any, release: Release) -> None:
    assert release.objects
    for obj in release.objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        args = ["get", kind, name, "-o", "json"]
        if obj["metadata"].get("namespace"):
            args += ["--namespace", obj["metadata"]["namespace"]]
        got = json.loads(_kubectl(kube_cluster, *args).stdout)
        assert got["metadata"]["labels"]["app.kubernetes.io/instance"] == release.name
    for crd in ("miniclusters.crane.io", "cargos.crane.io"):
        got = json.loads(_kubectl(kube_cluster, "get", "crd", crd, "-o", "json").stdout)
        established = {c["type"]: c["status"] for c in got["status"]["conditions"]}
        assert established.get("Established") == "True", crd


def test_install_notes(release: Release) -> None:
    assert "kubectl label node NODE crane.io/managed=true" in release.install_output
    assert "kubectl apply --server-side -f helm/crane/crds/" in release.install_output
    assert f"deploy/{release.name}-operator" in release.install_output


@pytest.mark.parametrize("component", ["operator", "api"])
def test_pods_pass_pod_security_restricted(
    kube_cluster: Any, release: Release, component: str
) -> None:
    """The ReplicaSet controller creates the pod in a namespace that enforces `restricted`:
    the securityContext is accepted by the API server's own Pod Security admission."""
    selector = f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component={component}"
    deadline = time.monotonic() + 60
    while True:
        pods = json.loads(
            _kubectl(
                kube_cluster, "get", "pods", "-n", release.namespace, "-l", selector, "-o", "json"
            ).stdout
        )["items"]
        if pods:
            break
        rs = json.loads(
            _kubectl(
                kube_cluster,
                "get",
                "replicasets",
                "-n",
                release.namespace,
                "-l",
                selector,
                "-o",
                "json",
            ).stdout
        )["items"]
        failures = [
            c.get("message", "")
            for r in rs
            for c in r["status"].get("conditions", [])
            if c["type"] == "ReplicaFailure"
        ]
        assert not failures, failures
        assert time.monotonic() < deadline, f"no {component} pod after 60s"
        time.sleep(1)
    assert len(pods) == 1


# --- RBAC, as the API server answers for the ServiceAccounts ----------------------------------


def _can_i(kube_cluster: Any, sa: str, namespace: str | None, args: list[str]) -> bool:
    cmd = ["auth", "can-i", *args, f"--as={sa}"]
    cmd += ["--namespace", namespace] if namespace else ["--all-namespaces"]
    proc = _kubectl(kube_cluster, *cmd, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl {' '.join(cmd)}: {proc.stderr.strip()}"
    return answer == "yes"


def _sa(release: Release, component: str) -> str:
    return f"system:serviceaccount:{release.namespace}:{release.name}-{component}"


@pytest.mark.parametrize("component", ["operator", "api"])
def test_service_accounts_can_do_every_rule(
    kube_cluster: Any, release: Release, component: str
) -> None:
    sa = _sa(release, component)
    denied = []
    for role in find(release.objects, "ClusterRole", component):
        for rule in rules_of(role):
            if not _can_i(kube_cluster, sa, None, rule.can_i):
                denied.append(rule)
    for role in find(release.objects, "Role", component):
        for rule in rules_of(role):
            if not _can_i(kube_cluster, sa, release.namespace, rule.can_i):
                denied.append(rule)
    assert not denied, f"{sa} lacks {denied}"


FORBIDDEN_EVERYWHERE = [
    ["get", "secrets"],
    ["list", "secrets"],
    ["watch", "secrets"],
    ["get", "configmaps"],
    ["delete", "nodes"],
    ["patch", "nodes"],
    ["update", "nodes"],
    ["create", "nodes"],
    ["patch", "nodes", "--subresource=status"],
    ["create", "pods", "--subresource=exec"],
    ["get", "pods", "--subresource=exec"],
    ["create", "pods", "--subresource=attach"],
    ["create", "pods", "--subresource=portforward"],
    ["escalate", "clusterroles.rbac.authorization.k8s.io"],
    ["bind", "clusterroles.rbac.authorization.k8s.io"],
    ["escalate", "roles.rbac.authorization.k8s.io"],
    ["bind", "roles.rbac.authorization.k8s.io"],
    ["create", "clusterroles.rbac.authorization.k8s.io"],
    ["create", "clusterrolebindings.rbac.authorization.k8s.io"],
    ["create", "roles.rbac.authorization.k8s.io"],
    ["create", "rolebindings.rbac.authorization.k8s.io"],
    ["impersonate", "users"],
    ["impersonate", "serviceaccounts"],
    ["create", "serviceaccounts", "--subresource=token"],
    ["create", "customresourcedefinitions.apiextensions.k8s.io"],
    ["delete", "customresourcedefinitions.apiextensions.k8s.io"],
    ["delete", "namespaces"],
    ["deletecollection", "pods"],
    ["update", "deployments.apps"],
    ["delete", "deployments.apps"],
    ["*", "*"],
]
FORBIDDEN_FOR_API = [
    ["create", "deployments.apps"],
    ["create", "pods"],
    ["delete", "pods"],
    ["patch", "pods"],
    ["update", "miniclusters.crane.io", "--subresource=status"],
    ["patch", "cargos.crane.io", "--subresource=status"],
    ["create", "services"],
    ["create", "leases.coordination.k8s.io"],
]
FORBIDDEN_FOR_OPERATOR = [
    ["create", "namespaces"],
    ["get", "pods", "--subresource=log"],
]


@pytest.mark.parametrize("component", ["operator", "api"])
def test_service_accounts_cannot_do_anything_else(
    kube_cluster: Any, release: Release, component: str
) -> None:
    sa = _sa(release, component)
    extra = FORBIDDEN_FOR_API if component == "api" else FORBIDDEN_FOR_OPERATOR
    allowed = []
    for args in FORBIDDEN_EVERYWHERE + extra:
        for namespace in (None, release.namespace, "kube-system"):
            if _can_i(kube_cluster, sa, namespace, args):
                allowed.append((args, namespace or "all namespaces"))
    assert not allowed, f"{sa} may {allowed}"


def test_operator_lease_is_only_its_own(kube_cluster: Any, release: Release) -> None:
    sa = _sa(release, "operator")
    lease = Rule("coordination.k8s.io", "leases", "update", "crane-operator").can_i
    other = Rule("coordination.k8s.io", "leases", "update", "someone-else").can_i
    create = Rule("coordination.k8s.io", "leases", "create").can_i
    assert _can_i(kube_cluster, sa, release.namespace, lease)
    assert not _can_i(kube_cluster, sa, release.namespace, other)
    assert not _can_i(kube_cluster, sa, "kube-system", lease)
    assert not _can_i(kube_cluster, sa, "kube-system", create)
    assert not _can_i(kube_cluster, sa, "kube-node-lease", ["update", "leases.coordination.k8s.io"])


def test_objects_match_the_rendered_chart(release: Release, helm: Helm) -> None:
    """`helm get manifest` is what `helm template` renders for the same values."""
    rendered = helm.template(
        "image.pullPolicy=Never", release=release.name, namespace=release.namespace
    )
    assert sorted((o["kind"], o["metadata"]["name"]) for o in rendered) == sorted(
        (o["kind"], o["metadata"]["name"]) for o in release.objects
    )
    assert one(release.objects, "Deployment", "operator")["spec"]["replicas"] == 1
