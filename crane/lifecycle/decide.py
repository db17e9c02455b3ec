"""One decision pass: sync the engine with the cache, admit, place, preempt; return the writes.

The only place that decides. Synchronous and free of I/O: it reads the cache and the loop's
memory, mutates the engine, and returns a :class:`Plan` that the loop writes afterwards.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from crane.kube import app_manager, dra, rendezvous, resources
from crane.kube.builders import (
    build_service,
    build_template_cargo,
    pod_name,
    template_cargo_name,
)
from crane.kube.names import (
    CARGO_KIND,
    CARGO_LABEL,
    MINICLUSTER_KIND,
    MINICLUSTER_LABEL,
    MINICLUSTERS,
    REPLICA_LABEL,
    TEMPLATE_INDEX_LABEL,
    key_of,
    split_key,
)
from crane.kube.nodes import busy_ids, inventory
from crane.lifecycle import cargo_status, records, service
from crane.lifecycle.admission_status import Before, admission_status
from crane.lifecycle.cargo_lifecycle import CargoLifecycle
from crane.lifecycle.finalizer import finalize, hold
from crane.lifecycle.isolation import isolate_cargo
from crane.lifecycle.plan import (
    Applied,
    AppManagerLaunch,
    ClaimWrite,
    Plan,
    StatusWrite,
    TokenRevocation,
)
from crane.lifecycle.restore import gpu_ids_of, held_ids, restore
from crane.lifecycle.state import LoopState, Revocation
from crane.lifecycle.suspend import HELD_REASON, held_message, held_ready, is_held, takes_part
from crane.lifecycle.view import ClusterView as ClusterCache
from crane.lifecycle.view import PodView
from crane.model.conditions import find_condition, set_condition
from crane.model.specs import MiniClusterSpec, MiniClusterStatus
from crane.model.world import rendezvous_name
from crane.placement import Engine
from crane.placement.types import AdmissionDecision

log = logging.getLogger(__name__)

REVOKE_GIVE_UP_SECONDS = 300.0
"""How long a deleted MiniCluster waits for its app manager token to be revoked."""
RENDEZVOUS_RETRY_SECONDS = 300.0
"""How often an admitted MiniCluster's rendezvous objects are created again (409 when there)."""
SERVICE_HEAL_SECONDS = 10.0
"""How long a MiniCluster's Service asked for again (deleted by hand) waits for the watch to
show it before it is asked for once more."""
SECRET_CHECK_SECONDS = 15.0
"""How often a running app manager's token Secret is looked for (a dry-run create: the operator
cannot read Secrets); one deleted by hand is minted again with a new token."""
CLAIM_RETRY_SECONDS = 15.0
"""How long a ResourceClaim made or deleted waits for the watch before it is asked again."""


_NONE: frozenset[int] = frozenset()


@dataclass(frozen=True)
class DecideSettings:
    """Settings of the :class:`Decider`."""

    node_grace_seconds: float = 60.0
    """How long a node may be NotReady before its cargos are failed or moved."""
    api_url: str | None = None
    """Crane's API as app managers reach it; None when the operator has no API (or no token)."""


