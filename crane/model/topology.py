"""Topology levels: an ordered, configurable list of node-label keys, widest first."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ALIASES: tuple[str, ...] = ("zone", "block", "rack", "nvlink", "node")
"""Short names users give a level, widest first."""

DEFAULT_LEVEL_KEYS: dict[str, str] = {
    "zone": "topology.kubernetes.io/zone",
    "block": "crane.io/block",
    "rack": "crane.io/rack",
    "nvlink": "nvidia.com/gpu.clique",
    "node": "kubernetes.io/hostname",
}


class TopologyMode(StrEnum):
    """Whether a topology level must hold the whole gang or is only preferred."""

    REQUIRED = "Required"
    PREFERRED = "Preferred"


class TopologySpec(BaseModel):
    """Where a gang or a reservation must (or should) fit as a whole."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: str = Field(
        default="node",
        description="zone|block|rack|nvlink|node",
        json_schema_extra={"enum": list(ALIASES)},
    )
    mode: TopologyMode = TopologyMode.PREFERRED

    @field_validator("level")
    @classmethod
    def _known_alias(cls, value: str) -> str:
        if value not in ALIASES:
            raise ValueError(f"unknown topology level {value!r}: use one of {', '.join(ALIASES)}")
        return value


class TopologyLevel(BaseModel):
    """One level: its alias and the node-label key that names its domains."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alias: str
    key: str


class TopologyLevels(BaseModel):
    """The ordered levels, widest first. ``node`` is always last.

    Provider keys (GKE ``cloud.google.com/gce-topology-block``, AWS
    ``topology.k8s.aws/network-node-layer-N``) are configured by overriding a level's key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    levels: tuple[TopologyLevel, ...] = tuple(
        TopologyLevel(alias=a, key=k) for a, k in DEFAULT_LEVEL_KEYS.items()
    )

    @model_validator(mode="after")
    def _ordered(self) -> TopologyLevels:
        aliases = [lv.alias for lv in self.levels]
        for alias in aliases:
            if alias not in ALIASES:
                raise ValueError(
                    f"unknown topology level {alias!r}: use one of {', '.join(ALIASES)}"
                )
        if len(set(aliases)) != len(aliases):
            raise ValueError("topology levels repeat an alias: name each level once")
        if aliases != sorted(aliases, key=ALIASES.index):
            raise ValueError(f"topology levels must be ordered widest first: {', '.join(ALIASES)}")
        if not aliases or aliases[-1] != "node":
            raise ValueError("the last topology level must be 'node'")
        return self

    @classmethod
    def with_keys(cls, overrides: dict[str, str]) -> TopologyLevels:
        """The default levels with some label keys replaced.

        Example: ``{"block": "cloud.google.com/gce-topology-block"}``.
        """
        keys = dict(DEFAULT_LEVEL_KEYS)
        for alias, key in overrides.items():
            if alias not in keys:
                raise ValueError(
                    f"unknown topology level {alias!r}: use one of {', '.join(ALIASES)}"
                )
            keys[alias] = key
        return cls(levels=tuple(TopologyLevel(alias=a, key=k) for a, k in keys.items()))

    @property
    def aliases(self) -> tuple[str, ...]:
        """The configured levels' aliases, widest first."""
        return tuple(lv.alias for lv in self.levels)

    def index(self, alias: str) -> int:
        """Position of a level (0 = widest). Raises ValueError for an unknown alias."""
        try:
            return self.aliases.index(alias)
        except ValueError:
            raise ValueError(
                f"topology level {alias!r} is not configured: use one of {', '.join(self.aliases)}"
            ) from None

    def key(self, alias: str) -> str:
        """The node label key of level ``alias``; raises ValueError for an unknown alias."""
        return self.levels[self.index(alias)].key

    def domain_path(self, node_name: str, labels: dict[str, str]) -> tuple[str, ...]:
        """The node's domain at each level, widest first, as cumulative paths.

        A missing label gives the domain ``"-"`` at that level, so unlabelled nodes still share
        a domain with each other; the node level is always the node's name.
        """
        path: list[str] = []
        parts: list[str] = []
        for lv in self.levels:
            value = node_name if lv.alias == "node" else labels.get(lv.key, "-")
            parts.append(value)
            path.append("/".join(parts))
        return tuple(path)
