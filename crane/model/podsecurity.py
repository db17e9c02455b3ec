"""Kubernetes Pod Security Standards (``privileged``, ``baseline``, ``restricted``) for templates.

The published rules (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
checked on a cargo's pod template before anything is placed, in both backends: each violation
names the field path (relative to the template) and what the level allows. ``privileged``
allows everything; ``baseline`` (Crane's default per tenant) forbids the known privilege
escalations; ``restricted`` adds the hardening best practices.

Docker mode adds :func:`docker_violations`: the same rules read for a container (privileged,
host namespaces, devices, capabilities) plus bind mounts outside the admin's allowed list and
ulimits that raise scheduling priority.

Pure: no Kubernetes, Docker, FastAPI or SQL imports.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from crane.model.podtemplate import ULIMITS_ANNOTATION, FieldIssue, containers_of, parse_ulimits

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
"""The namespace label that carries a tenant's level on Kubernetes (Pod Security Admission)."""


class PodSecurityLevel(StrEnum):
    """A Pod Security Standards level, most open first."""

    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


DEFAULT_LEVEL = PodSecurityLevel.BASELINE


def parse_level(value: str | None) -> PodSecurityLevel:
    """The level a label or column names; absent or unknown values mean the default (baseline).

    Pod Security Admission treats an unknown enforce value as ``restricted``; Crane keeps the
    safer of the two readings for unknown values.
    """
    if not value:
        return DEFAULT_LEVEL
    try:
        return PodSecurityLevel(value.strip().lower())
    except ValueError:
        return PodSecurityLevel.RESTRICTED


BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
"""Capabilities a baseline container may add."""

SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
"""The safe sysctls baseline allows."""

SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
"""Volume types restricted allows."""

_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"

