"""The chart rendered and linted offline: structure, values, schema, RBAC against the docs."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import (
    CHART,
    CRDS,
    REPO,
    Helm,
    Rule,
    container,
    find,
    flags,
    load_all,
    one,
    rules_of,
)

SM_API = "monitoring.coreos.com/v1/ServiceMonitor"


@pytest.fixture(scope="module")
def default(helm: Helm) -> list[dict[str, Any]]:
    return helm.template()


CLUSTER_SCOPED = (
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
)


def test_app_version_is_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]


def test_crds_are_the_operators_three_kinds() -> None:
    names = sorted(yaml.safe_load(p.read_text())["metadata"]["name"] for p in CRDS.glob("*.yaml"))
    assert names == ["cargos.crane.io", "miniclusters.crane.io", "tenantshares.crane.io"]


def test_lint_strict(helm: Helm) -> None:
    proc = helm.run("lint", "--strict", "--kube-version", helm.kube_version, str(CHART))
    assert "0 chart(s) failed" in proc.stdout


def test_lint_strict_with_every_option_on(helm: Helm, tmp_path: Path) -> None:
    values = tmp_path / "all.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "image": {"digest": "sha256:" + "a" * 64},
                "imagePullSecrets": [{"name": "regcred"}],
                "commonLabels": {"team": "ml"},
                "api": {
                    "replicas": 3,
                    "database": {"existingSecret": "crane-db"},
                    "bootstrapToken": {"existingSecret": "crane-admin"},
                    "persistence": {"enabled": True, "storageClassName": "fast"},
                    "service": {"type": "LoadBalancer"},
                },
                "metrics": {
                    "serviceMonitor": {
                        "enabled": True,
                        "force": True,
                        "labels": {"release": "prom"},
                    }
                },
                "operator": {
                    "extraArgs": ["--verbose"],
                    "extraEnv": [{"name": "X", "value": "1"}],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                },
            }
        )
    )
    helm.run(
        "lint", "--strict", "--kube-version", helm.kube_version, "--values", str(values), str(CHART)
    )
    objects = helm.template(values=[values])
    assert len(find(objects, "ServiceMonitor")) == 2
    assert not find(objects, "Secret"), "an existing database Secret must not be duplicated"


def test_default_objects(default: list[dict[str, Any]]) -> None:
    kinds = sorted(
        (o["kind"], o["metadata"]["labels"]["app.kubernetes.io/component"]) for o in default
    )
    assert kinds == sorted(
        [
            ("ServiceAccount", "operator"),
            ("ClusterRole", "operator"),
            ("ClusterRoleBinding", "operator"),
            ("Role", "operator"),
            ("RoleBinding", "operator"),
            ("Deployment", "operator"),
            ("Service", "operator"),
            ("ValidatingAdmissionPolicy", "operator"),
            ("ValidatingAdmissionPolicyBinding", "operator"),
            ("ServiceAccount", "api"),
            ("ClusterRole", "api"),
            ("ClusterRoleBinding", "api"),
            ("Deployment", "api"),
            ("Service", "api"),
            ("Secret", "api"),
        ]
    )


def test_every_object_has_the_standard_labels(default: list[dict[str, Any]]) -> None:
    for obj in default:
        labels = obj["metadata"]["labels"]
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/component",
            "app.kubernetes.io/part-of",
            "helm.sh/chart",
        ):
            assert labels.get(key), f"{obj['kind']} {obj['metadata']['name']} lacks {key}"
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] == "crane-system"


def test_operator_deployment(default: list[dict[str, Any]]) -> None:
    dep = one(default, "Deployment", "operator")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    c = container(dep)
    assert c["image"] == "crane:0.1.0"
    assert c["args"][0] == "operator"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 9090, "health": 8080}
    assert flags(dep)["metrics-port"] == "9090"
    assert flags(dep)["liveness"] == "http://0.0.0.0:8080/healthz"
    assert flags(dep)["lease-namespace"] == "$(POD_NAMESPACE)"
    assert flags(dep)["lease-name"] == "crane-operator"
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "t-crane-operator"
    svc = one(default, "Service", "operator")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_api_deployment_and_service(default: list[dict[str, Any]]) -> None:
    dep = one(default, "Deployment", "api")
    c = container(dep)
    assert c["args"] == ["serve", "--log-level=info"]
    env = {e["name"]: e for e in c["env"]}
    assert env["CRANE_HOST"]["value"] == "0.0.0.0"
    assert env["CRANE_BACKEND"]["value"] == "kube"
    assert env["CRANE_PORT"]["value"] == "8000"
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    svc = one(default, "Service", "api")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "t-crane-api"


@pytest.mark.parametrize("component", ["operator", "api"])
def test_pods_are_locked_down(default: list[dict[str, Any]], component: str) -> None:
    dep = one(default, "Deployment", component)
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(dep)
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert "/tmp" in mounts, "a read-only root needs a writable /tmp"


def test_database_url_comes_from_a_created_secret(helm: Helm) -> None:
    url = "postgresql+psycopg://crane:s3cret@db:5432/crane"
    objects = helm.template(f"api.database.url={url}", "api.replicas=2")
    secret = one(objects, "Secret", "api")
    assert secret["stringData"] == {"url": url}
    env = {e["name"]: e for e in container(one(objects, "Deployment", "api"))["env"]}
    assert env["CRANE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"],
        "key": "url",
    }
    assert "strategy" not in one(objects, "Deployment", "api")["spec"]
    assert url not in json.dumps(one(objects, "Deployment", "api")), "the URL leaked into the pod"


def test_database_url_from_an_existing_secret(helm: Helm) -> None:
    objects = helm.template(
        "api.database.existingSecret=my-db", "api.database.existingSecretKey=dsn"
    )
    assert not find(objects, "Secret")
    env = {e["name"]: e for e in container(one(objects, "Deployment", "api"))["env"]}
    assert env["CRANE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "my-db", "key": "dsn"}


def test_bootstrap_token_from_an_existing_secret(helm: Helm) -> None:
    objects = helm.template("api.bootstrapToken.existingSecret=admin")
    env = {e["name"]: e for e in container(one(objects, "Deployment", "api"))["env"]}
    assert env["CRANE_BOOTSTRAP_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "admin",
        "key": "token",
    }


def test_sqlite_with_several_api_replicas_is_refused(helm: Helm) -> None:
    proc = helm.run(*helm.template_args("api.replicas=2"), check=False)
    assert proc.returncode != 0
    assert "api.replicas > 1 needs a shared database" in proc.stderr


def test_api_can_be_left_out(helm: Helm) -> None:
    objects = helm.template("api.enabled=false")
    assert {o["metadata"]["labels"]["app.kubernetes.io/component"] for o in objects} == {"operator"}


def _topology_keys(deployment: dict[str, Any]) -> list[str]:
    return [
        a.split("=", 1)[1] for a in container(deployment)["args"] if a.startswith("--topology-key=")
    ]


def test_topology_levels_default(default: list[dict[str, Any]]) -> None:
    assert _topology_keys(one(default, "Deployment", "operator")) == [
        "zone=topology.kubernetes.io/zone",
        "block=crane.io/block",
        "rack=crane.io/rack",
        "nvlink=nvidia.com/gpu.clique",
        "node=kubernetes.io/hostname",
    ]


def test_topology_levels_provider_keys(helm: Helm) -> None:
    objects = helm.template(
        "topology.levels.block=cloud.google.com/gce-topology-block",
        "topology.levels.rack=topology.k8s.aws/network-node-layer-3",
    )
    assert _topology_keys(one(objects, "Deployment", "operator")) == [
        "zone=topology.kubernetes.io/zone",
        "block=cloud.google.com/gce-topology-block",
        "rack=topology.k8s.aws/network-node-layer-3",
        "nvlink=nvidia.com/gpu.clique",
        "node=kubernetes.io/hostname",
    ]


def test_topology_levels_match_the_model() -> None:
    from crane.model.topology import ALIASES, DEFAULT_LEVEL_KEYS

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["topology"]["levels"] == DEFAULT_LEVEL_KEYS
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert f"list {' '.join(json.dumps(a) for a in ALIASES)}" in helpers


# --- the rendered command lines are the ones `crane` accepts ----------------------------------


def _parse(argv: list[str]) -> dict[str, Any]:
    """Parse a container's args with the real `crane` click command, without running it."""
    import typer.main

    from crane.cli.main import app

    root = typer.main.get_command(app)
    sub = root.get_command(root.make_context("crane", list(argv), resilient_parsing=True), argv[0])
    assert sub is not None, f"crane has no sub-command {argv[0]!r}"
    return dict(sub.make_context(argv[0], list(argv[1:])).params)


