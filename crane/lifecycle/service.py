"""Grow, shrink, dry-run and explain, written once for both backends (no I/O).

The backends read their store, describe the MiniCluster's cargos as :class:`CargoFacts`, ask
this module what to do, carry it out, and shape the answer for the wire. The engine requests
built from specs (:func:`minicluster_request`, :func:`cargo_request`) and the template cargos'
names and specs (:func:`template_cargo_name`, :func:`template_cargo_spec`) are built here only.

For a MiniCluster with ``spec.template``, grow and shrink by count change ``spec.replicas``:
the cargos ``<mc>-<i>`` are kept at that count by the decision pass, and a shrink removes the
highest indices. Growing by explicit shapes adds free-standing cargos in either case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from crane.lifecycle.cargo_status import expected_end
from crane.lifecycle.suspend import grow_refusal, held_message, is_held
from crane.model import CargoPhase
from crane.model.specs import CargoSpec, CargoTemplate, MiniClusterSpec
from crane.model.world import node_bounds, world_env
from crane.placement import Engine
from crane.placement.admission import cargo_over_max
from crane.placement.types import (
    AdmissionDecision,
    CargoDecision,
    CargoRequest,
    Explanation,
    MiniClusterRequest,
    Outcome,
)

DRY_RUN_NAME = "crane-dry-run"
"""Name of the hypothetical object a dry-run places (never stored)."""


class ServiceError(ValueError):
    """A grow or shrink that cannot be done as asked; the message says what to do instead."""


class UnknownCargos(ServiceError):
    """A shrink named cargos that are not the MiniCluster's."""


def key_of(tenant: str, name: str) -> str:
    """``tenant/name``: the engine's key of a MiniCluster or cargo."""
    return f"{tenant}/{name}"


class InvalidPatch(ServiceError):
    """A patch that would leave the MiniCluster's spec invalid; ``fields`` are the (location,
    message) of each error, the location from ``body``."""

    def __init__(self, message: str, fields: list[tuple[list[str | int], str]]) -> None:
        super().__init__(message)
        self.fields = fields


def patched_spec(current: MiniClusterSpec, changes: Mapping[str, Any]) -> MiniClusterSpec:
    """``current`` with ``changes`` (the patch's fields that are set and not null) merged in, the
    same on both backends; :class:`InvalidPatch` says in one line why the result is invalid."""
    merged = current.model_dump(mode="json", by_alias=True, exclude_none=True) | dict(changes)
    try:
        return MiniClusterSpec.model_validate(merged)
    except ValidationError as err:
        fields: list[tuple[list[str | int], str]] = [
            (["body", *e["loc"]], e["msg"]) for e in err.errors()
        ]
        summary = "; ".join(msg.removeprefix("Value error, ") for _, msg in fields)
        raise InvalidPatch(f"the patched spec is invalid: {summary}", fields) from None


def minicluster_not_found(name: str, tenant: str) -> str:
    """The one wording of a 404 for a MiniCluster that does not exist (or is being deleted)."""
    return f"MiniCluster {name!r} not found in tenant {tenant!r}: list them with `crane mc list`"


def minicluster_being_deleted(name: str, tenant: str) -> str:
    """The one wording of a 409 for creating a MiniCluster whose namesake is still going."""
    return (
        f"MiniCluster {name!r} of tenant {tenant!r} is being deleted (its cargos stop first): "
        "create it again in a few seconds, or pick another name"
    )


def cargo_being_deleted(name: str, tenant: str) -> str:
    """The one wording of a 409 for creating a cargo whose namesake is still stopping."""
    return (
        f"cargo {name!r} of tenant {tenant!r} is being deleted: create it again in a few "
        "seconds, or pick another name"
    )


def cargo_name_taken(name: str, tenant: str) -> str:
    """The one wording of a 409 for creating a cargo under a name another cargo has."""
    return f"cargo {name!r} exists in tenant {tenant!r}: pick another name"


