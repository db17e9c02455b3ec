"""Docker mode's rebuild from SQL and containers: total, grounded in what runs, never raising."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from crane.docker import labels as L
from crane.docker.scheduling import cargo_request, live_replicas, restore
from crane.docker.store import CargoRow, MiniClusterRow
from crane.placement import Engine
from tests.unit.placement_helpers import node


def cargo_row(name: str, ids: list[int], second: int) -> CargoRow:
    spec = {
        "miniCluster": "mc",
        "replicas": 1,
        "gpusPerReplica": len(ids),
        "template": {"spec": {"containers": [{"name": "m", "image": "busybox"}]}},
    }
    row = CargoRow(
        tenant="t",
        name=name,
        minicluster="mc",
        spec=json.dumps(spec),
        phase="Running",
        created_at=datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC),
    )
    row.placement = json.dumps([{"replica": 0, "node": "n0", "gpuIds": ids}])
    return row


def test_two_rows_claiming_one_gpu_restore_the_earlier_and_do_not_raise() -> None:
    engine = Engine()
    engine.upsert_node(node("n0", "r0"))
    mc = MiniClusterRow(
        tenant="t", name="mc", spec=json.dumps({"gpuType": "H100", "gpus": {"min": 0, "max": 8}})
    )
    restore(engine, [mc], [cargo_row("b", [1, 2], 5), cargo_row("a", [0, 1], 1)])
    assert [p.gpu_ids for p in engine.cargo_placements("t/a")] == [[0, 1]]
    assert engine.cargo_placements("t/b") == ()


class FakeContainer:
    """What the rebuild reads of a Docker container: its state and Crane's labels."""

    def __init__(self, row: CargoRow, replica: int, ids: list[int], status: str) -> None:
        self.status = status
        self.labels = {
            L.CARGO_UID: row.uid,
            L.CARGO: row.name,
            L.TENANT: row.tenant,
            L.MINICLUSTER: row.minicluster,
            L.REPLICA: str(replica),
            L.GPU_IDS: ",".join(map(str, ids)),
        }


def mc_row(
    name: str, priority: int = 0, reserved: dict[str, list[int]] | None = None
) -> MiniClusterRow:
    spec = {
        "gpuType": "H100",
        "gpus": {"min": 4 if reserved else 0, "max": 8},
        "priority": priority,
    }
    row = MiniClusterRow(tenant="t", name=name, spec=json.dumps(spec))
    if reserved is not None:
        row.admitted, row.reservation = True, json.dumps(reserved)
    return row


def engine_with_node() -> Engine:
    engine = Engine()
    engine.upsert_node(node("n0", "r0"))
    return engine


def test_a_failed_cargo_whose_container_still_lives_keeps_its_gpus() -> None:
    engine = engine_with_node()
    failed = cargo_row("failed", [0, 1, 2, 3], 1)
    failed.phase, failed.placement = "Failed", "[]"
    live = live_replicas({"n0": [FakeContainer(failed, 0, [0, 1, 2, 3], "created")]})
    restore(engine, [mc_row("mc")], [failed], live)
    assert [engine.gpu_user("n0", g) for g in range(4)] == ["t/failed"] * 4
    placed = engine.place_cargo(cargo_request(cargo_row("next", [0, 1, 2, 3], 2)))
    assert {g for p in placed.placements for g in p.gpu_ids}.isdisjoint({0, 1, 2, 3})


def test_a_live_container_beats_a_row_that_only_says_so() -> None:
    engine = engine_with_node()
    early = cargo_row("early", [0, 1], 1)  # placed first, but nothing of it runs
    late = cargo_row("late", [0, 1], 5)
    live = live_replicas({"n0": [FakeContainer(late, 0, [0, 1], "running")]})
    conflicts = restore(engine, [mc_row("mc")], [early, late], live)
    assert engine.gpu_user("n0", 0) == "t/late"
    assert [c.loser for c in conflicts if c.kind == "cargo"] == ["t/early"]


