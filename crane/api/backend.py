"""The interface every backend implements: Kubernetes (CRs are the truth) and Docker (SQL is).

Every call is tenant-scoped: ``tenant`` is the Kubernetes namespace or the Docker tenant row.
An object of another tenant does not exist for the caller: raise :class:`NotFound`.
Backends raise the errors of :mod:`crane.api.errors` with a detail a person can act on;
anything else is a bug and surfaces as a 500.

Contract of the mutating calls:

* ``grow`` is atomic per MiniCluster: concurrent grows never take it past ``gpus.max`` and
  never place a cargo twice. A cargo that would exceed ``max`` is denied (not created). A cargo
  within ``max`` that cannot be placed now (the engine's dry run says so) is denied too, unless
  ``allow_pending``, in which case it is created and waits. Denials carry the engine's
  explanation sentence. ``wait`` returns when every added cargo is Running (or Placed, where the
  backend has no pods) or ``timeout_seconds`` passed (``timed_out=true``); the result is
  granted (all added), partial (some) or denied (none).
* ``shrink`` removes whole cargos (the named ones, or the ``count`` newest) honouring the grace
  period, so the program gets SIGTERM and time to checkpoint.
* ``remove_host`` drains: the host takes no new placements at once; it is forgotten when no
  cargo runs on it, or, with ``preempt``, after its cargos were moved (OnFailure) or failed
  (Never). Backends whose nodes are not Crane's to add (Kubernetes) raise Conflict.
* Idempotency, auth and the audit log are the API's job, not the backend's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from crane.api.errors import FieldError, Invalid
from crane.api.schemas import (
    Cargo,
    CargoCreate,
    DryRunRequest,
    DryRunResult,
    Event,
    ExecRequest,
    ExecResult,
    ExplainResult,
    GrowRequest,
    GrowResult,
    Host,
    HostCreate,
    MiniCluster,
    MiniClusterCreate,
    MiniClusterPatch,
    NodeOut,
    ShrinkRequest,
    ShrinkResult,
    TenantShareStatus,
)
from crane.api.usage import Snapshot
from crane.lifecycle import service
from crane.model import MiniClusterSpec
from crane.model.shares import TenantShares


def patched_spec(current: MiniClusterSpec, patch: MiniClusterPatch) -> MiniClusterSpec:
    """``current`` with ``patch``'s spec fields merged by the lifecycle's one rule (omitted and
    null fields kept), for every backend; an invalid result is a 422 naming each field. Labels
    are the caller's to apply."""
    changes = patch.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"labels"})
    try:
        return service.patched_spec(current, changes)
    except service.InvalidPatch as err:
        raise Invalid(str(err), [FieldError(loc, msg) for loc, msg in err.fields]) from None


