"""NVML discovery against a fake NVML (there is no GPU on the test machine)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from crane.docker.nvml import discover, product_name


class FakeNvmlError(Exception):
    pass


class FakeNvml:
    """Eight GPUs: NVLink joins 0-3; 4-5 share a NUMA node; 6 and 7 share nothing."""

    NVMLError = FakeNvmlError
    NVML_FEATURE_ENABLED = 1
    NVML_TOPOLOGY_NODE = 40
    NVML_TOPOLOGY_SYSTEM = 50

    def __init__(
        self, count: int = 8, fail_init: bool = False, name: str | bytes = "NVIDIA H100 80GB HBM3"
    ) -> None:
        self.count, self.fail_init, self.name = count, fail_init, name
        self.nvlink = {(0, 1), (1, 2), (2, 3)}
        self.numa = {(4, 5)}
        self.shutdown = False

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise FakeNvmlError("driver not loaded")

    def nvmlShutdown(self) -> None:
        self.shutdown = True

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, handle: int) -> str | bytes:
        return self.name

    def nvmlDeviceGetPciInfo_v3(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(busId=f"0000:{handle:02x}:00.0")

    def _peers(self, handle: int) -> list[int]:
        return [b if a == handle else a for a, b in self.nvlink if handle in (a, b)]

    def nvmlDeviceGetNvLinkState(self, handle: int, link: int) -> int:
        if link >= len(self._peers(handle)):
            raise FakeNvmlError("no such link")
        return self.NVML_FEATURE_ENABLED

    def nvmlDeviceGetNvLinkRemotePciInfo(self, handle: int, link: int) -> SimpleNamespace:
        return self.nvmlDeviceGetPciInfo_v3(self._peers(handle)[link])

    def nvmlDeviceGetTopologyCommonAncestor(self, a: int, b: int) -> int:
        pair = (min(a, b), max(a, b))
        return self.NVML_TOPOLOGY_NODE if pair in self.numa else self.NVML_TOPOLOGY_SYSTEM


def test_discovery_names_the_product_counts_gpus_and_groups_islands() -> None:
    nvml = FakeNvml()
    found = discover(nvml)  # type: ignore[arg-type]
    assert found is not None
    assert found.product == "NVIDIA-H100-80GB-HBM3"
    assert found.count == 8
    assert found.islands == "0-3,4-5,6,7"
    assert nvml.shutdown


def test_bytes_names_from_old_bindings_are_decoded() -> None:
    found = discover(FakeNvml(count=2, name=b"NVIDIA A100-SXM4-80GB"))  # type: ignore[arg-type]
    assert found is not None and found.product == "NVIDIA-A100-SXM4-80GB"


@pytest.mark.parametrize("nvml", [FakeNvml(fail_init=True), FakeNvml(count=0)])
def test_no_driver_or_no_gpu_means_no_discovered_gpus(nvml: FakeNvml) -> None:
    assert discover(nvml) is None  # type: ignore[arg-type]


def test_product_names_follow_gpu_feature_discovery() -> None:
    assert product_name("NVIDIA H100 80GB HBM3") == "NVIDIA-H100-80GB-HBM3"
    assert product_name(" Tesla  T4 ") == "Tesla-T4"
