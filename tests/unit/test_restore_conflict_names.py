"""A restore conflict's sentence lands on the losing object's status (its cargo's message, a
Kubernetes event in its namespace): it names no object of another tenant."""

from __future__ import annotations

from crane.model.specs import ReplicaPlacement
from crane.placement import Engine
from crane.placement.restore import (
    CargoClaim,
    ReservationClaim,
    restore_cargos,
    restore_reservations,
)
from tests.unit.placement_helpers import cargo, mc, node


def _engine() -> Engine:
    engine = Engine()
    engine.upsert_node(node("n0", "r0"))
    for key in ("other/mc", "t/mc"):
        engine.submit_minicluster(mc(key, 0, 8))
    return engine


def _claim(key: str, minicluster: str, since: float) -> CargoClaim:
    placed = (ReplicaPlacement(replica=0, node="n0", gpu_ids=[0, 1]),)
    return CargoClaim(cargo(key, minicluster, 1, 2), placed, True, since)


def test_a_cargo_that_lost_its_gpus_to_another_tenant_is_not_told_its_name() -> None:
    result = restore_cargos(
        _engine(), [_claim("other/secret", "other/mc", 1.0), _claim("t/mine", "t/mc", 2.0)]
    )
    [lost] = result.conflicts
    assert (lost.loser, lost.winner) == ("t/mine", "other/secret")
    assert "other/" not in lost.reason, lost.reason
    assert "a cargo of another tenant keeps it" in lost.reason, lost.reason


def test_a_cargo_of_the_same_tenant_is_named() -> None:
    result = restore_cargos(
        _engine(), [_claim("t/first", "t/mc", 1.0), _claim("t/mine", "t/mc", 2)]
    )
    [lost] = result.conflicts
    assert "t/first keeps it" in lost.reason, lost.reason


def test_a_reservation_that_lost_gpus_to_another_tenant_is_not_told_its_name() -> None:
    engine = _engine()
    requests = {"other/mc": mc("other/mc", 2, 8, priority=1), "t/mc": mc("t/mc", 2, 8)}
    gpus = {"n0": [0, 1]}
    conflicts = restore_reservations(
        engine, requests, [ReservationClaim("other/mc", gpus), ReservationClaim("t/mc", gpus)]
    )
    [lost] = conflicts
    assert (lost.loser, lost.winner) == ("t/mc", "other/mc")
    assert "other/" not in lost.reason, lost.reason
    assert "a MiniCluster of another tenant keeps them" in lost.reason, lost.reason
