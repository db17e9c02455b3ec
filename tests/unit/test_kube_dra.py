"""DRA's pure parts: ResourceSlices -> node inventory, claims and their allocation, pods that
refer to their claim, and the decision pass on DRA nodes (claims made, devices of other claims
busy, stale claims deleted)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from crane.api import kube_snapshot
from crane.kube import dra
from crane.kube.fleet import fleet_manifests, fleet_slices, load_spec, slice_manifest
from crane.lifecycle.decide import Decider
from crane.lifecycle.plan import ClaimWrite, Plan
from crane.model.fleet import FleetSpec, NodeGroup
from crane.model.inventory import GPU_RESOURCE
from crane.operator.actions import Actuator
from crane.operator.metrics import Metrics
from crane.placement import Engine
from tests.unit.test_operator_decide import cargo, minicluster, new_cache, settle


def dra_node_body(name: str) -> dict[str, Any]:
    """A managed node whose GPUs only a DRA driver publishes (no nvidia.com/gpu)."""
    return {
        "metadata": {"name": name, "labels": {"crane.io/managed": "true", "crane.io/rack": "r0"}},
        "status": {
            "allocatable": {"cpu": "128"},
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ],
        },
    }


def test_slice_of_the_fleet_gives_gpus_in_index_order_with_product_and_islands() -> None:
    body = slice_manifest("n0", "NVIDIA-H100-80GB-HBM3", "0-3,4-7", 8, 81559)
    body["spec"]["devices"].reverse()  # order in the slice does not matter, ``index`` does
    view = dra.slice_view(body)
    assert view is not None and view.node == "n0" and view.pool == "n0"
    node = dra.dra_node([view])
    assert node is not None
    assert node.devices == tuple(f"gpu-{i}" for i in range(8))
    assert node.product == "NVIDIA-H100-80GB-HBM3", "spaces of productName read as GFD's dashes"
    assert node.islands == ((0, 1, 2, 3), (4, 5, 6, 7)), "one island per PCIe root"
    assert node.memory == "81559Mi" and node.uuids[0].startswith("GPU-")
    assert node.gpu_id("gpu.nvidia.com", "n0", "gpu-5") == 5
    assert node.gpu_id("gpu.nvidia.com", "other", "gpu-5") is None


def test_islands_prefer_clique_then_numa_then_pcie_root_else_one() -> None:
    body = slice_manifest("n0", "NVIDIA-B200", "0-1,2-3", 4, 1000)
    for i, dev in enumerate(body["spec"]["devices"]):
        dev["attributes"]["numaNode"] = {"int": i % 2}
    node = dra.dra_node([dra.slice_view(body)])  # type: ignore[list-item]
    assert node is not None and node.islands == ((0, 2), (1, 3)), "NUMA before the PCIe root"
    for dev in body["spec"]["devices"]:
        dev["attributes"]["cliqueId"] = {"string": "c1"}
    node = dra.dra_node([dra.slice_view(body)])  # type: ignore[list-item]
    assert node is not None and node.islands == ((0, 1, 2, 3),)
    for dev in body["spec"]["devices"]:
        for attr in ("cliqueId", "numaNode", "resource.kubernetes.io/pcieRoot"):
            dev["attributes"].pop(attr)
    node = dra.dra_node([dra.slice_view(body)])  # type: ignore[list-item]
    assert node is not None and node.islands == ((0, 1, 2, 3),)


def test_other_drivers_mig_devices_and_old_generations_are_left_out() -> None:
    body = slice_manifest("n0", "NVIDIA-A100-SXM4-80GB", "", 2, 1000)
    other = {**body, "spec": {**body["spec"], "driver": "nic.example.com"}}
    assert dra.slice_view(other) is None
    mig = dict(body["spec"]["devices"][0], name="gpu-0-mig-1g")
    mig["attributes"] = {**mig["attributes"], "type": {"string": "mig"}}
    body["spec"]["devices"].append(mig)
    old = slice_manifest("n0", "NVIDIA-A100-SXM4-80GB", "", 4, 1000)
    old["spec"]["pool"]["generation"] = 0
    node = dra.dra_node([dra.slice_view(body), dra.slice_view(old)])  # type: ignore[list-item]
    assert node is not None and node.devices == ("gpu-0", "gpu-1")


def test_claim_and_allocation_name_exactly_the_chosen_devices() -> None:
    node = dra.dra_node([dra.slice_view(slice_manifest("n0", "NVIDIA-H100", "", 8, 1))])  # type: ignore[list-item]
    assert node is not None
    claim = dra.build_claim("t", "job-0", {"crane.io/cargo": "job", "x": "y"}, 2)
    assert claim["metadata"]["name"] == "job-0-gpus"
    assert claim["metadata"]["labels"] == {"crane.io/cargo": "job", dra.POD_LABEL: "job-0"}
    request = claim["spec"]["devices"]["requests"][0]
    assert request["exactly"] == {
        "deviceClassName": "gpu.nvidia.com",
        "allocationMode": "ExactCount",
        "count": 2,
    }
    status = dra.claim_status(dra.allocation("n0", node, (5, 6)), "job-0", "uid-1")
    results = status["allocation"]["devices"]["results"]
    assert [(r["request"], r["pool"], r["device"]) for r in results] == [
        ("gpus", "n0", "gpu-5"),
        ("gpus", "n0", "gpu-6"),
    ]
    assert status["reservedFor"] == [{"resource": "pods", "name": "job-0", "uid": "uid-1"}]
    view = dra.claim_view({"metadata": {**claim["metadata"], "uid": "c"}, "status": status})
    assert view.pod == "job-0" and view.devices[0] == ("gpu.nvidia.com", "n0", "gpu-5")


def test_fleet_mixes_dra_and_device_plugin_nodes() -> None:
    spec = FleetSpec(
        groups=[
            NodeGroup(name="d", product="NVIDIA-H100-80GB-HBM3", gpus_per_node=8, dra=True),
            NodeGroup(name="p", product="NVIDIA-A100-SXM4-80GB", gpus_per_node=4),
        ]
    )
    nodes = {n["metadata"]["name"]: n for n in fleet_manifests(spec)}
    assert GPU_RESOURCE not in nodes["d-z0-b0-r0-n0"]["status"]["capacity"]
    assert nodes["p-z0-b0-r0-n0"]["status"]["capacity"][GPU_RESOURCE] == "4"
    slices = fleet_slices(spec)
    assert [s["spec"]["nodeName"] for s in slices] == ["d-z0-b0-r0-n0"]
    attrs = slices[0]["spec"]["devices"][0]["attributes"]
    assert attrs["productName"] == {"string": "NVIDIA H100 80GB HBM3"}
    assert attrs["architecture"] == {"string": "Hopper"}
    assert attrs["cudaComputeCapability"] == {"version": "9.0.0"}


def dra_cache(*extra: tuple[str, dict[str, Any]]) -> Any:
    return new_cache(
        ("nodes", dra_node_body("d0")),
        ("resourceslices", slice_manifest("d0", "NVIDIA-H100-80GB-HBM3", "0-3,4-7", 8, 81559)),
        *extra,
    )


def test_pods_on_dra_nodes_refer_to_a_claim_allocated_with_their_gpus() -> None:
    cache = dra_cache(
        ("miniclusters", minicluster("mc", 0, 8)), ("cargos", cargo("job", "mc", 1, 4))
    )
    assert cache.nodes["d0"].gpu_count == 8 and cache.nodes["d0"].dra is not None
    plans = settle(Decider(Engine()), cache)
    pods = [pod for p in plans for _, pod in p.pods]
    assert len(pods) == 1
    pod = pods[0]
    first = pod["spec"]["containers"][0]
    assert GPU_RESOURCE not in (first.get("resources") or {}).get("limits", {})
    assert first["resources"]["claims"] == [{"name": dra.POD_CLAIM}]
    assert pod["spec"]["resourceClaims"] == [
        {"name": dra.POD_CLAIM, "resourceClaimName": "job-0-gpus"}
    ]
    write = next(w for p in plans for w in p.pod_claims.values())
    ids = [int(i) for i in pod["metadata"]["annotations"]["crane.io/gpu-ids"].split(",")]
    assert ids in ([0, 1, 2, 3], [4, 5, 6, 7]), "one island"
    assert [r["device"] for r in write.allocation["devices"]["results"]] == [
        f"gpu-{i}" for i in ids
    ]
    status = cache.cargos["t/job"]["status"]
    assert status["placement"][0]["gpuIds"] == ids


def allocated(
    name: str, devices: list[str], pod: str | None = None, uid: str = ""
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "t", "uid": f"c-{name}"}
    if pod is not None:
        meta["labels"] = {dra.POD_LABEL: pod}
        meta["ownerReferences"] = [dra.pod_owner(pod, uid)]
    return {
        "metadata": meta,
        "status": {
            "allocation": {
                "devices": {
                    "results": [
                        {"request": "r", "driver": "gpu.nvidia.com", "pool": "d0", "device": d}
                        for d in devices
                    ]
                }
            }
        },
    }


def test_devices_of_claims_crane_did_not_make_are_never_handed_out() -> None:
    foreign = allocated("theirs", [f"gpu-{i}" for i in range(5)])
    cache = dra_cache(
        ("resourceclaims", foreign),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", cargo("job", "mc", 1, 4)),
        ("cargos", cargo("more", "mc", 1, 2)),
    )
    settle(Decider(Engine()), cache)
    placed = [
        g
        for b in cache.cargos.values()
        for r in (b.get("status") or {}).get("placement") or []
        for g in r["gpuIds"]
    ]
    assert sorted(placed) == [5, 6], "only gpu-5..7 are free; the 4-GPU cargo waits"
    assert cache.cargos["t/job"]["status"]["phase"] == "Pending"


def test_stale_crane_claims_are_deleted_and_missing_ones_made_again() -> None:
    stale = allocated("gone-0-gpus", ["gpu-0"], pod="gone-0", uid="old")
    cache = dra_cache(("resourceclaims", stale))
    plan = Decider(Engine()).decide(cache)
    assert plan.claim_deletes == [("t", "gone-0-gpus")]
    assert cache.nodes["d0"].dra is not None
    decider = Decider(Engine())
    decider.decide(cache)
    assert 0 in decider.state.nodes["d0"].busy_gpu_ids, "held until the claim goes"
    job = cargo("job", "mc", 1, 2)
    job["status"] = {
        "phase": "Running",
        "placement": [{"replica": 0, "node": "d0", "gpuIds": [2, 3]}],
        "placedAt": "2026-01-01T00:00:02Z",
    }
    cache.apply("miniclusters", None, minicluster("mc", 0, 8))
    cache.apply("cargos", None, job)
    cache.apply("pods", None, replica_pod("job-0", "job", "2,3", owner="uid-job"))
    plan = Decider(Engine()).decide(cache)
    assert [(w.pod, w.pod_uid) for w in plan.claims] == [("job-0", "p-job-0")]
    assert [r["device"] for r in plan.claims[0].allocation["devices"]["results"]] == [
        "gpu-2",
        "gpu-3",
    ]


def replica_pod(name: str, cargo_name: str, ids: str, owner: str | None = None) -> dict[str, Any]:
    """A running pod on d0 with a cargo's labels and GPU ids that refers to claim
    ``<name>-gpus`` (which does not exist)."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "t",
        "uid": f"p-{name}",
        "labels": {"crane.io/cargo": cargo_name, "crane.io/replica": "0"},
        "annotations": {"crane.io/gpu-ids": ids},
    }
    if owner is not None:
        meta["ownerReferences"] = [{"kind": "Cargo", "name": cargo_name, "uid": owner}]
    return {
        "metadata": meta,
        "spec": {
            "nodeName": "d0",
            "containers": [{"name": "main"}],
            "resourceClaims": [{"name": dra.POD_CLAIM, "resourceClaimName": f"{name}-gpus"}],
        },
        "status": {"phase": "Running"},
    }