def cargo_not_found(name: str, tenant: str) -> str:
    """The one wording of a 404 for a cargo that does not exist (or is being deleted)."""
    return f"cargo {name!r} not found in tenant {tenant!r}: list them with `crane cargo list`"


# --- requests -----------------------------------------------------------------------------------


def minicluster_request(
    key: str, spec: MiniClusterSpec, created: float, namespace_quota: int | None = None
) -> MiniClusterRequest:
    """The engine's request for a MiniCluster: its min shaped by its template, if any."""
    template = spec.template
    return MiniClusterRequest(
        key=key,
        gpu_type=spec.gpu_type,
        min_gpus=spec.gpus.min,
        max_gpus=spec.gpus.max,
        topology=spec.topology,
        priority=spec.priority,
        created=created,
        template_gpus_per_replica=template.gpus_per_replica if template else None,
        template_replicas=template.replicas if template else None,
        namespace_quota=namespace_quota,
    )


def cargo_request(
    key: str,
    spec: CargoSpec,
    created: float,
    placed: float | None = None,
    started: float | None = None,
) -> CargoRequest:
    """The engine's request for a cargo (``key`` is ``tenant/name``); its expected end is
    :func:`crane.lifecycle.cargo_status.expected_end` of its times."""
    tenant = key.partition("/")[0]
    return CargoRequest(
        key=key,
        minicluster=key_of(tenant, spec.mini_cluster),
        replicas=spec.replicas,
        gpus_per_replica=spec.gpus_per_replica,
        topology=spec.topology,
        created=created,
        expected_end=expected_end(spec.expected_duration_seconds, created, placed, started),
    )


# --- templates ----------------------------------------------------------------------------------


def template_cargo_name(minicluster: str, index: int) -> str:
    """Name of a template cargo: ``<mc>-<index>``."""
    return f"{minicluster}-{index}"


NAME_TAKEN = "NameTaken"
"""Reason of a MiniCluster's ``ReplicaFailure`` condition while another cargo holds the name of a
template cargo it would make."""


def template_name_taken(minicluster: str, taken: Sequence[str]) -> str:
    """The message of MiniCluster ``minicluster``'s ``ReplicaFailure`` condition (reason
    ``NAME_TAKEN``) while cargos named ``taken``, none of them its template cargos, hold the names
    of template cargos it would make: it makes none of those (both backends)."""
    return (
        f"cannot create template cargo {', '.join(taken)}: a cargo of that name exists that "
        f"is not one of {minicluster}'s template cargos; delete or rename it and {minicluster} "
        "makes its own"
    )


def template_index(minicluster: str, cargo: str) -> int | None:
    """The index of ``<mc>-<i>``, None for another name."""
    suffix = cargo.removeprefix(f"{minicluster}-")
    if suffix == cargo or not suffix.isdigit() or str(int(suffix)) != suffix:
        return None  # not <mc>-<i> as template_cargo_name writes it (e.g. "job-01")
    return int(suffix)


@dataclass(frozen=True)
class TemplateChanges:
    """What keeps a template MiniCluster at ``spec.replicas`` cargos ``<mc>-<i>``."""

    create: tuple[int, ...] = ()
    """Missing indices below ``replicas``, lowest first."""
    delete: tuple[int, ...] = ()
    """Indices at or above ``replicas`` not already being deleted, highest first."""


TEMPLATE_STEP = 100
"""Template cargos one pass creates, and deletes, for one MiniCluster at most: a MiniCluster
scaled to 10,000 gets its cargos over a hundred passes, and every other MiniCluster's decisions
go on between them instead of waiting for 10,000 writes."""


def template_changes(
    replicas: int, existing: Mapping[int, bool], step: int = TEMPLATE_STEP
) -> TemplateChanges:
    """The next cargos to create and delete (``step`` of each at most) so that exactly indices
    ``0..replicas-1`` remain; ``existing`` maps each template cargo's index to whether it is
    already being deleted. Both backends' decision passes keep template cargos with this."""
    create: list[int] = []
    for i in range(replicas):
        if len(create) == step:
            break
        if i not in existing:
            create.append(i)
    going = sorted((i for i, gone in existing.items() if i >= replicas and not gone), reverse=True)
    return TemplateChanges(create=tuple(create), delete=tuple(going[:step]))


