"""Node inventory: what the placement engine knows of one node."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, model_validator

ISLANDS_ANNOTATION = "crane.io/gpu-islands"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_RESOURCE = "nvidia.com/gpu"
MANAGED_LABEL = "crane.io/managed"
MAX_NODE_GPUS = 64
"""The most GPUs Crane takes from one node or host; a node reporting more is left out."""


def parse_islands(text: str, gpu_count: int) -> tuple[tuple[int, ...], ...]:
    """Parse ``crane.io/gpu-islands`` (``0-3,4-7`` or ``0-1,2-3,4,5``) into GPU id groups.

    Every GPU id of the node must appear in exactly one island. Raises ValueError saying what
    to fix otherwise. An empty text gives one island holding all GPUs.
    """
    if not text.strip():
        return (tuple(range(gpu_count)),) if gpu_count else ()
    islands: list[tuple[int, ...]] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                # past the node's GPUs, the first id out of range says enough: 0-999999999999
                # must not build a trillion ids
                islands.append(tuple(range(lo, min(hi, max(lo, gpu_count)) + 1)))
            else:
                islands.append((int(part),))
        except ValueError:
            raise ValueError(
                f"bad island {part!r} in {ISLANDS_ANNOTATION}={text!r}: write ranges like 0-3,4-7"
            ) from None
    seen = [i for isl in islands for i in isl]
    if sorted(seen) != list(range(gpu_count)):
        twice = sorted(i for i, n in Counter(seen).items() if n > 1)
        missing = sorted(set(range(gpu_count)) - set(seen))
        outside = sorted({i for i in seen if i >= gpu_count})
        problems = [
            f"{what} {ids}"
            for what, ids in (("repeated", twice), ("missing", missing), ("out of range", outside))
            if ids
        ]
        raise ValueError(
            f"{ISLANDS_ANNOTATION}={text!r} must cover GPU ids 0..{gpu_count - 1} exactly once "
            f"({'; '.join(problems)})"
        )
    return tuple(islands)


class NodeInventory(BaseModel):
    """A node as the engine sees it.

    ``busy_gpu_ids`` are GPUs that something other than Crane holds (a non-Crane pod, a device
    the operator marked bad); they are never free. A node that is not ``ready`` or is
    ``schedulable=False`` takes no new placements but keeps its allocations.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    gpu_product: str = ""
    gpu_count: int = Field(default=0, ge=0)
    islands: tuple[tuple[int, ...], ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)
    busy_gpu_ids: frozenset[int] = frozenset()
    ready: bool = True
    schedulable: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> NodeInventory:
        if not self.islands and self.gpu_count:
            object.__setattr__(self, "islands", (tuple(range(self.gpu_count)),))
        ids = sorted(i for isl in self.islands for i in isl)
        if ids != list(range(self.gpu_count)):
            raise ValueError(
                f"node {self.name}: islands must cover GPU ids 0..{self.gpu_count - 1}"
            )
        bad = [i for i in self.busy_gpu_ids if not 0 <= i < self.gpu_count]
        if bad:
            raise ValueError(f"node {self.name}: busy GPU ids {sorted(bad)} are out of range")
        return self

    @property
    def gpu_ids(self) -> tuple[int, ...]:
        """The node's GPU ids, ``0`` to ``gpu_count - 1``."""
        return tuple(range(self.gpu_count))
