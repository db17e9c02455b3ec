"""Grow and shrink decided once for both backends (crane.lifecycle.service)."""

from __future__ import annotations

import pytest

from crane.lifecycle import service
from crane.lifecycle.service import CargoFacts
from crane.model.specs import CargoSpec, CargoTemplate, GpuRange, MiniClusterSpec


def _spec(replicas: int | None = 1, maximum: int = 4) -> MiniClusterSpec:
    return MiniClusterSpec(
        gpu_type="H100",
        gpus=GpuRange(min=0, max=maximum),
        template=CargoTemplate(replicas=1, gpus_per_replica=1),
        replicas=replicas,
    )


def _templated(n: int) -> list[CargoFacts]:
    return [CargoFacts(f"job-{i}", 1, True, template=i) for i in range(n)]


def test_template_grow_raises_replicas_and_names_the_next_index() -> None:
    plan = service.plan_grow("job", _spec(1), _templated(1), 2, None)
    assert plan.replicas == 3 and not plan.creates
    assert [g.name for g in plan.grants] == ["job-1", "job-2"]


def test_a_template_grow_onto_a_name_another_minicluster_holds_is_denied() -> None:
    """job-1 is another MiniCluster's cargo: a grow granted 'job-1' and its wait read that
    cargo's phase as the new cargo's. It is denied, saying what holds the name."""
    plan = service.plan_grow("job", _spec(1), _templated(1), 2, None, taken={"job-1"})
    assert plan.replicas is None and not any(g.added for g in plan.grants)
    assert len(plan.grants) == 2
    assert plan.reasons == [service.template_name_taken("job", ["job-1"])] * 2


def test_grow_past_max_is_denied_with_one_wording() -> None:
    plan = service.plan_grow("job", _spec(3, maximum=4), _templated(3), 2, None)
    assert plan.replicas == 4
    assert [g.added for g in plan.grants] == [True, False]
    assert plan.reasons == [
        "adding 1 GPUs would take job to 5 GPUs, over gpus.max 4 (4 in use): "
        "raise gpus.max or shrink first"
    ]


def test_grow_by_count_without_template_says_what_to_give() -> None:
    spec = MiniClusterSpec(gpu_type="H100", gpus=GpuRange(min=0, max=4))
    with pytest.raises(service.ServiceError, match=r"has no spec\.template"):
        service.plan_grow("free", spec, [], 1, None)


def test_shapes_become_free_cargos_with_the_lowest_free_names() -> None:
    spec = MiniClusterSpec(gpu_type="H100", gpus=GpuRange(min=0, max=8))
    shape = CargoSpec(mini_cluster="free", gpus_per_replica=2)
    plan = service.plan_grow(
        "free", spec, [CargoFacts("free-0", 2, True)], None, [(None, shape), (None, shape)]
    )
    assert [n for n, _ in plan.creates] == ["free-1", "free-2"] and plan.replicas is None


def test_template_shrink_lowers_replicas_from_the_highest_index() -> None:
    plan = service.plan_shrink("job", _spec(3), _templated(3), 2, None)
    assert plan.replicas == 1 and plan.removed == ["job-2", "job-1"]


def test_a_template_shrink_removes_only_the_minicluster_s_own_cargos() -> None:
    """job-1 is the name of another MiniCluster's cargo (job's index 1 waits for the name) and
    job-2 is not made yet: a shrink by count lowers replicas past both, and says it removes
    job-3 and job-0 only. It named job-1, and both backends deleted what it named."""
    own = [CargoFacts("job-0", 1, True, template=0), CargoFacts("job-3", 1, True, template=3)]
    plan = service.plan_shrink("job", _spec(4), own, 4, None)
    assert plan.replicas == 0 and plan.removed == ["job-3", "job-0"]


def test_naming_a_template_cargo_that_is_not_the_highest_is_refused() -> None:
    with pytest.raises(service.ServiceError, match="highest index"):
        service.plan_shrink("job", _spec(3), _templated(3), None, ["job-0"])
    plan = service.plan_shrink("job", _spec(3), _templated(3), None, ["job-2"])
    assert plan.replicas == 2 and plan.removed == ["job-2"]


def test_shrinking_unknown_cargos_names_them() -> None:
    with pytest.raises(service.UnknownCargos, match="nope"):
        service.plan_shrink("job", _spec(1), _templated(1), None, ["nope"])


def test_an_unknown_cargo_named_many_times_is_named_once() -> None:
    """``{"cargos": ["x", "x", ...]}`` (a 1 MB body) answered a 404 of 600 KB naming x once
    per time it was sent; each unknown name is now named once, in the order given."""
    with pytest.raises(service.UnknownCargos) as raised:
        service.plan_shrink("job", _spec(1), _templated(1), None, ["x", "y"] * 100_000 + ["z"])
    assert str(raised.value).startswith("cargos x, y, z not found in MiniCluster 'job'")


def test_template_changes_add_missing_lowest_first_and_drop_highest_first() -> None:
    changes = service.template_changes(3, {0: False, 4: False, 5: False, 3: True})
    assert changes.create == (1, 2)
    assert changes.delete == (5, 4)  # 3 is already being deleted


def test_a_huge_template_scale_is_made_and_unmade_a_step_per_pass() -> None:
    """10,000 replicas (the CRD's maximum) are not 10,000 writes in one pass of a decision
    loop every tenant shares: each pass makes the next ``TEMPLATE_STEP``, lowest first."""
    step = service.TEMPLATE_STEP
    first = service.template_changes(10_000, {})
    assert first.create == tuple(range(step))
    made = dict.fromkeys(first.create, False)
    assert service.template_changes(10_000, made).create == tuple(range(step, 2 * step))
    down = service.template_changes(0, dict.fromkeys(range(250), False))
    assert down.delete == tuple(range(249, 249 - step, -1))
    assert service.listed([f"c-{i}" for i in range(100)]) == "c-0, c-1, c-2, c-3, c-4 and 95 more"


