"""The life of one cargo inside a decision pass: place, realise, watch, resize, fail, drain.

States (``status.phase`` with ``status.placement``), all restart-safe because the placement is
written before any pod is created and cleared only after the pods let go of their GPUs:

- Pending, no placement: waiting; tried again when capacity may have freed.
- Placed / Running: the engine holds its GPUs; missing pods are created, stale ones deleted.
- Pending with a placement: a gang restart (OnFailure or a lost node); pods are deleted, then
  the gang is placed again, elsewhere if needed.
- Preempted / Failed with a placement: pods are deleted (grace period honoured), then the GPUs
  are released. A preempted cargo then waits to be placed again.
- Succeeded: all replicas finished; the GPUs are released at once.

Pods are deleted write-ahead: only in a pass that reads from the API server why they go (the
phase of a restart, preemption or failure, a shrink's smaller ``status.replicas``, a moved
grow's new placement), never beside the status write that says so.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from crane.kube import dra, resources
from crane.kube.builders import (
    InvalidTemplateError,
    build_pod,
    build_service,
    pod_name,
    rendezvous_host,
    validate_template,
)
from crane.kube.names import CARGO_KIND, CARGOS, NOTICE_ANNOTATION, REPLICAS_ANNOTATION, key_of
from crane.lifecycle import cargo_end, cargo_status, preemption, records
from crane.lifecycle.cargo_end import CargoEnd
from crane.lifecycle.finalizer import finalize, hold
from crane.lifecycle.gang import ReplicaSeen, ReplicaState, judge
from crane.lifecycle.plan import ClaimWrite, Plan, StatusWrite
from crane.lifecycle.pod_security import creation_refusal
from crane.lifecycle.restart import (
    first_start,
    is_restarting,
)
from crane.lifecycle.state import LoopState
from crane.lifecycle.view import ClusterView as ClusterCache
from crane.lifecycle.view import PodView
from crane.model.conditions import set_condition
from crane.model.specs import (
    CargoPhase,
    CargoSpec,
    CargoStatus,
    MiniClusterSpec,
    ReplicaPlacement,
)
from crane.model.world import notice_text, world_env
from crane.placement import Engine
from crane.placement.types import CargoRequest, Outcome

TERMINAL = (CargoPhase.SUCCEEDED, CargoPhase.FAILED)
Owner = tuple[dict[str, Any], MiniClusterSpec]
"""A cargo's MiniCluster: its body and parsed spec."""
SERVICE_RETRY_SECONDS = 300.0
"""How often a MiniCluster's headless Service is asked for again while its cargos get pods
(409 when it is there: a Service deleted by hand comes back)."""
Notice = tuple[str, str]
"""Why a cargo's replicas are about to go: (reason, message), as the notice file shows it."""

POD_GONE = "its pod was deleted (by hand, or by Kubernetes)"
"""Why a replica of a running gang failed whose pod is gone (Docker mode's words are about a
container)."""


