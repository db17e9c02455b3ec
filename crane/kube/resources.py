"""Crane's custom resources in wire form: parsing specs and statuses (plain dicts, no client)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from crane.model.conditions import Condition, ConditionStatus, find_condition
from crane.model.specs import (
    CargoSpec,
    CargoStatus,
    MiniClusterSpec,
    MiniClusterStatus,
)


def created_at(meta: Mapping[str, Any]) -> float:
    """The object's ``creationTimestamp`` as a Unix timestamp; 0.0 when it has none."""
    text = meta.get("creationTimestamp")
    if not text:
        return 0.0
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def validation_message(err: ValidationError) -> str:
    """A one-line summary of a pydantic error that names the field and the fix."""
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else str(e["msg"]))
    return "; ".join(parts)


def parse_minicluster_spec(body: Mapping[str, Any]) -> MiniClusterSpec:
    """The validated spec of a MiniCluster body; raises pydantic's ValidationError."""
    return MiniClusterSpec.model_validate(body.get("spec") or {})


def parse_cargo_spec(body: Mapping[str, Any]) -> CargoSpec:
    """The validated spec of a Cargo body; raises pydantic's ValidationError."""
    return CargoSpec.model_validate(body.get("spec") or {})


def minicluster_status(body: Mapping[str, Any]) -> MiniClusterStatus:
    """A MiniCluster's status; an empty one when it is missing or invalid."""
    try:
        return MiniClusterStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return MiniClusterStatus()


def cargo_status(body: Mapping[str, Any]) -> CargoStatus:
    """A Cargo's status; an empty one when it is missing or invalid."""
    try:
        return CargoStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return CargoStatus()


def condition(
    type_: str, status: bool, reason: str, message: str = "", generation: int | None = None
) -> Condition:
    """A condition of ``type_``, True or False as ``status`` says, observed at ``generation``."""
    return Condition(
        type=type_,
        status=ConditionStatus.TRUE if status else ConditionStatus.FALSE,
        reason=reason,
        message=message,
        observed_generation=generation,
    )


def is_true(conditions: list[Condition], type_: str) -> bool:
    """Whether the condition of ``type_`` is there and True."""
    cond = find_condition(conditions, type_)
    return cond is not None and cond.status == ConditionStatus.TRUE


def status_wire(status: MiniClusterStatus | CargoStatus) -> dict[str, Any]:
    """A status in wire form for a merge patch; ``None`` fields become null and so are removed."""
    return status.model_dump(by_alias=True, mode="json")


def same_status(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two wire statuses say the same, ignoring condition transition times."""
    return _comparable(a) == _comparable(b)


def _comparable(status: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in status.items() if v is not None}
    out["conditions"] = sorted(
        (
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions") or []
        ),
        key=lambda c: c["type"],
    )
    return out


def now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)
