"""Docker hosts as nodes: how to reach one and what the placement engine sees of it."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import docker
from docker.tls import TLSConfig
from pydantic import BaseModel, ConfigDict, Field, field_validator

from crane.model import NodeInventory, TopologyLevels, parse_islands
from crane.model.gpu import is_product_name
from crane.model.topology import ALIASES

LOCAL = "local"
HOSTNAME_KEY = "kubernetes.io/hostname"


class HostSpec(BaseModel):
    """A Docker engine Crane places containers on, with its GPUs and topology labels.

    ``simulated`` GPUs are declared rather than found: containers get ``CUDA_VISIBLE_DEVICES``
    but no device request. ``address`` is how the other hosts reach this one (an IP address or a
    DNS name): a host that declares one runs MiniClusters' containers with host networking
    (docs/docker-mode.md, "Networking across hosts"); without one, on a bridge network of the
    MiniCluster's, reachable from this host only.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    url: str = Field(description="unix:///var/run/docker.sock, tcp://host:2376, ...")
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    gpu_product: str = ""
    gpu_count: int = Field(default=0, ge=0, le=64)
    islands: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    simulated: bool = True
    address: str | None = Field(
        default=None, description="the address other hosts reach this host by (host networking)"
    )

    @field_validator("address")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_address(value)

    @field_validator("gpu_product")
    @classmethod
    def _known_product(cls, value: str) -> str:
        if value and not is_product_name(value):
            raise ValueError(
                f"unknown GPU type {value!r}: use a family such as H100 or a product such as "
                "NVIDIA-H100-80GB-HBM3"
            )
        return value


_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def check_address(value: str) -> str:
    """``value`` if it is an IP address or a DNS name (no port, no scheme); else ValueError."""
    if _is_ip(value) or (DNS_NAME.match(value) and not value.replace(".", "").isdigit()):
        return value
    raise ValueError(
        f"address {value!r} is neither an IP address nor a DNS name (give 10.0.0.12 or "
        "gpu-02.example.internal, without a port)"
    )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def network_hostname(spec: HostSpec) -> str:
    """The hostname of a container with host networking on this host: the host's name when its
    address is an IP (:func:`host_names` maps the name to it), else the address (a DNS name)."""
    return spec.name if spec.address is None or _is_ip(spec.address) else spec.address


def host_names(hosts: Iterable[HostSpec]) -> dict[str, str]:
    """Extra ``/etc/hosts`` lines of containers with host networking: every host that declares
    an IP address, by name, so a program (gloo, NCCL, torchrun's agent) that advertises its
    hostname is reached at its host's address."""
    return {h.name: h.address for h in hosts if h.address is not None and _is_ip(h.address)}


def topology_labels(labels: dict[str, str], levels: TopologyLevels) -> dict[str, str]:
    """Host labels with level aliases spelled out: ``rack=r1`` becomes ``crane.io/rack=r1``."""
    out: dict[str, str] = {}
    for key, value in labels.items():
        if key in ALIASES and key in levels.aliases and key != "node":
            out[levels.key(key)] = value
        else:
            out[key] = value
    return out


def inventory(
    spec: HostSpec,
    levels: TopologyLevels,
    *,
    ready: bool = True,
    schedulable: bool = True,
    busy: frozenset[int] = frozenset(),
) -> NodeInventory:
    """The node the placement engine sees for a host."""
    labels = {**topology_labels(spec.labels, levels), HOSTNAME_KEY: spec.name}
    return NodeInventory(
        name=spec.name,
        gpu_product=spec.gpu_product,
        gpu_count=spec.gpu_count,
        islands=parse_islands(spec.islands, spec.gpu_count),
        labels=labels,
        busy_gpu_ids=frozenset(i for i in busy if i < spec.gpu_count),
        ready=ready,
        schedulable=schedulable,
    )


def connect(spec: HostSpec, timeout: float = 10.0) -> docker.DockerClient:
    """A client for the host's Docker API (TLS when certificates are given)."""
    tls: TLSConfig | bool = False
    if spec.tls_cert or spec.tls_ca:
        cert = (spec.tls_cert, spec.tls_key) if spec.tls_cert and spec.tls_key else None
        tls = TLSConfig(client_cert=cert, ca_cert=spec.tls_ca, verify=spec.tls_ca or False)
    return docker.DockerClient(base_url=spec.url, tls=tls, timeout=int(timeout))
