"""A model base whose numbers and booleans take JSON's types only, as Kubernetes' schemas do.

Pydantic's default (lax) mode reads ``true`` as 1, ``"8"`` as 8 and ``1`` or ``"yes"`` as
true, so ``{"replicas": true}`` would make one replica where the CRD, kubectl and the OpenAPI
schema refuse it. :class:`JsonTyped` keeps lax mode's one harmless conversion (an integral
float such as ``8.0`` is 8) and refuses booleans and strings for numbers, and anything but
``true``/``false`` for a boolean, naming the field.

Pure: no Kubernetes, Docker, FastAPI or SQL imports.
"""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


def _scalar(annotation: Any) -> Any:
    """``int``, ``float`` or ``bool`` for a field of that type (or optional), else None."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else None
    return annotation if annotation in (int, float, bool) else None


def json_typed(annotation: Any, value: Any) -> Any:
    """``value`` unchanged, or a validation error when it has a JSON type the field's
    ``annotation`` (int, float, bool, optional or not) never takes from JSON."""
    want = _scalar(annotation)
    kind = "a boolean" if isinstance(value, bool) else "a string"
    if want in (int, float) and isinstance(value, bool | str):
        noun = "an integer" if want is int else "a number"
        raise PydanticCustomError(
            f"{want.__name__}_type",
            "Input should be {noun}, not {kind}",
            {"noun": noun, "kind": kind},
        )
    if want is bool and value is not None and not isinstance(value, bool):
        raise PydanticCustomError("bool_type", "Input should be true or false", {})
    return value


class JsonTyped(BaseModel):
    """Base of the wire models: each int, float and bool field takes only its JSON type."""

    @field_validator("*", mode="before")
    @classmethod
    def _json_types(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        return value if field is None else json_typed(field.annotation, value)