def listed(names: Sequence[str], shown: int = 5) -> str:
    """``names`` for a message a person reads: the first ``shown``, then how many more."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def template_cargo_spec(minicluster: str, template: CargoTemplate) -> CargoSpec:
    """The spec of every template cargo of a MiniCluster."""
    return CargoSpec(
        mini_cluster=minicluster,
        replicas=template.replicas,
        gpus_per_replica=template.gpus_per_replica,
        template=template.template,
        topology=template.topology,
        restart_policy=template.restart_policy,
        backoff_limit=template.backoff_limit,
    )


def status_replicas(spec: MiniClusterSpec, template_cargos: int, cargos: int) -> int:
    """A MiniCluster's ``status.replicas`` (what ``crane mc get`` and the scale subresource
    read), the same on both backends: 0 while held; with a template, its ``template_cargos``
    ``<mc>-<i>`` (not the free cargos grown by shape); else all its ``cargos``."""
    if is_held(spec):
        return 0
    return template_cargos if spec.template is not None else cargos


def next_names(minicluster: str, taken: set[str], count: int, template: bool = False) -> list[str]:
    """The ``count`` lowest free names ``<mc>-<i>`` of free-standing cargos; ``<mc>-x<i>`` when
    the MiniCluster has a template, so they never take a template cargo's name."""
    names: list[str] = []
    index = 0
    while len(names) < count:
        candidate = (
            f"{minicluster}-x{index}" if template else template_cargo_name(minicluster, index)
        )
        if candidate not in taken:
            names.append(candidate)
        index += 1
    return names


# --- grow and shrink ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CargoFacts:
    """What grow and shrink need to know of one existing cargo of the MiniCluster."""

    name: str
    gpus: int
    active: bool
    """Holds or waits for GPUs: not finished, not being deleted."""
    template: int | None = None
    """Its index when it is a template cargo ``<mc>-<i>`` kept by ``spec.replicas``."""
    created: float = 0.0
    """When it was created (a timestamp): a shrink by count takes the newest first."""
    nodes: int = 0
    """Its replicas: the torchrun nodes it adds to its MiniCluster's world."""
    deleting: bool = False
    """Being deleted: gone from the API already (a shrink naming it is told it is not found)."""


@dataclass
class Grant:
    """What became of one requested cargo."""

    name: str | None
    gpus: int
    added: bool
    reason: str = ""


@dataclass
class GrowPlan:
    """What a grow does: new ``spec.replicas`` and/or free cargos to create."""

    grants: list[Grant] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    replicas: int | None = None
    """The MiniCluster's new ``spec.replicas`` (template grow), None when unchanged."""
    creates: list[tuple[str, CargoSpec]] = field(default_factory=list)
    """Free-standing cargos to create: (name, spec)."""


def over_max(minicluster: str, used: int, gpus: int, maximum: int) -> str:
    """The one wording of a grow denied by ``gpus.max``."""
    return (
        f"adding {gpus} GPUs would take {minicluster} to {used + gpus} GPUs, over gpus.max "
        f"{maximum} ({used} in use): raise gpus.max or shrink first"
    )


def create_refusal(
    minicluster: str, spec: MiniClusterSpec, cargos: Sequence[CargoFacts], cargo: CargoSpec
) -> str | None:
    """Why ``cargo`` may not be created in the MiniCluster (``POST /cargos``), or None: the
    MiniCluster is held (its cargos are deleted while it is: the new one would be gone at
    once), the cargo would take it over ``gpus.max`` (counting the template cargos
    ``spec.replicas`` promises), or its replicas would take its world past its nodes."""
    if is_held(spec):
        return grow_refusal(minicluster)
    used, nodes = asked_for(spec, list(cargos))
    why = cargo_over_max(minicluster, spec.gpus.max, used, cargo.gpus)
    return why or over_nodes(minicluster, spec, nodes, cargo.replicas)


