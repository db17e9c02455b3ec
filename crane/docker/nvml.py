"""GPU discovery with NVML (``nvidia-ml-py``): product, count and islands of the local host.

GPUs joined by NVLink, or sharing a PCIe switch or NUMA node, form an island; the islands are
the connected groups of that relation.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

_NVLINK_LINKS = 18
"""NVML topology levels INTERNAL, SINGLE, MULTIPLE and HOSTBRIDGE mean a common PCIe switch or
host bridge; NODE a common NUMA node; SYSTEM neither. Up to NODE joins an island."""


@dataclass(frozen=True)
class DiscoveredGpus:
    """The GPUs NVML found on this machine: their product, count and islands."""

    product: str
    count: int
    islands: str
    """``0-3,4-7`` form, as in the ``crane.io/gpu-islands`` annotation."""


def product_name(nvml_name: str) -> str:
    """The GFD product for NVML's name, as GPU Feature Discovery writes it.

    ``NVIDIA H100 80GB HBM3`` -> ``NVIDIA-H100-80GB-HBM3``; ``Tesla T4`` -> ``Tesla-T4``.
    """
    return re.sub(r"\s+", "-", nvml_name.strip())


def _islands_text(groups: list[list[int]]) -> str:
    parts = []
    for group in sorted(groups):
        if group == list(range(group[0], group[-1] + 1)) and len(group) > 1:
            parts.append(f"{group[0]}-{group[-1]}")
        else:
            parts.extend(str(i) for i in group)
    return ",".join(parts)


def _connected(nvml: Any, a: Any, b: Any) -> bool:
    for link in range(_NVLINK_LINKS):
        try:
            if nvml.nvmlDeviceGetNvLinkState(a, link) != nvml.NVML_FEATURE_ENABLED:
                continue
            peer = nvml.nvmlDeviceGetNvLinkRemotePciInfo(a, link)
        except nvml.NVMLError:
            break
        if peer.busId == nvml.nvmlDeviceGetPciInfo_v3(b).busId:
            return True
    try:
        level = nvml.nvmlDeviceGetTopologyCommonAncestor(a, b)
    except nvml.NVMLError:
        return False
    return bool(level <= nvml.NVML_TOPOLOGY_NODE)


def islands_of(nvml: Any, handles: list[Any]) -> str:
    """Union the GPUs that NVLink, a PCIe switch or a NUMA node joins; render as ``0-3,4-7``."""
    parent = list(range(len(handles)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(handles):
        for j in range(i + 1, len(handles)):
            if find(i) != find(j) and _connected(nvml, a, handles[j]):
                parent[find(j)] = find(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(handles)):
        groups.setdefault(find(i), []).append(i)
    return _islands_text(list(groups.values()))


def discover(nvml: ModuleType | None = None) -> DiscoveredGpus | None:
    """The local GPUs, or ``None`` when there is no NVIDIA driver (or no GPU)."""
    if nvml is None:
        nvml = importlib.import_module("pynvml")
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:
        return None
    try:
        count = nvml.nvmlDeviceGetCount()
        if count == 0:
            return None
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        name = nvml.nvmlDeviceGetName(handles[0])
        if isinstance(name, bytes):
            name = name.decode()
        return DiscoveredGpus(product_name(name), count, islands_of(nvml, handles))
    finally:
        nvml.nvmlShutdown()
