"""Docker objects of a cargo: one container per replica, on its MiniCluster's bridge network, or
with host networking on a host that declares its address (docs/docker-mode.md)."""

from __future__ import annotations

import io
import math
import re
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import DeviceRequest, LogConfig, Ulimit

from crane.docker import labels as L
from crane.model.podsecurity import bind_issue, plain_host_path
from crane.model.podtemplate import (
    CRANE_ENV,
    ULIMITS_ANNOTATION,
    crane_env_issue,
    parse_ulimits,
)
from crane.model.world import (
    NOTICE_DIR,
    NOTICE_FILE,
    STORE_LISTENING,
    rendezvous_command,
    rendezvous_name,
    replica_env,
)

"""Pod templates have no ulimits: ``crane.io/ulimits: memlock=-1,stack=67108864:67108864``."""
CONTAINER_FIELDS = frozenset(
    {
        "name",
        "image",
        "imagePullPolicy",
        "command",
        "args",
        "env",
        "workingDir",
        "resources",
        "volumeMounts",
    }
)
POD_FIELDS = frozenset({"containers", "volumes", "restartPolicy", "terminationGracePeriodSeconds"})
GPU_RESOURCES = frozenset({"nvidia.com/gpu"})
CLAIM_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
"""A persistentVolumeClaim's claimName: a Kubernetes object name (DNS subdomain)."""
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
"""An env name as Kubernetes takes it: one with '=' would reach dockerd as ``NAME=value`` text
and set another variable (Crane's own, such as ``NVIDIA_VISIBLE_DEVICES``)."""
NVIDIA_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
"""Read by NVIDIA's container runtime: which GPUs a container gets (``all``, ids, ``void``)."""
HOST_NETWORK_CAP_DROP = ("NET_RAW",)
"""Dropped from a replica with host networking: Docker's default set keeps NET_RAW, which in the
host's network namespace sniffs and spoofs the traffic of every container and the host."""
INT64_LIMIT = 2**63
"""Docker's numbers (CPU, memory, shm size, ulimits) are int64."""
NOBODY = 65534
"""The rendezvous store runs as this non-root user."""


@dataclass(frozen=True)
class ContainerTemplate:
    """What a pod template says of the one container a replica runs."""

    image: str
    command: list[str] | None = None
    env: dict[str, str] | None = None
    working_dir: str | None = None
    volumes: tuple[str, ...] = ()
    """Docker volume specs ``source:target[:ro]`` (named volumes and binds)."""
    shm_size: str | None = None
    ulimits: tuple[tuple[str, int, int], ...] = ()
    nano_cpus: int | None = None
    mem_limit: int | None = None


@dataclass(frozen=True)
class LogBound:
    """How much log Docker keeps of one container: json-file logs rotated at ``max_size``,
    ``max_file`` files (settings ``CRANE_DOCKER_LOG_MAX_SIZE``, ``CRANE_DOCKER_LOG_MAX_FILE``).
    Without a bound, a replica that prints fast fills its host's disk."""

    max_size: str = "100m"
    max_file: int = 3

    def log_config(self) -> LogConfig:
        """Docker's ``HostConfig.LogConfig`` for it (read back by the Docker API's logs)."""
        return LogConfig(
            type=LogConfig.types.JSON,
            config={"max-size": self.max_size, "max-file": str(self.max_file)},
        )


def _quantity(value: Any, where: str) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``16Gi``, ``1G``) as a number."""
    text = str(value)
    units = {
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "k": 10**3,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
        "m": 1e-3,
    }
    number, factor = text, 1.0
    for suffix, scale in units.items():
        if text.endswith(suffix):
            number, factor = text[: -len(suffix)], float(scale)
            break
    try:
        amount = float(number) * factor
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"{where}: {text!r} is not a quantity (e.g. 2, 500m, 16Gi)")
    return amount


def _int64(value: float, where: str) -> int:
    """``value`` as Docker's int64, or ValueError when it does not fit."""
    if not value < INT64_LIMIT:
        raise ValueError(f"{where}: {value:g} is more than Docker takes (below 2^63)")
    return int(value)