def over_nodes(minicluster: str, spec: MiniClusterSpec, nodes: int, adding: int) -> str | None:
    """Why a cargo of ``adding`` replicas may not join the MiniCluster's world of ``nodes``
    torchrun nodes, or None (also when it has no world): past ``CRANE_NNODES``' max, torchrun
    would keep its nodes waiting, out of the world, on GPUs no one else could use."""
    if not world_env("", spec, ""):
        return None
    low, high = node_bounds(spec)
    if nodes + adding <= high:
        return None
    return (
        f"adding {adding} torchrun nodes would take {minicluster}'s world to {nodes + adding}, "
        f"over CRANE_NNODES={low}:{high}, where torchrun would keep them waiting: raise "
        "gpus.max or shrink first"
    )


def asked_for(spec: MiniClusterSpec, cargos: Sequence[CargoFacts]) -> tuple[int, int]:
    """GPUs and torchrun nodes the MiniCluster's cargos ask for: its live cargos (placed or
    pending), and the template cargos ``spec.replicas`` keeps that are not made yet (a
    decision pass makes them later, a hundred at a time). Every check against ``gpus.max``
    counts these, so a cargo created, or grown, between a raise of ``spec.replicas`` and the
    pass that makes its cargos cannot take the room those are promised."""
    gpus = sum(c.gpus for c in cargos if c.active)
    nodes = sum(c.nodes for c in cargos if c.active)
    if spec.template is None or not spec.replicas:
        return gpus, nodes
    made = {c.template for c in cargos if c.template is not None}
    missing = sum(1 for i in range(spec.replicas) if i not in made)
    shape = spec.template
    gpus += missing * shape.replicas * shape.gpus_per_replica
    return gpus, nodes + missing * shape.replicas


def patch_over_max(
    minicluster: str, current: MiniClusterSpec, new: MiniClusterSpec, cargos: Sequence[CargoFacts]
) -> str | None:
    """Why a patch from ``current`` to ``new`` (more ``replicas``, or a larger template) must
    be refused because the template cargos it adds would take the MiniCluster, with its other
    cargos, past ``gpus.max``, as a grow by that many would be; None when it may be made. A
    patch that asks for no more GPUs than before is never refused for this (lowering
    ``gpus.max`` under what running cargos hold is allowed: borrowed ones are preempted)."""
    before, _ = asked_for(current, cargos)
    after, _ = asked_for(new, cargos)
    if after <= new.gpus.max or after <= before:
        return None
    return (
        f"replicas {new.replicas} would take MiniCluster {minicluster} to {after} GPUs with its "
        f"other cargos, over gpus.max ({new.gpus.max}): raise gpus.max, shrink first, or ask "
        "for fewer replicas"
    )


def template_replicas(spec: MiniClusterSpec, cargos: list[CargoFacts]) -> int:
    """How many template cargos the MiniCluster keeps now."""
    if spec.replicas is not None:
        return spec.replicas
    return 0


