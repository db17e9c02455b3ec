"""GPU products and how a spec's ``gpuType`` matches them: a rule, not a list.

A node advertises any product (GPU Feature Discovery's ``nvidia.com/gpu.product`` label such as
``NVIDIA-H100-80GB-HBM3``, an NVML name such as ``Tesla P40``, a DRA attribute); every one of
them can be requested. The rule, applied to both the request and the product:

1. case is ignored; spaces and ``_`` count as ``-``; the name is split into ``-`` tokens;
2. leading vendor and brand tokens are optional (:data:`VENDOR_TOKENS`: ``NVIDIA``, ``Tesla``,
   ``AMD``, ``GeForce``, ``Instinct``, ...), so ``P40`` names ``Tesla-P40`` and ``MI300X``
   names ``AMD-Instinct-MI300X``;
3. what remains is the *model* (tokens up to the first suffix token) and the *suffixes*
   (memory like ``80GB``, form factors and editions like ``SXM4``, ``PCIe``, ``HBM3``,
   ``NVL``, ``Ada``, ``Generation``: see :func:`is_suffix_token`);
4. a request matches a product when the request's model tokens are the first tokens of the
   product's model (token by token: ``L40`` never matches ``L40S``, ``A10`` never ``A100``)
   and each suffix the request names is among the product's suffixes.

So ``H100`` matches every H100 product, ``H100-80GB`` the 80 GB ones, ``RTX-4090`` matches
``NVIDIA-GeForce-RTX-4090``, and ``NVIDIA-H100-80GB-HBM3`` matches that product only (not the
PCIe one). A ``gpuType`` may also be an ordered list of such names (``H100,A100``): acceptable
types in order of preference; a MiniCluster's reservation stays on one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

VENDOR_TOKENS: frozenset[str] = frozenset(
    {
        "NVIDIA",
        "TESLA",
        "GEFORCE",
        "QUADRO",
        "TITAN",
        "AMD",
        "INSTINCT",
        "RADEON",
        "INTEL",
        "HABANA",
    }
)
"""Leading tokens that name a vendor or a brand; optional on both sides."""

_SUFFIX_WORDS: frozenset[str] = frozenset(
    {
        "PCIE",
        "SXM",
        "SXM2",
        "SXM3",
        "SXM4",
        "SXM5",
        "SXM6",
        "NVL",
        "NVLINK",
        "OAM",
        "HGX",
        "DGX",
        "HBM",
        "HBM2",
        "HBM2E",
        "HBM3",
        "HBM3E",
        "GDDR6",
        "GDDR6X",
        "GDDR7",
        "ADA",
        "GENERATION",
        "BLACKWELL",
        "HOPPER",
        "AMPERE",
        "SERVER",
        "EDITION",
        "WORKSTATION",
        "MAX",
        "Q",
        "MAXQ",
        "LHR",
        "MIG",
        "SHARED",
        "FH",
        "HHHL",
        "FHFL",
    }
)
_MEMORY = re.compile(r"^\d+(GB|G|GIB|TB)$")
_PRODUCT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_. -]*$")
MAX_GPU_TYPES = 8
"""Most entries an ordered ``gpuType`` list may hold."""


class UnknownGpuTypeError(ValueError):
    """A ``gpuType`` that cannot name any product (empty, or characters no label holds)."""


def is_suffix_token(token: str) -> bool:
    """Whether a (normalised) token is a memory size, form factor or edition, not a model."""
    return bool(_MEMORY.match(token)) or token in _SUFFIX_WORDS


def _tokens(name: str) -> list[str]:
    parts = [t for t in re.split(r"[-_\s]+", name.strip().upper()) if t]
    while len(parts) > 1 and parts[0] in VENDOR_TOKENS:
        parts.pop(0)
    return parts


def _split(name: str) -> tuple[list[str], list[str]]:
    """(model tokens, suffix tokens) of a request or product."""
    tokens = _tokens(name)
    for i, token in enumerate(tokens):
        if i > 0 and is_suffix_token(token):
            return tokens[:i], tokens[i:]
    return tokens, []


def family_of(product: str) -> str | None:
    """The model of a product without vendor and suffixes (``NVIDIA-H100-80GB-HBM3`` -> ``H100``,
    ``AMD-Instinct-MI300X`` -> ``MI300X``); None for an empty name."""
    model, _ = _split(product)
    return "-".join(model) or None


def is_product_name(name: str) -> bool:
    """Whether ``name`` can be a product a node advertises (GFD label value or NVML name)."""
    return bool(_PRODUCT.match(name.strip())) and "," not in name


def gpu_types(gpu_type: str | Sequence[str]) -> tuple[str, ...]:
    """The entries of a ``gpuType``: one name, a comma-separated list or a sequence, in order."""
    raw = gpu_type.split(",") if isinstance(gpu_type, str) else list(gpu_type)
    return tuple(t.strip() for t in raw if t.strip())


def _normalize_one(name: str) -> str:
    if not _PRODUCT.match(name):
        raise UnknownGpuTypeError(
            f"gpuType {name!r} cannot name a GPU product: use letters, digits, '-', '_' or '.', "
            "e.g. H100 or NVIDIA-H100-80GB-HBM3 (as in the node label nvidia.com/gpu.product)"
        )
    if name.upper() == "-".join(_tokens(name)):
        return name.upper()
    return name


def normalize_gpu_type(gpu_type: str | Sequence[str]) -> str:
    """Validate a spec's ``gpuType`` (one name or an ordered list) and return its canonical form:
    the names joined by ``,``; a bare family is upper-cased (``h100`` -> ``H100``), a product
    name is kept as given. Raises :class:`UnknownGpuTypeError` with a remedy when empty or when a
    name cannot be a product name."""
    names = gpu_types(gpu_type)
    if not names:
        raise UnknownGpuTypeError(
            "gpuType is empty: name a family such as H100 or a product such "
            "as NVIDIA-H100-80GB-HBM3, or a list such as H100,A100"
        )
    if len(names) > MAX_GPU_TYPES:
        raise UnknownGpuTypeError(
            f"gpuType lists {len(names)} types; at most {MAX_GPU_TYPES} are allowed"
        )
    out: list[str] = []
    for name in names:
        canonical = _normalize_one(name)
        if canonical.upper() not in (o.upper() for o in out):
            out.append(canonical)
    return ",".join(out)


def gpu_type_matches(gpu_type: str, product: str) -> bool:
    """Whether one ``gpuType`` entry matches a node's product under the module's rule.

    A list (``H100,A100``) matches a product any of its entries matches."""
    names = gpu_types(gpu_type)
    if len(names) > 1:
        return any(gpu_type_matches(n, product) for n in names)
    if not names or not product:
        return False
    want_model, want_suffixes = _split(names[0])
    have_model, have_suffixes = _split(product)
    if have_model[: len(want_model)] != want_model:
        return False
    rest = set(have_model[len(want_model) :]) | set(have_suffixes)
    return all(s in rest for s in want_suffixes)


def describe_products(products: Iterable[tuple[str, int]]) -> str:
    """``NVIDIA-H100-80GB-HBM3 (16 GPUs), Tesla-T4 (2 GPUs)``, or ``no GPUs`` when empty."""
    parts = [f"{p} ({n} GPU{'s' if n != 1 else ''})" for p, n in sorted(products) if p]
    return ", ".join(parts) if parts else "no GPUs"
