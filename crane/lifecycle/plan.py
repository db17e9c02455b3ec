"""What one pass of the scheduling loop decided to write, in the order it must be written."""

from __future__ import annotations

from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from typing import Any

ObjectRef = tuple[str, str, str]
"""(plural, namespace, name) of a MiniCluster or Cargo."""


@dataclass(frozen=True)
class StatusWrite:
    """The new status of one MiniCluster or Cargo, decided this pass."""

    plural: str
    namespace: str
    name: str
    status: dict[str, Any]
    uid: str
    cargo_key: str | None = None
    """Set for a cargo: its pods are created only if this write succeeded."""
    resource_version: str | None = None
    """The object's resourceVersion the status was decided on: the write replaces the status
    only if nothing but Crane's own writes changed the object since."""
    releases: bool = False
    """The stored ``status.placement`` holds GPUs this status gives back. Such writes land before
    any write that claims GPUs, and those wait for them: a pass may place a cargo on GPUs it
    just released, and the stored statuses must never show one GPU in two placements."""
    claims: bool = False
    """This status places the cargo on GPUs its stored placement does not hold."""

    @property
    def ref(self) -> ObjectRef:
        """The object's (plural, namespace, name)."""
        return (self.plural, self.namespace, self.name)


@dataclass(frozen=True)
class Event:
    """A core/v1 Event to post about ``involved``; ``type`` is Normal or Warning."""

    involved: dict[str, Any]
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class AppManagerLaunch:
    """Start a MiniCluster's app manager: mint its token into a Secret, then create its pod."""

    minicluster: dict[str, Any]
    """The MiniCluster's metadata (owner of the Secret and the pod)."""
    pod: dict[str, Any]
    mint: bool = True
    """False when a token was minted before (its id is in status): only the pod is created."""
    reissue: str | None = None
    """Instead of a start, the id of the token in the running app manager's Secret: when that
    Secret is gone (deleted by hand), a new token goes into a new one, the old token is revoked
    and the pod is deleted, to be made again with the new token."""


@dataclass(frozen=True)
class TokenRevocation:
    """Revoke the app manager token ``token_id`` of a deleted MiniCluster."""

    uid: str
    """The deleted MiniCluster's uid."""
    token_id: str


@dataclass(frozen=True)
class ClaimWrite:
    """A replica's ResourceClaim on a DRA node: create it, owned by its pod, then write its
    allocation (exactly the GPUs Crane chose) through the status subresource."""

    claim: dict[str, Any]
    """The claim, without owner (:func:`crane.kube.dra.build_claim`)."""
    allocation: dict[str, Any]
    """Its ``status.allocation`` (:func:`crane.kube.dra.allocation`)."""
    pod: str
    """The pod's name."""
    pod_uid: str = ""
    """The pod's uid; "" when the pod is created in the same plan (its uid comes from that)."""

    @property
    def namespace(self) -> str:
        """The claim's (and its pod's) namespace."""
        return str(self.claim["metadata"]["namespace"])


@dataclass(frozen=True)
class Applied:
    """What the actuator reports back about a plan: the writes that did not go through."""

    failed_status: frozenset[ObjectRef] = frozenset()
    """Status writes that failed (conflict, server error, object gone)."""
    unsent_pods: tuple[str, ...] = ()
    """Pod keys not created because their cargo's status write failed."""
    minted: tuple[tuple[str, str], ...] = ()
    """(MiniCluster uid, token id) of the app manager tokens minted (and recorded in status)."""
    revoked: frozenset[str] = frozenset()
    """uids of the MiniClusters whose app manager token was revoked."""
    terminating: frozenset[str] = frozenset()
    """Namespaces whose creates the API server refused because they are being deleted."""
    refused: tuple[tuple[str, str, str, str], ...] = ()
    """(cargo key, pod key, reason, message) of each pod the API server refused for good
    (invalid, or against pod security): never created, and never will be."""