def test_a_cargo_named_like_a_template_index_with_a_leading_zero_is_not_one() -> None:
    assert service.template_index("job", "job-1") == 1
    assert service.template_index("job", "job-01") is None
    assert service.template_index("job", "job-x") is None
    assert service.template_index("job", "other-1") is None


def test_free_shrink_by_count_takes_the_newest_whatever_the_listed_order() -> None:
    """Kubernetes lists cargos by name, Docker mode by creation: both shrink the newest."""
    spec = MiniClusterSpec(gpu_type="H100", gpus=GpuRange(min=0, max=8))
    by_name = [
        CargoFacts("free-a", 1, True, created=30.0),
        CargoFacts("free-b", 1, False, created=40.0),
        CargoFacts("free-m", 1, True, created=10.0),
        CargoFacts("free-z", 1, True, created=20.0),
    ]
    plan = service.plan_shrink("free", spec, by_name, 2, None)
    assert plan.removed == plan.deletes == ["free-a", "free-z"] and plan.replicas is None
    same_time = [
        CargoFacts("free-a", 1, True, created=5.0),
        CargoFacts("free-b", 1, True, created=5.0),
    ]
    assert service.plan_shrink("free", spec, same_time, 1, None).removed == ["free-b"]


def _world(gpus_per_replica: int, replicas: int, maximum: int) -> MiniClusterSpec:
    return MiniClusterSpec.model_validate(
        {
            "gpuType": "H100",
            "gpus": {"min": 0, "max": maximum},
            "template": {"replicas": 2, "gpusPerReplica": gpus_per_replica},
            "replicas": replicas,
            "rendezvous": {"enabled": True},
        }
    )


def test_a_grow_past_the_worlds_node_max_is_denied_saying_so() -> None:
    """torchrun keeps nodes past ``--nnodes``' max waiting, out of the world: a grow that would
    add them (a cargo of 1-GPU replicas beside 4-GPU ones) was granted and its cargo idled on
    its GPUs; now denied, naming the bound."""
    spec = _world(4, 1, 16)  # 2 x 4-GPU cargos at most: CRANE_NNODES=2:4
    running = [CargoFacts("w-0", 8, True, template=0, nodes=2)]
    small = CargoSpec(mini_cluster="w", replicas=4, gpus_per_replica=1)  # 4 nodes, 4 GPUs
    plan = service.plan_grow("w", spec, running, None, [(None, small)])
    assert not plan.creates and [g.added for g in plan.grants] == [False]
    assert plan.reasons == [
        "adding 4 torchrun nodes would take w's world to 6, over CRANE_NNODES=2:4, where "
        "torchrun would keep them waiting: raise gpus.max or shrink first"
    ]
    # within the bounds: granted
    assert service.plan_grow("w", spec, running, 1, None).replicas == 2
    # without a world, nodes are no one's concern
    plain = spec.model_copy(update={"rendezvous": None})
    assert service.plan_grow("w", plain, running, None, [(None, small)]).creates


def test_template_cargos_not_made_yet_count_against_gpus_max() -> None:
    """replicas 4 with one template cargo made: the three to come count, so a grow by one is
    denied and a 1-GPU cargo would pass gpus.max (the grow raised replicas to 5 and failed)."""
    spec = _spec(4, maximum=4)
    assert service.asked_for(spec, _templated(1))[0] == 4
    plan = service.plan_grow("job", spec, _templated(1), 1, None)
    assert plan.replicas is None and [g.added for g in plan.grants] == [False]
    done = [CargoFacts("job-0", 1, False, template=0)]  # finished: it is not made again
    assert service.asked_for(spec, done)[0] == 3


def test_a_scale_up_past_max_with_the_other_cargos_is_refused_only_when_it_asks_more() -> None:
    free = [CargoFacts("big", 3, True)]
    assert service.patch_over_max("job", _spec(0), _spec(1), free) is None
    why = service.patch_over_max("job", _spec(0), _spec(2), free)
    assert why is not None and "5 GPUs" in why and "gpus.max (4)" in why
    over = [CargoFacts("big", 6, True)]  # over already (gpus.max lowered): no more is asked
    assert service.patch_over_max("job", _spec(0), _spec(0), over) is None


def test_a_shrink_naming_a_cargo_being_deleted_is_told_it_is_not_found() -> None:
    """As a second DELETE is 404: on Kubernetes the cargo lingers while its pods stop, and a
    shrink naming it answered it removed (200) again."""
    spec = MiniClusterSpec(gpu_type="H100", gpus=GpuRange(min=0, max=8))
    going = [CargoFacts("free-b", 2, False, deleting=True), CargoFacts("free-a", 2, True)]
    with pytest.raises(service.UnknownCargos, match="free-b"):
        service.plan_shrink("free", spec, going, None, ["free-b"])
    assert service.plan_shrink("free", spec, going, None, ["free-a"]).removed == ["free-a"]


def test_a_grows_wait_reads_a_template_cargo_not_made_yet_as_pending_not_deleted() -> None:
    # the rule both backends' grow waits follow: in Kubernetes mode while the operator
    # restarts, in Docker mode while another server's pass runs, the cargo is not there yet;
    # a shrink's old cargo of that name, still being deleted, is not found either
    spec = _spec(2)
    assert service.awaited_phase("g", spec, "g-1", None, found=False) == "Pending"
    assert service.awaited_phase("g", spec, "g-2", None, found=False) is None  # shrunk away
    assert service.awaited_phase("g", spec, "solo", None, found=False) is None
    assert service.awaited_phase("g", spec, "g-0", "Running", found=True) == "Running"
