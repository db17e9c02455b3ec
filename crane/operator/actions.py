"""Writes a :class:`Plan` to the API server: independent calls concurrently, dependent in order.

Per object: its metadata patch, then its status, then (for a cargo whose status was written)
its Service and pods. Chains of different objects, deletions and other writes run side by
side, at most ``in_flight`` calls at a time (blocking client calls in a thread pool). Events
are posted in the background: the next pass does not wait for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes.client.exceptions import ApiException

from crane.client import NotFound
from crane.kube import app_manager, dra
from crane.kube.client import Fenced, KubeClient, fenced, refusal
from crane.kube.names import CARGOS, LEADER_TERM_ANNOTATION, MINICLUSTERS, key_of
from crane.lifecycle.plan import (
    Applied,
    AppManagerLaunch,
    ClaimWrite,
    ObjectRef,
    Plan,
    TokenRevocation,
)
from crane.model.refusal import FENCE_REFUSAL
from crane.operator.metrics import Metrics
from crane.operator.tokens import TokenMinter

log = logging.getLogger(__name__)
COMPONENT = "crane-operator"
TERMINATING = "because it is being terminated"
"""What the API server says when it refuses a create in a namespace being deleted."""
MAX_CHAINS = 50_000
"""Objects whose own-write versions are remembered at most (entries go once the watch shows
the latest write; a deleted object's stays until this bound clears them all)."""


class Actuator:
    """Writes each pass's :class:`Plan` to the API server, the calls running in a thread pool."""

    def __init__(
        self,
        client: KubeClient,
        metrics: Metrics,
        in_flight: int = 32,
        minter: TokenMinter | None = None,
        fence: Callable[[], bool] | None = None,
        stamp: Callable[[], str] | None = None,
    ) -> None:
        self.client = client
        self.fence = fence
        self.stamp = stamp
        """This instance's leader term (:meth:`LeaseElector.stamp`): each plan's pods carry the
        term it was written in, and the API server's leader fence refuses them once another
        instance has taken the lease over, even when a pause fell between the :attr:`fence`
        check and the request going out."""
        self._term: str | None = None
        """The term of the plan being written."""
        """Whether this instance still holds the leader lease (:meth:`LeaseElector.holds`):
        each write checks it when its turn in the pool comes, so writes queued when a pause
        outlived the lease are never sent (their status writes count as failed)."""
        self.minter = minter
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="crane-write")
        self._background: set[asyncio.Future[Any]] = set()
        self._versions = Versions()
        self._terminating: set[str] = set()
        """Namespaces the API server said are being deleted (403 on a create), this plan."""
        self._refused: dict[str, tuple[str, str]] = {}
        """Pod key -> (reason, message) of the pods the API server refused for good, this plan."""

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """One API call in the pool; None (logged) when it failed."""
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, _logged(self.metrics, fn, *args, fence=self.fence)
        )

    async def _create(self, fn: Callable[..., Any], body: Mapping[str, Any], *rest: Any) -> Any:
        """Create ``body`` (a namespaced object) unless its namespace turned out to be ending
        during this plan: the first 403 "being terminated" stops the other creates there."""
        namespace = body["metadata"]["namespace"]
        seen = self._terminating
        return await asyncio.get_running_loop().run_in_executor(
            self.pool,
            _logged(self.metrics, fn, body, *rest, ending=(namespace, seen), fence=self.fence),
        )

    def _refusing(self, create: Callable[..., Any]) -> Callable[..., Any]:
        """``create`` (of a pod) that notes a refusal for good (:func:`refusal`) before it
        raises: the cargo of such a pod fails instead of asking for it again forever."""

        def run(pod: Mapping[str, Any], *rest: Any) -> Any:
            try:
                return create(pod, *rest)
            except ApiException as err:
                why = refusal(err)
                if why is not None:
                    meta = pod["metadata"]
                    self._refused[key_of(meta["namespace"], meta["name"])] = why
                raise

        return run

    async def apply(self, plan: Plan) -> Applied:
        """Write ``plan``; report the status writes that failed and the pods left unsent."""
        c = self.client
        self._terminating = set()
        self._refused = {}
        self._term = self.stamp() if self.stamp is not None else None
        failed: set[ObjectRef] = set()
        unsent: list[str] = []
        pods: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for key, pod in plan.pods:
            pods[key].append(pod)
        services = dict(plan.services)
        annotations: dict[tuple[str, str], dict[str, str]] = {}
        for namespace, name, values in plan.pod_annotations:
            annotations.setdefault((namespace, name), {}).update(values)

        async def realise(key: str) -> None:
            calls = [
                self._pod_with_claim(self._stamped(p), claim)
                if (
                    claim := plan.pod_claims.get(
                        key_of(p["metadata"]["namespace"], p["metadata"]["name"])
                    )
                )
                else self._create(self._refusing(c.create_pod), self._stamped(p))
                for p in pods.pop(key, [])
            ]
            if key in services:
                calls.append(self._create(c.create_service, services.pop(key)))
            created = await asyncio.gather(*calls)
            self.metrics.pods_created.inc(sum(1 for ok in created if ok is True))

        async def chain(ref: ObjectRef) -> None:
            plural, namespace, name = ref
            write = plan.status_writes.get(ref)
            version = self._versions.current(write.uid, write.resource_version) if write else None
            ok = True
            if ref in plan.metadata:
                done = await self._call(c.patch_metadata, *ref, plan.metadata[ref], version)
                if write is not None:
                    version = self._versions.wrote(write.uid, version, done)
                    ok = version is not None
            if write is not None:
                if ok:
                    result = await self._call(c.replace_status, *ref, write.status, version)
                    ok = self._versions.wrote(write.uid, version, result) is not None
                if not ok:
                    failed.add(ref)
                if not ok and plural == CARGOS:
                    key = key_of(namespace, name)
                    unsent.extend(
                        key_of(namespace, p["metadata"]["name"]) for p in pods.pop(key, [])
                    )
                    services.pop(key, None)
                    return
            if plural == CARGOS:
                await realise(key_of(namespace, name))

        async def chains(group: list[ObjectRef]) -> None:
            await asyncio.gather(*(chain(r) for r in group))

        async def in_order(releasing: list[ObjectRef], others: list[ObjectRef]) -> None:
            """Statuses that give GPUs back first; if one of them failed, no status that claims
            GPUs is written this pass (it may claim those very GPUs): the next pass writes both
            again, releases first."""
            await chains(releasing)
            if failed & set(releasing):
                claiming = [
                    r for r in others if (w := plan.status_writes.get(r)) is not None and w.claims
                ]
                for ref in claiming:
                    others.remove(ref)
                    failed.add(ref)
                    key = key_of(ref[1], ref[2])
                    unsent.extend(key_of(ref[1], p["metadata"]["name"]) for p in pods.pop(key, []))
                    services.pop(key, None)
            await chains(others)

        refs = [*plan.metadata, *(r for r in plan.status_writes if r not in plan.metadata)]
        releasing = [r for r in refs if r in plan.status_writes and plan.status_writes[r].releases]
        others = [r for r in refs if r not in releasing]
        chained = {key_of(ns, name) for plural, ns, name in refs if plural == CARGOS}
        rest: list[Awaitable[Any]] = [
            *(realise(k) for k in {*pods, *services} if k not in chained),
            *(self._create(c.create_cargo, b) for b in plan.cargo_creates),
            *(self._call(c.delete_cargo, *d) for d in plan.cargo_deletes),
            *(self._delete_pod(d, annotations.pop(d[:2], None)) for d in plan.pod_deletes),
            *(self._call(c.patch_pod_annotations, *ref, a) for ref, a in annotations.items()),
            *(self._call(c.patch_pod_labels, *labels) for labels in plan.pod_labels),
            *(self._call(c.remove_finalizer, *f) for f in plan.finalizer_removals),
            *(self._create(c.create_rendezvous, *r) for r in plan.rendezvous),
            *(self._claim(w, w.pod_uid) for w in plan.claims),
            *(self._call(c.delete_claim, *d) for d in plan.claim_deletes),
        ]
        launches = [self._call(self._launch, a) for a in plan.app_managers]
        revocations = [self._call(self._revoke, r) for r in plan.token_revocations]
        done = await asyncio.gather(*launches, *revocations, in_order(releasing, others), *rest)
        minted: list[str | None] = done[: len(launches)]
        revoked: list[bool | None] = done[len(launches) : len(launches) + len(revocations)]
        if plan.events:
            self._post_events(plan)
        cargo_of = {
            key_of(p["metadata"]["namespace"], p["metadata"]["name"]): k for k, p in plan.pods
        }
        return Applied(
            frozenset(failed),
            tuple(unsent),
            terminating=frozenset(self._terminating),
            refused=tuple(
                (cargo_of[pod], pod, reason, message)
                for pod, (reason, message) in self._refused.items()
                if pod in cargo_of
            ),
            minted=tuple(
                (a.minicluster["uid"], token_id)
                for a, token_id in zip(plan.app_managers, minted, strict=True)
                if token_id
            ),
            revoked=frozenset(
                r.uid for r, ok in zip(plan.token_revocations, revoked, strict=True) if ok
            ),
        )

    def _stamped(self, pod: dict[str, Any]) -> dict[str, Any]:
        """``pod`` with the plan's leader term among its annotations (a copy: the plan keeps
        the pod as the lifecycle built it)."""
        if self._term is None:
            return pod
        meta = pod["metadata"]
        annotations = {**(meta.get("annotations") or {}), LEADER_TERM_ANNOTATION: self._term}
        return {**pod, "metadata": {**meta, "annotations": annotations}}

    async def _pod_with_claim(self, pod: dict[str, Any], claim: ClaimWrite) -> bool:
        """Create a pod on a DRA node, then its claim, owned by it and allocated for it."""
        uid = await self._create(self._refusing(self.client.create_pod_uid), pod)
        if not uid:
            return False
        await self._claim(claim, uid)
        return True

    async def _claim(self, claim: ClaimWrite, pod_uid: str) -> Any:
        """Create a replica's claim owned by its pod and write the allocation (reserved for it)."""
        body = copy.deepcopy(claim.claim)
        body["metadata"]["ownerReferences"] = [dra.pod_owner(claim.pod, pod_uid)]
        status = dra.claim_status(claim.allocation, claim.pod, pod_uid)
        return await self._call(self.client.ensure_claim, body, status)

    async def _delete_pod(
        self, delete: tuple[str, str, int | None], annotations: dict[str, str] | None
    ) -> None:
        """Delete a pod, setting its annotations (a notice) first when the plan has some."""
        if annotations:
            await self._call(self.client.patch_pod_annotations, *delete[:2], annotations)
        await self._call(self.client.delete_pod, *delete)

    def _launch(self, launch: AppManagerLaunch) -> str | None:
        """Mint a token, record its id in the MiniCluster's status, put it into Secret
        ``<mc>-am-token``, then create the pod. Returns the id of the token minted.

        The id is in status before the token is handed out, so it can be revoked when the
        MiniCluster goes. A Secret already there is kept (the operator cannot read or update
        Secrets) and the token just minted is revoked.
        """
        if self.minter is None:
            return None
        if launch.reissue is not None:
            return self._reissue(launch, launch.reissue)
        meta = launch.minicluster
        token_id: str | None = None
        if launch.mint:
            minted = self._mint_recorded(meta)
            if minted is None:  # the MiniCluster is gone
                return None
            token_id, token = minted
            if not self.client.create_secret(app_manager.build_secret(meta, token)):
                self.minter.revoke(token_id)
        _logged(self.metrics, self.client.create_pod, self._stamped(launch.pod), fence=self.fence)()
        return token_id

    def _mint_recorded(self, meta: dict[str, Any]) -> tuple[str, str] | None:
        """Mint an app manager token for the MiniCluster ``meta`` and record its id in the
        MiniCluster's status before anyone sees the token. Returns (id, token); None, the token
        revoked, when the MiniCluster is gone. A failed record revokes the token and raises."""
        assert self.minter is not None
        token_id, token = self.minter.mint(meta["namespace"], meta["name"])
        try:
            recorded = self.client.patch_status(
                MINICLUSTERS, meta["namespace"], meta["name"], {"appManagerTokenId": token_id}
            )
        except Exception:
            self.minter.revoke(token_id)
            raise
        if not recorded:
            self.minter.revoke(token_id)
            return None
        return token_id, token

    def _reissue(self, launch: AppManagerLaunch, old_id: str) -> str | None:
        """When the app manager's Secret is gone (deleted by hand), mint a new token, record
        its id, put it into a new Secret, revoke the old token and delete the pod (its next
        start reads the new Secret). Returns the new token's id; None when the Secret is there.
        """
        assert self.minter is not None
        meta = launch.minicluster
        namespace, name = meta["namespace"], meta["name"]
        if not self.client.secret_missing(app_manager.build_secret(meta, "")):
            return None
        minted = self._mint_recorded(meta)
        if minted is None:  # the MiniCluster is gone
            return None
        token_id, token = minted
        if not self.client.create_secret(app_manager.build_secret(meta, token)):
            # made meanwhile by someone else: the old token stays the recorded one
            self.minter.revoke(token_id)
            self.client.patch_status(MINICLUSTERS, namespace, name, {"appManagerTokenId": old_id})
            return None
        log.warning(
            "Secret %s/%s was deleted: a new app manager token is in it and the old one revoked",
            namespace,
            app_manager.secret_name(name),
        )
        with contextlib.suppress(NotFound):
            self.minter.revoke(old_id)
        self.client.delete_pod(namespace, app_manager.pod_name(name), None)
        return token_id

    def _revoke(self, revocation: TokenRevocation) -> bool:
        """Revoke a deleted MiniCluster's app manager token; one that is gone counts as revoked."""
        if self.minter is None:
            return False
        with contextlib.suppress(NotFound):
            self.minter.revoke(revocation.token_id)
        return True

    def _post_events(self, plan: Plan) -> None:
        c = self.client
        calls = [
            self._call(c.post_event, e.involved, e.type, e.reason, e.message, COMPONENT)
            for e in plan.events
        ]
        task = asyncio.gather(*calls)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def close(self) -> None:
        """Cancel the event posts still running and shut the pool down without waiting."""
        for task in self._background:
            task.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)


