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