@dataclass
class Plan:
    """Writes of one pass: per object one metadata patch and one status write, at most.

    The actuator writes an object's metadata, then its status (a cargo's placement), then that
    cargo's pods; everything else goes out concurrently, events last.
    """

    status_writes: dict[ObjectRef, StatusWrite] = field(default_factory=dict)
    metadata: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)
    """Merge patches of ``metadata`` (ownerReferences, finalizers)."""
    finalizer_removals: list[tuple[str, str, str, int]] = field(default_factory=list)
    """(plural, namespace, name, index of Crane's finalizer in ``metadata.finalizers``)."""
    cargo_creates: list[dict[str, Any]] = field(default_factory=list)
    cargo_deletes: list[tuple[str, str]] = field(default_factory=list)
    services: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(cargo key, headless Service) pairs."""
    pods: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(cargo key, pod) pairs."""
    pod_claims: dict[str, ClaimWrite] = field(default_factory=dict)
    """Pod key -> the claim made right after that pod of ``pods`` is created (DRA nodes)."""
    claims: list[ClaimWrite] = field(default_factory=list)
    """Claims of pods that exist but lack one (or its allocation): made again."""
    claim_deletes: list[tuple[str, str]] = field(default_factory=list)
    """(namespace, name) of Crane's claims whose pod is gone, finished or replaced."""
    pod_annotations: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    pod_deletes: list[tuple[str, str, int | None]] = field(default_factory=list)
    pod_labels: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    """(namespace, name, labels) merged into pods whose Crane labels were edited by hand."""
    app_managers: list[AppManagerLaunch] = field(default_factory=list)
    rendezvous: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    """(Deployment, Service) of a MiniCluster's rendezvous store, created if missing."""
    token_revocations: list[TokenRevocation] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    """(kind, reason) of each conflicting record repaired at restore (counted in a metric)."""

    @property
    def statuses(self) -> list[StatusWrite]:
        """The status writes of this pass, one per object."""
        return list(self.status_writes.values())

    def status(self, write: StatusWrite) -> None:
        """Write ``status`` once this pass; a later write of the same object replaces it."""
        self.status_writes[write.ref] = write

    def patch_metadata(self, ref: ObjectRef, metadata: dict[str, Any]) -> None:
        """Merge ``metadata`` into this pass's metadata patch of ``ref``."""
        self.metadata.setdefault(ref, {}).update(metadata)

    def event(
        self, involved: dict[str, Any], reason: str, message: str, warning: bool = False
    ) -> None:
        """Queue an Event about ``involved``: a Warning if ``warning``, else Normal."""
        self.events.append(Event(involved, "Warning" if warning else "Normal", reason, message))

    def drop_creates(self, terminating: Callable[[str], bool]) -> int:
        """Leave out every create in a namespace being deleted (cargos, Services, pods, app
        managers, rendezvous stores): the API server would refuse each one. Returns how many
        were left out."""

        def keep(namespace: str) -> bool:
            return not terminating(namespace)

        def count() -> int:
            return (
                len(self.cargo_creates)
                + len(self.services)
                + len(self.pods)
                + len(self.app_managers)
                + len(self.rendezvous)
                + len(self.claims)
            )

        before = count()
        self.cargo_creates = [c for c in self.cargo_creates if keep(c["metadata"]["namespace"])]
        self.services = [s for s in self.services if keep(s[1]["metadata"]["namespace"])]
        self.pods = [p for p in self.pods if keep(p[1]["metadata"]["namespace"])]
        self.app_managers = [a for a in self.app_managers if keep(a.minicluster["namespace"])]
        self.rendezvous = [r for r in self.rendezvous if keep(r[0]["metadata"]["namespace"])]
        self.claims = [c for c in self.claims if keep(c.namespace)]
        return before - count()

    def empty(self) -> bool:
        """Whether the plan has nothing to write."""
        return self.size() == 0

    def size(self) -> int:
        """How many writes (and events) the plan holds so far."""
        parts: tuple[Sized, ...] = (
            self.status_writes,
            self.metadata,
            self.finalizer_removals,
            self.cargo_creates,
            self.cargo_deletes,
            self.services,
            self.pods,
            self.pod_annotations,
            self.pod_deletes,
            self.pod_labels,
            self.claims,
            self.claim_deletes,
            self.app_managers,
            self.rendezvous,
            self.token_revocations,
            self.events,
        )
        return sum(map(len, parts))
