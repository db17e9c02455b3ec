"""A placement engine rebuilt from the cluster's Nodes and Crane's CRs, for what-if questions.

The operator's engine decides; this copy only answers dry-runs and explanations, from the same
truth the operator reads (reservations and placements recorded in the CRs' status).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from crane.api.schemas import DryRunPlacement, DryRunResult, ExplanationOut
from crane.kube import dra
from crane.kube.names import CARGO_LABEL, GPU_IDS_ANNOTATION
from crane.kube.nodes import busy_ids, inventory, node_view, quantity, with_dra
from crane.kube.resources import (
    cargo_status,
    is_true,
    minicluster_status,
    parse_cargo_spec,
    parse_minicluster_spec,
)
from crane.lifecycle import service
from crane.lifecycle.records import cargo_request, minicluster_request
from crane.lifecycle.restore import gpu_ids_of
from crane.lifecycle.suspend import is_held, takes_part
from crane.model import CargoPhase, CargoSpec, MiniClusterSpec, TopologyLevels
from crane.model.inventory import GPU_RESOURCE
from crane.placement import Engine, Explanation, Outcome

log = logging.getLogger("crane.api.kube")
ENDED = (CargoPhase.SUCCEEDED, CargoPhase.FAILED, CargoPhase.PREEMPTED)


def _pod_gpus(pod: Mapping[str, Any]) -> int:
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        res = container.get("resources") or {}
        value = (res.get("limits") or {}).get(GPU_RESOURCE) or (res.get("requests") or {}).get(
            GPU_RESOURCE
        )
        if value:
            total += quantity(value)
    return total


class DraState:
    """The GPUs DRA drivers publish (ResourceSlices) and the claims that hold them."""

    def __init__(
        self, slices: Iterable[Mapping[str, Any]] = (), claims: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        views = (dra.slice_view(s) for s in slices)
        self.nodes = dra.nodes_of(v for v in views if v is not None)
        self.claims = [dra.claim_view(c) for c in claims]

    def busy(self, pods: Iterable[Mapping[str, Any]]) -> dict[str, set[int]]:
        """node -> GPU ids allocated claims hold, except a live Crane pod's through its own
        claim (``pods``: those not Succeeded or Failed), as the operator counts them."""
        if not self.claims:
            return {}
        live: dict[tuple[str, str], Mapping[str, Any]] = {}
        for pod in pods:
            meta = pod.get("metadata") or {}
            if CARGO_LABEL in (meta.get("labels") or {}):
                live[(meta.get("namespace", ""), meta.get("name", ""))] = pod

        def own(claim: dra.ClaimView) -> tuple[str, frozenset[int]] | None:
            pod = live.get((claim.namespace, claim.pod or ""))
            if pod is None or claim.owner_uid not in (None, pod["metadata"].get("uid")):
                return None
            ids = (pod["metadata"].get("annotations") or {}).get(GPU_IDS_ANNOTATION, "")
            node = (pod.get("spec") or {}).get("nodeName") or ""
            return node, frozenset(gpu_ids_of(ids))

        return dra.held_devices(self.nodes, self.claims, own)


def busy_gpus(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    dra_state: DraState | None = None,
) -> dict[str, frozenset[int]]:
    """Per node, the GPU ids held by pods that are not Crane's, as the operator counts them.

    Kubernetes does not say which GPUs such a pod got: the highest ids Crane's pods do not hold
    stand for them (``crane.kube.nodes.busy_ids``). ``pods``: those not Succeeded or Failed. On
    DRA nodes (``dra_state``), the devices of claims that are not a live Crane pod's own.
    """
    pods = list(pods)
    crane_ids: dict[str, set[int]] = {}
    foreign: dict[str, int] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        meta = pod.get("metadata") or {}
        if not node:
            continue
        if CARGO_LABEL in (meta.get("labels") or {}):
            ids = (meta.get("annotations") or {}).get(GPU_IDS_ANNOTATION, "")
            crane_ids.setdefault(node, set()).update(gpu_ids_of(ids))
        else:
            foreign[node] = foreign.get(node, 0) + _pod_gpus(pod)
    claimed = dra_state.busy(pods) if dra_state is not None else {}
    out: dict[str, frozenset[int]] = {}
    for body in nodes:
        name = (body.get("metadata") or {}).get("name", "")
        if foreign.get(name):
            view = node_view(body, ())
            out[name] = busy_ids(view.gpu_count, crane_ids.get(name, ()), foreign[name])
        if claimed.get(name):
            out[name] = out.get(name, frozenset()) | frozenset(claimed[name])
    return out


def build(
    nodes: Iterable[Mapping[str, Any]],
    miniclusters: Iterable[Mapping[str, Any]],
    cargos: Iterable[Mapping[str, Any]],
    levels: TopologyLevels | None = None,
    pods: Iterable[Mapping[str, Any]] = (),
    dra_state: DraState | None = None,
) -> Engine:
    """An engine holding every node Crane manages (GPUs of other pods and claims busy; a DRA
    node's GPUs from its slices), admitted reservation and placed cargo; bad objects skipped."""
    levels = levels or TopologyLevels()
    engine = Engine(levels)
    keys = [lv.key for lv in levels.levels]
    nodes = list(nodes)
    busy = busy_gpus(nodes, pods, dra_state)
    published = dra_state.nodes if dra_state is not None else {}
    for body in nodes:
        view = node_view(body, keys)
        view = with_dra(view, published.get(view.name))
        if view.gpu_count and view.managed:
            engine.upsert_node(inventory(view, busy.get(view.name, frozenset())))
    placed = [(body, cargo_status(body)) for body in cargos]
    holding = {
        f"{body['metadata'].get('namespace')}/{(body.get('spec') or {}).get('miniCluster')}"
        for body, status in placed
        if status.placement and status.phase not in ENDED
    }
    for body in miniclusters:
        try:
            spec = parse_minicluster_spec(body)
            req = minicluster_request(body["metadata"], spec)
        except ValidationError:
            continue
        if not takes_part(spec, req.key in holding):
            continue  # held, nothing left to hold: no demand
        engine.submit_minicluster(req)
        mc_status = minicluster_status(body)
        # admitted with nothing reserved (min 0) is admitted too, as the operator's engine has
        # it; a held one still stopping its cargos holds what it holds, and never queues
        if mc_status.reservation or is_true(mc_status.conditions, "Admitted") or is_held(spec):
            try:
                engine.restore_reservation(req.key, mc_status.reservation)
            except (KeyError, ValueError) as err:
                log.warning("what-if snapshot: %s", err)
    for body, status in placed:
        if not status.placement or status.phase in ENDED:
            continue
        try:
            engine.restore_cargo(
                cargo_request(body["metadata"], parse_cargo_spec(body), status),
                status.placement,
            )
        except (KeyError, ValueError, ValidationError) as err:
            log.warning("what-if snapshot: %s", err)
    return engine


def explanation_out(exp: Explanation | None) -> ExplanationOut | None:
    """The engine's explanation as the API's :class:`ExplanationOut`; None for None."""
    if exp is None:
        return None
    best = None
    if exp.best is not None:
        best = {
            "level": exp.best.level,
            "domain": exp.best.domain,
            "free_gpus": exp.best.free_gpus,
            "preemptible_gpus": exp.best.preemptible_gpus,
        }
    return ExplanationOut.model_validate(
        {
            "sentence": exp.sentence(),
            "needed_gpus": exp.needed_gpus,
            "gpu_type": exp.gpu_type,
            "level": exp.level,
            "required": exp.required,
            "best": best,
            "total_free_gpus": exp.total_free_gpus,
            "preemptible_cargos": list(exp.preemptible_cargos),
            "preemptible_gpus": exp.preemptible_gpus,
            "detail": exp.detail,
        }
    )


def dry_run_minicluster(engine: Engine, tenant: str, spec: MiniClusterSpec) -> DryRunResult:
    """Whether a MiniCluster would be admitted now, shaped as admission shapes it (both
    backends answer through here)."""
    decision = service.dry_run_minicluster(engine, tenant, spec)
    fits = decision.outcome is Outcome.ADMITTED
    exp = explanation_out(decision.explanation)
    return DryRunResult(
        outcome=decision.outcome.value,
        fits=fits,
        message=exp.sentence if exp else f"{spec.gpus.min} {spec.gpu_type} can be reserved now",
        reservation={node: list(ids) for node, ids in decision.reservation.items()},
        explanation=exp,
    )


def dry_run_cargo(engine: Engine, tenant: str, spec: CargoSpec) -> DryRunResult:
    """Where a cargo of an existing MiniCluster would go now (both backends)."""
    decision = service.dry_run_cargo(engine, tenant, spec)
    exp = explanation_out(decision.explanation)
    fits = decision.outcome is Outcome.PLACED
    return DryRunResult(
        outcome=decision.outcome.value,
        fits=fits,
        message=exp.sentence if exp else f"{spec.gpus} GPUs can be placed now",
        placements=[
            DryRunPlacement(replica=p.replica, node=p.node, gpu_ids=p.gpu_ids, borrowed=p.borrowed)
            for p in decision.placements
        ],
        explanation=exp,
    )