class CargoLifecycle:
    """Moves each cargo through its states within one pass, recording the writes in ``plan``."""

    def __init__(
        self,
        engine: Engine,
        state: LoopState,
        cache: ClusterCache,
        plan: Plan,
        pods: Mapping[str, list[PodView]],
    ) -> None:
        self.engine = engine
        self.state = state
        self.cache = cache
        self.plan = plan
        self.pods = pods

    # --- status helpers ----------------------------------------------------------------------

    def _status(self, body: Mapping[str, Any]) -> CargoStatus:
        """The status this loop last wrote until the watch shows it, else the stored one, whose
        placement is replaced by what the engine holds when the two differ: a placement edited
        by hand (``kubectl patch --subresource=status``) is written back as the pods (restore)
        or this loop's own writes hold the GPUs, never kept beside another cargo's claim to
        the same GPUs."""
        meta = body["metadata"]
        uid = meta["uid"]
        written = self.state.written.get(uid)
        if written is not None:
            stored = body.get("status") or {}
            if uid in self.state.unsaved or not resources.same_status(stored, written):
                return CargoStatus.model_validate(written)
            # the watch shows the last write: from now on the stored status is read, so an
            # edit made by hand is seen (and undone) rather than hidden by this memory
            del self.state.written[uid]
        status = resources.cargo_status(body)
        held = self.state.placements.get(key_of(meta["namespace"], meta["name"]))
        if held and status.placement and _where(held) != _where(status.placement):
            status.placement = [p.model_copy(deep=True) for p in held]
        return status

    def phase_of(self, body: Mapping[str, Any]) -> str:
        """The cargo's phase as this loop last wrote it, else as its body says."""
        uid = body["metadata"]["uid"]
        source = self.state.written.get(uid)
        if source is None:
            source = body.get("status") or {}
        return self.state.phases.get(uid, source, lambda: str(self._status(body).phase))

    def spec_of(self, body: Mapping[str, Any]) -> CargoSpec:
        """The cargo's validated spec with its template checked (parsed once per spec); raises
        pydantic's ValidationError or :class:`InvalidTemplateError`."""

        def parse() -> CargoSpec:
            spec = resources.parse_cargo_spec(body)
            validate_template(spec)
            return spec

        return self.state.cargo_specs.get(body["metadata"]["uid"], body.get("spec"), parse)

    def _write(self, key: str, body: Mapping[str, Any], status: CargoStatus) -> bool:
        meta = body["metadata"]
        status.observed_generation = meta.get("generation")
        status.selector = f"crane.io/cargo={meta['name']}"
        wire = resources.status_wire(status)
        uid = meta["uid"]
        before = self.state.written.get(uid, body.get("status") or {})
        if uid not in self.state.unsaved and resources.same_status(before, wire):
            return False
        self.state.written[uid] = wire
        stored, placed = _placed_gpus(body.get("status") or {}), _placed_gpus(wire)
        self.plan.status(
            StatusWrite(
                CARGOS,
                meta["namespace"],
                meta["name"],
                wire,
                uid,
                key,
                meta.get("resourceVersion"),
                releases=bool(stored - placed),
                claims=bool(placed - stored),
            )
        )
        return True

    def _event(
        self, body: Mapping[str, Any], reason: str, message: str, warning: bool = False
    ) -> None:
        ref = {
            "apiVersion": body.get("apiVersion"),
            "kind": CARGO_KIND,
            "metadata": body["metadata"],
        }
        self.plan.event(ref, reason, message, warning)

    def _cond(
        self, status: CargoStatus, type_: str, ok: bool, reason: str, message: str, gen: Any
    ) -> None:
        status.conditions = set_condition(
            status.conditions, resources.condition(type_, ok, reason, message, gen)
        )

    def _ready(self, status: CargoStatus, ready: cargo_status.Verdict, gen: Any) -> None:
        """Set the ``Ready`` condition to ``ready``."""
        self._cond(status, "Ready", ready.ok, ready.reason, ready.message, gen)

    def _expect(
        self, key: str, meta: Mapping[str, Any], spec: CargoSpec, status: CargoStatus
    ) -> None:
        """The cargo was placed or started: its expected end counts from then (the engine's
        request and the loop's record of it both say so)."""
        end = records.cargo_request(meta, spec, status).expected_end
        req = self.state.cargos.get(key)
        if req is None or req.expected_end == end:
            return
        self.state.cargos[key] = dataclasses.replace(req, expected_end=end)
        self.engine.set_expected_end(key, end)

    # --- engine helpers ----------------------------------------------------------------------

    def _release(self, key: str) -> None:
        if key in self.state.cargos:
            self.engine.release_cargo(key)
            self.state.cargos.pop(key, None)
            self.state.placements.pop(key, None)
            self.state.bump()

    def _gpu_holders(self, key: str) -> list[PodView]:
        return [p for p in self.pods.get(key, []) if p.holds_gpus]

    def _delete_pods(
        self, pods: list[PodView], grace: int | None = None, notice: Notice | None = None
    ) -> None:
        """Delete ``pods``; with a ``notice`` (reason, message), each pod's notice annotation is
        set first, so ``/crane/notice`` shows it while the program has its grace period."""
        now = datetime.now(UTC)
        for pod in pods:
            self.state.requested.pop(pod.key, None)
            lost = self._node_gone(pod.node)
            if not pod.deleting or lost:
                if notice is not None and not lost:
                    text = notice_text(*notice, now, pod.grace_seconds if grace is None else grace)
                    self.plan.pod_annotations.append(
                        (pod.namespace, pod.name, {NOTICE_ANNOTATION: text})
                    )
                self.plan.pod_deletes.append((pod.namespace, pod.name, 0 if lost else grace))

    def _node_gone(self, node: str) -> bool:
        """Whether ``node`` is lost: NotReady past the grace period, or its object deleted."""
        return node in self.state.lost_nodes or node not in self.cache.nodes

    def _world(self, mc: Owner | None) -> dict[str, str]:
        """The MiniCluster's rendezvous env for its replicas (empty without one)."""
        if mc is None:
            return {}
        meta = mc[0]["metadata"]
        return world_env(meta["uid"], mc[1], rendezvous_host(meta["namespace"], meta["name"]))

    def _create_pods(
        self,
        key: str,
        meta: Mapping[str, Any],
        spec: CargoSpec,
        missing: Iterable[ReplicaPlacement],
        mc: Owner | None,
    ) -> None:
        now = time.monotonic()
        pods = [
            p
            for p in missing
            if self.state.may_request(
                key_of(meta["namespace"], pod_name(meta["name"], p.replica)), now
            )
        ]
        if not pods:
            return
        if mc is not None:
            owner = mc[0]["metadata"]
            if self.state.may_request(f"service:{owner['uid']}", now, SERVICE_RETRY_SECONDS):
                self.plan.services.append((key, build_service(owner)))
        world = self._world(mc)
        for p in pods:
            view = self.cache.nodes.get(p.node)
            node = view.dra if view is not None else None
            if node is None or not p.gpu_ids:
                self.plan.pods.append((key, build_pod(meta, spec, p, world)))
                continue
            pod = build_pod(meta, spec, p, world, dra=True)
            self.plan.pods.append((key, pod))
            pod_key = key_of(meta["namespace"], pod["metadata"]["name"])
            self.state.claims_asked[pod_key] = now
            self.plan.pod_claims[pod_key] = ClaimWrite(
                claim=dra.build_claim(
                    meta["namespace"],
                    pod["metadata"]["name"],
                    pod["metadata"]["labels"],
                    len(p.gpu_ids),
                ),
                allocation=dra.allocation(p.node, node, p.gpu_ids),
                pod=pod["metadata"]["name"],
            )

    # --- the pass ----------------------------------------------------------------------------

    def reconcile(self, key: str, body: dict[str, Any], mc: Owner | None) -> None:
        """Move one cargo on by one step; ``mc`` is its MiniCluster, when there is one.

        A settled cargo (:meth:`_settled`) whose step wrote nothing is skipped while everything
        that step read is the same: its record, the status last written, its placement, its
        MiniCluster's uid and its replicas (pod views), and no node of its placement lost.
        Nothing else moves such a cargo, and with those inputs unchanged its step would write
        nothing again."""
        inputs = self._step_inputs(key, body, mc)
        if inputs is not None and self.state.steady.get(key) == inputs:
            return
        self.state.steady.pop(key, None)
        before = self.plan.size()
        self._step(key, body, mc)
        if inputs is not None and self.plan.size() == before and self._settled(key, body):
            self.state.steady[key] = inputs

    def _settled(self, key: str, body: Mapping[str, Any]) -> bool:
        """Running, or Placed with a live pod for every replica, at the replica count its spec
        asks for, with no pod in flight: a step of such a cargo depends on nothing but its
        inputs. Not settled: a missing pod (asked for again after a while), a pod in flight
        (waited for up to a while), a gang waiting to grow (tried again when capacity frees)."""
        phase = self.phase_of(body)
        if phase not in (CargoPhase.RUNNING, CargoPhase.PLACED):
            return False
        placements = self.state.placements.get(key, ())
        try:
            if self.spec_of(body).replicas != len(placements):
                return False
        except (ValidationError, InvalidTemplateError):
            return False
        if self._in_flight(key):
            return False
        if phase == CargoPhase.RUNNING:
            return True
        live = {p.replica for p in self.pods.get(key, ()) if not p.deleting}
        return all(p.replica in live for p in placements)

    def _step_inputs(
        self, key: str, body: dict[str, Any], mc: Owner | None
    ) -> tuple[object, ...] | None:
        """What a placed cargo's step reads (compared by identity first, then by value), or
        None when its step may depend on more (time, a repair, a failed write, a lost node)."""
        placements = self.state.placements.get(key)
        uid = body["metadata"]["uid"]
        if (
            placements is None
            or key in self.state.repairs
            or key in self.state.refused
            or uid in self.state.unsaved
        ):
            return None
        if any(self._node_gone(p.node) for p in placements):
            return None
        owner = mc[0]["metadata"].get("uid") if mc is not None else None
        written = self.state.written.get(uid)
        return (body, written, placements, owner, *self.pods.get(key, ()))

    def _step(self, key: str, body: dict[str, Any], mc: Owner | None) -> None:
        meta = body["metadata"]
        status = self._status(body)
        refused = self.state.refused.pop(key, None)
        if meta.get("deletionTimestamp"):
            notice = ("Removed", f"cargo {meta['name']} is being deleted (shrink or delete)")
            if self._drain(key, release_when="no-pods", notice=notice):
                finalize(self.plan, self.state, CARGOS, meta)
            return
        hold(self.plan, CARGOS, meta)
        try:
            spec = self.spec_of(body)
        except (ValidationError, InvalidTemplateError) as err:
            message = (
                resources.validation_message(err) if isinstance(err, ValidationError) else str(err)
            )
            self.refuse(key, body, "InvalidSpec", message)
            return
        if refused is not None and status.phase not in TERMINAL:
            reason, why = refused
            self.refuse(key, body, reason, f"the API server refused a pod of the cargo: {why}")
            return
        if mc is not None:
            self._adopt(body, mc[0])
        if key in self.state.repairs and not self._repair(key, body, status):
            return
        if status.phase in TERMINAL:
            if not self._stored(key, body, status):
                return
            if self._drain(key, release_when="no-gpu") and status.placement:
                status.placement = []
                self._write(key, body, status)
            return
        if status.phase == CargoPhase.PREEMPTED:
            if not self._stored(key, body, status):
                return
            if self._drain(key, release_when="no-gpu", notice=("Preempted", status.message)):
                status.phase, status.placement, status.replicas = CargoPhase.PENDING, [], 0
                status.message = "preempted; waiting to be placed again"
                self._write(key, body, status)
            return
        if key in self.state.cargos and is_restarting(status.phase, bool(status.placement)):
            if not self._stored(key, body, status) or not self._drain(key, release_when="no-pods"):
                return
            status.placement, status.replicas = [], 0
        if key not in self.state.cargos:
            # placing makes pods: a first placement, a preempted gang's and a restart's
            if self._meets_level(key, body, spec):
                self._place(key, body, spec, status, mc)
        else:
            self._run(key, body, spec, status, mc)

    def _stored(self, key: str, body: dict[str, Any], status: CargoStatus) -> bool:
        """Whether the API server has stored the phase ``status`` has (write-ahead): a gang's
        pods are deleted for a failure, a restart or a preemption only once it has, so an
        operator restarted meanwhile reads why they go instead of finding a Running gang whose
        pods are gone (a replica lost by hand). Writes ``status`` again after a failed write."""
        if (body.get("status") or {}).get("phase") == status.phase:
            return True
        self._write(key, body, status)
        return False

    def _meets_level(self, key: str, body: dict[str, Any], spec: CargoSpec) -> bool:
        """Whether pods made now from the template meet the namespace's Pod Security level, as
        Pod Security Admission checks each pod when it is created; when not, the cargo fails
        (PodSecurity, naming each field). Checked before every pod is made: the template may
        have been edited with kubectl, or the level raised, since the cargo was placed."""
        level = self.cache.namespace_level(body["metadata"]["namespace"])
        refused = creation_refusal(spec.template, level)
        if refused is not None:
            self.refuse(key, body, refused.reason, refused.message)
        return refused is None

    def refuse(self, key: str, body: dict[str, Any], reason: str, message: str) -> None:
        """Fail this cargo alone (condition Failed with ``reason``, a Warning event) and let go:
        when no pod holds its GPUs (a refused pod never existed), the same write that says
        Failed clears its placement."""
        status = self._status(body)
        released = self._drain(key, release_when="no-gpu")
        if released:
            status.placement = []
        if status.phase != CargoPhase.FAILED or status.message != message:
            self._end(key, body, status, cargo_end.refusal(status.restarts, reason, message))
        elif released and (body.get("status") or {}).get("placement"):
            self._write(key, body, status)

    def _adopt(self, body: dict[str, Any], mc_body: dict[str, Any]) -> None:
        """Make the MiniCluster own a free-standing cargo, so deleting it deletes the cargo."""
        meta = body["metadata"]
        owners = meta.get("ownerReferences") or []
        mc_uid = mc_body["metadata"]["uid"]
        if any(o.get("uid") == mc_uid for o in owners):
            return
        ref = {
            "apiVersion": mc_body.get("apiVersion") or "crane.io/v1alpha1",
            "kind": "MiniCluster",
            "name": mc_body["metadata"]["name"],
            "uid": mc_uid,
            "blockOwnerDeletion": True,
        }
        meta["ownerReferences"] = [*owners, ref]
        self.plan.patch_metadata(
            (CARGOS, meta["namespace"], meta["name"]), {"ownerReferences": meta["ownerReferences"]}
        )

    def _drain(self, key: str, release_when: str, notice: Notice | None = None) -> bool:
        """Delete the cargo's running pods; release its GPUs once none hold them. True when done.

        ``no-pods`` waits until the pods are gone altogether (their names are reused). A
        ``notice`` is posted to the pods first (:meth:`_delete_pods`).
        """
        holders = self._gpu_holders(key)
        every = self.pods.get(key, [])
        self._delete_pods(every if release_when == "no-pods" else holders, notice=notice)
        done = not (every if release_when == "no-pods" else holders) and not self._in_flight(key)
        if done:
            self._release(key)
        return done

    def _pod_keys(self, key: str, from_replica: int = 0) -> list[str]:
        """Pod keys of the cargo's placed replicas, replica ``from_replica`` and above."""
        namespace, name = key.split("/", 1)
        return [
            key_of(namespace, pod_name(name, p.replica))
            for p in self.state.placements.get(key, ())
            if p.replica >= from_replica
        ]

    def unsent(self, key: str) -> None:
        """The cargo's pods asked for this pass are not sent after all: not in flight."""
        for pod_key in self._pod_keys(key):
            self.state.requested.pop(pod_key, None)

    def _in_flight(self, key: str, from_replica: int = 0) -> bool:
        """Whether a pod of the cargo's placement (replica ``from_replica`` or above) was asked
        for and not seen yet (see :meth:`LoopState.in_flight`): draining or shrinking waits for
        it, then deletes it."""
        seen = {p.key for p in self.pods.get(key, [])}
        now = time.monotonic()
        return any(
            k not in seen and self.state.in_flight(k, now)
            for k in self._pod_keys(key, from_replica)
        )

    def _repair(self, key: str, body: dict[str, Any], status: CargoStatus) -> bool:
        """A cargo whose claim lost at restore: status back to Pending (placement cleared, the
        reason said), all its pods deleted; True once they are gone and it may be placed."""
        gen = body["metadata"].get("generation")
        why = self.state.repairs[key]
        if status.placement or status.phase not in (CargoPhase.PENDING, *TERMINAL):
            message = f"restored without its GPUs: {why}; its pods are deleted, then it waits"
            if status.phase not in TERMINAL:
                status.phase = CargoPhase.PENDING
            status.placement, status.replicas, status.message = [], 0, message
            self._cond(status, "Placed", False, "RestoreConflict", message, gen)
            self._cond(status, "Ready", False, "RestoreConflict", message, gen)
            self._write(key, body, status)
        pods = self.pods.get(key, [])
        self._delete_pods(pods)
        if pods:
            return False
        del self.state.repairs[key]
        return True

    def drain_deleted(self) -> None:
        """Cargos gone from the API: delete their pods, then release their GPUs."""
        for key in [k for k in self.state.cargos if k not in self.cache.cargos]:
            self._drain(key, release_when="no-gpu", notice=("Removed", f"cargo {key} is deleted"))

    # --- placement ---------------------------------------------------------------------------

    def _place(
        self,
        key: str,
        body: dict[str, Any],
        spec: CargoSpec,
        status: CargoStatus,
        mc: Owner | None,
    ) -> None:
        meta = body["metadata"]
        gen = meta.get("generation")
        mc_key = key_of(meta["namespace"], spec.mini_cluster)
        admitted = mc is not None and self.engine.is_admitted(mc_key)
        why = ((mc[0].get("status") or {}).get("message") or "") if mc is not None else ""
        verdict = cargo_status.waiting(
            meta["namespace"], spec.mini_cluster, mc is not None, admitted, why, spec.replicas
        )
        if verdict is not None:
            self._pending(key, body, status, verdict.reason, verdict.message)
            return
        uid = meta["uid"]
        attempt = (self.state.epoch, gen or 0)
        if self.state.attempts.get(uid) == attempt:
            return
        req = records.cargo_request(meta, spec, status)
        decision = self.engine.place_cargo(req)
        if decision.outcome != Outcome.PLACED:
            self.state.attempts[uid] = attempt
            verdict = cargo_status.unplaced(decision)
            self._pending(key, body, status, verdict.reason, verdict.message)
            return
        self.state.attempts.pop(uid, None)
        self.state.cargos[key] = req
        self.state.placements[key] = decision.placements
        placed = cargo_status.placed(spec.replicas, spec.gpus_per_replica, decision)
        message = placed.message
        status.phase = CargoPhase.PLACED
        status.placement = list(decision.placements)
        status.replicas = spec.replicas
        status.placed_at = datetime.now(UTC)
        status.message = ""
        self._expect(key, meta, spec, status)
        self._cond(status, "Placed", True, placed.reason, message, gen)
        self._ready(status, cargo_status.replicas_ready(0, spec.replicas), gen)
        if any(c.type == "Preempted" for c in status.conditions):
            self._cond(
                status, "Preempted", False, "PlacedAgain", "placed again after preemption", gen
            )
        self._write(key, body, status)
        self._event(body, "Placed", message)
        self._create_pods(key, meta, spec, decision.placements, mc)

    def _pending(
        self, key: str, body: dict[str, Any], status: CargoStatus, reason: str, message: str
    ) -> None:
        gen = body["metadata"].get("generation")
        status.phase = CargoPhase.PENDING
        status.replicas = 0
        changed = status.message != message
        status.message = message
        self._cond(status, "Placed", False, reason, message, gen)
        if self._write(key, body, status) and changed:
            self._event(body, reason, message)

    # --- running -----------------------------------------------------------------------------

    def _run(
        self,
        key: str,
        body: dict[str, Any],
        spec: CargoSpec,
        status: CargoStatus,
        mc: Owner | None,
    ) -> None:
        meta = body["metadata"]
        gen = meta.get("generation")
        placements = self.state.placements[key]
        # the replicas of a Running gang, as stored with that phase (a grow's new replicas are
        # written with phase Placed, so they are never among them), but those a shrink stored
        # as leaving (at or above ``status.replicas``): Crane deleted their pods itself
        ran = [p.replica for p in status.placement if p.replica < status.replicas]
        was = status.phase
        if spec.replicas != len(placements) and not self._resize(
            key, body, spec, status, placements
        ):
            return
        placements = self.state.placements[key]
        expected = {p.replica: p for p in placements}
        pods = self.pods.get(key, [])
        stale = [p for p in pods if not _matches(p, meta["uid"], expected)]
        if stale and _where(resources.cargo_status(body).placement) == _where(placements):
            # a moved replica's old pod goes once the API server has the new placement (and
            # phase Placed): a restarted operator then makes it again, not fails the gang
            self._delete_pods(stale)
        current = {p.replica: p for p in pods if p not in stale}
        for pod in current.values():
            self.state.requested.pop(pod.key, None)
        lost = sorted({p.node for p in placements if self._node_gone(p.node)})
        if lost:
            why = _lost_message(lost, self.cache.nodes)
            self._failure(key, body, spec, status, cargo_status.NODE_LOST, why)
            return
        settled = not stale and not any(p.deleting for p in pods)
        # a replica is gone only once no pod of the gang is being replaced
        ran_now = [r for r in ran if r in expected] if settled else []
        seen = {r: _seen(p) for r, p in current.items() if r is not None}
        gang = judge(was, ran_now, seen, len(placements), POD_GONE)
        if gang.failure is not None:
            failure = gang.failure
            self._failure(
                key,
                body,
                spec,
                status,
                cargo_status.REPLICA_FAILED,
                failure.what,
                failure.exit_code,
            )
            return
        if gang.succeeded:
            status.placement = []
            self._release(key)
            self._end(key, body, status, cargo_end.success(status.restarts, len(placements)))
            return
        if settled:
            missing = [p for r, p in expected.items() if r not in current]
            if missing and not self._meets_level(key, body, spec):
                return
            self._create_pods(key, meta, spec, missing, mc)
        live = {r for r, p in current.items() if not p.deleting}
        if status.replicas < len(placements) and all(r in live for r in expected):
            # a shrink taken back before it was done: its replicas are made again
            how = f"grown from {status.replicas} to {len(placements)} replicas"
            self._cond(status, "Resizing", False, "Resized", how, gen)
            status.replicas = len(placements)
        status.replicas = min(status.replicas, len(placements))
        status.phase, ready = cargo_status.placed_progress(gang.running, len(placements))
        if ready.ok:
            status.started_at = first_start(status.started_at, datetime.now(UTC))
            self._expect(key, meta, spec, status)
        self._ready(status, ready, gen)
        self._write(key, body, status)

    def _failure(
        self,
        key: str,
        body: dict[str, Any],
        spec: CargoSpec,
        status: CargoStatus,
        reason: str,
        why: str,
        exit_code: int | None = None,
    ) -> None:
        end = cargo_end.failure(spec, status.restarts, reason, why, exit_code)
        self._end(key, body, status, end)

    def _end(self, key: str, body: dict[str, Any], status: CargoStatus, end: CargoEnd) -> None:
        """Store how the cargo's attempt ended (:mod:`crane.lifecycle.cargo_end`: its phase,
        restart count, message, conditions, exit code) and post its event. The gang's pods go
        in a later pass, once the API server has stored why (:meth:`_stored`)."""
        gen = body["metadata"].get("generation")
        status.phase, status.restarts, status.message = end.phase, end.restarts, end.message
        if not end.restart:
            status.finished_at = datetime.now(UTC)
            status.exit_code = end.exit_code
        for type_, verdict in end.conditions:
            self._cond(status, type_, verdict.ok, verdict.reason, verdict.message, gen)
        self._write(key, body, status)
        self._event(body, end.event, end.event_message, warning=end.warning)

    def _resize(
        self,
        key: str,
        body: dict[str, Any],
        spec: CargoSpec,
        status: CargoStatus,
        placements: tuple[ReplicaPlacement, ...],
    ) -> bool:
        """Grow or shrink a placed gang; True when its placement has ``spec.replicas``."""
        meta = body["metadata"]
        gen = meta.get("generation")
        old = self.state.cargos[key]
        n = spec.replicas
        if n < len(placements):
            why = f"cargo {meta['name']} shrinks from {len(placements)} to {n} replicas"
            if status.replicas > n:
                status.replicas = n
                self._cond(status, "Resizing", True, "Shrinking", why, gen)
            self._write(key, body, status)  # again after a failed write; else writes nothing
            if int((body.get("status") or {}).get("replicas") or 0) > n:
                # pods are deleted once the API server has stored the smaller count: after a
                # restart, a replica with no pod is then known to be leaving, not lost
                return False
            extra = [p for p in self.pods.get(key, []) if p.replica is None or p.replica >= n]
            self._delete_pods(extra, notice=("Shrunk", why))
            if extra or self._in_flight(key, from_replica=n):
                return False
            kept = placements[:n]
            self.engine.release_cargo(key)
            req = dataclasses.replace(old, replicas=n)
            self.engine.restore_cargo(req, kept)
            self.state.bump()
            self._resized(
                key, body, spec, status, req, kept, f"shrunk from {len(placements)} to {n} replicas"
            )
            return True
        uid = meta["uid"]
        attempt = (self.state.epoch, gen or 0)
        if self.state.attempts.get(uid) == attempt:
            return True
        req = records.cargo_request(meta, spec, status)
        self.engine.release_cargo(key)
        decision = self.engine.place_cargo(req)
        if decision.outcome != Outcome.PLACED:
            self.engine.restore_cargo(old, placements)
            self.state.attempts[uid] = (self.state.epoch, gen or 0)
            why = decision.explanation.sentence() if decision.explanation else str(decision.outcome)
            message = f"cannot grow to {n} replicas yet: {why}"
            if status.message != message:
                status.message = message
                self._cond(status, "Resizing", True, "WaitingForCapacity", message, gen)
                self._write(key, body, status)
                self._event(body, "ResizePending", message)
            return True
        moved = sum(1 for p in decision.placements[: len(placements)] if p not in placements)
        how = f"grown from {len(placements)} to {n} replicas" + (
            f", {moved} moved" if moved else ""
        )
        self._resized(key, body, spec, status, req, decision.placements, how)
        return True

    def _resized(
        self,
        key: str,
        body: dict[str, Any],
        spec: CargoSpec,
        status: CargoStatus,
        req: CargoRequest,
        placements: tuple[ReplicaPlacement, ...],
        how: str,
    ) -> None:
        gen = body["metadata"].get("generation")
        self.state.cargos[key] = req
        self.state.placements[key] = tuple(placements)
        status.placement = list(placements)
        status.replicas = len(placements)
        status.message = ""
        self._cond(status, "Resizing", False, "Resized", how, gen)
        self._write(key, body, status)
        self._event(body, "Resized", how)
        for pod in self.pods.get(key, []):
            if not pod.deleting:
                self.plan.pod_annotations.append(
                    (pod.namespace, pod.name, {REPLICAS_ANNOTATION: str(spec.replicas)})
                )

    # --- preemption --------------------------------------------------------------------------

    def preempt(self, key: str, why: str) -> None:
        """Store a borrowed cargo's Preempted phase, condition and notice, with a Warning event;
        its pods (whole, at once) get the notice and their grace period in a later pass, once
        the API server has the phase (:meth:`_stored`)."""
        body = self.cache.cargos.get(key)
        if body is None:
            self._drain(key, release_when="no-gpu")
            return
        status = self._status(body)
        if key not in self.state.cargos or status.phase in (CargoPhase.PREEMPTED, *TERMINAL):
            return
        gen = body["metadata"].get("generation")
        message = preemption.notice(why, "pods")
        status.phase = CargoPhase.PREEMPTED
        status.message = message
        reason = preemption.condition_reason(message)
        self._cond(status, "Preempted", True, reason, message, gen)
        self._ready(status, cargo_status.not_ready(cargo_status.PREEMPTED, message), gen)
        self._write(key, body, status)
        self._event(body, "Preempted", message, warning=True)


