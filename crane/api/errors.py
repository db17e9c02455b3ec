"""Errors a backend or a router raises; the app renders each as ``application/problem+json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class FieldError:
    """One invalid field: its location (``["body", "spec", "gpus", "max"]``) and what to fix."""

    loc: list[str | int]
    msg: str


@dataclass
class CraneError(Exception):
    """Base class: ``detail`` says what happened and what to do next.

    ``problem`` names a specific problem type (the ``type`` URI ends with it); without one the
    type is the title's.
    """

    problem: ClassVar[str] = ""
    detail: str
    status: int = 500
    title: str = "Internal error"
    errors: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return self.detail


class NotFound(CraneError):
    """404: the object does not exist, or belongs to another tenant."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 404, "Not found")


class Conflict(CraneError):
    """409: the call conflicts with the current state, e.g. a name already taken."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 409, "Conflict")


class Unreadable(Conflict):
    """409: a stored object that cannot be read (its row edited in the database by hand); it
    can still be deleted (docs/docker-mode.md)."""


class SharesManagedByKubernetes(Conflict):
    """Kube mode's shares are TenantShare resources, not API writes."""

    problem = "shares-managed-by-kubernetes"

    def __init__(self) -> None:
        super().__init__(
            "shares are TenantShare resources (tenantshares.crane.io) in kube mode; "
            "apply one with kubectl instead"
        )


class HostsManagedByKubernetes(Conflict):
    """Kube mode adds no hosts: its nodes are Kubernetes'."""

    problem = "hosts-managed-by-kubernetes"

    def __init__(self) -> None:
        super().__init__("hosts are managed by Kubernetes in kube mode; label nodes instead")


class ExecUnsupported(Conflict):
    """The replica's node cannot run commands (a simulated kwok node, a container not running)."""

    problem = "exec-unsupported"


class ExecUnfinished(Conflict):
    """409: the command outlasted ``timeoutSeconds`` or wrote more than an exec answers; it is
    left running in the container. The detail says what to do."""

    problem = "exec-unfinished"

    @classmethod
    def timed_out(cls, seconds: int) -> ExecUnfinished:
        """The command ran past ``seconds`` (the request's ``timeoutSeconds``)."""
        return cls(
            f"the command did not finish within {seconds}s: raise timeoutSeconds "
            "(`crane exec --timeout`) or run it in the background"
        )

    @classmethod
    def too_long(cls, limit: int) -> ExecUnfinished:
        """The command wrote more than ``limit`` bytes, the most an exec answers."""
        return cls(
            f"the command wrote more than {limit} bytes, the most an exec answers: write its "
            "output to a file and read part of it (head, tail)"
        )


class TooManyStreams(CraneError):
    """429: the caller holds as many event streams, followed logs and execs open as the server
    allows."""

    problem = "too-many-streams"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 429, "Too many streams")


class Invalid(CraneError):
    """422: the request is not valid; ``errors`` names the fields."""

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail, 422, "Invalid request", errors or [])


class Unauthorized(CraneError):
    """401: no token, or a malformed, unknown, revoked or expired one."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 401, "Unauthorized")


class Forbidden(CraneError):
    """403: the token's scope does not allow the call."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 403, "Forbidden")


class Unavailable(CraneError):
    """The backend (Kubernetes API, Docker host, database) cannot be reached right now."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 503, "Backend unavailable")


PROBLEMS = "https://crane.dev/problems/"
"""The prefix of every problem ``type``."""


def problem_body(err: CraneError) -> dict[str, object]:
    """The ``application/problem+json`` document of an error."""
    body: dict[str, object] = {
        "type": PROBLEMS + (err.problem or err.title.lower().replace(" ", "-")),
        "title": err.title,
        "status": err.status,
        "detail": err.detail,
    }
    if err.errors:
        body["errors"] = [{"loc": e.loc, "msg": e.msg} for e in err.errors]
    return body