def plan_grow(
    minicluster: str,
    spec: MiniClusterSpec,
    cargos: list[CargoFacts],
    count: int | None,
    shapes: list[tuple[str | None, CargoSpec]] | None,
    taken: set[str] | None = None,
) -> GrowPlan:
    """Grant what fits within ``gpus.max``; by count on a template MiniCluster, raise replicas.

    ``taken``: every cargo name in use in the tenant (default: the MiniCluster's cargos).
    """
    if is_held(spec):
        raise ServiceError(grow_refusal(minicluster))
    plan = GrowPlan()
    used, nodes = asked_for(spec, cargos)
    foreign = set(taken or ()) - {c.name for c in cargos}  # names other MiniClusters' hold
    taken = foreign | {c.name for c in cargos}
    if shapes is None:
        if spec.template is None:
            raise ServiceError(
                f"MiniCluster {minicluster!r} has no spec.template: grow by giving cargos "
                "(shapes), or add a template with PATCH"
            )
        replicas = template_replicas(spec, cargos)
        shape = template_cargo_spec(minicluster, spec.template)
        for _ in range(count or 0):
            if used + shape.gpus > spec.gpus.max:
                _deny(plan, shape.gpus, over_max(minicluster, used, shape.gpus, spec.gpus.max))
                continue
            if (why := over_nodes(minicluster, spec, nodes, shape.replicas)) is not None:
                _deny(plan, shape.gpus, why)
                continue
            name = template_cargo_name(minicluster, replicas)
            if name in foreign:  # granting it would report, and wait on, another's cargo
                _deny(plan, shape.gpus, template_name_taken(minicluster, [name]))
                continue
            replicas += 1
            used += shape.gpus
            nodes += shape.replicas
            plan.grants.append(Grant(name=name, gpus=shape.gpus, added=True))
        if replicas != template_replicas(spec, cargos):
            plan.replicas = replicas
        return plan
    for wanted, cargo in shapes:
        if used + cargo.gpus > spec.gpus.max:
            _deny(plan, cargo.gpus, over_max(minicluster, used, cargo.gpus, spec.gpus.max))
            continue
        if (why := over_nodes(minicluster, spec, nodes, cargo.replicas)) is not None:
            _deny(plan, cargo.gpus, why)
            continue
        name = wanted or next_names(minicluster, taken, 1, spec.template is not None)[0]
        if name in taken:
            _deny(plan, cargo.gpus, f"cargo {name!r} exists: pick another name")
            continue
        taken.add(name)
        used += cargo.gpus
        nodes += cargo.replicas
        plan.creates.append((name, cargo))
        plan.grants.append(Grant(name=name, gpus=cargo.gpus, added=True))
    return plan


class MiniClusterDeleted(ServiceError):
    """The MiniCluster was deleted while a grow waited for its cargos (both backends: 404)."""


GROW_WAIT_OVER = frozenset(
    p.value
    for p in (CargoPhase.RUNNING, CargoPhase.SUCCEEDED, CargoPhase.FAILED, CargoPhase.PREEMPTED)
)
"""Phases a grow with ``wait`` stops waiting at: the cargo ran, or never will."""
DELETED_GRANT = "Deleted"
"""The phase a grow's answer gives a cargo deleted while the grow waited (a shrink)."""
DELETED_WHILE_WAITING = "deleted while the grow waited"
"""The reason a grow's answer gives a cargo deleted while the grow waited."""


def grow_wait_over(minicluster: str, deleted: bool, phases: Mapping[str, str | None]) -> bool:
    """One look of a grow's ``wait``, the same on both backends: whether each new cargo ran or
    never will (its phase in :data:`GROW_WAIT_OVER`, or None when it was deleted meanwhile).
    When the MiniCluster itself was deleted (gone, or being deleted), the wait ends at once
    with :class:`MiniClusterDeleted`, saying so."""
    if deleted:
        raise MiniClusterDeleted(
            f"MiniCluster {minicluster!r} was deleted while the grow waited; its cargos go "
            f"with it: create it again to run them"
        )
    return all(p is None or p in GROW_WAIT_OVER for p in phases.values())


def grant_after_wait(phase: str | None, message: str) -> tuple[str, str | None]:
    """A grant's phase and reason after a grow's wait, from its cargo's ``phase`` now (None
    when deleted meanwhile) and status ``message``: a failed cargo says why; None keeps the
    grant's reason."""
    if phase is None:
        return DELETED_GRANT, DELETED_WHILE_WAITING
    if phase == CargoPhase.FAILED.value:
        return phase, message
    return phase, None


