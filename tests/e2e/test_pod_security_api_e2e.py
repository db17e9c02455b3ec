"""The API's Kubernetes backend and Pod Security (issue 11 items 1-2) on a real control plane:
the tenant's namespace carries ``pod-security.kubernetes.io/enforce``, an admin changes it
through the API, and privileged / hostPID / hostNetwork / hostPath / extra-GPU templates answer
422 naming the field, with nothing created."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.operator_support import ADMIN, Stack

pytestmark = pytest.mark.e2e

LABEL = "pod-security.kubernetes.io/enforce"


def _template(spec: dict[str, Any] | None = None, **container: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "c", "image": "x", **container}], **(spec or {})}}


ESCAPES = [
    (_template(securityContext={"privileged": True}), "privileged"),
    (_template({"hostPID": True}), "hostPID"),
    (_template({"hostNetwork": True}), "hostNetwork"),
    (_template({"volumes": [{"name": "r", "hostPath": {"path": "/"}}]}), "hostPath"),
    (
        {
            "spec": {
                "containers": [
                    {"name": "c", "image": "x"},
                    {"name": "s", "image": "x", "resources": {"limits": {"nvidia.com/gpu": 8}}},
                ]
            }
        },
        "nvidia.com/gpu",
    ),
]


def test_tenant_level_is_the_namespace_label_and_escapes_are_422(stack: Stack) -> None:
    tenant = f"psa-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as api:
        made = api.post("/v1/tenants", json={"name": tenant, "podSecurity": "restricted"})
        assert made.status_code == 201, made.text
        try:
            labels = stack.core.read_namespace(tenant).metadata.labels
            assert labels[LABEL] == "restricted"
            changed = api.patch(f"/v1/tenants/{tenant}", json={"podSecurity": "baseline"})
            assert changed.status_code == 200 and changed.json()["podSecurity"] == "baseline"
            assert stack.core.read_namespace(tenant).metadata.labels[LABEL] == "baseline"
            mc = {"gpuType": "L40S", "gpus": {"min": 0, "max": 8}}
            r = api.post(
                "/v1/miniclusters", params={"tenant": tenant}, json={"name": "mc", "spec": mc}
            )
            assert r.status_code == 201, r.text
            for template, field in ESCAPES:
                r = api.post(
                    "/v1/cargos",
                    params={"tenant": tenant},
                    json={"name": "esc", "spec": {"miniCluster": "mc", "template": template}},
                )
                assert r.status_code == 422, (field, r.text)
                assert field in r.text
                assert api.get("/v1/cargos/esc", params={"tenant": tenant}).status_code == 404
            assert stack.core.list_namespaced_pod(tenant).items == []
        finally:
            api.delete("/v1/miniclusters/mc", params={"tenant": tenant})
            stack.core.delete_namespace(tenant, propagation_policy="Background")
