"""Pod templates are checked the way Kubernetes checks a PodTemplateSpec (issue 10 item 3), GPU
resources are Crane's alone (issue 11 item 2), and every count has a documented maximum
(issue 10 item 4): in the pure module, the specs (API and operator) and the CRDs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from crane.kube.builders import InvalidTemplateError, build_pod, validate_template
from crane.kube.crd_template import main as crd_template_main
from crane.model.podtemplate import POD_TEMPLATE_SCHEMA, is_accelerator_resource, template_errors
from crane.model.specs import CargoSpec, MiniClusterSpec, ReplicaPlacement

REPO = Path(__file__).resolve().parents[2]


def good() -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "train"}},
        "spec": {"containers": [{"name": "main", "image": "busybox", "env": []}]},
    }


def with_(path: str, value: Any) -> dict[str, Any]:
    """``good()`` with one field set; ``path`` is dotted, integers index lists."""
    template = good()
    node: Any = template
    steps = path.split(".")
    for step in steps[:-1]:
        node = node[int(step)] if step.isdigit() else node.setdefault(step, {})
    last = steps[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return template


# The malformed templates of issue 10 item 3, with the field path each error must name.
MALFORMED = [
    ("spec.containers.0.env", "x", "spec.containers[0].env"),
    ("spec.containers.0.env", [1], "spec.containers[0].env[0]"),
    ("spec.containers.0.resources", "x", "spec.containers[0].resources"),
    ("spec.containers.0.resources", {"limits": "x"}, "spec.containers[0].resources.limits"),
    ("metadata", "x", "metadata"),
    ("metadata.labels", "x", "metadata.labels"),
    ("metadata.labels", {"a": 1}, "metadata.labels.a"),
    ("spec.tolerations", "x", "spec.tolerations"),
    ("spec.containers", "x", "spec.containers"),
    ("spec.containers.0", "x", "spec.containers[0]"),
    ("spec.containers.0.command", "sleep 1", "spec.containers[0].command"),
    ("spec.hostNetwork", "yes", "spec.hostNetwork"),
    ("spec.volumes", [{"hostPath": {"path": "/"}}], "spec.volumes[0].name"),
]


@pytest.mark.parametrize(("field", "value", "path"), MALFORMED)
def test_malformed_template_names_the_field(field: str, value: Any, path: str) -> None:
    issues = template_errors(with_(field, value))
    assert [i.path for i in issues] == [path], issues
    with pytest.raises(ValidationError) as err:
        CargoSpec.model_validate({"miniCluster": "mc", "template": with_(field, value)})
    assert f"template.{path}" in str(err.value)
    raw = CargoSpec.model_construct(mini_cluster="mc", template=with_(field, value))
    with pytest.raises(InvalidTemplateError) as invalid:
        validate_template(raw)  # a template stored before the schema existed
    assert f"spec.template.{path}" in str(invalid.value)


def test_a_good_template_and_an_empty_one_pass() -> None:
    assert template_errors(good()) == []
    CargoSpec.model_validate({"miniCluster": "mc"})  # dry-runs need no template
    with pytest.raises(InvalidTemplateError, match=r"spec\.template\.spec\.containers"):
        validate_template(CargoSpec(mini_cluster="mc"))


def test_unknown_pod_fields_are_kept_open_but_typed_ones_are_checked() -> None:
    template = with_("spec.dnsConfig", {"nameservers": ["1.1.1.1"]})
    assert template_errors(template) == []
    assert [i.path for i in template_errors(with_("spec.containers.0.stdin", "no"))] == [
        "spec.containers[0].stdin"
    ]
    bad_env = with_("spec.containers.0.env", [{"name": "A", "value": "1", "junk": 1}])
    assert [i.path for i in template_errors(bad_env)] == ["spec.containers[0].env[0].junk"]


def test_containers_need_an_image_and_unique_names() -> None:
    template = good()
    template["spec"]["containers"].append({"name": "main"})
    paths = [i.path for i in template_errors(template)]
    assert "spec.containers[1].image" in paths and "spec.containers" in paths


@pytest.mark.parametrize(
    ("where", "resource"),
    [
        ("containers", "nvidia.com/gpu"),
        ("initContainers", "nvidia.com/gpu"),
        ("containers", "amd.com/gpu"),
        ("containers", "gpu.intel.com/i915"),
        ("containers", "nvidia.com/mig-1g.10gb"),
        ("containers", "example.org/gpu"),
        ("containers", "google.com/tpu"),
    ],
)
def test_accelerator_resources_anywhere_are_refused(where: str, resource: str) -> None:
    template = good()
    extra = {"name": "side", "image": "busybox", "resources": {"limits": {resource: 8}}}
    template["spec"].setdefault(where, []).append(extra)
    index = len(template["spec"][where]) - 1
    issues = template_errors(template)
    assert [i.path for i in issues] == [f"spec.{where}[{index}].resources.limits[{resource}]"]
    with pytest.raises(ValidationError, match="GPUs are Crane's"):
        CargoSpec.model_validate({"miniCluster": "mc", "gpusPerReplica": 1, "template": template})


def test_resource_claims_are_refused_and_cpu_memory_are_fine() -> None:
    template = with_("spec.resourceClaims", [{"name": "gpu"}])
    template["spec"]["containers"][0]["resources"] = {
        "claims": [{"name": "gpu"}],
        "limits": {"cpu": "2", "memory": "8Gi", "hugepages-2Mi": "1Gi"},
    }
    paths = sorted(i.path for i in template_errors(template))
    assert paths == ["spec.containers[0].resources.claims", "spec.resourceClaims"]
    for name in ("cpu", "memory", "ephemeral-storage", "hugepages-2Mi"):
        assert not is_accelerator_resource(name)


def test_pod_gets_only_cranes_gpus_on_every_container() -> None:
    """A second container's GPUs never reach the pod (issue 11 item 2: 9 GPUs on 8)."""
    template = good()
    template["spec"]["containers"].append({"name": "side", "image": "busybox"})
    template["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    spec = CargoSpec(mini_cluster="mc", replicas=1, gpus_per_replica=1, template=template)
    # a template stored before validation existed, with GPUs of its own
    raw = copy.deepcopy(spec.template)
    raw["spec"]["containers"][1]["resources"] = {"limits": {"nvidia.com/gpu": "8"}}
    raw["spec"]["initContainers"][0]["resources"] = {"requests": {"amd.com/gpu": "2"}}
    meta = {"name": "c", "namespace": "t", "uid": "u"}
    placement = ReplicaPlacement(replica=0, node="n0", gpu_ids=[3])
    pod = build_pod(meta, spec, placement)
    gpus = {
        c["name"]: int(((c.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", 0))
        for c in pod["spec"]["containers"] + pod["spec"]["initContainers"]
    }
    assert gpus == {"main": 1, "side": 0, "init": 0}
    sneaky = CargoSpec.model_construct(**{**dict(spec), "template": raw})
    with pytest.raises(InvalidTemplateError) as err:
        build_pod(meta, sneaky, placement)
    assert "spec.template.spec.containers[1].resources.limits[nvidia.com/gpu]" in str(err.value)
    assert "spec.template.spec.initContainers[0].resources.requests[amd.com/gpu]" in str(err.value)


@pytest.mark.parametrize("name", ["NVIDIA_VISIBLE_DEVICES", "AMD_VISIBLE_DEVICES"])
def test_env_that_makes_the_runtime_expose_gpus_is_refused(name: str) -> None:
    """``NVIDIA_VISIBLE_DEVICES=all`` in any container gives it every GPU of the node under the
    NVIDIA runtime, whatever Crane assigned: the template is refused, naming the variable."""
    template = good()
    template["spec"]["initContainers"] = [
        {"name": "init", "image": "busybox", "env": [{"name": name, "value": "all"}]}
    ]
    issues = template_errors(template)
    assert [i.path for i in issues] == ["spec.initContainers[0].env[0]"]
    assert name in issues[0].message
    with pytest.raises(ValidationError, match=name):
        CargoSpec.model_validate({"miniCluster": "mc", "gpusPerReplica": 1, "template": template})


@pytest.mark.parametrize("gpus", [0, 2])
def test_containers_without_cranes_gpus_see_none(gpus: int) -> None:
    """A CUDA image sets NVIDIA_VISIBLE_DEVICES=all itself: every container that Crane gave no
    GPU says ``void``, so the runtime exposes none of the node's GPUs to it."""
    template = good()
    template["spec"]["containers"].append({"name": "side", "image": "nvidia/cuda"})
    template["spec"]["initContainers"] = [{"name": "init", "image": "nvidia/cuda"}]
    spec = CargoSpec(mini_cluster="mc", replicas=1, gpus_per_replica=gpus, template=template)
    ids = list(range(gpus))
    pod = build_pod(
        {"name": "c", "namespace": "t", "uid": "u"},
        spec,
        ReplicaPlacement(replica=0, node="n0", gpu_ids=ids),
    )
    visible = {
        c["name"]: {e["name"]: e.get("value") for e in c.get("env") or []}.get(
            "NVIDIA_VISIBLE_DEVICES"
        )
        for c in pod["spec"]["containers"] + pod["spec"]["initContainers"]
    }
    assert visible == {"main": "void" if gpus == 0 else None, "side": "void", "init": "void"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gpuType": "H100", "gpus": {"min": 10**9, "max": 10**9}}, "gpus.min"),
        ({"gpuType": "H100", "gpus": {"min": 0, "max": 2**40}}, "gpus.max"),
        ({"gpuType": "H100", "gpus": {"min": 0, "max": 8}, "priority": 2**31}, "priority"),
        ({"gpuType": "H100", "gpus": {"min": 0, "max": 8}, "priority": -(2**31) - 1}, "priority"),
        (
            {
                "gpuType": "H100",
                "gpus": {"min": 0, "max": 8},
                "replicas": 10**9,
                "template": {"gpusPerReplica": 0},
            },
            "replicas",
        ),
        (
            {
                "gpuType": "H100",
                "gpus": {"min": 0, "max": 8},
                "template": {"replicas": 10**9, "gpusPerReplica": 0},
            },
            "template.replicas",
        ),
        (
            {"gpuType": "H100", "gpus": {"min": 0, "max": 8}, "template": {"gpusPerReplica": 65}},
            "template.gpusPerReplica",
        ),
        (
            {"gpuType": "H100", "gpus": {"min": 0, "max": 8}, "template": {"backoffLimit": 10**6}},
            "template.backoffLimit",
        ),
    ],
)
def test_minicluster_counts_have_maxima(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        MiniClusterSpec.model_validate(body)
    assert field in {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}


@pytest.mark.parametrize(
    ("field", "value"), [("replicas", 10**9), ("gpusPerReplica", 65), ("backoffLimit", 10**6)]
)
def test_cargo_counts_have_maxima(field: str, value: int) -> None:
    with pytest.raises(ValidationError):
        CargoSpec.model_validate({"miniCluster": "mc", field: value})
    MiniClusterSpec.model_validate(
        {"gpuType": "H100", "gpus": {"min": 100_000, "max": 100_000}, "priority": 10**9}
    )


def _crd(plural: str) -> dict[str, Any]:
    text = (REPO / "helm" / "crane" / "crds" / f"{plural}.crane.io.yaml").read_text()
    crd: dict[str, Any] = yaml.safe_load(text)
    spec: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    return spec["spec"]


def test_crds_carry_the_pod_template_schema_and_the_maxima() -> None:
    assert crd_template_main(["--check"]) == 0
    cargo, mc = _crd("cargos"), _crd("miniclusters")
    assert cargo["properties"]["template"] == POD_TEMPLATE_SCHEMA
    assert mc["properties"]["template"]["properties"]["template"] == POD_TEMPLATE_SCHEMA
    assert cargo["properties"]["replicas"]["maximum"] == 10_000
    assert cargo["properties"]["gpusPerReplica"]["maximum"] == 64
    gpus = mc["properties"]["gpus"]["properties"]
    assert gpus["min"]["maximum"] == gpus["max"]["maximum"] == 100_000
    assert mc["properties"]["priority"]["maximum"] == 1_000_000_000
    assert mc["properties"]["priority"]["minimum"] == -(2**31)
    assert mc["properties"]["replicas"]["maximum"] == 10_000
    assert mc["properties"]["template"]["properties"]["replicas"]["maximum"] == 10_000


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("labels", "crane.io/cargo"),
        ("labels", "crane.io/replica"),
        ("labels", "crane.io/rendezvous"),
        ("labels", "crane.io/app-manager"),
        ("labels", "crane.io/master-port"),
        ("annotations", "crane.io/gpu-ids"),
        ("annotations", "crane.io/notice"),
    ],
)
def test_a_template_may_not_set_cranes_own_keys(kind: str, key: str) -> None:
    """A template labelling its pods ``crane.io/cargo`` or annotating ``crane.io/notice`` would
    pass them off as another replica or post Crane's notices: refused, naming the key, on the
    API's model and the operator's check alike."""
    template = good()
    template["metadata"].setdefault(kind, {})[key] = "x"
    issues = template_errors(template)
    assert [i.path for i in issues] == [f"metadata.{kind}[{key}]"]
    assert "Crane's own" in issues[0].message
    body = {"miniCluster": "mc", "gpusPerReplica": 1, "template": template}
    with pytest.raises(ValidationError, match=key):
        CargoSpec.model_validate(body)
    with pytest.raises(InvalidTemplateError, match=key):
        validate_template(CargoSpec.model_construct(mini_cluster="mc", template=template))


def test_a_template_may_set_the_annotations_meant_for_it() -> None:
    """``crane.io/master-port`` and ``crane.io/ulimits`` are a template's to set; keys of other
    prefixes ending in crane.io (``sim.crane.io/run-for``, kwok's) are not Crane's."""
    template = good()
    template["metadata"]["annotations"] = {
        "crane.io/master-port": "29500",
        "crane.io/ulimits": "nofile=1024",
        "sim.crane.io/run-for": "5s",
    }
    template["metadata"]["labels"]["sim.crane.io/exit-code"] = "0"
    assert template_errors(template) == []


def _refused_everywhere(template: dict[str, Any], path: str, words: str) -> None:
    """``template`` is refused by the pure rule, by the spec the API and the operator parse
    (the operator marks a stored cargo InvalidSpec), and by the pod builder, naming ``path``."""
    issues = template_errors(template)
    assert path in [i.path for i in issues], issues
    assert any(words in i.message for i in issues if i.path == path), issues
    with pytest.raises(ValidationError, match=f"template.{path}".replace("[", r"\[")):
        CargoSpec.model_validate({"miniCluster": "mc", "gpusPerReplica": 1, "template": template})
    sneaky = CargoSpec.model_construct(
        mini_cluster="mc", replicas=1, gpus_per_replica=1, template=template
    )
    with pytest.raises(InvalidTemplateError, match=path.replace("[", r"\[")):
        build_pod(
            {"name": "c", "namespace": "t", "uid": "u"},
            sneaky,
            ReplicaPlacement(replica=0, node="n0", gpu_ids=[0]),
        )


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"priorityClassName": "system-node-critical"}, "spec.priorityClassName"),
        ({"priorityClassName": "system-cluster-critical"}, "spec.priorityClassName"),
        ({"priority": 2_000_001_000}, "spec.priority"),
    ],
)
def test_a_critical_priority_that_makes_the_kubelet_evict_others_is_refused(
    spec: dict[str, Any], path: str
) -> None:
    """Crane binds each pod to its node, so no scheduler preempts for it; but the kubelet admits
    a critical pod (system-node-critical, system-cluster-critical, priority 2000000000 and up)
    that does not fit by evicting the node's other pods, other tenants' replicas on GPUs Crane
    gave them. A template asking for such a priority is refused; a tenant's own class is not."""
    template = good()
    template["spec"].update(spec)
    _refused_everywhere(template, path, "evict")
    fine = good()
    fine["spec"]["priorityClassName"] = "team-high"
    assert template_errors(fine) == []