@runtime_checkable
class Backend(Protocol):
    """Where MiniClusters and Cargos live and get placed."""

    name: str
    """``kube`` or ``docker``: shown by ``/readyz`` and in metrics."""

    async def start(self) -> None:
        """Connect and start background work (watches); called once at app startup."""

    async def close(self) -> None:
        """Stop background work and release connections."""

    async def ready(self) -> str | None:
        """``None`` when requests can be served, else why not (shown by ``/readyz``)."""

    # MiniClusters

    async def create_minicluster(self, tenant: str, body: MiniClusterCreate) -> MiniCluster:
        """Raises Conflict when the name is taken in this tenant."""

    async def list_miniclusters(self, tenant: str) -> list[MiniCluster]:
        """Oldest first."""

    async def has_miniclusters(self, tenant: str) -> bool:
        """Whether ``tenant`` has a MiniCluster, counting those being deleted (left out of
        :meth:`list_miniclusters`): their cargos may still hold GPUs and their last events are
        still to come, so the tenant must stay until they are gone."""

    async def get_minicluster(self, tenant: str, name: str) -> MiniCluster:
        """MiniCluster ``name`` of ``tenant``; raises NotFound when there is none."""

    async def patch_minicluster(
        self, tenant: str, name: str, patch: MiniClusterPatch
    ) -> MiniCluster:
        """Merge ``patch`` into the spec; raises Invalid when the result is not a valid spec."""

    async def delete_minicluster(self, tenant: str, name: str) -> None:
        """Deletes its cargos too (after their grace periods)."""

    async def grow(self, tenant: str, name: str, request: GrowRequest) -> GrowResult:
        """Add cargos to MiniCluster ``name`` within ``gpus.max`` (see the module's contract)."""

    async def shrink(self, tenant: str, name: str, request: ShrinkRequest) -> ShrinkResult:
        """Remove whole cargos, the named or the newest, with their grace period."""

    async def explain(self, tenant: str, name: str) -> ExplainResult:
        """Whether MiniCluster ``name`` is admitted, and why it or its cargos wait."""

    # Cargos

    async def create_cargo(self, tenant: str, body: CargoCreate) -> Cargo:
        """Raises NotFound when ``spec.miniCluster`` does not exist in this tenant."""

    async def list_cargos(self, tenant: str, minicluster: str | None = None) -> list[Cargo]:
        """Oldest first; only those of ``minicluster`` when given."""

    async def get_cargo(self, tenant: str, name: str) -> Cargo:
        """Cargo ``name`` of ``tenant``; raises NotFound when there is none."""

    async def delete_cargo(
        self, tenant: str, name: str, grace_period_seconds: int | None = None
    ) -> None:
        """Stop the cargo (SIGTERM, then the grace period) and free its GPUs; NotFound if absent.

        ``grace_period_seconds``, when given, replaces the default grace period.
        """

    def cargo_logs(
        self,
        tenant: str,
        name: str,
        replica: int = 0,
        follow: bool = False,
        tail: int | None = None,
        since_seconds: int | None = None,
    ) -> AsyncIterator[str]:
        """Lines of one replica's log; with ``follow``, until the container ends or the client
        leaves. ``tail``: only the last lines; ``since_seconds``: only lines written in the last
        that many seconds.

        Raises NotFound (unknown cargo or replica) before the first line is yielded.
        """

    async def exec_replica(self, tenant: str, name: str, request: ExecRequest) -> ExecResult:
        """Run ``request.command`` in the replica's container and return its output and exit
        code. Raises NotFound (unknown cargo or replica) and ExecUnsupported (the replica is
        not running, or its node cannot run commands, as kwok's simulated nodes)."""

    # cluster-wide

    async def nodes(self) -> list[NodeOut]:
        """The GPU map with real MiniCluster and cargo keys ``tenant/name``; the API redacts."""

    async def dry_run(self, tenant: str, request: DryRunRequest) -> DryRunResult:
        """Place a hypothetical object against the live state; changes nothing."""

    def events(self) -> AsyncIterator[Event | Snapshot]:
        """Every tenant's events as they happen (the API filters per subscriber and records
        usage intervals from Placed / Succeeded / Failed / Preempted / Deleted), after a
        :class:`Snapshot` of the placed cargos first and whenever the backend lists again (the
        API reconciles the usage intervals with it and sends it to no subscriber)."""

    async def tenant_shares(self) -> dict[str, list[TenantShareStatus]]:
        """tenant -> its shares per GPU type with what it uses and borrows now."""

    async def set_tenant_shares(self, tenant: str, shares: TenantShares) -> None:
        """Replace a tenant's shares (Docker mode: its row). Raises NotFound (no such
        tenant) and, in kube mode, SharesManagedByKubernetes."""

    # hosts (Docker mode)

    async def add_host(self, body: HostCreate) -> Host:
        """Raises Conflict when the name is taken."""

    async def list_hosts(self) -> list[Host]:
        """Oldest first."""

    async def get_host(self, name: str) -> Host:
        """Host ``name``; raises NotFound when there is none."""

    async def remove_host(self, name: str, preempt: bool) -> Host:
        """Start draining (see the module's contract); returns the host as it now is."""
