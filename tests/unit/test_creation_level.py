"""Pod Security when a cargo's containers are made (crane/lifecycle/pod_security.py): the
tenant's level as it is then, with the message Kubernetes mode gives, in both backends.

The Docker reconciler reads the level from the tenant row each pass: a cargo stored under
``privileged`` that asks for a real-time priority ulimit and waits with no host to go to fails
(PodSecurity) once an admin lowers the tenant to ``baseline``, while a cargo that fits the
level waits on (tests/docker/test_pod_security_docker.py runs the rest on real daemons).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session

from crane.api.db import TenantRow, make_engine, migrate
from crane.docker import store
from crane.docker.reconciler import Reconciler
from crane.docker.store import CargoRow, MiniClusterRow
from crane.lifecycle.pod_security import creation_refusal
from crane.model.podsecurity import docker_violations, pod_security_message, violations
from crane.model.podtemplate import ULIMITS_ANNOTATION
from crane.model.specs import CargoSpec, MiniClusterSpec

PLAIN: dict[str, Any] = {"spec": {"containers": [{"name": "m", "image": "i"}]}}
RTPRIO: dict[str, Any] = {
    "metadata": {"annotations": {ULIMITS_ANNOTATION: "rtprio=99"}},
    **PLAIN,
}
"""Only ``privileged`` allows it in Docker mode (a real-time priority starves the host)."""
BIND: dict[str, Any] = {
    "spec": {
        "containers": [
            {
                "name": "m",
                "image": "i",
                "volumeMounts": [{"name": "d", "mountPath": "/d", "readOnly": True}],
            }
        ],
        "volumes": [{"name": "d", "hostPath": {"path": "/data/set"}}],
    }
}


def test_a_template_that_fits_the_level_is_made() -> None:
    assert creation_refusal(PLAIN, "baseline") is None
    assert creation_refusal(RTPRIO, "privileged", ()) is None
    assert creation_refusal(BIND, "baseline", ["/data"]) is None


def test_the_refusal_is_kubernetes_modes_reason_and_message() -> None:
    refused = creation_refusal(PLAIN, "restricted")
    assert refused is not None and not refused.ok
    assert refused.reason == "PodSecurity"
    assert refused.message == pod_security_message("restricted", violations(PLAIN, "restricted"))
    assert "spec.template.spec.containers[0].securityContext" in refused.message


def test_docker_mode_reads_the_template_with_its_own_rules() -> None:
    """The ulimit breaks baseline in Docker mode only (a pod has no such annotation); a bind
    mount outside the admin's list (narrowed since the cargo was stored) breaks every level."""
    assert creation_refusal(RTPRIO, "baseline") is None
    refused = creation_refusal(RTPRIO, "baseline", ())
    assert refused is not None and refused.reason == "PodSecurity"
    assert refused.message == pod_security_message(
        "baseline", docker_violations(RTPRIO, "baseline")
    )
    assert f"metadata.annotations[{ULIMITS_ANNOTATION}]" in refused.message
    narrowed = creation_refusal(BIND, "privileged", ["/scratch:rw"])
    assert narrowed is not None and "not in the admin's allowed bind mounts" in narrowed.message


def test_the_docker_reconciler_refuses_a_waiting_cargo_once_the_level_is_raised(
    tmp_path: Path,
) -> None:
    db = make_engine(f"sqlite:///{tmp_path / 'crane.db'}")
    migrate(db)
    mc = MiniClusterSpec.model_validate({"gpuType": "H100", "gpus": {"min": 0, "max": 4}})
    with Session(db) as s:
        s.add(TenantRow(name="t", pod_security="privileged"))
        s.add(MiniClusterRow(tenant="t", name="mc", spec=mc.model_dump_json(by_alias=True)))
        for name, template in (("rt", RTPRIO), ("plain", PLAIN)):
            spec = CargoSpec.model_validate({"miniCluster": "mc", "template": template})
            s.add(
                CargoRow(
                    tenant="t",
                    name=name,
                    minicluster="mc",
                    spec=spec.model_dump_json(by_alias=True),
                )
            )
        s.commit()
    reconciler = Reconciler(db)
    reconciler.reconcile_once()  # no host: both wait
    with Session(db) as s:
        assert [c.phase for c in store.cargos(s)] == ["Pending", "Pending"]
        tenant = s.get(TenantRow, "t")
        assert tenant is not None
        tenant.pod_security = "baseline"
        s.add(tenant)
        s.commit()
    reconciler.reconcile_once()
    with Session(db) as s:
        rt, plain = store.cargo(s, "t", "rt"), store.cargo(s, "t", "plain")
        assert rt is not None and plain is not None
        assert plain.phase == "Pending", plain.message
        assert rt.phase == "Failed"
        assert rt.message == pod_security_message("baseline", docker_violations(RTPRIO, "baseline"))
        [failed] = [c for c in store.stored_conditions(rt.conditions) if c.type == "Failed"]
        assert (failed.status, failed.reason) == ("True", "PodSecurity")
