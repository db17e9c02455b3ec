"""Pod Security when a cargo's pods or containers are made, in both backends.

A template is checked against its tenant's level when the API stores it (crane/api/podsecurity.py);
an admin may raise the level afterwards. Pod Security Admission checks every pod when it is
created, so on Kubernetes a cargo made later (queued, restarting, grown from a MiniCluster's
template) meets the level of then; Docker mode holds each container it makes to the same rule:
the cargo fails with reason ``PodSecurity`` and nothing is made. What already runs is left as it
is, as admission leaves running pods.

Pure: the backend reads the level from its store (Kubernetes: the namespace label; Docker: the
tenant row) and passes it in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crane.lifecycle.cargo_status import Verdict, not_ready
from crane.model.podsecurity import (
    PodSecurityLevel,
    docker_violations,
    pod_security_message,
    violations,
)
from crane.model.refusal import POD_SECURITY


def creation_refusal(
    template: Mapping[str, Any],
    level: PodSecurityLevel | str,
    docker_mounts: Iterable[str] | None = None,
) -> Verdict | None:
    """Why a pod or container of ``template`` may not be made under ``level``: reason
    ``PodSecurity`` and a message naming each violating field
    (:func:`crane.model.podsecurity.pod_security_message`); None when it fits.

    ``docker_mounts``: Docker mode's rules (:func:`crane.model.podsecurity.docker_violations`,
    with the admin's allowed bind mounts, CRANE_DOCKER_ALLOWED_MOUNTS), the ones its API checks
    with; None: Kubernetes's (:func:`crane.model.podsecurity.violations`).
    """
    level = PodSecurityLevel(level)
    issues = (
        violations(template, level)
        if docker_mounts is None
        else docker_violations(template, level, docker_mounts)
    )
    if not issues:
        return None
    return not_ready(POD_SECURITY, pod_security_message(level, issues))