class Decider:
    """Owns the engine and the loop's memory; ``decide`` runs one pass."""

    def __init__(self, engine: Engine, settings: DecideSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or DecideSettings()
        self.state = LoopState()
        self._dra = False
        """Whether the last pass saw a node whose GPUs a DRA driver publishes."""
        self._mine: dict[str, list[dict[str, Any]]] = {}
        """This pass's cargos by MiniCluster key."""
        self._app_managers: dict[str, PodView] = {}
        """This pass's app manager pods by MiniCluster key."""

    def decide(self, cache: ClusterCache, now: datetime | None = None) -> Plan:
        """Run one pass over ``cache`` at ``now`` (default: the current time) and return its writes.

        One MiniCluster that cannot be realised is marked invalid; the rest go on."""
        now = now or datetime.now(UTC)
        plan = Plan()
        pods = cache.pods_by_cargo()
        self._mine = defaultdict(list)
        for cargo in cache.cargos.values():
            self._mine[self._mc_key(cargo)].append(cargo)
        self._app_managers = cache.app_managers()
        if not self.state.restored:
            self._restore(cache, plan)
        self._sync_nodes(cache, now)
        self.engine.set_shares(cache.share_table())
        specs = self._sync_miniclusters(cache, plan)
        self._remove_gone_miniclusters(cache, specs)
        decisions = {d.key: d for d in self.engine.admit()}
        lifecycle = CargoLifecycle(self.engine, self.state, cache, plan, pods)
        for key, body in self._by_priority(cache, specs):
            mc = specs.get(self._mc_key(body))
            if mc is not None and self._unplaced_of_held(key, body, mc[1]):
                continue  # deleted below with the rest of the held MiniCluster's cargos
            isolate_cargo(lifecycle, plan, key, body, mc)
        lifecycle.drain_deleted()
        self._remove_gone_miniclusters(cache, specs)
        self._finalize_miniclusters(cache, plan)
        for key, (body, spec) in specs.items():
            try:
                self._minicluster_status(
                    key, body, spec, decisions.get(key), cache, plan, lifecycle
                )
            except Exception as err:  # one bad object fails alone (fault isolation)
                log.exception("MiniCluster %s cannot be realised", key)
                self._invalid_minicluster(key, body, f"cannot realise the MiniCluster: {err}", plan)
        self._orphans(cache, pods, plan)
        self._relabelled(cache, plan)
        self._claims(cache, plan)
        self._forget_gone(cache)
        if plan.drop_creates(cache.namespace_terminating):
            for pod_key in [k for k in self.state.requested if "/" in k and ":" not in k]:
                if cache.namespace_terminating(pod_key.split("/", 1)[0]):
                    del self.state.requested[pod_key]  # never sent: not in flight
        return plan

    def learn(self, plan: Plan, applied: Applied) -> None:
        """Take in which of ``plan``'s writes went through.

        A failed status write leaves its object unsaved: the engine keeps the cargo's GPUs (no
        one else may take them), the next pass writes the status again, and the cargo's pods
        are created only right after a write that succeeded.
        """
        for write in plan.statuses:
            if write.ref in applied.failed_status:
                self.state.unsaved.add(write.uid)
            else:
                self.state.unsaved.discard(write.uid)
        for pod_key in applied.unsent_pods:
            self.state.requested.pop(pod_key, None)
        for cargo_key, pod_key, reason, message in applied.refused:
            self.state.requested.pop(pod_key, None)  # refused: it does not exist
            self.state.refused[cargo_key] = (reason, message)
        self.state.tokens.update(applied.minted)
        self.state.revoked |= applied.revoked

    def _forget_gone(self, cache: ClusterCache) -> None:
        live = {
            b["metadata"]["uid"] for b in (*cache.miniclusters.values(), *cache.cargos.values())
        }
        for uid in [u for u in self.state.written if u not in live]:
            del self.state.written[uid]
        for uid in [u for u in self.state.attempts if u not in live]:
            del self.state.attempts[uid]
        self.state.unsaved &= live
        for uids in (self.state.tokens, self.state.revocations):
            for uid in [u for u in uids if u not in live]:
                del uids[uid]
        self.state.revoked &= live
        self.state.cargo_specs.keep(live)
        self.state.phases.keep(live)
        for key in [k for k in self.state.repairs if k not in cache.cargos]:
            del self.state.repairs[key]
        for memory in (self.state.steady, self.state.refused):
            for key in [k for k in memory if k not in cache.cargos]:
                del memory[key]
        for key in [k for k in self.state.requested if ":" in k]:
            if key.split(":")[1] not in live:
                del self.state.requested[key]

    # --- restore and nodes -------------------------------------------------------------------

    def _restore(self, cache: ClusterCache, plan: Plan) -> None:
        """Rebuild the engine from pods and statuses (see :mod:`crane.lifecycle.restore`);
        every conflict resolved is reported with an event and counted."""
        self._sync_nodes(cache, datetime.now(UTC))
        for conflict in restore(self.engine, self.state, cache):
            body = (cache.cargos if conflict.kind != "reservation" else cache.miniclusters).get(
                conflict.loser
            )
            plan.conflicts.append((conflict.kind, conflict.reason))
            if body is not None:
                kind = MINICLUSTER_KIND if conflict.kind == "reservation" else CARGO_KIND
                plan.event(_ref(body, kind), "RestoreConflict", conflict.reason, True)
        self.state.bump()

    def _sync_nodes(self, cache: ClusterCache, now: datetime) -> None:
        foreign: dict[str, int] = {}
        used = self.state.used_ids()
        held = self._held_elsewhere(cache)
        claimed = self._claimed(cache) if cache.claims else {}
        asked: dict[str, int] = {}  # node -> nvidia.com/gpu that live Crane-labelled pods ask
        for pod in cache.pods.values():
            if not pod.holds_gpus or not pod.node:
                continue
            into = foreign if pod.cargo is None else asked
            into[pod.node] = into.get(pod.node, 0) + pod.gpus
        seen: set[str] = set()
        self._dra = False
        for name, view in cache.nodes.items():
            if not view.managed or view.gpu_count == 0:
                continue
            seen.add(name)
            self._dra = self._dra or view.dra is not None
            lost = (
                not view.ready
                and view.not_ready_since is not None
                and (now - view.not_ready_since).total_seconds() >= self.settings.node_grace_seconds
            )
            if lost:
                if name not in self.state.lost_nodes:
                    self._remove_node(name)
                    self.state.lost_nodes.add(name)
                continue
            self.state.lost_nodes.discard(name)
            crane_ids = used.get(name, _NONE)
            mine: frozenset[int] = _NONE
            if name in held or name in claimed:
                mine = frozenset(
                    {g for g in held.get(name, ()) if g < view.gpu_count} | claimed.get(name, set())
                )
            # Crane's replicas ask for exactly the GPUs counted for them; what pods with Crane's
            # labels ask for beyond those (a second pod of a replica written by hand) is in use
            # all the same, as another's pod's GPUs are.
            beyond = max(0, asked.get(name, 0) - len(crane_ids | mine))
            inputs = (view, crane_ids, mine, foreign.get(name, 0) + beyond)
            if self.state.node_inputs.get(name) == inputs:
                continue  # the same node, Crane's GPUs and others' use: the engine has it
            self.state.node_inputs[name] = inputs
            busy = busy_ids(view.gpu_count, crane_ids | mine, inputs[3]) | mine
            inv = inventory(view, busy)
            if self.state.nodes.get(name) != inv:
                self.engine.upsert_node(inv)
                self.state.nodes[name] = inv
                self.state.bump()
        for name in [n for n in self.state.nodes if n not in seen]:
            self._remove_node(name)
        self.state.lost_nodes &= seen

    def _held_elsewhere(self, cache: ClusterCache) -> dict[str, frozenset[int]]:
        """node -> GPU ids that live Crane pods hold outside their cargo's placement in the
        engine (a restore loser, a moved replica, a cargo gone): busy until those pods end, so
        a GPU is never handed out while something still runs on it. Only the GPUs a pod really
        asks for count (:func:`~crane.lifecycle.restore.held_ids`): a pod written by hand with
        Crane's labels keeps no GPU from anyone."""
        expected: dict[tuple[str, str], set[int]] = {}
        for cargo, placements in self.state.placements.items():
            for p in placements:
                expected.setdefault((cargo, p.node), set()).update(p.gpu_ids)
        out: dict[str, set[int]] = {}
        for pod in cache.pods.values():
            if pod.cargo is None or not pod.holds_gpus or not pod.node:
                continue
            mine = expected.get((pod.cargo, pod.node), set())
            extra = [g for g in held_ids(pod, cache.claims) if g not in mine]
            if extra:
                out.setdefault(pod.node, set()).update(extra)
        return {n: frozenset(ids) for n, ids in out.items()}

    def _claimed(self, cache: ClusterCache) -> dict[str, set[int]]:
        """node -> GPU ids of DRA nodes that allocated ResourceClaims hold, except those a live
        Crane pod holds through its own claim (they count through its cargo): the devices of
        claims Crane did not make, and of Crane's claims whose pod is gone, done or replaced,
        until the claim goes. So a device is never in two allocated claims."""
        nodes = {name: v.dra for name, v in cache.nodes.items() if v.dra is not None}

        def own(claim: dra.ClaimView) -> tuple[str, frozenset[int]] | None:
            pod = cache.pods.get(key_of(claim.namespace, claim.pod)) if claim.pod else None
            if pod is None or not _holds_claim(pod, claim):
                return None
            return pod.node, frozenset(gpu_ids_of(pod.gpu_ids))

        return dra.held_devices(nodes, cache.claims.values(), own)

    def _claims(self, cache: ClusterCache, plan: Plan) -> None:
        """Keep each replica on a DRA node with its own allocated claim: delete Crane's claims
        whose pod is gone, done or replaced; make again (and allocate) the claim of a live pod
        that lacks it or its allocation (a write lost to a crash or an error), when that pod is
        the one Crane made for a replica of its cargo's placement (:meth:`_placed_replica`):
        never for a pod written by hand that names GPU ids."""
        if not self._dra and not cache.claims:
            return
        now = time.monotonic()
        asked = self.state.claims_asked
        for key in [k for k, at in asked.items() if now - at > 4 * CLAIM_RETRY_SECONDS]:
            del asked[key]

        def ask(key: str) -> bool:
            if now - asked.get(key, -CLAIM_RETRY_SECONDS) < CLAIM_RETRY_SECONDS:
                return False
            asked[key] = now
            return True

        held: dict[str, dra.ClaimView] = {}
        for claim in cache.claims.values():
            if claim.pod is None or claim.deleting:
                continue
            pod_key = key_of(claim.namespace, claim.pod)
            pod = cache.pods.get(pod_key)
            if pod is not None and _holds_claim(pod, claim):
                held[pod_key] = claim
            elif pod is None and pod_key in self.state.requested:
                continue  # its pod is being created: the watch has not shown it yet
            elif ask(f"delete:{claim.key}"):
                plan.claim_deletes.append((claim.namespace, claim.name))
        for pod in cache.pods.values():
            if not pod.claim or not pod.holds_gpus or pod.deleting or pod.cargo is None:
                continue
            own = held.get(pod.key)
            if (own is not None and own.devices) or (
                pod.key not in held and f"{pod.namespace}/{pod.claim}" in cache.claims
            ):
                continue  # allocated, or a stale claim of that name that is being deleted
            view = cache.nodes.get(pod.node)
            ids = gpu_ids_of(pod.gpu_ids)
            if view is None or view.dra is None or not ids or max(ids) >= len(view.dra.devices):
                continue
            if not self._placed_replica(pod, cache):
                continue
            if not ask(pod.key):
                continue
            labels = {CARGO_LABEL: split_key(pod.cargo)[1]}
            if pod.replica is not None:
                labels[REPLICA_LABEL] = str(pod.replica)
            plan.claims.append(
                ClaimWrite(
                    claim=dra.build_claim(pod.namespace, pod.name, labels, len(ids)),
                    allocation=dra.allocation(pod.node, view.dra, ids),
                    pod=pod.name,
                    pod_uid=pod.uid,
                )
            )

    def _placed_replica(self, pod: PodView, cache: ClusterCache) -> bool:
        """Whether ``pod`` is the pod Crane makes for a replica its cargo is placed with: named
        for that replica, owned by the cargo, on the replica's node with its GPU ids."""
        body = cache.cargos.get(pod.cargo or "")
        if body is None or pod.replica is None or pod.cargo is None:
            return False
        if pod.owner_uid != body["metadata"].get("uid"):
            return False
        if pod.name != pod_name(split_key(pod.cargo)[1], pod.replica):
            return False
        ids = gpu_ids_of(pod.gpu_ids)
        return any(
            p.replica == pod.replica and p.node == pod.node and tuple(p.gpu_ids) == ids
            for p in self.state.placements.get(pod.cargo, ())
        )

    def _remove_node(self, name: str) -> None:
        self.state.node_inputs.pop(name, None)
        if name in self.state.nodes:
            self.engine.remove_node(name)
            del self.state.nodes[name]
            self.state.bump()

    # --- MiniClusters ------------------------------------------------------------------------

    @staticmethod
    def _mc_key(cargo_body: Mapping[str, Any]) -> str:
        return key_of(
            cargo_body["metadata"]["namespace"],
            (cargo_body.get("spec") or {}).get("miniCluster", ""),
        )

    def _quota(self, key: str, cache: ClusterCache) -> int | None:
        namespace = key.partition("/")[0]
        hard = cache.namespace_quota(namespace)
        if hard is None:
            return None
        others = 0
        for other in self.state.miniclusters:
            if (
                other != key
                and other.partition("/")[0] == namespace
                and self.engine.is_admitted(other)
            ):
                usage = self.engine.usage(other)
                others += max(usage.reserved_gpus, usage.in_use_gpus)
        return max(0, hard - others)

    def _sync_miniclusters(
        self, cache: ClusterCache, plan: Plan
    ) -> dict[str, tuple[dict[str, Any], MiniClusterSpec]]:
        """Submit every live MiniCluster to the engine; returns the valid ones with their specs."""
        out: dict[str, tuple[dict[str, Any], MiniClusterSpec]] = {}
        for key, body in cache.miniclusters.items():
            if body["metadata"].get("deletionTimestamp"):
                continue
            hold(plan, MINICLUSTERS, body["metadata"])
            try:
                spec = resources.parse_minicluster_spec(body)
            except ValidationError as err:
                self._invalid_minicluster(key, body, resources.validation_message(err), plan)
                continue
            out[key] = (body, spec)
            if is_held(spec):
                continue  # leaves the engine once its cargos are gone
            req = records.minicluster_request(body["metadata"], spec, self._quota(key, cache))
            if self.state.miniclusters.get(key) != req:
                self.engine.submit_minicluster(req)
                self.state.miniclusters[key] = req
                self.state.bump()
        return out

    def _invalid_minicluster(
        self, key: str, body: dict[str, Any], message: str, plan: Plan
    ) -> None:
        status = self._current_mc_status(body)
        status.conditions = set_condition(
            status.conditions,
            resources.condition(
                "Failed", True, "InvalidSpec", message, body["metadata"].get("generation")
            ),
        )
        status.message = message
        self._write_mc(body, status, plan, ("InvalidSpec", message, True))

    def _unplaced_of_held(self, key: str, body: Mapping[str, Any], spec: MiniClusterSpec) -> bool:
        """A live cargo of a held MiniCluster that holds no GPUs: it is never placed."""
        return (
            is_held(spec)
            and not body["metadata"].get("deletionTimestamp")
            and key not in self.state.cargos
        )

    def _remove_gone_miniclusters(
        self, cache: ClusterCache, specs: Mapping[str, tuple[dict[str, Any], MiniClusterSpec]]
    ) -> None:
        """Take deleted and held MiniClusters out of the engine once no cargo holds GPUs."""
        holding = {req.minicluster for req in self.state.cargos.values()}
        out = {k for k, (_, spec) in specs.items() if not takes_part(spec, k in holding)}
        live = {
            k
            for k, b in cache.miniclusters.items()
            if not b["metadata"].get("deletionTimestamp") and k not in out
        }
        for key in [k for k in self.state.miniclusters if k not in live and k not in holding]:
            self.engine.remove_minicluster(key)
            del self.state.miniclusters[key]
            self.state.bump()

    def _finalize_miniclusters(self, cache: ClusterCache, plan: Plan) -> None:
        """Deleted MiniClusters: delete their cargos; once those are gone, let them go."""
        now = time.monotonic()
        for key, body in cache.miniclusters.items():
            meta = body["metadata"]
            if not meta.get("deletionTimestamp"):
                continue
            mine = [b["metadata"] for b in self._mine.get(key, ())]
            for cargo in mine:
                if not cargo.get("deletionTimestamp") and self.state.may_request(
                    f"delete:{cargo['uid']}", now
                ):
                    plan.cargo_deletes.append((cargo["namespace"], cargo["name"]))
            if not mine and key not in self.state.miniclusters and self._revoke_token(body, plan):
                finalize(plan, self.state, MINICLUSTERS, meta)

    def _token_id(self, body: Mapping[str, Any]) -> str | None:
        """Id of the app manager token minted for this MiniCluster, if any."""
        uid = body["metadata"]["uid"]
        recorded = (body.get("status") or {}).get("appManagerTokenId")
        return self.state.tokens.get(uid) or recorded

    def _revoke_token(self, body: dict[str, Any], plan: Plan) -> bool:
        """Whether a deleted MiniCluster's app manager token is revoked (or there is none).

        Asks the API again with a doubling backoff (up to a minute); after
        ``REVOKE_GIVE_UP_SECONDS`` (or at once when the operator has no API) it lets the
        MiniCluster go with a Warning event that names the token.
        """
        uid = body["metadata"]["uid"]
        token_id = self._token_id(body)
        if token_id is None or uid in self.state.revoked:
            return True
        now = time.monotonic()
        tries = self.state.revocations.setdefault(uid, Revocation(first=now, next=now))
        if self.settings.api_url is None or now - tries.first >= REVOKE_GIVE_UP_SECONDS:
            self.state.revoked.add(uid)
            plan.event(
                _ref(body, MINICLUSTER_KIND),
                "TokenNotRevoked",
                f"could not revoke the app manager token {token_id} "
                f"({'no API configured' if self.settings.api_url is None else 'API unreachable'}"
                f"); revoke it by hand: DELETE /v1/tokens/{token_id}",
                True,
            )
            return True
        if now >= tries.next:
            plan.token_revocations.append(TokenRevocation(uid, token_id))
            tries.tries += 1
            tries.next = now + min(60.0, 2.0**tries.tries)
        return False

    def _by_priority(
        self, cache: ClusterCache, specs: Mapping[str, tuple[dict[str, Any], MiniClusterSpec]]
    ) -> list[tuple[str, dict[str, Any]]]:
        def order(item: tuple[str, dict[str, Any]]) -> tuple[int, float, str]:
            mc = specs.get(self._mc_key(item[1]))
            priority = mc[1].priority if mc else 0
            return (-priority, resources.created_at(item[1]["metadata"]), item[0])

        return sorted(cache.cargos.items(), key=order)

    def _current_mc_status(self, body: Mapping[str, Any]) -> MiniClusterStatus:
        written = self.state.written.get(body["metadata"]["uid"])
        if written is not None:
            return MiniClusterStatus.model_validate(written)
        return resources.minicluster_status(body)

    def _write_mc(
        self,
        body: Mapping[str, Any],
        status: MiniClusterStatus,
        plan: Plan,
        event: tuple[str, str, bool] | None = None,
    ) -> None:
        meta = body["metadata"]
        wire = resources.status_wire(status)
        if wire.get("appManagerTokenId") is None:
            wire.pop("appManagerTokenId", None)  # recorded by the actuator; never removed
        uid = meta["uid"]
        before = self.state.written.get(uid, body.get("status") or {})
        if uid not in self.state.unsaved and resources.same_status(before, wire):
            return
        self.state.written[uid] = wire
        plan.status(
            StatusWrite(
                MINICLUSTERS,
                meta["namespace"],
                meta["name"],
                wire,
                uid,
                resource_version=meta.get("resourceVersion"),
            )
        )
        if event is not None:
            reason, message, warning = event
            plan.event(_ref(body, MINICLUSTER_KIND), reason, message, warning)

    def _minicluster_status(
        self,
        key: str,
        body: dict[str, Any],
        spec: MiniClusterSpec,
        decision: AdmissionDecision | None,
        cache: ClusterCache,
        plan: Plan,
        lifecycle: CargoLifecycle,
    ) -> None:
        if is_held(spec):
            self._held_status(key, body, spec, cache, plan, lifecycle)
            return
        meta = body["metadata"]
        gen = meta.get("generation")
        status = self._current_mc_status(body)
        before = Before(resources.is_true(status.conditions, "Admitted"), status.message)
        now = admission_status(self.engine, key, spec, decision, before)
        admitted = now.admitted
        status.reservation, status.reserved_gpus = now.reservation, now.reserved_gpus
        if now.in_use_gpus is not None and now.borrowed_gpus is not None:
            status.in_use_gpus, status.borrowed_gpus = now.in_use_gpus, now.borrowed_gpus
        status.queue_position, status.waits_behind = now.queue_position, now.waits_behind
        status.estimated_start, status.message = now.estimated_start, now.message
        for type_, verdict in now.conditions:
            status.conditions = set_condition(
                status.conditions,
                resources.condition(type_, verdict.ok, verdict.reason, verdict.message, gen),
            )
        event = (*now.event, False) if now.event else None
        for victim, notice in now.victims:
            lifecycle.preempt(victim, notice)
        taken = self._template_cargos(key, body, spec, cache, plan)
        self._name_taken(body, taken, status, plan)
        self._app_manager(body, spec, admitted, status, cache, plan)
        if admitted:
            self._rendezvous(body, spec, cache, plan)
        self._headless_service(key, body, cache, lifecycle, plan)
        # a cargo being deleted is no longer one of its cargos (its GPUs count until released)
        mine = [b for b in self._mine.get(key, []) if not b["metadata"].get("deletionTimestamp")]
        running = [b for b in mine if lifecycle.phase_of(b) == "Running"]
        active = [b for b in mine if lifecycle.phase_of(b) not in ("Succeeded", "Failed")]
        status.cargos, status.ready_cargos = len(mine), len(running)
        template_count = sum(
            1 for b in mine if TEMPLATE_INDEX_LABEL in (b["metadata"].get("labels") or {})
        )
        status.replicas = service.status_replicas(spec, template_count, len(mine))
        status.selector = f"crane.io/minicluster={meta['name']}"
        ready = cargo_status.minicluster_ready(admitted, len(running), len(active))
        status.conditions = set_condition(
            status.conditions,
            resources.condition("Ready", ready.ok, ready.reason, ready.message, gen),
        )
        status.conditions = [c for c in status.conditions if c.type != "Failed"]
        status.observed_generation = gen
        self._write_mc(body, status, plan, event)

    def _held_status(
        self,
        key: str,
        body: dict[str, Any],
        spec: MiniClusterSpec,
        cache: ClusterCache,
        plan: Plan,
        lifecycle: CargoLifecycle,
    ) -> None:
        """A held MiniCluster (see :mod:`crane.lifecycle.suspend`): delete its cargos, say so;
        its reservation goes with it out of the engine once they are gone."""
        meta = body["metadata"]
        gen = meta.get("generation")
        status = self._current_mc_status(body)
        before = find_condition(status.conditions, "Admitted")
        mine = self._mine.get(key, [])
        now = time.monotonic()
        for cargo in (b["metadata"] for b in mine):
            if not cargo.get("deletionTimestamp") and self.state.may_request(
                f"delete:{cargo['uid']}", now
            ):
                plan.cargo_deletes.append((cargo["namespace"], cargo["name"]))
        usage = self.engine.usage(key)
        status.reservation = {
            n: list(ids) for n, ids in sorted(self.engine.reservation(key).items())
        }
        status.reserved_gpus, status.in_use_gpus = usage.reserved_gpus, usage.in_use_gpus
        status.borrowed_gpus = usage.borrowed_gpus
        status.queue_position, status.waits_behind, status.estimated_start = None, [], None
        status.message = held_message(meta["name"], len(mine))
        status.conditions = [c for c in status.conditions if c.type not in ("Failed", "Resizing")]
        status.conditions = set_condition(
            status.conditions,
            resources.condition("Admitted", False, HELD_REASON, status.message, gen),
        )
        status.conditions = set_condition(
            status.conditions,
            resources.condition("Ready", False, HELD_REASON, held_ready(len(mine)), gen),
        )
        self._app_manager(body, spec, False, status, cache, plan)
        running = [b for b in mine if lifecycle.phase_of(b) == "Running"]
        status.cargos, status.ready_cargos = len(mine), len(running)
        status.replicas = 0
        status.selector = f"crane.io/minicluster={meta['name']}"
        status.observed_generation = gen
        event = None
        if before is None or before.reason != HELD_REASON:
            event = (HELD_REASON, status.message, False)
        self._write_mc(body, status, plan, event)

    def _app_manager(
        self,
        body: dict[str, Any],
        spec: MiniClusterSpec,
        admitted: bool,
        status: MiniClusterStatus,
        cache: ClusterCache,
        plan: Plan,
    ) -> None:
        """Keep pod ``<mc>-am`` (with its token Secret) for an admitted MiniCluster that asks."""
        meta = body["metadata"]
        key = key_of(meta["namespace"], meta["name"])
        pod = self._app_managers.get(key)
        if spec.app_manager is None:
            status.conditions = [c for c in status.conditions if c.type != "AppManagerReady"]
            if pod is not None and not pod.deleting:
                plan.pod_deletes.append((pod.namespace, pod.name, None))
            return
        gen = meta.get("generation")
        url = self.settings.api_url
        status.app_manager_token_id = self._token_id(body)
        if url is None:
            ready, reason, message = (
                False,
                "ApiNotConfigured",
                "the operator has no API to give the app manager a token: run it with "
                "--api-url and --api-token (env CRANE_API_URL, CRANE_API_TOKEN: an admin token)",
            )
        elif not admitted:
            ready, reason, message = False, "NotAdmitted", "starts once the MiniCluster is admitted"
        elif pod is None:
            ready, reason, message = (
                False,
                "Creating",
                f"creating pod {app_manager.pod_name(meta['name'])}",
            )
            if self.state.may_request(
                key_of(meta["namespace"], app_manager.pod_name(meta["name"])), time.monotonic()
            ):
                plan.app_managers.append(
                    AppManagerLaunch(
                        meta,
                        app_manager.build_pod(meta, spec.app_manager, url),
                        mint=status.app_manager_token_id is None,
                    )
                )
        else:
            ready = pod.phase == "Running" and pod.ready
            reason = "Running" if ready else f"Pod{pod.phase}"
            message = f"pod {pod.name} is {pod.phase}"
            token_id = status.app_manager_token_id
            if (
                token_id is not None
                and not pod.deleting
                and self.state.may_request(
                    f"secret:{meta['uid']}", time.monotonic(), SECRET_CHECK_SECONDS
                )
            ):
                plan.app_managers.append(
                    AppManagerLaunch(
                        meta,
                        app_manager.build_pod(meta, spec.app_manager, url),
                        mint=False,
                        reissue=token_id,
                    )
                )
        status.conditions = set_condition(
            status.conditions, resources.condition("AppManagerReady", ready, reason, message, gen)
        )

    def _headless_service(
        self,
        key: str,
        body: dict[str, Any],
        cache: ClusterCache,
        lifecycle: CargoLifecycle,
        plan: Plan,
    ) -> None:
        """Make the MiniCluster's headless Service again, while any of its cargos has pods, when
        the watch shows it gone (``kubectl delete svc``): its replicas' DNS names depend on it."""
        meta = body["metadata"]
        if key in cache.services:
            return
        namespace = meta["namespace"]
        if not any(
            lifecycle.pods.get(key_of(namespace, cargo["metadata"]["name"]))
            for cargo in self._mine.get(key, [])
        ):
            return  # its first pods ask for it (:meth:`CargoLifecycle._create_pods`)
        if self.state.may_request(f"service:{meta['uid']}", time.monotonic(), SERVICE_HEAL_SECONDS):
            plan.services.append((f"minicluster:{key}", build_service(meta)))

    def _rendezvous(
        self, body: dict[str, Any], spec: MiniClusterSpec, cache: ClusterCache, plan: Plan
    ) -> None:
        """Keep an admitted MiniCluster's rendezvous store (``spec.rendezvous.enabled``).

        Its Deployment is not watched: creating it is asked again every few minutes (one
        there already stays), so a store deleted by hand or lost in a restart comes back. Its
        Service is watched: one deleted by hand is asked for again at once.
        """
        if spec.rendezvous is None or not spec.rendezvous.enabled or spec.template is None:
            return
        meta = body["metadata"]
        there = key_of(meta["namespace"], rendezvous_name(meta["name"])) in cache.services
        retry = RENDEZVOUS_RETRY_SECONDS if there else SERVICE_HEAL_SECONDS
        if self.state.may_request(f"rendezvous:{meta['uid']}", time.monotonic(), retry):
            plan.rendezvous.append(
                (rendezvous.build_deployment(meta, spec), rendezvous.build_service(meta, spec))
            )

    def _name_taken(
        self, body: dict[str, Any], taken: list[str], status: MiniClusterStatus, plan: Plan
    ) -> None:
        """Say (condition ``ReplicaFailure``, reason ``NameTaken``, a Warning event) which
        template cargo names another cargo holds; clear it once none is."""
        if not taken:
            status.conditions = [c for c in status.conditions if c.type != "ReplicaFailure"]
            return
        message = service.template_name_taken(body["metadata"]["name"], taken)
        before = find_condition(status.conditions, "ReplicaFailure")
        if before is None or before.message != message:
            plan.event(_ref(body, MINICLUSTER_KIND), service.NAME_TAKEN, message, warning=True)
        status.conditions = set_condition(
            status.conditions,
            resources.condition(
                "ReplicaFailure",
                True,
                service.NAME_TAKEN,
                message,
                body["metadata"].get("generation"),
            ),
        )

    def _template_cargos(
        self, key: str, body: dict[str, Any], spec: MiniClusterSpec, cache: ClusterCache, plan: Plan
    ) -> list[str]:
        """Keep ``spec.replicas`` cargos ``<mc>-<i>``: add the missing, drop the highest.

        Returns the names of missing template cargos that another cargo holds (one made by hand,
        or of another MiniCluster): those are not created (the API server would refuse them)."""
        if spec.template is None or spec.replicas is None:
            return []
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        existing: dict[int, bool] = {}  # index -> being deleted
        for b in self._mine.get(key, ()):
            index = (b["metadata"].get("labels") or {}).get(TEMPLATE_INDEX_LABEL, "")
            if index.isdigit():
                existing[int(index)] = bool(b["metadata"].get("deletionTimestamp"))
        now = time.monotonic()
        for i in existing:
            self.state.requested.pop(f"create:{meta['uid']}:{i}", None)
        changes = service.template_changes(spec.replicas, existing)
        taken = [
            i
            for i in changes.create
            if key_of(namespace, template_cargo_name(name, i)) in cache.cargos
        ]
        missing = [
            i
            for i in changes.create
            if i not in taken and self.state.may_request(f"create:{meta['uid']}:{i}", now)
        ]
        extra = changes.delete
        for i in missing:
            plan.cargo_creates.append(build_template_cargo(meta, spec.template, i))
        for i in extra:
            plan.cargo_deletes.append((namespace, template_cargo_name(name, i)))
        if missing:
            made = service.listed([template_cargo_name(name, i) for i in missing])
            plan.event(_ref(body, MINICLUSTER_KIND), "ScaledUp", f"creating cargos {made}")
        if extra:
            going = service.listed([template_cargo_name(name, i) for i in extra])
            plan.event(
                _ref(body, MINICLUSTER_KIND),
                "ScaledDown",
                f"deleting cargos {going} (highest first)",
            )
        return [template_cargo_name(name, i) for i in taken]

    def _orphans(self, cache: ClusterCache, pods: Mapping[str, list[PodView]], plan: Plan) -> None:
        """Delete Crane pods whose cargo is gone and that the engine holds nothing for."""
        for cargo_key, cargo_pods in pods.items():
            if cargo_key in cache.cargos or cargo_key in self.state.cargos:
                continue
            for pod in cargo_pods:
                if not pod.deleting:
                    plan.pod_deletes.append((pod.namespace, pod.name, None))

    def _relabelled(self, cache: ClusterCache, plan: Plan) -> None:
        """Set back the Crane labels of a cargo's pod edited by hand (``kubectl label``), with
        a Warning event on the cargo: its replica is seen by ownership meanwhile, and its
        MiniCluster's Service and the user's selectors find it by those labels."""
        now = time.monotonic()
        for pod in cache.pods.values():
            body = cache.cargos.get(pod.cargo or "")
            if body is None or pod.deleting or pod.replica is None:
                continue
            meta = body["metadata"]
            mc = (body.get("spec") or {}).get("miniCluster") or None
            moved = pod.minicluster is not None and pod.minicluster != mc
            if meta.get("uid") != pod.owner_uid or not (pod.relabelled or moved):
                continue
            if not self.state.may_request(
                f"labels:{meta['uid']}:{pod.name}", now, SERVICE_HEAL_SECONDS
            ):
                continue
            labels = {CARGO_LABEL: meta["name"], REPLICA_LABEL: str(pod.replica)}
            if mc is not None:
                labels[MINICLUSTER_LABEL] = mc
            plan.pod_labels.append((pod.namespace, pod.name, labels))
            shown = ", ".join(f"{k}={v}" for k, v in labels.items())
            plan.event(
                _ref(body, CARGO_KIND),
                "PodRelabelled",
                f"pod {pod.name}'s Crane labels were changed by hand; they are set back "
                f"({shown}): Crane and the MiniCluster's Service find its replica by them",
                True,
            )


def _holds_claim(pod: PodView, claim: dra.ClaimView) -> bool:
    """Whether ``claim`` is the live pod's own: the one it refers to, made for this pod."""
    return (
        pod.holds_gpus
        and pod.claim == claim.name
        and (claim.owner_uid is None or claim.owner_uid == pod.uid)
    )


def _ref(body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {
        "apiVersion": body.get("apiVersion") or "crane.io/v1alpha1",
        "kind": kind,
        "metadata": body["metadata"],
    }