def awaited_phase(
    minicluster: str, spec: MiniClusterSpec, cargo: str, phase: str | None, found: bool
) -> str | None:
    """A new cargo's phase in one look of a grow's ``wait``, the same on both backends: its
    ``phase`` when it is ``found`` (there and not being deleted); else Pending if it is a
    template cargo ``spec.replicas`` still asks for (its MiniCluster's controller has not made
    it yet: the operator restarting, in Docker mode the grow's pass skipped while another
    server's ran, or a shrink's old cargo of that name is still going), else None (deleted
    meanwhile, by a shrink)."""
    if found:
        return phase
    index = template_index(minicluster, cargo)
    wanted = spec.template is not None and spec.replicas is not None
    if wanted and index is not None and index < (spec.replicas or 0):
        return CargoPhase.PENDING.value
    return None


def _deny(plan: GrowPlan, gpus: int, reason: str) -> None:
    plan.grants.append(Grant(name=None, gpus=gpus, added=False, reason=reason))
    plan.reasons.append(reason)


@dataclass
class ShrinkPlan:
    """What a shrink does: new ``spec.replicas`` and/or cargos to delete."""

    removed: list[str] = field(default_factory=list)
    """Every cargo that goes, in the order it goes."""
    replicas: int | None = None
    """The MiniCluster's new ``spec.replicas``, None when unchanged."""
    deletes: list[str] = field(default_factory=list)
    """Free-standing cargos to delete (template cargos go with ``replicas``)."""


def plan_shrink(
    minicluster: str,
    spec: MiniClusterSpec,
    cargos: list[CargoFacts],
    count: int | None,
    names: list[str] | None,
) -> ShrinkPlan:
    """By count: the highest template indices first (lowering replicas), else the newest
    cargos. By name: free cargos go; template cargos only as the highest indices."""
    plan = ShrinkPlan()
    kept = template_replicas(spec, cargos) if spec.template is not None else 0
    templated = sorted(
        (c for c in cargos if c.template is not None and c.template < kept),
        key=lambda c: -(c.template or 0),
    )
    if names is not None:
        known = {c.name: c for c in cargos if not c.deleting}
        missing = list(dict.fromkeys(n for n in names if n not in known))
        if missing:
            raise UnknownCargos(
                f"cargos {', '.join(missing)} not found in MiniCluster {minicluster!r}: "
                f"see `crane cargo list --mc {minicluster}`"
            )
        wanted = list(dict.fromkeys(names))
        from_template = [n for n in wanted if n in {c.name for c in templated}]
        if from_template:
            top = [c.name for c in templated[: len(from_template)]]
            if sorted(top) != sorted(from_template):
                raise ServiceError(
                    f"template cargos leave from the highest index ({', '.join(top)} first): "
                    f"shrink {minicluster} by count, or lower spec.replicas"
                )
            plan.replicas = kept - len(from_template)
        plan.deletes = [n for n in wanted if n not in from_template]
        plan.removed = wanted
        return plan
    left = count or 0
    if spec.template is not None and spec.replicas is not None:
        take = min(left, kept)
        plan.replicas = kept - take
        # its own cargos at the indices leaving: an index not made yet, or whose name another
        # MiniCluster's cargo holds (both backends delete what this names), removes nothing
        plan.removed = [c.name for c in templated if (c.template or 0) >= plan.replicas]
        return plan
    # newest by creation time, whatever order the backend lists them in (equal times: as listed)
    live = sorted((c for c in cargos if c.active), key=lambda c: c.created)
    plan.deletes = [c.name for c in reversed(live)][:left]
    plan.removed = list(plan.deletes)
    return plan


# --- dry-run and explain ------------------------------------------------------------------------


def dry_run_minicluster(engine: Engine, tenant: str, spec: MiniClusterSpec) -> AdmissionDecision:
    """Admit a hypothetical MiniCluster (last in its priority) against the live state."""
    req = minicluster_request(key_of(tenant, DRY_RUN_NAME), spec, float("inf"))
    return engine.dry_run_minicluster(req)


def dry_run_cargo(engine: Engine, tenant: str, spec: CargoSpec) -> CargoDecision:
    """Place a hypothetical cargo of an existing MiniCluster against the live state."""
    return engine.dry_run_cargo(cargo_request(key_of(tenant, DRY_RUN_NAME), spec, float("inf")))


