"""TenantShare resources: the CRD and crane.model agree (fields, maxima), namespaces are selected
by name and by label, and the operator's decision pass applies the shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from crane.lifecycle.decide import Decider
from crane.model.shares import (
    MAX_NAMESPACES,
    MAX_SHARES,
    MAX_WEIGHT,
    TenantShare,
    TenantShareSpec,
)
from crane.model.specs import MAX_GPUS
from crane.placement import Engine
from tests.unit.test_operator_decide import new_cache, node, settle

CRD = Path(__file__).resolve().parents[2] / "helm" / "crane" / "crds" / "tenantshares.crane.io.yaml"


def spec_schema() -> dict[str, Any]:
    doc = yaml.safe_load(CRD.read_text())
    assert doc["spec"]["scope"] == "Cluster"
    assert doc["spec"]["names"]["categories"] == ["crane"]
    known = {"name", "type", "jsonPath", "description", "priority", "format"}
    for column in doc["spec"]["versions"][0]["additionalPrinterColumns"]:
        assert set(column) <= known, column  # a stray key is refused by the API server
    props: dict[str, Any] = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    return props["spec"]


def aliases(model: Any) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def test_crd_fields_and_maxima_are_the_models() -> None:
    spec = spec_schema()
    assert set(spec["properties"]) == aliases(TenantShareSpec)
    shares = spec["properties"]["shares"]
    item = shares["items"]["properties"]
    assert set(item) == aliases(TenantShare)
    assert shares["maxItems"] == MAX_SHARES
    assert shares["x-kubernetes-list-map-keys"] == ["gpuType"]  # one share per type
    assert spec["properties"]["namespaces"]["maxItems"] == MAX_NAMESPACES
    for field in ("nominal", "borrowingLimit", "lendingLimit"):
        assert item[field]["maximum"] == MAX_GPUS
        assert item[field]["description"]
    assert item["weight"]["maximum"] == MAX_WEIGHT
    assert item["weight"]["exclusiveMinimum"] is True
    rules = " ".join(
        r["rule"]
        for r in shares["items"]["x-kubernetes-validations"] + spec["x-kubernetes-validations"]
    )
    assert "self.lendingLimit <= self.nominal" in rules
    assert "namespaceSelector" in rules


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def tenantshare(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "crane.io/v1alpha1",
        "kind": "TenantShare",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_namespaces_are_selected_by_name_and_by_label() -> None:
    cache = new_cache(
        ("namespaces", namespace("research", team="a")),
        ("namespaces", namespace("research-dev", team="a")),
        ("namespaces", namespace("prod")),
        ("namespaces", namespace("other")),
        (
            "tenantshares",
            tenantshare(
                "team-a",
                {
                    "namespaceSelector": {"matchLabels": {"team": "a"}},
                    "shares": [{"gpuType": "H100", "nominal": 8}],
                },
            ),
        ),
        (
            "tenantshares",
            tenantshare("team-b", {"namespaces": ["prod"], "shares": [{"gpuType": "H100"}]}),
        ),
    )
    table = cache.share_table()
    assert [table.tenant_of(f"{ns}/mc") for ns in ("research", "research-dev", "prod")] == [
        "team-a",
        "team-a",
        "team-b",
    ]
    assert table.tenant_of("other/mc") == "namespace:other"  # a tenant of its own, no share
    cache.apply("namespaces", "MODIFIED", namespace("research-dev"))  # label removed
    assert cache.share_table().tenant_of("research-dev/mc") == "namespace:research-dev"
    cache.apply("tenantshares", "DELETED", {"metadata": {"name": "team-a"}})
    assert cache.share_table().tenant_of("research/mc") == "namespace:research"


def minicluster(namespace_: str, name: str, low: int) -> dict[str, Any]:
    return {
        "apiVersion": "crane.io/v1alpha1",
        "kind": "MiniCluster",
        "metadata": {
            "name": name,
            "namespace": namespace_,
            "uid": f"uid-{namespace_}-{name}",
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"gpuType": "H100", "gpus": {"min": low, "max": low}},
    }


def test_the_operator_applies_a_tenantshare_borrowing_limit() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("nodes", node("n1")),
        ("namespaces", namespace("research")),
        (
            "tenantshares",
            tenantshare(
                "team-a",
                {
                    "namespaces": ["research"],
                    "shares": [{"gpuType": "H100", "nominal": 4, "borrowingLimit": 2}],
                },
            ),
        ),
        ("miniclusters", minicluster("research", "big", 8)),
        ("miniclusters", minicluster("research", "fits", 6)),
    )
    decider = Decider(Engine())
    settle(decider, cache)
    big = cache.miniclusters["research/big"]["status"]
    fits = cache.miniclusters["research/fits"]["status"]
    assert fits["reservedGpus"] == 6
    assert big.get("reservedGpus", 0) == 0
    assert "tenant team-a would use" in big["message"]
    assert "over its guarantee 4 + borrowing limit 2" in big["message"]
    usage = {(u.tenant, u.in_use, u.borrowing) for u in decider.engine.tenant_usage()}
    assert usage == {("team-a", 6, 2)}
