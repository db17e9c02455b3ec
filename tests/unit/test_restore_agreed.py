"""Restore order: a cargo whose live pods and record (status) agree keeps its GPUs against a
claim only pods back, even one placed earlier: on Kubernetes a tenant may write a pod with
Crane's labels by hand (and kwok, like any node with free GPUs, runs it), but not a status."""

from __future__ import annotations

from crane.model.specs import ReplicaPlacement
from crane.placement import Engine
from crane.placement.restore import CargoClaim, restore_cargos
from tests.unit.placement_helpers import cargo, mc, node


def test_a_claim_its_pods_and_status_agree_on_beats_an_earlier_one_only_pods_back() -> None:
    placed = (ReplicaPlacement(replica=0, node="n0", gpu_ids=[0, 1]),)
    hand_made = CargoClaim(cargo("t/bait", "t/mc", 1, 2), placed, True, 1.0)
    victim = CargoClaim(cargo("other/job", "other/mc", 1, 2), placed, True, 2.0, agreed=True)
    for claims in ([hand_made, victim], [victim, hand_made]):
        result = restore_cargos(_fresh(), claims)
        assert result.restored == ["other/job"]
        [lost] = result.conflicts
        assert (lost.loser, lost.winner) == ("t/bait", "other/job")
        assert "do not agree" in lost.reason, lost.reason


def _fresh() -> Engine:
    engine = Engine()
    engine.upsert_node(node("n0", "r0"))
    for key in ("other/mc", "t/mc"):
        engine.submit_minicluster(mc(key, 0, 8))
    return engine
