"""Pod Security Standards on cargo templates (issue 11 item 1): each rule of baseline and
restricted names the field; privileged allows everything; Docker mode adds bind mounts and
devices."""

from __future__ import annotations

from typing import Any

import pytest

from crane.model.podsecurity import (
    PodSecurityLevel,
    docker_violations,
    parse_level,
    violations,
)

B, R, P = PodSecurityLevel.BASELINE, PodSecurityLevel.RESTRICTED, PodSecurityLevel.PRIVILEGED


def pod(
    spec: dict[str, Any] | None = None,
    container: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    c = {"name": "main", "image": "busybox", **(container or {})}
    out: dict[str, Any] = {"spec": {"containers": [c], **(spec or {})}}
    if annotations:
        out["metadata"] = {"annotations": annotations}
    return out


def restricted_ok(**extra: Any) -> dict[str, Any]:
    return pod(
        {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}},
        {
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                **extra,
            }
        },
    )


BASELINE_CASES = [
    (
        pod(container={"securityContext": {"privileged": True}}),
        "spec.containers[0].securityContext.privileged",
    ),
    (pod({"hostPID": True}), "spec.hostPID"),
    (pod({"hostIPC": True}), "spec.hostIPC"),
    (pod({"hostNetwork": True}), "spec.hostNetwork"),
    (pod({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}), "spec.volumes[0].hostPath"),
    (
        pod(container={"ports": [{"containerPort": 80, "hostPort": 80}]}),
        "spec.containers[0].ports[0].hostPort",
    ),
    (
        pod(container={"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}),
        "spec.containers[0].securityContext.capabilities.add[0]",
    ),
    (
        pod({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}),
        "spec.securityContext.sysctls[0].name",
    ),
    (
        pod(container={"securityContext": {"procMount": "Unmasked"}}),
        "spec.containers[0].securityContext.procMount",
    ),
    (
        pod({"securityContext": {"seLinuxOptions": {"type": "spc_t"}}}),
        "spec.securityContext.seLinuxOptions.type",
    ),
    (
        pod(container={"securityContext": {"seLinuxOptions": {"user": "root"}}}),
        "spec.containers[0].securityContext.seLinuxOptions.user",
    ),
    (
        pod({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
        "spec.securityContext.seccompProfile.type",
    ),
    (
        pod(container={"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}),
        "spec.containers[0].securityContext.appArmorProfile.type",
    ),
    (
        pod(annotations={"container.apparmor.security.beta.kubernetes.io/main": "unconfined"}),
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/main]",
    ),
    (
        pod({"securityContext": {"windowsOptions": {"hostProcess": True}}}),
        "spec.securityContext.windowsOptions.hostProcess",
    ),
    (
        pod(
            {
                "initContainers": [
                    {"name": "i", "image": "x", "securityContext": {"privileged": True}}
                ]
            }
        ),
        "spec.initContainers[0].securityContext.privileged",
    ),
]


@pytest.mark.parametrize(("template", "path"), BASELINE_CASES)
def test_baseline_rules_name_the_field(template: dict[str, Any], path: str) -> None:
    assert [i.path for i in violations(template, B)] == [path]
    assert path in [i.path for i in violations(template, R)]
    assert violations(template, P) == []


def test_baseline_allows_what_the_standard_allows() -> None:
    fine = pod(
        {
            "securityContext": {
                "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}],
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumes": [{"name": "d", "emptyDir": {}}],
        },
        {
            "securityContext": {
                "capabilities": {"add": ["NET_BIND_SERVICE", "CHOWN"]},
                "procMount": "Default",
            },
            "ports": [{"containerPort": 80}],
        },
    )
    assert violations(fine, B) == []


RESTRICTED_CASES = [
    (
        restricted_ok(allowPrivilegeEscalation=True),
        "spec.containers[0].securityContext.allowPrivilegeEscalation",
    ),
    (restricted_ok(runAsNonRoot=False), "spec.containers[0].securityContext.runAsNonRoot"),
    (restricted_ok(runAsUser=0), "spec.containers[0].securityContext.runAsUser"),
    (
        restricted_ok(capabilities={"drop": ["NET_RAW"]}),
        "spec.containers[0].securityContext.capabilities.drop",
    ),
    (
        restricted_ok(capabilities={"drop": ["ALL"], "add": ["CHOWN"]}),
        "spec.containers[0].securityContext.capabilities.add[0]",
    ),
]


@pytest.mark.parametrize(("template", "path"), RESTRICTED_CASES)
def test_restricted_rules_name_the_field(template: dict[str, Any], path: str) -> None:
    assert path in [i.path for i in violations(template, R)]


def test_restricted_accepts_a_hardened_pod_and_refuses_a_plain_one() -> None:
    assert violations(restricted_ok(), R) == []
    paths = {i.path for i in violations(pod(), R)}
    assert {
        "spec.containers[0].securityContext.allowPrivilegeEscalation",
        "spec.containers[0].securityContext.runAsNonRoot",
        "spec.containers[0].securityContext.seccompProfile.type",
        "spec.containers[0].securityContext.capabilities.drop",
    } <= paths
    nfs = restricted_ok()
    nfs["spec"]["volumes"] = [{"name": "n", "nfs": {"server": "s", "path": "/"}}]
    assert [i.path for i in violations(nfs, R)] == ["spec.volumes[0].nfs"]
    assert violations(nfs, B) == []


def test_levels_parse_with_baseline_default() -> None:
    assert parse_level(None) == B and parse_level("") == B
    assert parse_level("Privileged") == P
    assert parse_level("bogus") == R


def test_docker_bind_mounts_only_inside_the_allowed_list_and_no_devices() -> None:
    data = pod({"volumes": [{"name": "d", "hostPath": {"path": "/data/set1"}}]})
    assert docker_violations(data, B, ["/data"]) == []
    assert [i.path for i in docker_violations(data, B, [])] == ["spec.volumes[0].hostPath"]
    etc = pod({"volumes": [{"name": "d", "hostPath": {"path": "/etc"}}]})
    assert [i.path for i in docker_violations(etc, P, ["/data"])] == [
        "spec.volumes[0].hostPath.path"
    ]
    dev = pod(container={"devices": ["/dev/nvidia0"]})
    assert [i.path for i in docker_violations(dev, B)] == ["spec.containers[0].devices"]
    priv = pod(container={"securityContext": {"privileged": True}})
    assert [i.path for i in docker_violations(priv, B)] == [
        "spec.containers[0].securityContext.privileged"
    ]


@pytest.mark.parametrize("ulimit", ["rtprio=99", "nice=40", "memlock=-1,rtprio=0:1"])
def test_docker_ulimits_that_raise_scheduling_priority_need_privileged(ulimit: str) -> None:
    """``rtprio`` lets a replica run real-time (starving every other tenant's processes on the
    host) and ``nice`` lets it raise its priority: what SYS_NICE grants, which baseline and
    restricted do not. Refused naming the annotation; privileged allows them, and other
    ulimits (memlock for RDMA) pass at baseline."""
    where = "metadata.annotations[crane.io/ulimits]"
    template = pod(annotations={"crane.io/ulimits": ulimit})
    for level in (B, R):
        found = [i for i in docker_violations(template, level) if i.path == where]
        assert found and "scheduling priority" in found[0].message, found
    assert docker_violations(template, P) == []
    plain = pod(annotations={"crane.io/ulimits": "memlock=-1,nofile=1024:4096,rtprio=0"})
    assert docker_violations(plain, B) == []


def test_docker_ulimits_docker_does_not_know_are_refused_naming_the_annotation() -> None:
    template = pod(annotations={"crane.io/ulimits": "bogus=1"})
    issues = docker_violations(template, B)
    assert [i.path for i in issues] == ["metadata.annotations[crane.io/ulimits]"]
    assert "'bogus=1'" in issues[0].message
