"""One active operator: a coordination.k8s.io Lease held by the instance that schedules.

Standby instances keep their caches warm and take over when the holder stops renewing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

SAFE_SHARE = 2 / 3
"""This instance counts on its lease for this share of the lease's duration from the start of
the last renewal that succeeded (client-go's renew deadline is 10 s of a 15 s lease): the rest
covers clocks that differ between instances and a write that was already on its way."""


class LeaseNamespaceMissing(RuntimeError):
    """The Lease's namespace does not exist and the operator may not create it."""


class LeaseElector:
    """Acquires, renews and releases the operator's leader Lease."""

    def __init__(
        self,
        api: client.CoordinationV1Api,
        namespace: str,
        name: str,
        identity: str,
        duration: float,
        core: client.CoreV1Api | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.core = core
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.call_seconds = max(1.0, duration / 3)
        """The longest one lease call may take: a renewal stuck on a silent API server fails
        in time to be tried again before the lease runs out."""
        self.leading = False
        self.clock = clock
        """A monotonic clock; it runs on while the process is stopped (SIGSTOP), as the
        other instances' wall clocks do."""
        self.valid_until = 0.0
        """Until when (on ``clock``) no other instance can have taken the lease over."""
        self.term = 0
        """Counts the times this instance took the lease when it was not its own: the
        holder of a new term must not trust what it remembers of an earlier one."""
        self.transitions = 0
        """The Lease's ``leaseTransitions`` of the term this instance holds (see :meth:`stamp`)."""

    def holds(self) -> bool:
        """Whether this instance leads and no other can have taken the lease over since its
        last renewal: false after a pause past the lease, however ``leading`` was left."""
        return self.leading and self.clock() < self.valid_until

    def stamp(self) -> str:
        """This instance's term as the leader fence reads it (``LEADER_TERM_ANNOTATION``):
        the chart's ValidatingAdmissionPolicy admits a pod stamped so only while the Lease
        still names this holder and this count of transitions."""
        return f"{self.namespace}/{self.name}/{self.identity}/{self.transitions}"

    def _spec(
        self, now: datetime, transitions: int, acquired: datetime | None
    ) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=max(1, int(self.duration)),
            acquire_time=acquired or now,
            renew_time=now,
            lease_transitions=transitions,
        )

    def try_acquire(self) -> bool:
        """Acquire or renew the lease (blocking: run it in a thread); True while leading."""
        started = self.clock()
        now = datetime.now(UTC)
        try:
            lease = self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.call_seconds
            )
        except ApiException as err:
            if err.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                spec=self._spec(now, 0, None),
            )
            try:
                self._create_lease(body)
            except ApiException as create_err:
                if create_err.status != 409:
                    raise
                return self._set(False)
            self.transitions = 0
            return self._set(True, started, new_term=True)
        spec = lease.spec or client.V1LeaseSpec()
        mine = spec.holder_identity == self.identity
        renewed = spec.renew_time or spec.acquire_time
        expired = renewed is None or now - renewed > timedelta(
            seconds=spec.lease_duration_seconds or self.duration
        )
        if not mine and not expired and spec.holder_identity:
            return self._set(False)
        transitions = (spec.lease_transitions or 0) + (0 if mine else 1)
        lease.spec = self._spec(now, transitions, spec.acquire_time if mine else None)
        try:
            self.api.replace_namespaced_lease(
                self.name, self.namespace, lease, _request_timeout=self.call_seconds
            )
        except ApiException as err:
            if err.status != 409:
                raise
            return self._set(False)
        self.transitions = transitions
        return self._set(True, started, new_term=not mine)

    def _create_lease(self, body: client.V1Lease) -> None:
        """Create the Lease; when its namespace is missing, create the namespace first."""
        try:
            self.api.create_namespaced_lease(
                self.namespace, body, _request_timeout=self.call_seconds
            )
            return
        except ApiException as err:
            if err.status != 404:
                raise
        self.ensure_namespace()
        self.api.create_namespaced_lease(self.namespace, body, _request_timeout=self.call_seconds)

    def ensure_namespace(self) -> None:
        """Create the Lease's namespace (a fresh cluster has no ``crane-system``).

        Raises :class:`LeaseNamespaceMissing` with what to do when that is not allowed.
        """
        remedy = (
            f"create it (`kubectl create namespace {self.namespace}`) "
            "or pass --lease-namespace NAME of an existing namespace"
        )
        if self.core is None:
            raise LeaseNamespaceMissing(f"namespace {self.namespace!r} does not exist; {remedy}")
        log.info("namespace %s for the leader lease does not exist: creating it", self.namespace)
        body = client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=self.namespace, labels={"app.kubernetes.io/managed-by": "crane"}
            )
        )
        try:
            self.core.create_namespace(body)
        except ApiException as err:
            if err.status == 409:
                return
            if err.status == 403:
                raise LeaseNamespaceMissing(
                    f"namespace {self.namespace!r} does not exist and this operator may not "
                    f"create namespaces; {remedy}"
                ) from None
            raise
        log.info("created namespace %s for the leader lease", self.namespace)

    def release(self) -> None:
        """Give the lease up on a clean shutdown so a standby takes over at once."""
        if not self.leading:
            return
        try:
            lease = self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.call_seconds
            )
            if lease.spec is not None and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                self.api.replace_namespaced_lease(
                    self.name, self.namespace, lease, _request_timeout=self.call_seconds
                )
        except ApiException as err:
            log.warning("could not release lease %s: %s", self.name, err.status)
        self._set(False)

    def stand_by(self) -> None:
        """Count the lease as lost (a renewal that could not be made)."""
        self._set(False)

    def _set(self, leading: bool, started: float = 0.0, new_term: bool = False) -> bool:
        if leading:
            self.valid_until = started + SAFE_SHARE * max(1, int(self.duration))
            self.term += new_term
        else:
            self.valid_until = 0.0
        if leading != self.leading:
            log.info(
                "%s the lease %s/%s", "acquired" if leading else "lost", self.namespace, self.name
            )
        self.leading = leading
        return leading