SCHEDULING_ULIMITS = frozenset({"nice", "rtprio"})
"""Ulimits that let a process raise its own scheduling priority (real-time with ``rtprio``):
what the SYS_NICE capability grants, which baseline does not."""


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _contexts(spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(path, securityContext) of the pod and of each container."""
    out = [("spec.securityContext", _dict(spec.get("securityContext")))]
    for path, container in containers_of(spec):
        out.append((f"{path}.securityContext", _dict(container.get("securityContext"))))
    return out


def _baseline(template: Mapping[str, Any]) -> list[FieldIssue]:
    spec = _dict(template.get("spec"))
    issues: list[FieldIssue] = []

    def bad(path: str, message: str) -> None:
        issues.append(FieldIssue(path, message))

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field) is True:
            bad(f"spec.{field}", "host namespaces are not allowed: remove it")
    for path, ctx in _contexts(spec):
        if _dict(ctx.get("windowsOptions")).get("hostProcess") is True:
            bad(f"{path}.windowsOptions.hostProcess", "Windows HostProcess is not allowed")
        selinux = _dict(ctx.get("seLinuxOptions"))
        if selinux.get("type", "") not in SELINUX_TYPES:
            bad(f"{path}.seLinuxOptions.type", f"only {', '.join(sorted(SELINUX_TYPES - {''}))}")
        for key in ("user", "role"):
            if selinux.get(key):
                bad(
                    f"{path}.seLinuxOptions.{key}", "custom SELinux users and roles are not allowed"
                )
        seccomp = _dict(ctx.get("seccompProfile")).get("type")
        if seccomp == "Unconfined":
            bad(f"{path}.seccompProfile.type", "Unconfined is not allowed: use RuntimeDefault")
        apparmor = _dict(ctx.get("appArmorProfile")).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            bad(f"{path}.appArmorProfile.type", "only RuntimeDefault or Localhost")
    for path, container in containers_of(spec):
        ctx = _dict(container.get("securityContext"))
        if ctx.get("privileged") is True:
            bad(f"{path}.securityContext.privileged", "privileged containers are not allowed")
        added = _list(_dict(ctx.get("capabilities")).get("add"))
        for i, cap in enumerate(added):
            if str(cap).upper().removeprefix("CAP_") not in BASELINE_CAPABILITIES:
                bad(
                    f"{path}.securityContext.capabilities.add[{i}]",
                    f"capability {cap} is not allowed at baseline",
                )
        if ctx.get("procMount") not in (None, "Default"):
            bad(f"{path}.securityContext.procMount", "only the Default /proc mount is allowed")
        for j, port in enumerate(_list(container.get("ports"))):
            if _dict(port).get("hostPort"):
                bad(f"{path}.ports[{j}].hostPort", "host ports are not allowed")
    for i, volume in enumerate(_list(spec.get("volumes"))):
        if "hostPath" in _dict(volume):
            bad(f"spec.volumes[{i}].hostPath", "hostPath volumes are not allowed")
    sysctls = _list(_dict(spec.get("securityContext")).get("sysctls"))
    for i, sysctl in enumerate(sysctls):
        if _dict(sysctl).get("name") not in SAFE_SYSCTLS:
            bad(
                f"spec.securityContext.sysctls[{i}].name",
                f"sysctl {_dict(sysctl).get('name')} is not in the safe set",
            )
    annotations = _dict(_dict(template.get("metadata")).get("annotations"))
    for key, value in annotations.items():
        if str(key).startswith(_APPARMOR_ANNOTATION) and not (
            value == "runtime/default" or str(value).startswith("localhost/")
        ):
            bad(f"metadata.annotations[{key}]", "only runtime/default or localhost/* AppArmor")
    return issues


def _restricted(template: Mapping[str, Any]) -> list[FieldIssue]:
    spec = _dict(template.get("spec"))
    issues: list[FieldIssue] = []

    def bad(path: str, message: str) -> None:
        issues.append(FieldIssue(path, message))

    for i, volume in enumerate(_list(spec.get("volumes"))):
        kinds = [k for k in _dict(volume) if k != "name"]
        for kind in kinds:
            if kind not in RESTRICTED_VOLUMES and kind != "hostPath":
                bad(f"spec.volumes[{i}].{kind}", f"volume type {kind} is not allowed at restricted")
    pod = _dict(spec.get("securityContext"))
    pod_non_root = pod.get("runAsNonRoot") is True
    pod_seccomp = _dict(pod.get("seccompProfile")).get("type") in ("RuntimeDefault", "Localhost")
    if pod.get("runAsNonRoot") is False:
        bad("spec.securityContext.runAsNonRoot", "must not be false at restricted")
    if pod.get("runAsUser") == 0:
        bad("spec.securityContext.runAsUser", "must not be 0 (root) at restricted")
    for path, container in containers_of(spec):
        ctx = _dict(container.get("securityContext"))
        where = f"{path}.securityContext"
        if ctx.get("allowPrivilegeEscalation") is not False:
            bad(f"{where}.allowPrivilegeEscalation", "must be false at restricted")
        if ctx.get("runAsNonRoot") is False or (
            not pod_non_root and ctx.get("runAsNonRoot") is not True
        ):
            bad(f"{where}.runAsNonRoot", "must be true (here or in spec.securityContext)")
        if ctx.get("runAsUser") == 0:
            bad(f"{where}.runAsUser", "must not be 0 (root) at restricted")
        seccomp = _dict(ctx.get("seccompProfile")).get("type")
        if not pod_seccomp and seccomp not in ("RuntimeDefault", "Localhost"):
            bad(
                f"{where}.seccompProfile.type",
                "must be RuntimeDefault or Localhost (here or in spec.securityContext)",
            )
        caps = _dict(ctx.get("capabilities"))
        if "ALL" not in [str(c).upper() for c in _list(caps.get("drop"))]:
            bad(f"{where}.capabilities.drop", "must include ALL at restricted")
        for i, cap in enumerate(_list(caps.get("add"))):
            if str(cap).upper().removeprefix("CAP_") != "NET_BIND_SERVICE":
                bad(f"{where}.capabilities.add[{i}]", "only NET_BIND_SERVICE may be added")
    return issues


def violations(template: Mapping[str, Any], level: PodSecurityLevel | str) -> list[FieldIssue]:
    """Every way ``template`` breaks ``level``, each naming its field path; empty when it fits."""
    level = PodSecurityLevel(level)
    if level == PodSecurityLevel.PRIVILEGED or not isinstance(template, Mapping):
        return []
    issues = _baseline(template)
    if level == PodSecurityLevel.RESTRICTED:
        issues += [i for i in _restricted(template) if i not in issues]
    return issues


def docker_violations(
    template: Mapping[str, Any], level: PodSecurityLevel | str, allowed_mounts: Iterable[str] = ()
) -> list[FieldIssue]:
    """Pod Security rules for a Docker-mode template, plus Docker's own escapes.

    Beyond :func:`violations`: host devices (``devices`` on a container or ``hostPath`` of a
    character/block device) and bind mounts (``hostPath`` volumes) outside ``allowed_mounts``
    (the admin's list, CRANE_DOCKER_ALLOWED_MOUNTS) are refused at every level but
    privileged; at privileged, bind mounts outside the list are still refused. Short of
    privileged, the ``crane.io/ulimits`` annotation names only ulimits Docker knows and does
    not raise scheduling priority (``rtprio``, ``nice``).
    """
    level = PodSecurityLevel(level)
    issues = [
        i
        for i in violations(template, level)
        if not (i.path.endswith(".hostPath") and _mount_allowed(template, i.path, allowed_mounts))
    ]
    spec = _dict(template.get("spec"))
    for i, volume in enumerate(_list(spec.get("volumes"))):
        host = _dict(_dict(volume).get("hostPath"))
        if host and not plain_host_path(str(host.get("path", ""))):
            issues.append(
                FieldIssue(
                    f"spec.volumes[{i}].hostPath.path",
                    f"{host.get('path', '')!r} must be an absolute path without '.', '..' "
                    "or ':' (name the directory itself)",
                )
            )
        elif host and level == PodSecurityLevel.PRIVILEGED:
            path = str(host.get("path", ""))
            if not host_path_allowed(path, allowed_mounts):
                issues.append(
                    FieldIssue(
                        f"spec.volumes[{i}].hostPath.path",
                        f"{path} is not in the admin's allowed bind mounts",
                    )
                )
    if level != PodSecurityLevel.PRIVILEGED:
        issues += _ulimit_issues(template)
        for path, container in containers_of(spec):
            if container.get("devices") or container.get("volumeDevices"):
                field = "devices" if container.get("devices") else "volumeDevices"
                issues.append(FieldIssue(f"{path}.{field}", "host devices are not allowed"))
    return issues


def _ulimit_issues(template: Mapping[str, Any]) -> list[FieldIssue]:
    """The ``crane.io/ulimits`` a level short of privileged refuses: :data:`SCHEDULING_ULIMITS`
    above 0 (a real-time priority starves every other tenant's processes on the host)."""
    annotations = _dict(_dict(template.get("metadata")).get("annotations"))
    where = f"metadata.annotations[{ULIMITS_ANNOTATION}]"
    try:
        limits = parse_ulimits(str(annotations.get(ULIMITS_ANNOTATION, "")))
    except ValueError as err:
        return [FieldIssue(where, str(err))]
    return [
        FieldIssue(
            where,
            f"{name} lets the container raise its own scheduling priority (as the SYS_NICE "
            "capability does), which the level does not allow: remove it",
        )
        for name, soft, hard in limits
        if name in SCHEDULING_ULIMITS and (soft, hard) != (0, 0)
    ]


def plain_host_path(path: str) -> bool:
    """Whether ``path`` is absolute and names itself: no ``.`` or ``..`` segment (dockerd
    cleans ``/data/../etc`` to ``/etc`` before it binds), no ``:`` (Docker's volume spec
    separator) and no NUL."""
    if not path.startswith("/") or ":" in path or "\x00" in path:
        return False
    return not any(part in (".", "..") for part in path.split("/"))


@dataclass(frozen=True)
class MountRoot:
    """One entry of the admin's allowed bind mounts (CRANE_DOCKER_ALLOWED_MOUNTS)."""

    path: str
    writable: bool

    def holds(self, path: str) -> bool:
        """Whether ``path`` (clean, absolute) is this root or below it."""
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")


def mount_root(entry: str) -> MountRoot:
    """An allowed-mounts entry: ``/data`` (read-only: bound whole or below it, never writable)
    or ``/scratch:rw`` (writable: bound whole only, since a tenant who writes there could
    plant a symbolic link below it, which the kernel follows when it binds). ValueError for
    anything else."""
    text = str(entry)
    path, writable = text, False
    for suffix, rw in ((":rw", True), (":ro", False)):
        if text.endswith(suffix):
            path, writable = text.removesuffix(suffix), rw
    if not plain_host_path(path):
        raise ValueError(
            f"allowed mount {text!r}: give an absolute path without '.', '..' or ':', "
            "optionally followed by :rw (writable, bound whole) or :ro (the default)"
        )
    return MountRoot(posixpath.normpath(path), writable)


def host_path_allowed(path: str, allowed: Iterable[str]) -> bool:
    """Whether a bind mount of ``path`` stays inside one of the admin's ``allowed`` roots
    (CRANE_DOCKER_ALLOWED_MOUNTS): a plain path (:func:`plain_host_path`) equal to a root or
    below it. The one check of both the pod-security pass and the container builder; the
    builder adds :func:`bind_issue`'s rules on writing and symbolic links."""
    if not plain_host_path(path):
        return False
    clean = posixpath.normpath(path)
    return any(mount_root(root).holds(clean) for root in allowed)


def bind_issue(path: str, read_only: bool, allowed: Iterable[str]) -> str | None:
    """Why a bind of host ``path`` (``read_only`` or not) is refused, or None when allowed.

    The kernel follows symbolic links when it binds, and the path is checked as written: so
    nothing is bound below a writable root (a tenant could have planted ``link -> /`` there),
    and nothing is bound writable except a writable root itself (so no container can plant
    such a link where another bind could pass)."""
    allowed = [str(e) for e in allowed]
    roots = [mount_root(entry) for entry in allowed]
    listed = ", ".join(allowed) or "none (CRANE_DOCKER_ALLOWED_MOUNTS is empty)"
    if not host_path_allowed(path, allowed):
        return f"hostPath {path!r} is not under a path the admin allows: {listed}"
    clean = posixpath.normpath(path)
    below = next((r for r in roots if r.writable and r.holds(clean) and r.path != clean), None)
    if below is not None:
        return (
            f"hostPath {path!r} is below {below.path!r}, which tenants may write to: bind "
            f"{below.path!r} itself (a symbolic link planted below it would take the bind "
            "anywhere on the host)"
        )
    if not read_only and not any(r.writable and r.path == clean for r in roots):
        return (
            f"hostPath {path!r} is read-only for tenants: mount it with readOnly: true (an admin "
            "allows writing to a directory by listing it as '<path>:rw', bound whole)"
        )
    return None


def _mount_allowed(template: Mapping[str, Any], issue_path: str, allowed: Iterable[str]) -> bool:
    """Whether the hostPath volume an issue names is inside the admin's allowed mounts."""
    allowed = list(allowed)
    if not allowed:
        return False
    index = issue_path.removeprefix("spec.volumes[").split("]", 1)[0]
    if not index.isdigit():
        return False
    volumes = _list(_dict(template.get("spec")).get("volumes"))
    host = _dict(_dict(volumes[int(index)]).get("hostPath")) if int(index) < len(volumes) else {}
    return bool(host) and host_path_allowed(str(host.get("path", "")), allowed)


def pod_security_message(level: PodSecurityLevel | str, issues: list[FieldIssue]) -> str:
    """One line for a condition or event: the level and each violating field of the template."""
    level = PodSecurityLevel(level)
    listed = "; ".join(f"spec.template.{i}" for i in issues[:5])
    more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
    return (
        f"the pod template breaks the namespace's Pod Security level {level.value}: {listed}{more}"
        f"; fix the template, or an admin changes the level ({ENFORCE_LABEL})"
    )