def _sentence(explanation: Explanation | None) -> str:
    return explanation.sentence() if explanation is not None else "does not fit now"


def never_admitted(engine: Engine, tenant: str, name: str, spec: MiniClusterSpec) -> str | None:
    """Why MiniCluster ``name`` can never be admitted as the cluster is, or None (it can, or no
    node is known yet). Both backends refuse such a create at once (422)."""
    if not engine.node_names():
        return None
    decision = dry_run_minicluster(engine, tenant, spec)
    if decision.outcome is not Outcome.REJECTED:
        return None
    return (
        f"MiniCluster {name!r} can never be admitted as the cluster is: "
        f"{_sentence(decision.explanation)}"
    )


def asks_more_of_admission(current: MiniClusterSpec, new: MiniClusterSpec) -> bool:
    """Whether a patch from ``current`` to ``new`` asks admission for more: ``gpus.min``
    raised, another GPU type or topology. Such a patch is checked with
    :func:`never_admitted` and refused (422) when the result could never be admitted, in the
    words of a create of it, on both backends; lowering ``gpus.min`` or changing anything
    else never is."""
    same_shape = (new.gpu_type, new.topology) == (current.gpu_type, current.topology)
    return not same_shape or new.gpus.min > current.gpus.min


def impossible_grow(
    engine: Engine,
    tenant: str,
    name: str,
    spec: MiniClusterSpec,
    shapes: list[tuple[str | None, CargoSpec]] | None,
) -> str | None:
    """Why a grow of MiniCluster ``name`` (by ``shapes``, or by its template when None) can
    never be granted: a cargo over ``gpus.max`` or one no node could ever hold. None when it
    can. Both backends refuse such a grow at once (422), before anything is created."""
    if shapes is not None:
        candidates = [shape for _, shape in shapes]
    elif spec.template is not None:
        candidates = [template_cargo_spec(name, spec.template)]
    else:
        candidates = []
    for shape in {c.model_dump_json(): c for c in candidates}.values():
        never = cargo_over_max(name, spec.gpus.max, 0, shape.gpus) or never_placed(
            engine, tenant, shape
        )
        if never is not None:
            return never
    return None


def never_placed(engine: Engine, tenant: str, spec: CargoSpec) -> str | None:
    """Why a cargo of this shape can never be placed as the cluster is, or None (it can, or no
    node is known yet). Both backends refuse such a create at once (422)."""
    if not engine.node_names():
        return None
    decision = dry_run_cargo(engine, tenant, spec)
    if decision.outcome is not Outcome.REJECTED:
        return None
    return f"the cargo can never be placed: {_sentence(decision.explanation)}"


@dataclass(frozen=True)
class Explained:
    """Why a MiniCluster waits (or what it holds), in numbers."""

    admitted: bool
    message: str
    explanation: Explanation | None


def explain_minicluster(
    engine: Engine,
    key: str,
    admitted: bool,
    waiting_message: str,
    maximum: int,
    held: bool,
) -> Explained:
    """One sentence from the engine: why it waits, or what it holds when admitted. A ``held``
    one (:mod:`crane.lifecycle.suspend`) waits for nothing the engine could explain: its status
    message (``waiting_message``) says it is held and how to release it, with no explanation."""
    if held:
        return Explained(False, waiting_message or held_message(key.partition("/")[2], 0), None)
    exp = engine.explain_minicluster(key)
    if exp is not None:
        return Explained(admitted, exp.sentence(), exp)
    if admitted and engine.is_admitted(key):
        usage = engine.usage(key)
        return Explained(
            admitted,
            f"admitted: {usage.reserved_gpus} GPUs reserved, {usage.in_use_gpus} in use, "
            f"{usage.borrowed_gpus} borrowed (gpus.max {maximum})",
            None,
        )
    return Explained(admitted, waiting_message or "waiting for the next admission pass", None)


def explain_cargo(engine: Engine, key: str, spec: CargoSpec, created: float) -> Explanation:
    """Why a pending cargo waits."""
    return engine.explain_cargo(cargo_request(key, spec, created))
