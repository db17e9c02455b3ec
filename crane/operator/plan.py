"""What one pass of the scheduling loop decided to write, in the order it must be written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StatusWrite:
    plural: str
    namespace: str
    name: str
    status: dict[str, Any]
    cargo_key: str | None = None
    """Set for a cargo: its pods are created only if this write succeeded."""


@dataclass(frozen=True)
class Event:
    involved: dict[str, Any]
    type: str
    reason: str
    message: str


@dataclass
class Plan:
    """Writes of one pass. Statuses (placements) first, then what they allow, then deletions."""

    statuses: list[StatusWrite] = field(default_factory=list)
    metadata: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    cargo_creates: list[dict[str, Any]] = field(default_factory=list)
    cargo_deletes: list[tuple[str, str]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    pods: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(cargo key, pod) pairs."""
    pod_annotations: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    pod_deletes: list[tuple[str, str, int | None]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def event(
        self, involved: dict[str, Any], reason: str, message: str, warning: bool = False
    ) -> None:
        self.events.append(Event(involved, "Warning" if warning else "Normal", reason, message))

    def empty(self) -> bool:
        return not any(
            (
                self.statuses,
                self.metadata,
                self.cargo_creates,
                self.cargo_deletes,
                self.services,
                self.pods,
                self.pod_annotations,
                self.pod_deletes,
                self.events,
            )
        )
