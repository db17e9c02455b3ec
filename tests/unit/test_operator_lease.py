"""The leader Lease on a fresh cluster: the operator creates the namespace the Lease lives in.

Fakes of the two Kubernetes APIs the elector calls answer as a kube-apiserver does: creating a
Lease in a missing namespace is 404 ``namespaces "crane-system" not found``.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from crane.operator.leader import LeaseElector, LeaseNamespaceMissing


class FakeApis:
    """A coordination and a core API over one set of namespaces and leases."""

    def __init__(self, namespaces: set[str], may_create_namespaces: bool = True) -> None:
        self.namespaces = namespaces
        self.may_create = may_create_namespaces
        self.leases: dict[tuple[str, str], client.V1Lease] = {}

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> client.V1Lease:
        if (namespace, name) not in self.leases:
            raise ApiException(status=404, reason="Not Found")
        return self.leases[(namespace, name)]

    def create_namespaced_lease(
        self, namespace: str, body: client.V1Lease, **_: Any
    ) -> client.V1Lease:
        if namespace not in self.namespaces:
            raise ApiException(status=404, reason=f'namespaces "{namespace}" not found')
        self.leases[(namespace, body.metadata.name)] = body
        return body

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any, **_: Any) -> Any:
        self.leases[(namespace, name)] = body
        return body

    def create_namespace(self, body: client.V1Namespace) -> client.V1Namespace:
        if not self.may_create:
            raise ApiException(status=403, reason="Forbidden")
        if body.metadata.name in self.namespaces:
            raise ApiException(status=409, reason="AlreadyExists")
        self.namespaces.add(body.metadata.name)
        return body


def _elector(apis: FakeApis) -> LeaseElector:
    return LeaseElector(apis, "crane-system", "crane-operator", "me", 15.0, core=apis)  # type: ignore[arg-type]


def test_missing_lease_namespace_is_created_and_the_lease_taken(
    caplog: pytest.LogCaptureFixture,
) -> None:
    apis = FakeApis({"default", "kube-system"})
    with caplog.at_level(logging.INFO, logger="crane.operator.leader"):
        assert _elector(apis).try_acquire() is True
    assert "crane-system" in apis.namespaces
    assert ("crane-system", "crane-operator") in apis.leases
    assert "namespace crane-system for the leader lease does not exist: creating it" in caplog.text


def test_not_allowed_to_create_it_says_what_to_do() -> None:
    apis = FakeApis({"default"}, may_create_namespaces=False)
    with pytest.raises(LeaseNamespaceMissing) as err:
        _elector(apis).try_acquire()
    assert "kubectl create namespace crane-system" in str(err.value)
    assert "--lease-namespace" in str(err.value)


def test_existing_namespace_is_left_alone() -> None:
    apis = FakeApis({"crane-system"}, may_create_namespaces=False)
    assert _elector(apis).try_acquire() is True


def test_the_stamp_names_the_term_the_lease_records() -> None:
    """The stamp the leader fence compares (``crane.io/leader-term``) is the Lease's holder
    and transitions as written: kept on renewal, new once another holder led in between."""
    apis = FakeApis({"crane-system"})
    me = _elector(apis)
    assert me.try_acquire() and me.stamp() == "crane-system/crane-operator/me/0"
    assert me.try_acquire() and me.stamp() == "crane-system/crane-operator/me/0", "a renewal"
    lease = apis.leases[("crane-system", "crane-operator")]
    lease.spec.holder_identity, lease.spec.lease_transitions = "other", 1
    lease.spec.renew_time = lease.spec.renew_time.replace(year=2000)  # the other's has lapsed
    assert me.try_acquire() and me.stamp() == "crane-system/crane-operator/me/2"
    spec = apis.leases[("crane-system", "crane-operator")].spec
    assert (spec.holder_identity, spec.lease_transitions) == ("me", 2)
