"""Host networking across Docker hosts (docs/docker-mode.md, "Networking across hosts"): what a
host's address changes in the container Crane asks Docker for. The real thing, on dockerd in
network namespaces of their own, is tests/docker/test_netns_hosts_docker.py."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crane.api.errors import Invalid
from crane.api.schemas import HostCreate
from crane.docker import labels as L
from crane.docker.api_hosts import spec_of
from crane.docker.containers import ContainerTemplate, ReplicaSpec
from crane.docker.hosts import HostSpec, host_names, network_hostname
from crane.model.specs import MiniClusterSpec
from crane.model.world import world_env


def host(name: str, address: str | None) -> HostSpec:
    return HostSpec(name=name, url="unix:///run/docker.sock", address=address)


@pytest.mark.parametrize("address", ["10.0.0.12", "fd00::12", "gpu-02", "gpu-02.example.internal"])
def test_a_host_declares_an_ip_or_a_dns_name(address: str) -> None:
    assert host("gpu-02", address).address == address


@pytest.mark.parametrize("address", ["10.0.0.12:2376", "tcp://10.0.0.12", "1.2.3", "a b", ""])
def test_an_address_with_a_port_or_scheme_is_refused_saying_what_to_give(address: str) -> None:
    with pytest.raises(ValidationError, match="neither an IP address nor a DNS name"):
        host("gpu-02", address)


def test_the_api_keeps_the_address_and_refuses_a_bad_one() -> None:
    body = {"name": "gpu-02", "dockerHost": "tcp://10.0.0.12:2376", "gpus": 8, "gpuType": "H100"}
    assert spec_of(HostCreate.model_validate({**body, "address": "10.0.0.12"})).address == (
        "10.0.0.12"
    )
    assert spec_of(HostCreate.model_validate(body)).address is None
    with pytest.raises(Invalid, match="neither an IP address"):
        spec_of(HostCreate.model_validate({**body, "address": "10.0.0.12:2376"}))


def test_hosts_with_ip_addresses_are_named_in_etc_hosts_and_name_their_containers() -> None:
    hosts = [host("n0", "10.0.0.10"), host("n1", "gpu-01.example.internal"), host("n2", None)]
    assert host_names(hosts) == {"n0": "10.0.0.10"}
    assert [network_hostname(h) for h in hosts] == ["n0", "gpu-01.example.internal", "n2"]


def replica(**networking: object) -> ReplicaSpec:
    return ReplicaSpec(
        tenant="team",
        minicluster="llm",
        minicluster_uid="uid-7",
        cargo="llm-1",
        cargo_uid="uid-8",
        replica=1,
        replicas=2,
        gpu_ids=(0,),
        simulated=True,
        template=ContainerTemplate("trainer:1"),
        restart_policy="Never",
        **networking,
    )


def test_a_replica_on_a_host_with_an_address_uses_host_networking_and_its_ports() -> None:
    spec = replica(
        host="n1",
        address="10.0.0.11",
        master_addr="10.0.0.10",
        master_port=29501,
        extra_hosts={"n0": "10.0.0.10", "n1": "10.0.0.11"},
    )
    kwargs = spec.create_kwargs()
    assert kwargs["network_mode"] == "host"
    assert "NET_RAW" in kwargs["cap_drop"], "raw sockets on the host's interfaces"
    assert kwargs["hostname"] == "n1"
    assert kwargs["extra_hosts"] == {"n0": "10.0.0.10", "n1": "10.0.0.11"}
    assert kwargs["labels"][L.PORT] == "29501"
    assert (kwargs["environment"]["MASTER_ADDR"], kwargs["environment"]["MASTER_PORT"]) == (
        "10.0.0.10",
        "29501",
    )


def test_a_replica_on_a_host_without_an_address_stays_on_the_bridge_network() -> None:
    kwargs = replica().create_kwargs()
    assert "network_mode" not in kwargs
    assert "cap_drop" not in kwargs
    assert kwargs["hostname"] == "llm-1-1"
    assert L.PORT not in kwargs["labels"]
    assert (kwargs["environment"]["MASTER_ADDR"], kwargs["environment"]["MASTER_PORT"]) == (
        "llm-1-0",
        "29500",
    )


def test_the_endpoint_takes_the_port_the_store_was_given() -> None:
    spec = MiniClusterSpec.model_validate(
        {
            "gpuType": "H100",
            "gpus": {"min": 8, "max": 12},
            "rendezvous": {"enabled": True},
            "template": {"replicas": 1, "gpusPerReplica": 4, "template": {}},
        }
    )
    assert world_env("uid-7", spec, "10.0.0.10", 29401)["CRANE_RDZV_ENDPOINT"] == (
        "10.0.0.10:29401"
    )
    assert world_env("uid-7", spec, "llm-rdzv")["CRANE_RDZV_ENDPOINT"] == "llm-rdzv:29400"