def test_operator_args_are_accepted_by_crane_operator(helm: Helm) -> None:
    objects = helm.template(
        "operator.verbose=true",
        "operator.leaseSeconds=20",
        "topology.levels.block=cloud.google.com/gce-topology-block",
    )
    params = _parse(container(one(objects, "Deployment", "operator"))["args"])
    assert params["lease_name"] == "crane-operator"
    assert params["lease_seconds"] == 20
    assert params["node_grace"] == 60
    assert params["metrics_port"] == 9090
    assert params["liveness"] == "http://0.0.0.0:8080/healthz"
    assert params["verbose"] is True
    from crane.model.topology import TopologyLevels

    keys = dict(item.split("=", 1) for item in params["topology_key"])
    assert TopologyLevels.with_keys(keys).key("block") == "cloud.google.com/gce-topology-block"


def test_api_args_and_env_are_accepted_by_crane_serve(default: list[dict[str, Any]]) -> None:
    from crane.api.settings import ApiSettings

    c = container(one(default, "Deployment", "api"))
    assert _parse(c["args"])["log_level"] == "info"
    env = {e["name"]: e.get("value", "from-secret") for e in c["env"]}
    crane_env = {k: v for k, v in env.items() if k.startswith("CRANE_")}
    fields = {f"CRANE_{name.upper()}" for name in ApiSettings.model_fields}
    assert set(crane_env) <= fields, f"unknown settings: {set(crane_env) - fields}"
    settings = ApiSettings(**{k.removeprefix("CRANE_").lower(): v for k, v in crane_env.items()})
    assert (settings.host, settings.port, settings.backend.value) == ("0.0.0.0", 8000, "kube")