def _volumes(
    pod: dict[str, Any],
    mounts: list[dict[str, Any]],
    tenant: str,
    allowed_paths: tuple[str, ...] | None,
) -> tuple[tuple[str, ...], str | None]:
    """Volume mounts as Docker volume specs, and the shm size an emptyDir at /dev/shm sets."""
    by_name: dict[str, dict[str, Any]] = {}
    for i, vol in enumerate(pod.get("volumes") or []):
        where = f"template.spec.volumes[{i}]"
        kinds = set(vol) - {"name"}
        if kinds not in ({"hostPath"}, {"persistentVolumeClaim"}, {"emptyDir"}):
            raise ValueError(
                f"{where}: Docker mode supports hostPath, persistentVolumeClaim (a named Docker "
                f"volume) and emptyDir at /dev/shm, not {', '.join(sorted(kinds)) or 'nothing'}"
            )
        source = vol[kinds.pop()]
        if source is not None and not isinstance(source, dict):
            raise ValueError(f"{where}: the volume's source must be an object, not {source!r}")
        by_name[str(vol.get("name"))] = vol
    out: list[str] = []
    shm: str | None = None
    for i, mount in enumerate(mounts):
        where = f"template.spec.containers[0].volumeMounts[{i}]"
        extra = set(mount) - {"name", "mountPath", "readOnly"}
        if extra:
            raise ValueError(f"{where}: Docker mode does not support {', '.join(sorted(extra))}")
        vol = by_name.get(str(mount.get("name")))
        target = mount.get("mountPath")
        if vol is None or not target:
            raise ValueError(f"{where}: name a volume of template.spec.volumes and a mountPath")
        target = str(target)
        if not plain_host_path(target) or target == "/" or _under(target, "/proc"):
            raise ValueError(
                f"{where}: mountPath {target!r} must be an absolute path without '.', '..', "
                "':' or NUL, other than '/' and not under /proc (dockerd refuses it)"
            )
        mode = ":ro" if mount.get("readOnly") else ""
        if "emptyDir" in vol:
            if target != "/dev/shm":
                raise ValueError(f"{where}: Docker mode mounts an emptyDir only at /dev/shm")
            limit = (vol["emptyDir"] or {}).get("sizeLimit")
            shm = str(_int64(_quantity(limit, where), where)) if limit else "1g"
        elif "hostPath" in vol:
            path = str((vol["hostPath"] or {}).get("path", ""))
            if not plain_host_path(path):
                raise ValueError(
                    f"{where}: hostPath {path!r} must be an absolute path without '.', '..' "
                    "or ':' (name the directory itself)"
                )
            issue = None if allowed_paths is None else bind_issue(path, bool(mode), allowed_paths)
            if issue is not None:
                raise ValueError(f"{where}: {issue}")
            out.append(f"{path}:{target}{mode}")
        else:
            claim = str((vol["persistentVolumeClaim"] or {}).get("claimName", ""))
            if not CLAIM_NAME.fullmatch(claim):
                raise ValueError(
                    f"{where}: persistentVolumeClaim.claimName {claim!r} must be a lowercase "
                    "DNS name (a-z, 0-9, '-', '.'; at most 253 characters)"
                )
            out.append(f"{L.volume_name(tenant, claim)}:{target}{mode}")
    return tuple(out), shm


