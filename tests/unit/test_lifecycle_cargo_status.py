"""What a cargo's status says, written once for both backends (crane/lifecycle/cargo_status.py):
why it waits, its ``Ready`` condition and its expected end."""

from __future__ import annotations

from datetime import UTC, datetime

from crane.docker.conditions import cargo_conditions, record
from crane.docker.store import CargoRow
from crane.lifecycle import cargo_status
from crane.lifecycle.cargo_status import Verdict, expected_end, replicas_ready, unplaced, waiting
from crane.lifecycle.service import cargo_request
from crane.model import CargoPhase, CargoSpec
from crane.model.conditions import find_condition
from crane.placement import Engine
from crane.placement.types import CargoDecision, Explanation, Outcome
from tests.unit.placement_helpers import cargo, mc, node


def test_a_cargo_waits_for_its_minicluster_first_then_for_replicas() -> None:
    gone = waiting("t", "mc", exists=False, admitted=False, why_not_admitted="", replicas=1)
    assert gone == Verdict(
        False, "MiniClusterNotFound", "MiniCluster mc not found in namespace t: create it"
    )
    queued = waiting("t", "mc", True, False, "queued at position 2", 0)
    assert queued == Verdict(
        False, "MiniClusterNotAdmitted", "MiniCluster mc is not admitted: queued at position 2"
    )
    said = waiting("t", "mc", True, False, "", 1)
    assert said is not None and said.message.endswith(": waiting in the admission queue")
    zero = waiting("t", "mc", True, True, "", 0)
    assert zero == Verdict(False, "ScaledToZero", "replicas is 0: scale the cargo up to run it")
    assert waiting("t", "mc", True, True, "", 2) is None


def test_the_engine_answer_says_unschedulable_now_or_unplaceable_ever() -> None:
    why = Explanation(needed_gpus=4, gpu_type="H100", level="node", required=False, detail="x")
    later = unplaced(CargoDecision("t/c", Outcome.PENDING, explanation=why))
    assert (later.ok, later.reason, later.message) == (False, "Unschedulable", why.sentence())
    never = unplaced(CargoDecision("t/c", Outcome.REJECTED))
    assert (never.reason, never.message) == ("Unplaceable", "Rejected")


def test_ready_once_every_replica_runs() -> None:
    assert replicas_ready(2, 2) == Verdict(True, "AllReplicasRunning", "2 of 2 replicas running")
    assert replicas_ready(1, 2) == Verdict(False, "Starting", "1 of 2 replicas running")
    assert replicas_ready(0, 0) == Verdict(False, "Starting", "0 of 0 replicas running")
    assert Verdict(False, "Finished", "all replicas finished") == cargo_status.FINISHED


def test_the_expected_end_counts_from_the_start_else_the_placement_else_the_creation() -> None:
    assert expected_end(None, 100.0, 110.0, 120.0) is None
    assert expected_end(60, 100.0) == 160.0
    assert expected_end(60, 100.0, placed=110.0) == 170.0
    assert expected_end(60, 100.0, placed=110.0, started=120.0) == 180.0
    spec = CargoSpec(mini_cluster="mc", gpus_per_replica=1, expected_duration_seconds=60)
    req = cargo_request("t/c", spec, 100.0, placed=110.0, started=120.0)
    assert req.expected_end == 180.0


def test_a_naive_time_is_utc() -> None:
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    assert cargo_status.timestamp(aware.replace(tzinfo=None)) == aware.timestamp()
    assert cargo_status.timestamp(None) is None


def _row(phase: CargoPhase, message: str = "") -> CargoRow:
    spec = CargoSpec(mini_cluster="mc", replicas=2, gpus_per_replica=1)
    return CargoRow(
        tenant="t",
        name="c",
        minicluster="mc",
        uid="u",
        spec=spec.model_dump_json(by_alias=True),
        phase=phase.value,
        message=message,
    )


def test_docker_mode_keeps_why_a_cargo_waits_and_sets_ready_as_kubernetes_mode() -> None:
    row = _row(CargoPhase.PENDING, "MiniCluster mc is not admitted: queued")
    verdict = Verdict(False, "MiniClusterNotAdmitted", row.message)
    record(row, "Placed", verdict)
    placed = find_condition(cargo_conditions(row), "Placed")
    assert placed is not None and (placed.reason, placed.message) == (verdict.reason, row.message)
    assert find_condition(cargo_conditions(row), "Ready") is None  # none before a placement

    row.phase = CargoPhase.RUNNING.value
    ready = find_condition(cargo_conditions(row), "Ready")
    assert ready is not None and ready.status == "True" and ready.reason == "AllReplicasRunning"
    row.phase = CargoPhase.SUCCEEDED.value
    done = find_condition(cargo_conditions(row), "Ready")
    assert done is not None and (done.status, done.reason) == ("False", "Finished")


def test_the_engine_takes_a_placed_cargos_new_expected_end_for_its_estimates() -> None:
    engine = Engine()
    engine.upsert_node(node("n0", "r0", gpus=4))
    engine.submit_minicluster(mc("t/run", 0, 4, created=0.0))
    engine.admit()
    placed = engine.place_cargo(cargo("t/job", "t/run", 1, 4, expected_end=100.0))
    assert placed.outcome is Outcome.PLACED
    engine.submit_minicluster(mc("t/next", 4, 4, created=1.0))
    [before] = [d for d in engine.admit() if d.key == "t/next"]
    assert before.estimated_start == 100.0, before
    engine.set_expected_end("t/job", 250.0)
    [after] = [d for d in engine.admit() if d.key == "t/next"]
    assert after.estimated_start == 250.0, after
    engine.set_expected_end("t/none", 1.0)  # not placed: nothing to change
    assert engine.ends == 1


def test_docker_mode_keeps_the_failed_reason_it_stored_not_one_read_from_the_message() -> None:
    """A failed cargo's ``Failed`` and ``Ready`` reasons are those the reconciler decided and
    stored (here ``InvalidSpec``: its template cannot become a container), as Kubernetes mode
    stores them; Docker mode used to guess them again from the message's words on each read
    (``ReplicaFailed`` for any message it did not recognise)."""
    message = "template.spec.containers[0].volumes[0]: /data is not an allowed bind"
    row = _row(CargoPhase.FAILED, message)
    record(row, "Failed", Verdict(True, "InvalidSpec", message))
    record(row, "Ready", cargo_status.not_ready("InvalidSpec", message))
    failed = find_condition(cargo_conditions(row), "Failed")
    assert failed is not None and (failed.status, failed.reason) == ("True", "InvalidSpec")
    assert failed.message == message
    ready = find_condition(cargo_conditions(row), "Ready")
    assert ready is not None and (ready.status, ready.reason) == ("False", "InvalidSpec")