def test_notes_name_the_model_keys() -> None:
    from crane.model.inventory import (
        GPU_PRODUCT_LABEL,
        GPU_RESOURCE,
        ISLANDS_ANNOTATION,
        MANAGED_LABEL,
    )

    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert f"kubectl label node NODE {MANAGED_LABEL}=true" in notes
    assert f"kubectl taint node NODE {MANAGED_LABEL}=true:NoSchedule" in notes
    for key in (GPU_RESOURCE, GPU_PRODUCT_LABEL, ISLANDS_ANNOTATION):
        assert key in notes


def test_service_monitor_is_off_by_default(helm: Helm) -> None:
    objects = helm.template(extra=["--api-versions", SM_API])
    assert not find(objects, "ServiceMonitor")


def test_service_monitor_needs_its_api_or_force(helm: Helm) -> None:
    assert not find(helm.template("metrics.serviceMonitor.enabled=true"), "ServiceMonitor")
    on = "metrics.serviceMonitor.enabled=true"
    with_api = helm.template(on, extra=["--api-versions", SM_API])
    forced = helm.template(on, "metrics.serviceMonitor.force=true")
    for objects in (with_api, forced):
        monitors = {
            m["metadata"]["labels"]["app.kubernetes.io/component"]: m
            for m in find(objects, "ServiceMonitor")
        }
        assert sorted(monitors) == ["api", "operator"]
        for component, port in (("operator", "metrics"), ("api", "http")):
            svc = one(objects, "Service", component)
            spec = monitors[component]["spec"]
            assert spec["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
            assert spec["endpoints"][0]["port"] == port
            assert port in {p["name"] for p in svc["spec"]["ports"]}


BAD_VALUES = [
    ("operator.bogus=1", "additional properties 'bogus' not allowed"),
    ("podSecurityContext.runAsUser=0", "/podSecurityContext/runAsUser"),
    ("topology.levels.node=null", "missing property 'node'"),
    ("topology.levels.block=null", "missing property 'block'"),
    ("topology.levels.fabric=x", "additional properties 'fabric' not allowed"),
    ("topology.levels.rack=not a label!", "/topology/levels/rack"),
    ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
    ("image.digest=sha1:abc", "/image/digest"),
    ("api.database.url=mysql://x", "/api/database/url"),
    ("api.replicas=0", "/api/replicas"),
    ("operator.metricsPort=70000", "/operator/metricsPort"),
    ("operator.healthPort=0", "/operator/healthPort"),
    ("api.logLevel=loud", "/api/logLevel"),
    ("operator.leaseSeconds=0", "/operator/leaseSeconds"),
    ("operator.extraArgs[0]=operator", "/operator/extraArgs/0"),
    ("gpu.resourceName=amd.com/gpu", "additional properties 'gpu' not allowed"),
    ("metrics.serviceMonitor.interval=often", "/metrics/serviceMonitor/interval"),
    ("rbac.create=maybe", "/rbac/create"),
]


@pytest.mark.parametrize(("item", "message"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_schema_rejects_bad_values(helm: Helm, item: str, message: str) -> None:
    for cmd in (
        helm.template_args(item),
        ["lint", "--strict", "--kube-version", helm.kube_version, str(CHART), "--set", item],
    ):
        proc = helm.run(*cmd, check=False)
        assert proc.returncode != 0, f"helm {cmd[0]} accepted {item}"
        assert message in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_schema_is_strict_everywhere() -> None:
    """Every object in the schema either lists its keys (additionalProperties false) or is a
    free-form map on purpose (labels, annotations, resources, Kubernetes pass-throughs)."""
    free_form = {
        "global",
        "commonLabels",
        "annotations",
        "podAnnotations",
        "podLabels",
        "nodeSelector",
        "affinity",
        "labels",
        "requests",
        "limits",
        "valueFrom",
    }
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: dict[str, Any], name: str) -> None:
        if node.get("type") == "object" and name not in free_form:
            assert node.get("additionalProperties") is False, f"{name} is not strict"
        for key, sub in node.get("properties", {}).items():
            walk(sub, key)
        if isinstance(node.get("items"), dict) and node["items"].get("properties"):
            walk(node["items"], name + "[]")

    walk(schema, "values")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])