class Versions:
    """The resourceVersions Crane's own writes produced, per object uid.

    A pass is decided on the cache, which may not have seen the previous pass's writes yet: a
    write based on a version that Crane itself produced (or started from) goes out based on the
    latest version Crane wrote instead. Any other change in between (a user, another writer, a
    stale operator) makes the write fail with a conflict, which the decider learns.
    """

    def __init__(self) -> None:
        self._chains: dict[str, tuple[frozenset[str], str]] = {}

    def current(self, uid: str, seen: str | None) -> str | None:
        """The version to write against, given the one the decision was based on."""
        chain = self._chains.get(uid)
        if seen is None or chain is None:
            return seen
        known, latest = chain
        if seen == latest:
            del self._chains[uid]
            return seen
        return latest if seen in known else seen

    def wrote(self, uid: str, based_on: str | None, result: Any) -> str | None:
        """Record a write's outcome; returns the version to chain the next write on, or None
        when the write failed (gone or conflict)."""
        if result is None or result is False:
            self._chains.pop(uid, None)
            return None
        if not isinstance(result, str) or not result or based_on is None:
            return based_on if based_on is not None else ""
        known = self._chains.get(uid, (frozenset(), ""))[0]
        if uid not in self._chains and len(self._chains) >= MAX_CHAINS:
            self._chains.clear()  # objects deleted before the watch caught up; at worst one 409
        self._chains[uid] = (known | {based_on}, result)
        return result


