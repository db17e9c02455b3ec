"""Pod security of the templates a tenant sends: checked before anything is stored.

The tenant's Pod Security Standards level comes from the backend when it keeps one (Kubernetes:
the namespace label ``pod-security.kubernetes.io/enforce``, the level the operator also
enforces) and otherwise from the tenant row (Docker mode). Violations answer 422 naming each
field; the rules are crane/model/podsecurity.py's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from crane.api.db import TenantRow
from crane.api.deps import AppState, Context
from crane.api.errors import FieldError, Invalid, Unavailable
from crane.model.podsecurity import (
    PodSecurityLevel,
    docker_violations,
    parse_level,
    violations,
)


@runtime_checkable
class PodSecurityBackend(Protocol):
    """A backend that keeps each tenant's level itself (Kubernetes: the namespace label)."""

    async def pod_security_level(self, tenant: str) -> PodSecurityLevel | None:
        """The level enforced for ``tenant``'s pods; None when the backend has none yet."""

    async def set_pod_security(self, tenant: str, level: PodSecurityLevel) -> None:
        """Record ``level`` where the backend enforces it."""


log = logging.getLogger(__name__)

_STEP = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def _steps(path: str) -> list[str | int]:
    """``spec.containers[0].ports[1].hostPort`` as ``["spec", "containers", 0, ...]``."""
    out: list[str | int] = []
    for name, index in _STEP.findall(path):
        out.append(name if name else int(index) if index.isdigit() else index)
    return out


def _row_level(state: AppState, tenant: str) -> PodSecurityLevel:
    with Session(state.db) as session:
        row = session.get(TenantRow, tenant)
    return parse_level(row.pod_security if row is not None else None)


async def tenant_level(state: AppState, tenant: str) -> PodSecurityLevel:
    """The Pod Security level of ``tenant`` (default baseline)."""
    if isinstance(state.backend, PodSecurityBackend):
        level = await state.backend.pod_security_level(tenant)
        if level is not None:
            return level
        level = await run_in_threadpool(_row_level, state, tenant)
        await state.backend.set_pod_security(tenant, level)
        return level
    return await run_in_threadpool(_row_level, state, tenant)


async def apply_level(state: AppState, tenant: str, level: PodSecurityLevel) -> None:
    """Record a tenant's new level where the backend enforces it (Kubernetes: the namespace
    label). When the backend cannot be reached the tenant row keeps the level, and the label
    is written when the tenant first creates something."""
    if isinstance(state.backend, PodSecurityBackend):
        try:
            await state.backend.set_pod_security(tenant, level)
        except Unavailable as err:
            log.warning("tenant %s: pod security level %s not applied yet: %s", tenant, level, err)


async def check_templates(
    ctx: Context, templates: Iterable[tuple[list[str | int], dict[str, Any]]]
) -> None:
    """Raise 422 when a template breaks the tenant's level; each error names the field.

    ``templates`` are (location of the template in the body, template) pairs.
    """
    todo = [(loc, t) for loc, t in templates if t]
    if not todo:
        return
    level = await tenant_level(ctx.state, ctx.tenant)
    errors: list[FieldError] = []
    for loc, template in todo:
        if ctx.state.backend.name == "docker":
            issues = docker_violations(template, level, ctx.state.settings.docker_allowed_mounts)
        else:
            issues = violations(template, level)
        for issue in issues:
            errors.append(FieldError([*loc, *_steps(issue.path)], issue.message))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.loc[1:])
        raise Invalid(
            f"the template breaks tenant {ctx.tenant!r}'s pod security level {level.value}: "
            f"{where}: {first.msg}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
            + "; an admin can change the level (docs/operations.md)",
            errors,
        )