def test_a_hand_made_pod_naming_gpu_ids_gets_no_claim_and_keeps_no_gpu() -> None:
    cache = dra_cache(
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", cargo("job", "mc", 1, 4)),
        ("cargos", cargo("bait", "none", 1, 8)),
    )
    decider = Decider(Engine())
    settle(decider, cache)
    held = cache.cargos["t/job"]["status"]["placement"][0]["gpuIds"]
    # A tenant's own pods with Crane's labels that name the job's GPUs, and all eight.
    cache.apply("pods", None, replica_pod("grab", "bait", ",".join(map(str, held))))
    cache.apply("pods", None, replica_pod("bait-0", "bait", "0,1,2,3,4,5,6,7", "uid-bait"))
    for fresh in (decider, Decider(Engine())):
        plan = fresh.decide(cache)
        assert not plan.claims, "a claim on GPUs Crane did not give that pod"
        free = set(range(8)) - set(held)
        assert set(fresh.state.nodes["d0"].busy_gpu_ids) & free == set(), (
            "GPUs that no pod asks for are kept from others"
        )
        assert fresh.state.placements["t/job"][0].gpu_ids == held
        assert "t/bait" not in fresh.state.placements


def test_api_snapshot_reads_dra_nodes_and_counts_other_claims_busy() -> None:
    theirs = allocated("theirs", ["gpu-0", "gpu-1"])
    mine = allocated("job-0-gpus", ["gpu-2"], pod="job-0", uid="p1")
    pod = {
        "metadata": {
            "name": "job-0",
            "namespace": "t",
            "uid": "p1",
            "labels": {"crane.io/cargo": "job"},
            "annotations": {"crane.io/gpu-ids": "2"},
        },
        "spec": {"nodeName": "d0"},
    }
    state = kube_snapshot.DraState(
        [slice_manifest("d0", "NVIDIA-H100-80GB-HBM3", "0-3,4-7", 8, 81559)], [theirs, mine]
    )
    assert kube_snapshot.busy_gpus([dra_node_body("d0")], [pod], state) == {"d0": frozenset({0, 1})}
    engine = kube_snapshot.build([dra_node_body("d0")], [], [], None, [pod], state)
    slots = [s for s in engine.gpu_map() if s.node == "d0"]
    assert len(slots) == 8 and sorted(s.gpu_id for s in slots if s.busy) == [0, 1]