def test_a_preemptors_reservation_never_takes_the_gpus_a_stopping_victim_still_holds() -> None:
    # the preemptor was admitted on the victim's GPUs while the victim's container stops
    engine = engine_with_node()
    victim = cargo_row("victim", [0, 1, 2, 3], 1)
    victim.minicluster = "low"
    victim.spec = victim.spec.replace('"mc"', '"low"')
    victim.phase = "Preempted"
    high = mc_row("high", priority=200, reserved={"n0": [0, 1, 2, 3]})
    live = live_replicas({"n0": [FakeContainer(victim, 0, [0, 1, 2, 3], "running")]})
    restore(engine, [mc_row("low"), high], [victim], live)
    assert [engine.gpu_user("n0", g) for g in range(4)] == ["t/victim"] * 4
    assert not set(engine.reservation("t/high").get("n0", ())) & {0, 1, 2, 3}


def test_containers_without_a_row_hold_their_gpus_until_removed() -> None:
    engine = engine_with_node()
    gone = cargo_row("gone", [6, 7], 1)
    live = live_replicas({"n0": [FakeContainer(gone, 0, [6, 7], "running")]})
    restore(engine, [], [], live)
    assert engine.gpu_user("n0", 6) is not None and engine.gpu_user("n0", 7) is not None


def test_exited_containers_hold_nothing() -> None:
    engine = engine_with_node()
    done = cargo_row("done", [0], 1)
    done.phase, done.placement = "Succeeded", "[]"
    live = live_replicas({"n0": [FakeContainer(done, 0, [0], "exited")]})
    restore(engine, [mc_row("mc")], [done], live)
    assert engine.gpu_user("n0", 0) is None


def test_a_restarting_gang_keeps_its_gpus_through_a_restart_of_the_reconciler() -> None:
    """A gang restarting after a failure is Pending with its placement kept until its old
    containers are gone. Restored with none of them running (the failed one exited), its GPUs
    stay its own, so no other cargo is placed on GPUs its stored placement still lists."""
    engine = engine_with_node()
    restarting = cargo_row("restarting", [0, 1], 1)
    restarting.phase = "Pending"
    restore(engine, [mc_row("mc")], [restarting])
    assert [p.gpu_ids for p in engine.cargo_placements("t/restarting")] == [[0, 1]]
    waiting = cargo_row("waiting", [], 2)
    waiting.phase, waiting.placement = "Pending", "[]"
    fresh = engine_with_node()
    restore(fresh, [mc_row("mc")], [waiting])
    assert fresh.cargo_placements("t/waiting") == (), "a cargo waiting to be placed holds nothing"


def test_a_look_alike_replica_of_an_older_cargo_does_not_outrank_one_that_agrees() -> None:
    """A container made by hand as replica 1 of an older one-replica cargo, naming the GPUs of
    a newer cargo that runs: the newer one, whose container and row agree, keeps them (it lost
    them, and was stopped, because the older one was placed first); the older one loses."""
    engine = engine_with_node()
    elder = cargo_row("elder", [0], 1)
    younger = cargo_row("younger", [1, 2], 5)
    live = live_replicas(
        {
            "n0": [
                FakeContainer(elder, 0, [0], "running"),
                FakeContainer(elder, 1, [1, 2], "running"),
                FakeContainer(younger, 0, [1, 2], "running"),
            ]
        }
    )
    conflicts = restore(engine, [mc_row("mc")], [elder, younger], live)
    assert [p.gpu_ids for p in engine.cargo_placements("t/younger")] == [[1, 2]]
    assert [c.loser for c in conflicts if c.kind == "cargo"] == ["t/elder"]


def test_a_finished_cargos_container_started_again_does_not_outrank_the_cargo_on_its_gpus() -> None:
    """A failed cargo's container that Docker started again (a restart policy set by hand, then
    dockerd restarted) on GPUs a newer cargo now runs on: the newer cargo keeps them."""
    engine = engine_with_node()
    done = cargo_row("done", [0, 1], 1)
    done.phase, done.placement = "Failed", "[]"
    now = cargo_row("now", [0, 1], 5)
    live = live_replicas(
        {
            "n0": [
                FakeContainer(done, 0, [0, 1], "running"),
                FakeContainer(now, 0, [0, 1], "running"),
            ]
        }
    )
    restore(engine, [mc_row("mc")], [done, now], live)
    assert engine.gpu_user("n0", 0) == engine.gpu_user("n0", 1) == "t/now"
