"""Kubernetes label syntax, checked where labels enter Crane (a MiniCluster's, a host's).

A key is an optional DNS-subdomain prefix and ``/`` and a name of at most 63 characters
(letters, digits, ``-``, ``_``, ``.``, alphanumeric at both ends); a value is empty or such a
name. Kube mode stores labels on the MiniCluster resource, so the API refuses what the
Kubernetes API server would; Docker mode refuses the same.

Pure: no Kubernetes, Docker, FastAPI or SQL imports.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_LABELS = 64
"""Most labels one object may carry."""


def label_key_issue(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label key, or None when it is one."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        return f"label key {key[:80]!r}: the prefix before '/' must be a DNS subdomain"
    if len(name) > 63 or not _NAME.match(name):
        return (
            f"label key {key[:80]!r}: the name must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def label_value_issue(value: str) -> str | None:
    """Why ``value`` is not a Kubernetes label value, or None when it is one."""
    if value and (len(value) > 63 or not _NAME.match(value)):
        return (
            f"label value {value[:80]!r}: use at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def _check(labels: dict[str, str]) -> dict[str, str]:
    """``labels`` unchanged, or a validation error naming the first bad key or value."""
    for key, value in labels.items():
        issue = label_key_issue(key) or label_value_issue(value)
        if issue:
            raise PydanticCustomError("label", "{issue}", {"issue": issue})
    return labels


_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_SCHEMA = {
    "propertyNames": {"maxLength": 317, "pattern": _KEY_PATTERN},
    "additionalProperties": {
        "type": "string",
        "maxLength": 63,
        "pattern": r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$",
    },
}

Labels = Annotated[
    dict[str, str],
    Field(
        max_length=MAX_LABELS,
        description="Kubernetes labels: key ([prefix/]name) to value",
        json_schema_extra=_SCHEMA,
    ),
    AfterValidator(_check),
]
"""A label map whose keys and values Kubernetes would accept."""
