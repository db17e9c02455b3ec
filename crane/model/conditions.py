"""Status conditions, following the Kubernetes API conventions."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ConditionStatus(StrEnum):
    """A condition's status, spelt as in Kubernetes."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(BaseModel):
    """One condition: ``type``, ``status``, a CamelCase ``reason`` and a human ``message``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    observed_generation: int | None = None
    last_transition_time: datetime = Field(default_factory=lambda: datetime.now(UTC))


def set_condition(conditions: list[Condition], new: Condition) -> list[Condition]:
    """Return ``conditions`` with ``new`` put in place of the one of the same type.

    The transition time is kept when the status does not change, as Kubernetes does.
    """
    out: list[Condition] = []
    replaced = False
    for cond in conditions:
        if cond.type == new.type:
            replaced = True
            if cond.status == new.status:
                new = new.model_copy(update={"last_transition_time": cond.last_transition_time})
            out.append(new)
        else:
            out.append(cond)
    if not replaced:
        out.append(new)
    return out


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    """The condition of type ``type_``, or None when there is none."""
    return next((c for c in conditions if c.type == type_), None)
