"""The CRDs and crane.model agree: every spec field exists on both sides, the examples validate
against both, and the CRD carries what kubectl users rely on (short names, scale, columns)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from crane.model.specs import CargoSpec, CargoStatus, MiniClusterSpec, MiniClusterStatus
from crane.model.topology import ALIASES

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "helm" / "crane" / "crds"


def crd(plural: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CRDS / f"{plural}.crane.io.yaml").read_text())
    return loaded


def schema(plural: str) -> dict[str, Any]:
    version = crd(plural)["spec"]["versions"][0]
    props: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]
    return props


def wire_fields(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def check(instance: Any, node: dict[str, Any], path: str = "") -> None:
    """A structural check: types, required fields and no field the schema would prune."""
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return
    kind = node.get("type")
    if instance is None:
        assert node.get("nullable"), f"{path}: null not allowed"
        return
    expected = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool}[kind]
    assert isinstance(instance, expected), f"{path}: {instance!r} is not {kind}"
    if kind == "object":
        for req in node.get("required", []):
            assert req in instance, f"{path}: missing required {req}"
        props = node.get("properties")
        for key, value in instance.items():
            if props is not None:
                assert key in props, f"{path}.{key} is not in the CRD schema (it would be pruned)"
                check(value, props[key], f"{path}.{key}")
            else:
                check(value, node["additionalProperties"], f"{path}.{key}")
    if kind == "array":
        for i, item in enumerate(instance):
            check(item, node["items"], f"{path}[{i}]")


@pytest.mark.parametrize(
    ("plural", "spec_model", "status_model"),
    [("miniclusters", MiniClusterSpec, MiniClusterStatus), ("cargos", CargoSpec, CargoStatus)],
)
def test_crd_fields_are_the_model_fields(
    plural: str, spec_model: type[BaseModel], status_model: type[BaseModel]
) -> None:
    props = schema(plural)
    assert set(props["spec"]["properties"]) == wire_fields(spec_model)
    assert set(props["status"]["properties"]) == wire_fields(status_model)


def test_status_in_wire_form_fits_the_crd() -> None:
    status = CargoStatus.model_validate(
        {"placement": [{"replica": 0, "node": "n", "gpuIds": [0, 1]}]}
    )
    check(status.model_dump(by_alias=True, mode="json"), schema("cargos")["status"], "status")
    mc = MiniClusterStatus.model_validate({"reservation": {"n": [0, 1]}, "queuePosition": 2})
    check(mc.model_dump(by_alias=True, mode="json"), schema("miniclusters")["status"], "status")


def examples() -> list[dict[str, Any]]:
    return [
        d
        for f in sorted((REPO / "examples").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d
    ]


@pytest.mark.parametrize("obj", examples(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_examples_validate_against_crd_and_model(obj: dict[str, Any]) -> None:
    plural = {"MiniCluster": "miniclusters", "Cargo": "cargos"}[obj["kind"]]
    check(obj["spec"], schema(plural)["spec"], "spec")
    model = MiniClusterSpec if plural == "miniclusters" else CargoSpec
    model.model_validate(obj["spec"])


@pytest.mark.parametrize("plural", ["miniclusters", "cargos"])
def test_crd_serves_what_kubectl_users_rely_on(plural: str) -> None:
    doc = crd(plural)
    assert doc["spec"]["names"]["shortNames"] == [{"miniclusters": "mc", "cargos": "cg"}[plural]]
    assert doc["spec"]["names"]["categories"] == ["crane"]
    version = doc["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    scale = version["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    assert {"Ready", "Age"} <= columns


def test_cel_rules_take_any_gpu_product_and_know_every_topology_alias() -> None:
    text = (CRDS / "miniclusters.crane.io.yaml").read_text()
    assert "H100|" not in text, "gpuType is a rule, not a list of families"
    gpu_rule = re.search(r"self\.matches\('(\^\[A-Za-z0-9\][^']*)'\)", text)
    assert gpu_rule is not None
    for good in ("Tesla-P40", "AMD-Instinct-MI300X", "H100,A100", "NVIDIA GeForce RTX 4090"):
        assert re.match(gpu_rule.group(1), good), good
    for bad in ("", "H100;rm", ",H100"):
        assert not re.match(gpu_rule.group(1), bad), bad
    for alias in ALIASES:
        assert f"'{alias}'" in text