def test_shipped_dra_fleets_publish_slices_for_their_dra_groups_only() -> None:
    fleets = Path(__file__).resolve().parents[2] / "hack" / "fleets"
    for name, dra_nodes in (("dra-mixed.yaml", 2), ("chaos.yaml", 2), ("small.yaml", 0)):
        spec = load_spec(fleets / name)
        slices = fleet_slices(spec)
        assert len(slices) == dra_nodes, name
        nodes = {n["metadata"]["name"]: n for n in fleet_manifests(spec)}
        for s in slices:
            assert GPU_RESOURCE not in nodes[s["spec"]["nodeName"]]["status"]["capacity"]


class RecordingClient:
    """What the actuator asks of the API for DRA: pods with their uid, claims, deletions."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def create_pod_uid(self, body: dict[str, Any]) -> str:
        self.calls.append(("pod", body["metadata"]["name"]))
        return f"uid-{body['metadata']['name']}"

    def ensure_claim(self, body: dict[str, Any], status: dict[str, Any]) -> bool:
        self.calls.append(("claim", (body, status)))
        return True

    def delete_claim(self, namespace: str, name: str) -> None:
        self.calls.append(("delete", name))


def test_actuator_creates_the_pod_then_its_claim_owned_and_reserved_for_it() -> None:
    node = dra.dra_node([dra.slice_view(slice_manifest("n0", "NVIDIA-H100", "", 8, 1))])  # type: ignore[list-item]
    assert node is not None
    new = ClaimWrite(
        claim=dra.build_claim("t", "job-0", {}, 1),
        allocation=dra.allocation("n0", node, (3,)),
        pod="job-0",
    )
    again = ClaimWrite(
        claim=dra.build_claim("t", "old-0", {}, 1),
        allocation=dra.allocation("n0", node, (4,)),
        pod="old-0",
        pod_uid="uid-old",
    )
    plan = Plan()
    plan.pods.append(("t/job", {"metadata": {"name": "job-0", "namespace": "t"}}))
    plan.pod_claims["t/job-0"] = new
    plan.claims.append(again)
    plan.claim_deletes.append(("t", "gone-0-gpus"))
    client = RecordingClient()
    actuator = Actuator(client, Metrics())  # type: ignore[arg-type]
    asyncio.run(actuator.apply(plan))
    actuator.close()
    kinds = [kind for kind, _ in client.calls]
    assert kinds.index("pod") < max(i for i, k in enumerate(kinds) if k == "claim")
    assert ("delete", "gone-0-gpus") in client.calls
    made = {
        body["metadata"]["name"]: (body, status)
        for kind, (body, status) in (c for c in client.calls if c[0] == "claim")
    }
    for name, uid in (("job-0-gpus", "uid-job-0"), ("old-0-gpus", "uid-old")):
        body, status = made[name]
        assert body["metadata"]["ownerReferences"][0]["uid"] == uid
        assert status["reservedFor"][0]["uid"] == uid
    assert made["job-0-gpus"][1]["allocation"]["devices"]["results"][0]["device"] == "gpu-3"