# --- RBAC: what the chart grants is exactly what the code's documentation lists ---------------


def _doc_rules(section: str) -> set[Rule]:
    """The rules of one table of docs/operator-rbac.md (`## ... <section>` heading)."""
    text = (REPO / "docs" / "operator-rbac.md").read_text()
    body = re.split(r"^## ", text, flags=re.M)
    table = next(part for part in body if part.startswith(section + " "))
    out: set[Rule] = set()
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        group = cells[0].split("`")[1].replace('""', "")
        resources = re.findall(r"`([a-z/]+)`", cells[1])
        verbs = [v.strip() for v in cells[2].split(",")]
        out |= {Rule(group, r, v) for r in resources for v in verbs}
    return out


def _unnamed(rules: set[Rule]) -> set[Rule]:
    return {Rule(r.group, r.resource, r.verb) for r in rules}


def test_operator_cluster_role_is_the_documented_one(default: list[dict[str, Any]]) -> None:
    role = one(default, "ClusterRole", "operator")
    assert set(rules_of(role)) == _doc_rules("ClusterRole")


def test_operator_lease_role_is_the_documented_one(default: list[dict[str, Any]]) -> None:
    role = one(default, "Role", "operator")
    assert _unnamed(set(rules_of(role))) == _doc_rules("Role")
    named = {r for r in rules_of(role) if r.verb in ("get", "update")}
    assert {r.name for r in named} == {"crane-operator"}, "get/update only the leader Lease"


# What crane/api/kube.py calls, as (group, resource, verb).
API_RULES = {
    *(Rule("crane.io", "miniclusters", v) for v in ("get", "list", "create", "patch", "delete")),
    *(Rule("crane.io", "cargos", v) for v in ("get", "list", "watch", "create", "delete")),
    Rule("crane.io", "tenantshares", "list"),  # tenants' shares (GET /v1/tenants, dry-runs)
    Rule("", "namespaces", "get"),
    Rule("", "namespaces", "list"),  # the namespaces TenantShares select
    Rule("", "namespaces", "create"),
    Rule("", "namespaces", "patch"),  # the tenant's pod-security.kubernetes.io/enforce label
    Rule("", "nodes", "list"),
    Rule("", "pods", "list"),
    Rule("", "pods/log", "get"),
    Rule("resource.k8s.io", "resourceslices", "list"),  # DRA nodes' GPUs (GPU map, dry-runs)
    Rule("resource.k8s.io", "resourceclaims", "list"),  # devices other claims hold
}


def test_api_cluster_role_is_what_the_backend_calls(default: list[dict[str, Any]]) -> None:
    assert set(rules_of(one(default, "ClusterRole", "api"))) == API_RULES


FORBIDDEN_RESOURCES = {
    "secrets",
    "configmaps",
    "serviceaccounts",
    "serviceaccounts/token",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "nodes/proxy",
    "clusterroles",
    "clusterrolebindings",
    "roles",
    "rolebindings",
    "customresourcedefinitions",
    "users",
    "groups",
    "*",
}


def test_no_role_grants_dangerous_power(default: list[dict[str, Any]]) -> None:
    for role in find(default, "ClusterRole") + find(default, "Role"):
        for rule in rules_of(role):
            where = f"{role['metadata']['name']}: {rule}"
            if rule.resource == "secrets":
                # the operator's app manager token Secrets: created, never read
                operator = role["metadata"]["name"].endswith("-operator")
                assert operator and rule.verb == "create", where
            else:
                assert rule.resource not in FORBIDDEN_RESOURCES, where
            assert rule.verb not in {"*", "escalate", "bind", "impersonate"}, where
            assert rule.group != "*", where
            if rule.resource == "nodes":
                assert rule.verb in {"get", "list", "watch"}, where


def test_bindings_point_at_the_chart_service_accounts(default: list[dict[str, Any]]) -> None:
    for binding in find(default, "ClusterRoleBinding") + find(default, "RoleBinding"):
        component = binding["metadata"]["labels"]["app.kubernetes.io/component"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"t-crane-{component}", "namespace": "crane-system"}
        ]
        kind = "Role" if binding["kind"] == "RoleBinding" else "ClusterRole"
        assert binding["roleRef"]["name"] == one(default, kind, component)["metadata"]["name"]


def test_rendered_yaml_round_trips(helm: Helm) -> None:
    """No template emits a duplicate key or a stray document (yaml would hide it)."""
    text = helm.run(*helm.template_args(extra=["--include-crds"])).stdout
    objects = load_all(text)
    assert len(find(objects, "CustomResourceDefinition")) == 3
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names))