def _lost_message(lost: list[str], nodes: Mapping[str, Any]) -> str:
    """How a gang's nodes were lost: "node n0 was deleted", "node n1 NotReady past the grace
    period", or both."""
    deleted = [n for n in lost if n not in nodes]
    late = [n for n in lost if n in nodes]
    parts = [f"node {', '.join(deleted)} was deleted"] if deleted else []
    if late:
        parts.append(f"node {', '.join(late)} NotReady past the grace period")
    return "; ".join(parts)


def _seen(pod: PodView) -> ReplicaSeen:
    """What a replica's pod says of it: its phase, Running only once it is ready."""
    if pod.phase == "Failed":
        return ReplicaSeen(ReplicaState.FAILED, pod.exit_code, pod.message)
    if pod.phase == "Succeeded":
        return ReplicaSeen(ReplicaState.SUCCEEDED)
    if pod.phase == "Running" and pod.ready:
        return ReplicaSeen(ReplicaState.RUNNING)
    return ReplicaSeen(ReplicaState.WAITING)


def _matches(pod: PodView, uid: str, expected: Mapping[int, ReplicaPlacement]) -> bool:
    """Whether an existing pod is the one its replica's placement asks for (adopted)."""
    if pod.owner_uid != uid or pod.replica is None or pod.replica not in expected:
        return False
    want = expected[pod.replica]
    return pod.node == want.node and pod.gpu_ids == ",".join(str(i) for i in want.gpu_ids)


def _where(placements: Iterable[ReplicaPlacement]) -> list[tuple[int, str, list[int]]]:
    """(replica, node, GPU ids) of each replica placement, in replica order."""
    return sorted((p.replica, p.node, sorted(p.gpu_ids)) for p in placements)


def _placed_gpus(status: Mapping[str, Any]) -> set[tuple[str, int]]:
    """(node, GPU id) of every replica in a wire status's ``placement``."""
    return {
        (str(p.get("node")), int(g))
        for p in status.get("placement") or []
        for g in p.get("gpuIds") or []
    }