@pytest.mark.parametrize("where", ["containers", "initContainers"])
@pytest.mark.parametrize("prefix", [None, "", "NVIDIA_", "AMD_VISIBLE"])
def test_env_from_that_could_name_the_gpu_variables_is_refused(
    where: str, prefix: str | None
) -> None:
    """A ConfigMap holding ``NVIDIA_VISIBLE_DEVICES=all`` given by ``envFrom`` (no prefix, or one
    the variable starts with) reaches the GPU container after the device plugin's value and
    wins: the runtime exposes every GPU of the node. Refused, naming the entry; a prefix no
    GPU variable starts with is fine."""
    source: dict[str, Any] = {"configMapRef": {"name": "gpus"}}
    if prefix is not None:
        source["prefix"] = prefix
    template = good()
    template["spec"].setdefault(where, [{"name": "init", "image": "busybox"}])
    template["spec"][where][0]["envFrom"] = [{"secretRef": {"name": "s"}, "prefix": "APP_"}, source]
    _refused_everywhere(template, f"spec.{where}[0].envFrom[1]", "NVIDIA_VISIBLE_DEVICES")
    template["spec"][where][0]["envFrom"][1]["prefix"] = "CFG_"
    assert template_errors(template) == []


@pytest.mark.parametrize(
    "mount",
    [
        "/var/run/nvidia-container-devices/all",
        "/var/run/nvidia-container-devices",
        "//var/run/./nvidia-container-devices/GPU-1",
        "/run/nvidia-container-devices/all",
    ],
)
def test_a_mount_where_the_runtime_reads_gpu_requests_is_refused(mount: str) -> None:
    """With the NVIDIA runtime's volume-mount device list (the setting that stops pods picking
    GPUs by env), a mount at ``/var/run/nvidia-container-devices/all`` asks for every GPU of
    the node: refused at that path in every container, in both backends."""
    template = good()
    template["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    template["spec"]["containers"][0]["volumeMounts"] = [{"name": "v", "mountPath": mount}]
    _refused_everywhere(template, "spec.containers[0].volumeMounts[0].mountPath", "GPU")
    template["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] = "/var/run/app"
    assert template_errors(template) == []


@pytest.mark.parametrize(
    "key",
    ["cdi.k8s.io/gpus", "cdi-devices.nri.io/container.main", "devices.noderesource.dev/pod"],
)
def test_annotations_that_inject_devices_are_refused(key: str) -> None:
    """``cdi.k8s.io/gpus: nvidia.com/gpu=all`` on a pod (a runtime reading CDI annotations, or an
    NRI device-injector plugin) would add every GPU of the node to the container: refused,
    naming the annotation; other annotations pass."""
    template = good()
    template["metadata"]["annotations"] = {key: "nvidia.com/gpu=all", "team": "ml"}
    _refused_everywhere(template, f"metadata.annotations[{key}]", "devices")