def _logged(
    metrics: Metrics,
    fn: Callable[..., Any],
    *args: Any,
    ending: tuple[str, set[str]] | None = None,
    fence: Callable[[], bool] | None = None,
) -> Callable[[], Any]:
    """``fn(*args)``, or None when it failed: logged and counted by status code.

    ``ending``: (the namespace a create writes into, the namespaces known to be ending): the
    create is not sent into one of those, and a refusal because the namespace is being
    deleted adds it there. ``fence``: the call is not sent unless it says yes (the lease)."""

    def run() -> Any:
        if ending is not None and ending[0] in ending[1]:
            return None
        if fence is not None and not fence():
            metrics.api_errors.labels("fenced").inc()
            return None
        try:
            with fenced(fence):  # asked again just before each request goes out
                return fn(*args)
        except Fenced:
            metrics.api_errors.labels("fenced").inc()
            return None
        except ApiException as err:
            if FENCE_REFUSAL in (err.body or ""):
                metrics.api_errors.labels("fenced").inc()
                log.info("the API server refused a pod of a leader term that is over")
                return None
            metrics.api_errors.labels(str(err.status)).inc()
            if ending is not None and err.status == 403 and TERMINATING in (err.body or ""):
                ending[1].add(ending[0])
                log.info("namespace %s is being deleted: no more creates in it", ending[0])
                return None
            log.warning("API call failed: %s %s", err.status, (err.body or "")[:300])
        except Exception:
            metrics.api_errors.labels("none").inc()
            log.exception("API call failed")
        return None

    return run
