"""Docker objects of a cargo: one container per replica on its MiniCluster's network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import DeviceRequest

from crane.docker import labels as L


@dataclass(frozen=True)
class ContainerTemplate:
    """What a pod template says of the one container a replica runs."""

    image: str
    command: list[str] | None = None
    env: dict[str, str] | None = None
    working_dir: str | None = None


def container_template(template: dict[str, Any]) -> ContainerTemplate:
    """The first container of a pod template (``spec.containers[0]``, or a bare container).

    Raises ValueError naming the missing field.
    """
    body: dict[str, Any] = template
    if "spec" in body:
        body = body["spec"]
    if "containers" in body:
        if not body["containers"]:
            raise ValueError("template.spec.containers is empty: give one container with an image")
        body = body["containers"][0]
    image = body.get("image")
    if not image:
        raise ValueError("the cargo template has no image: set template.spec.containers[0].image")
    command = [*body.get("command", []), *body.get("args", [])] or None
    raw_env = body.get("env", {})
    env = (
        {e["name"]: str(e.get("value", "")) for e in raw_env}
        if isinstance(raw_env, list)
        else {str(k): str(v) for k, v in raw_env.items()}
    )
    return ContainerTemplate(image, command, env or None, body.get("workingDir"))


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

    @property
    def name(self) -> str:
        return L.container_name(self.tenant, self.cargo, self.replica)

    @property
    def network(self) -> str:
        return L.network_name(self.tenant, self.minicluster)

    def env(self) -> dict[str, str]:
        ids = ",".join(str(i) for i in self.gpu_ids)
        env = {
            **(self.template.env or {}),
            "CRANE_MINICLUSTER": self.minicluster,
            "CRANE_CARGO": self.cargo,
            "CRANE_TENANT": self.tenant,
            "CRANE_REPLICA": str(self.replica),
            "CRANE_REPLICAS": str(self.replicas),
            "CRANE_GPU_IDS": ids,
            "RANK": str(self.replica),
            "WORLD_SIZE": str(self.replicas),
            "MASTER_ADDR": L.replica_alias(self.cargo, 0),
            "MASTER_PORT": str(L.MASTER_PORT),
        }
        if self.simulated:
            env["CUDA_VISIBLE_DEVICES"] = ids
        return env

    def labels(self) -> dict[str, str]:
        return {
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
            "hostname": L.replica_alias(self.cargo, self.replica),
            "environment": self.env(),
            "labels": self.labels(),
            "working_dir": self.template.working_dir,
            "restart_policy": {"Name": "no"},
            "extra_hosts": self.extra_hosts or None,
            "detach": True,
        }
        if self.gpu_ids and not self.simulated:
            kwargs["device_requests"] = [
                DeviceRequest(
                    driver="nvidia",
                    device_ids=[str(i) for i in self.gpu_ids],
                    capabilities=[["gpu"]],
                )
            ]
        return kwargs


def ensure_network(client: docker.DockerClient, spec: ReplicaSpec) -> Network:
    """The MiniCluster's bridge network on this host, created on first use."""
    found = client.networks.list(names=[spec.network])
    for net in found:
        if net.name == spec.network:
            return net
    return client.networks.create(
        spec.network,
        driver="bridge",
        labels={
            L.MANAGED: "true",
            L.TENANT: spec.tenant,
            L.MINICLUSTER: spec.minicluster,
            L.MINICLUSTER_UID: spec.minicluster_uid,
        },
    )


def run_replica(client: docker.DockerClient, spec: ReplicaSpec) -> Container:
    """Create and start the replica's container, or adopt the one already there."""
    network = ensure_network(client, spec)
    try:
        container = client.containers.get(spec.name)
    except NotFound:
        kwargs = spec.create_kwargs()
        kwargs["network"] = network.name
        kwargs["networking_config"] = {
            network.name: client.api.create_endpoint_config(
                aliases=[L.replica_alias(spec.cargo, spec.replica)]
            )
        }
        try:
            container = client.containers.create(**kwargs)
        except APIError as err:
            if err.status_code != 409:
                raise
            container = client.containers.get(spec.name)
    if container.status == "created":
        container.start()
        container.reload()
    return container


def managed_containers(client: docker.DockerClient) -> list[Container]:
    """Every container Crane owns on this host, running or not."""
    return list(
        client.containers.list(
            all=True, filters={"label": f"{L.MANAGED}=true"}, ignore_removed=True
        )
    )


def managed_networks(client: docker.DockerClient) -> list[Network]:
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
    """GPUs that running containers Crane does not own hold through device requests."""
    busy: set[int] = set()
    for container in client.containers.list(ignore_removed=True):
        if container.labels.get(L.MANAGED) == "true":
            continue
        for req in container.attrs.get("HostConfig", {}).get("DeviceRequests") or []:
            busy.update(int(i) for i in req.get("DeviceIDs") or [] if str(i).isdigit())
    return frozenset(busy)
