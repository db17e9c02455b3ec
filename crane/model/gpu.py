"""GPU products and how a spec's ``gpuType`` matches them.

Products follow GPU Feature Discovery's ``nvidia.com/gpu.product`` label, for example
``NVIDIA-H100-80GB-HBM3``. A spec names either a *family* (``H100``), which matches every
product of that family, or a full product name, which matches exactly.
"""

from __future__ import annotations

import re

KNOWN_FAMILIES: tuple[str, ...] = (
    "GB300", "GB200", "B300", "B200", "B100", "H200", "H100", "H800", "H20", "GH200",
    "A100", "A800", "A40", "A30", "A10G", "A10", "A16", "A2",
    "L40S", "L40", "L20", "L4", "V100", "T4", "P100", "RTX-PRO-6000", "RTX-6000",
)
"""Families Crane recognises; longer names are tried first where they share a prefix."""

_PRODUCT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class UnknownGpuTypeError(ValueError):
    """A ``gpuType`` that is neither a known family nor a product name."""


def family_of(product: str) -> str | None:
    """The family of a GFD product name (``NVIDIA-H100-80GB-HBM3`` -> ``H100``), if known."""
    upper = product.upper().replace("_", "-")
    for family in sorted(KNOWN_FAMILIES, key=len, reverse=True):
        if re.search(rf"(^|[-\s]){re.escape(family)}($|[-\s])", upper):
            return family
    return None


def normalize_gpu_type(gpu_type: str) -> str:
    """Validate a spec's ``gpuType`` and return its canonical form.

    A family is returned upper-case (``h100`` -> ``H100``); a full product name is returned as
    given. Raises :class:`UnknownGpuTypeError` with a remedy otherwise.
    """
    name = gpu_type.strip()
    if not name:
        raise UnknownGpuTypeError("gpuType is empty: name a family such as H100 or a product such "
                                  "as NVIDIA-H100-80GB-HBM3")
    if name.upper() in KNOWN_FAMILIES:
        return name.upper()
    if _PRODUCT.match(name) and family_of(name) is not None:
        return name
    raise UnknownGpuTypeError(
        f"unknown gpuType {gpu_type!r}: use a family ({', '.join(KNOWN_FAMILIES[:8])}, ...) or a "
        "full product name as in the node label nvidia.com/gpu.product, e.g. NVIDIA-H100-80GB-HBM3"
    )


def gpu_type_matches(gpu_type: str, product: str) -> bool:
    """Whether a spec's ``gpuType`` (family or full product) matches a node's product.

    Case is ignored: ``nvidia-h100-80gb-hbm3`` names the same product as the GFD label.
    """
    if gpu_type.upper() in KNOWN_FAMILIES:
        return family_of(product) == gpu_type.upper()
    return gpu_type.upper() == product.upper()
