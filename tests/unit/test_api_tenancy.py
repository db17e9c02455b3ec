"""No foreign names: what another tenant's objects look like to a caller (counts, never
names; an admin sees names), and which namespaces can never become tenants."""

from __future__ import annotations

import pytest

from crane.api.auth import Principal
from crane.api.kube_snapshot import dry_run_minicluster, explanation_out
from crane.api.schemas import ExplainResult, Scope
from crane.api.settings import ApiSettings
from crane.api.tenancy import Viewer, dry_run_for, explain_for, reserved_reason
from crane.model import GpuRange, MiniClusterSpec
from crane.model.keys import named_for
from crane.placement import Outcome
from tests.unit.placement_helpers import cargo, cluster, mc

ADMIN = Principal("adm", Scope.ADMIN, None, None)
TENANT_B = Principal("tb", Scope.TENANT, "iso-b", None)
MC_TOKEN = Principal("mb", Scope.MINICLUSTER, "iso-a", "other-mc")


def _borrowed_by_tenant_a():  # type: ignore[no-untyped-def]
    e = cluster(racks=1, nodes_per_rack=2)
    e.submit_minicluster(mc("iso-a/lo", 0, 16))
    e.submit_minicluster(mc("iso-b/mine", 0, 16))
    e.admit()
    for i in range(3):
        placed = e.place_cargo(cargo(f"iso-a/lo-{i}", "iso-a/lo", 1, 4, created=i))
        assert placed.outcome is Outcome.PLACED
    assert e.place_cargo(cargo("iso-b/own-0", "iso-b/mine", 1, 4, created=9)).outcome is (
        Outcome.PLACED
    )
    return e


def test_dry_run_of_another_tenant_counts_foreign_cargos_and_names_none() -> None:
    engine = _borrowed_by_tenant_a()
    spec = MiniClusterSpec(gpu_type="H100", gpus=GpuRange(min=16, max=16), priority=100)
    raw = dry_run_minicluster(engine, "iso-b", spec)
    assert raw.explanation is not None and raw.explanation.preemptible_cargos  # engine knows
    for viewer, tenant in ((TENANT_B, "iso-b"), (MC_TOKEN, "iso-a")):
        seen = dry_run_for(raw, Viewer(viewer, tenant))
        text = seen.model_dump_json(by_alias=True)
        assert "iso-a/lo" not in text and "lo-1" not in text, text
        assert seen.explanation is not None
        hidden = seen.explanation.other_preemptible_cargos
        assert hidden >= 1 and hidden + len(seen.explanation.preemptible_cargos) == len(
            raw.explanation.preemptible_cargos
        )
    b = dry_run_for(raw, Viewer(TENANT_B, "iso-b"))
    assert b.explanation is not None
    assert "borrowed cargos" in b.message and "of another tenant" in b.message
    assert set(b.explanation.preemptible_cargos) <= {"iso-b/own-0"}
    admin = dry_run_for(raw, Viewer(ADMIN, "iso-b"))
    assert admin.explanation is not None
    assert admin.explanation.preemptible_cargos == raw.explanation.preemptible_cargos
    assert "iso-a/lo-" in admin.message and admin.explanation.other_preemptible_cargos == 0


def test_explain_renders_each_cargo_explanation_for_the_viewer() -> None:
    engine = _borrowed_by_tenant_a()
    engine.submit_minicluster(mc("iso-b/big", 16, 16, priority=100))
    exp = explanation_out(engine.explain_minicluster("iso-b/big"))
    assert exp is not None and any(k.startswith("iso-a/") for k in exp.preemptible_cargos)
    result = ExplainResult(name="big", admitted=False, message=exp.sentence, explanation=exp)
    seen = explain_for(result, Viewer(TENANT_B, "iso-b"))
    assert "iso-a" not in seen.model_dump_json(by_alias=True)
    assert "of another tenant" in seen.message


def test_a_preemption_notice_names_no_other_tenant() -> None:
    assert named_for("iso-b/big", "iso-a/lo-1", "MiniCluster") == (
        "a MiniCluster of another tenant"
    )
    assert named_for("iso-a/big", "iso-a/lo-1", "MiniCluster") == "MiniCluster iso-a/big"


@pytest.mark.parametrize(
    "name", ["kube-system", "kube-public", "kube-node-lease", "crane-system", "default"]
)
def test_reserved_namespaces_never_become_tenants(name: str) -> None:
    assert reserved_reason(name, ApiSettings()) is not None
    assert reserved_reason("team-a", ApiSettings()) is None


def test_default_may_be_allowed_and_the_operator_namespace_is_configured() -> None:
    settings = ApiSettings(allow_default_namespace=True, operator_namespace="gpu-ops")
    assert reserved_reason("default", settings) is None
    assert reserved_reason("gpu-ops", settings) is not None
    assert reserved_reason("crane-system", settings) is None