def _under(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def _no_nul(where: str, *texts: str) -> None:
    """ValueError naming ``where`` when a text holds NUL: no process takes one in its
    arguments, environment or paths, so dockerd and runc refuse it at every attempt."""
    if any("\x00" in text for text in texts):
        raise ValueError(f"{where}: a NUL character cannot be passed to a container")


def container_template(
    template: dict[str, Any], tenant: str = "", allowed_paths: tuple[str, ...] | None = None
) -> ContainerTemplate:
    """The container a pod template describes (``spec.containers[0]``, or a bare container).

    Honoured: image, command, args, env (values), workingDir, cpu/memory limits, volumes
    (hostPath under ``allowed_paths`` as :func:`crane.model.podsecurity.bind_issue` allows,
    persistentVolumeClaim as a named volume of the tenant, an emptyDir at /dev/shm as the shm
    size) and ulimits (annotation ``crane.io/ulimits``).
    Raises ValueError naming any other field, never dropping it silently, and naming a
    variable Crane sets (``CRANE_ENV``: a template stored before that was refused).
    """
    pod: dict[str, Any] = template.get("spec", {}) if "spec" in template else {}
    meta = template.get("metadata") or {}
    body: dict[str, Any] = template
    if "spec" in template:
        extra = set(template) - {"spec", "metadata"}
        if extra:
            raise ValueError(f"template: Docker mode does not support {', '.join(sorted(extra))}")
        body = template["spec"]
        unsupported = set(body) - POD_FIELDS
        if unsupported:
            raise ValueError(
                f"template.spec: Docker mode does not support {', '.join(sorted(unsupported))}"
            )
    if "containers" in body:
        if not body["containers"]:
            raise ValueError("template.spec.containers is empty: give one container with an image")
        if len(body["containers"]) > 1:
            raise ValueError(
                "template.spec.containers: Docker mode runs one container per replica, "
                f"not {len(body['containers'])}"
            )
        body = body["containers"][0]
        unsupported = set(body) - CONTAINER_FIELDS
        if unsupported:
            raise ValueError(
                "template.spec.containers[0]: Docker mode does not support "
                f"{', '.join(sorted(unsupported))}"
            )
    image = body.get("image")
    if not image:
        raise ValueError("the cargo template has no image: set template.spec.containers[0].image")
    _no_nul("template.spec.containers[0].image", str(image))
    for field in ("command", "args"):
        _no_nul(f"template.spec.containers[0].{field}", *map(str, body.get(field) or []))
    _no_nul("template.spec.containers[0].workingDir", str(body.get("workingDir") or ""))
    command = [*body.get("command", []), *body.get("args", [])] or None
    raw_env = body.get("env", {})
    if isinstance(raw_env, list):
        for i, e in enumerate(raw_env):
            if set(e) - {"name", "value"}:
                raise ValueError(
                    f"template.spec.containers[0].env[{i}]: Docker mode supports value only, "
                    f"not {', '.join(sorted(set(e) - {'name', 'value'}))}"
                )
            _no_nul(f"template.spec.containers[0].env[{i}]", str(e.get("value", "")))
        env = {e["name"]: str(e.get("value", "")) for e in raw_env}
    else:
        env = {str(k): str(v) for k, v in raw_env.items()}
        _no_nul("template.spec.containers[0].env", *env.values())
    for key in env:
        if key in CRANE_ENV:
            raise ValueError(f"template.spec.containers[0].env: {crane_env_issue(key)}")
        if not ENV_NAME.fullmatch(key):
            raise ValueError(
                f"template.spec.containers[0].env: {key!r} is not an environment variable name "
                "(letters, digits, '_', '-', '.'; not starting with a digit)"
            )
    resources = body.get("resources") or {}
    limits = dict(resources.get("limits") or {})
    for key in [k for k in limits if k in GPU_RESOURCES]:
        del limits[key]  # GPUs are Crane's to set
    unsupported = set(limits) - {"cpu", "memory"}
    if unsupported:
        raise ValueError(
            "template.spec.containers[0].resources.limits: Docker mode supports cpu and "
            f"memory, not {', '.join(sorted(unsupported))}"
        )
    where = "template.spec.containers[0].resources.limits"
    nano_cpus = _int64(_quantity(limits["cpu"], where) * 1e9, where) if "cpu" in limits else None
    mem_limit = _int64(_quantity(limits["memory"], where), where) if "memory" in limits else None
    volumes, shm = _volumes(pod, list(body.get("volumeMounts") or []), tenant, allowed_paths)
    ulimits = parse_ulimits(str((meta.get("annotations") or {}).get(ULIMITS_ANNOTATION, "")))
    return ContainerTemplate(
        image,
        command,
        env or None,
        body.get("workingDir"),
        volumes=volumes,
        shm_size=shm,
        ulimits=ulimits,
        nano_cpus=nano_cpus,
        mem_limit=mem_limit,
    )


@dataclass(frozen=True)
class ReplicaSpec:
    """Everything needed to run one replica of a placed cargo."""

    tenant: str
    minicluster: str
    minicluster_uid: str
    cargo: str
    cargo_uid: str
    replica: int
    replicas: int
    gpu_ids: tuple[int, ...]
    simulated: bool
    template: ContainerTemplate
    restart_policy: str
    attempt: int = 0
    extra_hosts: dict[str, str] | None = None
    world: dict[str, str] | None = None
    """The MiniCluster's rendezvous env (crane/model/world.py), if it has one."""
    host: str = ""
    """The hostname with host networking (crane/docker/hosts.py, ``network_hostname``)."""
    address: str | None = None
    """The host's address when it declares one: the replica runs with host networking."""
    master_addr: str | None = None
    """``MASTER_ADDR``; default the alias of replica 0 on the MiniCluster's network."""
    master_port: int = L.MASTER_PORT
    logs: LogBound = LogBound()
    """How much of the replica's log its host keeps."""

    @property
    def name(self) -> str:
        """The replica's container name (``labels.container_name``)."""
        return L.container_name(self.tenant, self.cargo, self.replica)

    @property
    def network(self) -> str:
        """The MiniCluster's Docker network on each host it uses (``labels.network_name``)."""
        return L.network_name(self.tenant, self.minicluster)

    def env(self) -> dict[str, str]:
        """The template's env with Crane's (crane/model/world.py) over it, and the tenant.

        ``NVIDIA_VISIBLE_DEVICES`` is always Crane's: the replica's GPU ids with a device
        request, else ``void``. On a host whose default runtime is NVIDIA's, that variable (from
        the template or the image, as CUDA images set ``all``) alone hands out GPUs."""
        env = {
            **(self.template.env or {}),
            **replica_env(
                minicluster=self.minicluster,
                cargo=self.cargo,
                replica=self.replica,
                replicas=self.replicas,
                master_addr=self.master_addr or L.replica_alias(self.cargo, 0),
                master_port=self.master_port,
                gpu_ids=self.gpu_ids,
                world=self.world or {},
            ),
            "CRANE_TENANT": self.tenant,
            NVIDIA_VISIBLE_DEVICES: (
                ",".join(str(i) for i in self.gpu_ids)
                if self.gpu_ids and not self.simulated
                else "void"
            ),
        }
        if self.simulated:
            env["CUDA_VISIBLE_DEVICES"] = env["CRANE_GPU_IDS"]
        return env

    def labels(self) -> dict[str, str]:
        """Crane's labels on the container (the port too with host networking)."""
        port = {L.PORT: str(self.master_port)} if self.address else {}
        return {
            **port,
            L.MANAGED: "true",
            L.TENANT: self.tenant,
            L.MINICLUSTER: self.minicluster,
            L.MINICLUSTER_UID: self.minicluster_uid,
            L.CARGO: self.cargo,
            L.CARGO_UID: self.cargo_uid,
            L.REPLICA: str(self.replica),
            L.GPU_IDS: ",".join(str(i) for i in self.gpu_ids),
            L.RESTART_POLICY: self.restart_policy,
            L.ATTEMPT: str(self.attempt),
        }

    def create_kwargs(self) -> dict[str, Any]:
        """Arguments of ``containers.create``. Restarts are the reconciler's (gang-wide), so
        Docker's own restart policy stays ``no``."""
        kwargs: dict[str, Any] = {
            "image": self.template.image,
            "command": self.template.command,
            "name": self.name,
            "hostname": self.host if self.address else L.replica_alias(self.cargo, self.replica),
            "environment": self.env(),
            "labels": self.labels(),
            "working_dir": self.template.working_dir,
            "restart_policy": {"Name": "no"},
            "log_config": self.logs.log_config(),
            "extra_hosts": self.extra_hosts or None,
            "detach": True,
        }
        if self.address:
            kwargs["network_mode"] = "host"
            # raw sockets on the host's own interfaces would read every tenant's traffic
            kwargs["cap_drop"] = list(HOST_NETWORK_CAP_DROP)
        t = self.template
        if t.volumes:
            kwargs["volumes"] = list(t.volumes)
        if t.shm_size:
            kwargs["shm_size"] = t.shm_size
        if t.ulimits:
            kwargs["ulimits"] = [
                Ulimit(name=n, soft=soft, hard=hard) for n, soft, hard in t.ulimits
            ]
        if t.nano_cpus:
            kwargs["nano_cpus"] = t.nano_cpus
        if t.mem_limit:
            kwargs["mem_limit"] = t.mem_limit
        if self.gpu_ids and not self.simulated:
            kwargs["device_requests"] = [
                DeviceRequest(
                    driver="nvidia",
                    device_ids=[str(i) for i in self.gpu_ids],
                    capabilities=[["gpu"]],
                )
            ]
        return kwargs


def ensure_network(
    client: docker.DockerClient, tenant: str, minicluster: str, minicluster_uid: str
) -> Network:
    """The MiniCluster's bridge network on this host, created on first use."""
    name = L.network_name(tenant, minicluster)
    found = client.networks.list(names=[name])
    for net in found:
        if net.name == name:
            return net
    return client.networks.create(
        name,
        driver="bridge",
        labels={
            L.MANAGED: "true",
            L.TENANT: tenant,
            L.MINICLUSTER: minicluster,
            L.MINICLUSTER_UID: minicluster_uid,
        },
    )


class NameTaken(Exception):
    """A replica's container name is held by a container that is not that replica's."""


class ImagePullFailed(Exception):
    """The replica's image is not on the host and could not be pulled; says why."""


def pull_image(client: docker.DockerClient, image: str) -> None:
    """Pull ``image`` onto the host; raises :class:`ImagePullFailed` with Docker's reason."""
    try:
        client.images.pull(image)
    except (APIError, DockerException) as err:
        reason = err.explanation if isinstance(err, APIError) and err.explanation else err
        raise ImagePullFailed(f"pulling image {image} failed: {reason}") from None


def has_image(client: docker.DockerClient, image: str) -> bool:
    """Whether the host has ``image`` already."""
    try:
        client.images.get(image)
    except ImageNotFound:
        return False
    return True


def run_replica(client: docker.DockerClient, spec: ReplicaSpec) -> Container:
    """Create and start the replica's container, or adopt the one already there (the image
    is pulled first when the host lacks it)."""
    try:
        container = client.containers.get(spec.name)
    except NotFound:
        container = _create_replica(client, spec)
    if not is_own(container) or container.labels.get(L.CARGO_UID) != spec.cargo_uid:
        raise NameTaken(
            f"the container name {spec.name} is taken by a container that is not this "
            f"replica's ({container.short_id}); the replica starts once it is gone (a stale "
            f"one goes by itself; one made by hand: docker rm -f {container.short_id})"
        )
    if container.status == "created":
        container.start()
        container.reload()
    return container


def _create_replica(client: docker.DockerClient, spec: ReplicaSpec) -> Container:
    """Create the replica's container (its network and image first); one made meanwhile under
    its name is returned instead."""
    kwargs = spec.create_kwargs()
    if not spec.address:
        network = ensure_network(client, spec.tenant, spec.minicluster, spec.minicluster_uid)
        kwargs["network"] = network.name
        kwargs["networking_config"] = {
            network.name: client.api.create_endpoint_config(
                aliases=[L.replica_alias(spec.cargo, spec.replica)]
            )
        }
    if not has_image(client, spec.template.image):
        pull_image(client, spec.template.image)
    try:
        container = client.containers.create(**kwargs)
    except APIError as err:
        if err.status_code != 409:
            raise
        container = client.containers.get(spec.name)
    return container


@dataclass(frozen=True)
class RendezvousSpec:
    """A MiniCluster's rendezvous store: one container on its network, alias ``<mc>-rdzv``, or
    with host networking on ``port`` of a host that declares ``address``."""

    tenant: str
    minicluster: str
    minicluster_uid: str
    image: str
    port: int
    host: str = ""
    address: str | None = None
    volumes: tuple[str, ...] = ()
    """The template's read-only volumes (an environment with torch mounted into the image)."""
    logs: LogBound = LogBound()
    """How much of the store's log its host keeps."""

    @property
    def name(self) -> str:
        """The store's container name on its host."""
        return L.rendezvous_container_name(self.tenant, self.minicluster)


def run_rendezvous(client: docker.DockerClient, spec: RendezvousSpec) -> Container:
    """Create and start the store's container (image pulled when missing); Docker restarts it
    if it exits, until Crane removes it with the MiniCluster."""
    where: dict[str, Any]
    if spec.address:
        where = {"network_mode": "host", "hostname": spec.host}
    else:
        network = ensure_network(client, spec.tenant, spec.minicluster, spec.minicluster_uid)
        where = {
            "hostname": rendezvous_name(spec.minicluster),
            "network": network.name,
            "networking_config": {
                network.name: client.api.create_endpoint_config(
                    aliases=[rendezvous_name(spec.minicluster)]
                )
            },
        }
    if spec.volumes:
        where["volumes"] = list(spec.volumes)
    if not has_image(client, spec.image):
        pull_image(client, spec.image)
    container = client.containers.create(
        image=spec.image,
        command=rendezvous_command(spec.port),
        name=spec.name,
        labels={
            L.MANAGED: "true",
            L.TENANT: spec.tenant,
            L.MINICLUSTER: spec.minicluster,
            L.MINICLUSTER_UID: spec.minicluster_uid,
            L.RENDEZVOUS: spec.minicluster_uid,
            **({L.PORT: str(spec.port)} if spec.address else {}),
        },
        restart_policy={"Name": "unless-stopped"},
        log_config=spec.logs.log_config(),
        environment={NVIDIA_VISIBLE_DEVICES: "void"},  # no GPU, whatever the image says
        user=f"{NOBODY}:{NOBODY}",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        detach=True,
        **where,
    )
    container.start()
    return container


def free_port(client: docker.DockerClient, start: int) -> int:
    """The lowest port from ``start`` that no Crane container of this host holds (label
    ``crane.io/port``): with host networking, containers of a host share its ports."""
    taken = {
        int(port)
        for c in managed_containers(client)
        if (port := c.labels.get(L.PORT, "")).isdigit()
    }
    for port in range(start, L.PORT_LIMIT + 1):
        if port not in taken:
            return port
    raise ValueError(f"no free port from {start} on this host: {len(taken)} are Crane's")


def store_listening(container: Container) -> bool:
    """Whether the store's container runs and its latest start got as far as listening on its
    port (it printed :data:`~crane.model.world.STORE_LISTENING` since). With host networking
    a torchrun agent on the store's host takes the endpoint for its own and serves the store
    itself when the port is free: made before the store listened (torch's import takes
    seconds), that replica held the world's store, the store's container restarted forever on
    ``address already in use``, and a shrink of that replica's cargo took the world's store."""
    state = container.attrs.get("State") or {}
    if state.get("Status") != "running":
        return False
    started = str(state.get("StartedAt", ""))[:19]
    try:
        since = int(datetime.strptime(started, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
    except ValueError:
        since = 0
    try:
        text = container.logs(since=since).decode(errors="replace")
    except DockerException:
        return False
    return STORE_LISTENING in text


def store_trouble(container: Container) -> str:
    """Why the rendezvous store's container does not serve, for its cargos' message, or ""
    while it runs (it may still be starting): Docker could not start it (its ``State.Error``,
    such as no ``python3`` in the template's image), or it exited (its code and last log line,
    such as no torch in the image)."""
    state = container.attrs.get("State") or {}
    status = state.get("Status")
    if status == "running":
        return ""
    if error := str(state.get("Error") or ""):
        return f"it cannot start: {error[-300:]}"
    code = state.get("ExitCode")
    if status in ("exited", "restarting", "dead") and code:
        try:
            last = container.logs(tail=1).decode(errors="replace").strip()
        except DockerException:
            last = ""
        return f"it exited with code {code}" + (f": {last[-300:]}" if last else "")
    return ""


def rendezvous_containers(client: docker.DockerClient) -> list[Container]:
    """Every rendezvous store container on this host, running or not."""
    return [
        c
        for c in client.containers.list(
            all=True, filters={"label": L.RENDEZVOUS}, ignore_removed=True
        )
        if is_own(c)
    ]


def write_notice(container: Container, text: str) -> None:
    """Put the notice into the running container as ``/crane/notice`` (no shell needed, any
    host: the Docker API's archive upload)."""
    data = text.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folder = tarfile.TarInfo(NOTICE_DIR.strip("/"))
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        info = tarfile.TarInfo(NOTICE_FILE.strip("/"))
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    container.put_archive("/", buf.getvalue())


def own_name(labels: dict[str, str]) -> str | None:
    """The name Crane gives the container these labels describe (a replica's, or a
    MiniCluster's rendezvous store's); None when they describe neither."""
    if labels.get(L.MANAGED) != "true":
        return None
    tenant, minicluster = labels.get(L.TENANT, ""), labels.get(L.MINICLUSTER, "")
    if L.RENDEZVOUS in labels:
        return L.rendezvous_container_name(tenant, minicluster)
    cargo, replica = labels.get(L.CARGO, ""), labels.get(L.REPLICA, "")
    if not cargo or not replica.isdigit() or str(int(replica)) != replica:
        return None
    return L.container_name(tenant, cargo, int(replica))


def is_own(container: Container) -> bool:
    """Whether ``container`` is one Crane made: it carries Crane's labels under the name those
    labels give it. A daemon holds one container of a name, so labels copied onto another
    container (by hand, or to pass a job off as a cargo) or a replica renamed by hand never
    stand for a replica: Crane neither adopts them nor counts their labels' GPUs."""
    return own_name(container.labels or {}) == str(container.name)


def off_network(container: Container, network: str) -> bool:
    """Whether a running replica on its MiniCluster's bridge is no longer on ``network``
    (disconnected, or the network removed by hand): its peers and store are out of reach."""
    attrs = container.attrs
    if container.status != "running" or attrs.get("HostConfig", {}).get("NetworkMode") == "host":
        return False
    return network not in ((attrs.get("NetworkSettings") or {}).get("Networks") or {})


def labelled_containers(client: docker.DockerClient) -> list[Container]:
    """Every container carrying Crane's ``managed`` label on this host, Crane's or not."""
    return list(
        client.containers.list(
            all=True, filters={"label": f"{L.MANAGED}=true"}, ignore_removed=True
        )
    )


def managed_containers(client: docker.DockerClient) -> list[Container]:
    """Every container Crane owns on this host, running or not (:func:`is_own`)."""
    return [c for c in labelled_containers(client) if is_own(c)]


def impostors(client: docker.DockerClient) -> list[Container]:
    """Live containers wearing Crane's labels that are not Crane's (:func:`is_own`)."""
    return [
        c
        for c in labelled_containers(client)
        if not is_own(c) and c.status in ("running", "restarting", "created", "paused")
    ]


def managed_networks(client: docker.DockerClient) -> list[Network]:
    """The networks Crane created on this host (labelled managed)."""
    return list(client.networks.list(filters={"label": f"{L.MANAGED}=true"}))


def remove_container(container: Container, grace_seconds: int = 10) -> None:
    """Stop (SIGTERM, then SIGKILL after the grace period) and remove; gone already is fine."""
    try:
        if container.status in ("running", "restarting", "paused"):
            container.stop(timeout=grace_seconds)
        container.remove(force=True)
    except NotFound:
        return


def busy_gpu_ids(client: docker.DockerClient) -> frozenset[int]:
    """GPUs that running containers Crane does not own (:func:`is_own`, whatever labels they
    carry) hold through device requests."""
    busy: set[int] = set()
    for container in client.containers.list(ignore_removed=True):
        if is_own(container):
            continue
        for req in container.attrs.get("HostConfig", {}).get("DeviceRequests") or []:
            busy.update(int(i) for i in req.get("DeviceIDs") or [] if str(i).isdigit())
    return frozenset(busy)
