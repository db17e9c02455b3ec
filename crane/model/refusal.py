"""When a backend refuses to make a replica for good, its cargo fails instead of asking again.

The API server (Kubernetes mode) and dockerd (Docker mode) answer a create they will never
accept with a client error: the object is invalid (400, 422) or too large (413), or Pod
Security admission forbids it (403 in its own words). Asked again, they refuse again, while the
cargo holds its GPUs; so the cargo fails with the backend's message and lets them go. Any other
refusal (a quota, a namespace being deleted, a conflict, a server error) may pass later.
"""

from __future__ import annotations

INVALID_SPEC = "InvalidSpec"
"""Failed reason of a cargo whose template cannot become a replica."""
POD_SECURITY = "PodSecurity"
"""Failed reason of a cargo whose template breaks its namespace's Pod Security level."""
POD_SECURITY_REFUSAL = "violates PodSecurity"
"""What Pod Security admission says when it refuses a pod."""
FENCE_REFUSAL = "leader-fence"
"""In what the API server says when the chart's leader fence refuses a pod: its operator's
term is over (helm/crane/templates/operator-leader-fence.yaml). The next leader makes the pod."""


def refusal_reason(status: int | None, message: str) -> str | None:
    """The Failed reason when a backend refused a replica's create with ``status`` and
    ``message`` for good (:data:`INVALID_SPEC` or :data:`POD_SECURITY`); None when asking
    again may succeed."""
    if FENCE_REFUSAL in message:
        return None
    if status in (400, 413, 422):
        return INVALID_SPEC
    if status == 403 and POD_SECURITY_REFUSAL in message:
        return POD_SECURITY
    return None
