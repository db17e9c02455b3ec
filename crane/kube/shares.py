"""TenantShare resources (``tenantshares.crane.io``, cluster-scoped) as the engine reads them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from crane.model.shares import ShareTable, TenantShareSpec, share_table

log = logging.getLogger(__name__)

TENANTSHARES = "tenantshares"
"""The plural of the TenantShare resource."""


def parse(body: Mapping[str, Any]) -> TenantShareSpec | None:
    """A TenantShare's spec; None (logged) when it does not validate, which the CRD's schema
    prevents for objects the API server accepted."""
    try:
        return TenantShareSpec.model_validate(body.get("spec") or {})
    except ValidationError as err:
        name = (body.get("metadata") or {}).get("name", "")
        log.warning("TenantShare %s ignored: %s", name, err)
        return None


def table(
    bodies: Iterable[Mapping[str, Any]], namespaces: Mapping[str, Mapping[str, str]]
) -> ShareTable:
    """The engine's share table from TenantShare bodies and namespace name -> labels."""
    specs = {}
    for body in bodies:
        spec = parse(body)
        if spec is not None:
            specs[str((body.get("metadata") or {}).get("name", ""))] = spec
    return share_table(specs, namespaces)
