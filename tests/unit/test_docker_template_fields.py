"""Docker mode honours the template fields training jobs need and refuses the rest by name."""

from __future__ import annotations

import pytest

from crane.api.settings import ApiSettings
from crane.docker.containers import LogBound, ReplicaSpec, container_template
from crane.model.podsecurity import docker_violations


def _pod(container: dict[str, object], **spec: object) -> dict[str, object]:
    return {"spec": {"containers": [{"name": "main", "image": "img:1", **container}], **spec}}


def test_volumes_shm_ulimits_and_limits_are_honoured() -> None:
    template = _pod(
        {
            "workingDir": "/work",
            "resources": {"limits": {"cpu": "1500m", "memory": "2Gi", "nvidia.com/gpu": 8}},
            "volumeMounts": [
                {"name": "data", "mountPath": "/data", "readOnly": True},
                {"name": "ckpt", "mountPath": "/ckpt"},
                {"name": "shm", "mountPath": "/dev/shm"},
            ],
        },
        volumes=[
            {"name": "data", "hostPath": {"path": "/srv/datasets/imagenet"}},
            {"name": "ckpt", "persistentVolumeClaim": {"claimName": "ckpt"}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
        ],
    )
    template["metadata"] = {"annotations": {"crane.io/ulimits": "memlock=-1,stack=67108864"}}
    got = container_template(template, "team-a", ("/srv/datasets",))
    assert got.working_dir == "/work"
    assert got.volumes == ("/srv/datasets/imagenet:/data:ro", "crane.team-a.ckpt:/ckpt")
    assert got.shm_size == str(2**30)
    assert got.ulimits == (("memlock", -1, -1), ("stack", 67108864, 67108864))
    assert got.nano_cpus == 1_500_000_000 and got.mem_limit == 2 * 2**30


@pytest.mark.parametrize(
    ("template", "named"),
    [
        (_pod({"ports": [{"containerPort": 80}]}), "ports"),
        (_pod({}, nodeSelector={"a": "b"}), "nodeSelector"),
        (_pod({"resources": {"limits": {"ephemeral-storage": "1Gi"}}}), "ephemeral-storage"),
        (
            {"spec": {"containers": [{"image": "a"}, {"image": "b"}]}},
            "one container per replica",
        ),
        (
            _pod({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {}}}]}),
            "valueFrom",
        ),
        (
            _pod(
                {"volumeMounts": [{"name": "d", "mountPath": "/d"}]},
                volumes=[{"name": "d", "hostPath": {"path": "/etc"}}],
            ),
            "not under a path the admin allows",
        ),
        (_pod({}, volumes=[{"name": "d", "configMap": {"name": "x"}}]), "configMap"),
    ],
)
def test_an_unsupported_field_is_an_error_naming_it(
    template: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        container_template(template, "t", ("/srv/datasets",))


@pytest.mark.parametrize(
    "path",
    [
        "/srv/datasets/../../etc",
        "/srv/datasets/..",
        "/srv/datasets/./../../var/run/docker.sock",
        "/srv/datasets/x:/etc",
        "srv/datasets",
    ],
)
def test_a_host_path_that_climbs_out_of_the_allowed_root_is_refused(path: str) -> None:
    """dockerd cleans ``/srv/datasets/../../etc`` to ``/etc`` before it binds: a path that is
    under an allowed root only as text is refused by the builder and by the policy."""
    template = _pod(
        {"volumeMounts": [{"name": "d", "mountPath": "/d"}]},
        volumes=[{"name": "d", "hostPath": {"path": path}}],
    )
    with pytest.raises(ValueError, match="hostPath"):
        container_template(template, "t", ("/srv/datasets",))
    for level in ("baseline", "privileged"):
        issues = docker_violations(template, level, ["/srv/datasets"])
        assert any(i.path == "spec.volumes[0].hostPath.path" for i in issues), (level, issues)


def test_claims_of_two_tenants_never_name_one_volume() -> None:
    """Tenant ``team`` asking for claim ``ml-data`` must not get tenant ``team-ml``'s ``data``."""

    def volume(tenant: str, claim: str) -> str:
        template = _pod(
            {"volumeMounts": [{"name": "c", "mountPath": "/c"}]},
            volumes=[{"name": "c", "persistentVolumeClaim": {"claimName": claim}}],
        )
        return container_template(template, tenant, ()).volumes[0].split(":")[0]

    assert volume("team", "ml-data") != volume("team-ml", "data")
    with pytest.raises(ValueError, match="claimName"):
        volume("team", "../x")


@pytest.mark.parametrize(
    ("gpu_ids", "simulated", "visible"),
    [((2, 3), False, "2,3"), ((), False, "void"), ((2, 3), True, "void")],
)
def test_only_crane_says_which_gpus_nvidias_runtime_hands_out(
    gpu_ids: tuple[int, ...], simulated: bool, visible: str
) -> None:
    """A template's (or a CUDA image's) ``NVIDIA_VISIBLE_DEVICES=all`` never reaches the
    runtime: a replica without a device request (no GPUs, declared GPUs) gets ``void``."""
    template = container_template(
        _pod({"env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]})
    )
    spec = ReplicaSpec(
        tenant="t",
        minicluster="m",
        minicluster_uid="u1",
        cargo="c",
        cargo_uid="u2",
        replica=0,
        replicas=1,
        gpu_ids=gpu_ids,
        simulated=simulated,
        template=template,
        restart_policy="Never",
    )
    assert spec.create_kwargs()["environment"]["NVIDIA_VISIBLE_DEVICES"] == visible


ROOTS = ("/srv/datasets", "/scratch:rw", "/srv/datasets/shared:rw")
"""A read-only root, a writable one, and a writable one inside the read-only one."""


@pytest.mark.parametrize(
    ("path", "read_only", "refused"),
    [
        ("/srv/datasets", True, None),
        ("/srv/datasets/imagenet", True, None),
        ("/srv/datasets/imagenet", False, "mount it with readOnly: true"),
        ("/scratch", False, None),
        ("/scratch", True, None),
        ("/scratch/link", True, "which tenants may write to"),
        ("/scratch/job/ckpt", False, "which tenants may write to"),
        ("/srv/datasets/shared", False, None),
        ("/srv/datasets/shared/link", True, "which tenants may write to"),
        ("/srv", True, "not under a path the admin allows"),
    ],
)
def test_no_bind_passes_where_a_tenant_could_have_planted_a_link(
    path: str, read_only: bool, refused: str | None
) -> None:
    """The kernel follows a symbolic link when it binds and the path is checked as written:
    nothing is bound below a writable root, and only a writable root is bound writable."""
    template = _pod(
        {"volumeMounts": [{"name": "d", "mountPath": "/d", "readOnly": read_only}]},
        volumes=[{"name": "d", "hostPath": {"path": path}}],
    )
    if refused is None:
        got = container_template(template, "t", ROOTS)
        assert got.volumes == (f"{path}:/d{':ro' if read_only else ''}",)
    else:
        with pytest.raises(ValueError, match=refused):
            container_template(template, "t", ROOTS)


@pytest.mark.parametrize("entry", ["data", "/data:rwx", "/a:/b", "/data/../etc", ""])
def test_an_allowed_mount_the_server_cannot_read_stops_it_at_start(entry: str) -> None:
    with pytest.raises(ValueError, match="allowed mount"):
        ApiSettings(docker_allowed_mounts=["/ok", entry])
    assert ApiSettings(docker_allowed_mounts=["/ok", "/w:rw", "/r:ro"]).docker_allowed_mounts


@pytest.mark.parametrize(
    ("container", "named"),
    [
        ({"volumeMounts": [{"name": "d", "mountPath": "/"}]}, "mountPath"),
        ({"volumeMounts": [{"name": "d", "mountPath": "data"}]}, "mountPath"),
        ({"volumeMounts": [{"name": "d", "mountPath": "/a:b"}]}, "mountPath"),
        ({"volumeMounts": [{"name": "d", "mountPath": "/x/../proc"}]}, "mountPath"),
        ({"volumeMounts": [{"name": "d", "mountPath": "/proc/x"}]}, "mountPath"),
        ({"volumeMounts": [{"name": "d", "mountPath": "/a\x00b"}]}, "mountPath"),
        ({"env": [{"name": "A", "value": "x\x00y"}]}, r"env\[0\]"),
        ({"command": ["sh", "-c", "echo \x00"]}, "command"),
        ({"args": ["\x00"]}, "args"),
        ({"workingDir": "/a\x00b"}, "workingDir"),
        ({"image": "busy\x00box"}, "image"),
    ],
)
def test_a_template_no_container_can_be_made_of_is_refused_at_create(
    container: dict[str, object], named: str
) -> None:
    """dockerd or runc refuse these at every attempt with a server error (a mount at '/' or
    under /proc, a relative or ':' mountPath, a NUL in a string); the cargo stayed Placed on
    its GPUs for good, trying again every pass. They are refused at create, naming the field."""
    template = _pod(container, volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}])
    with pytest.raises(ValueError, match=named):
        container_template(template, "t")


@pytest.mark.parametrize("size", ["0m", "10", "1.5g", "-1k", "10mb", "99999999999g"])
def test_a_log_bound_dockerd_would_refuse_stops_the_server_at_start(size: str) -> None:
    """CRANE_DOCKER_LOG_MAX_SIZE is checked when the server starts, not at each container."""
    with pytest.raises(ValueError, match="docker_log_max_size"):
        ApiSettings(docker_log_max_size=size)
    with pytest.raises(ValueError, match="docker_log_max_file"):
        ApiSettings(docker_log_max_file=0)


def test_replicas_keep_a_rotated_log_of_the_configured_bound() -> None:
    kwargs = ReplicaSpec(
        tenant="t",
        minicluster="m",
        minicluster_uid="u",
        cargo="c",
        cargo_uid="cu",
        replica=0,
        replicas=1,
        gpu_ids=(0,),
        simulated=True,
        template=container_template({"image": "busybox"}),
        restart_policy="Never",
        logs=LogBound("20m", 5),
    ).create_kwargs()
    assert kwargs["log_config"] == {
        "Type": "json-file",
        "Config": {"max-size": "20m", "max-file": "5"},
    }


@pytest.mark.parametrize("name", ["NVIDIA_VISIBLE_DEVICES=all", "", "A\x00", "1A", "A B"])
def test_an_env_name_docker_would_mangle_is_refused(name: str) -> None:
    """An env name with '=' reached dockerd as ``NAME=value`` text: ``NVIDIA_VISIBLE_DEVICES=all``
    set Crane's own variable beside Crane's value; names are checked as Kubernetes checks them."""
    for env in ([{"name": name, "value": "x"}], {name: "x"}):
        with pytest.raises(ValueError, match="environment variable name"):
            container_template({"image": "busybox", "env": env})
    assert container_template({"image": "b", "env": [{"name": "a.b-C_1", "value": ""}]}).env
