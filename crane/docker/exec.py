"""A command run in a replica's container through the Docker API (``docker exec``)."""

from __future__ import annotations

import asyncio
from contextlib import closing

import requests
from docker.errors import APIError, DockerException
from docker.errors import NotFound as DockerNotFound

from crane.api.errors import Conflict, ExecUnsupported, NotFound, Unavailable
from crane.api.schemas import ExecRequest, ExecResult
from crane.docker import labels as L
from crane.docker.hosts import HostSpec, connect


def _run(host: HostSpec, tenant: str, cargo: str, request: ExecRequest) -> ExecResult:
    """Blocking: find the container, run the command, collect stdout and stderr."""
    with closing(connect(host, timeout=request.timeout_seconds)) as client:
        try:
            container = client.containers.get(L.container_name(tenant, cargo, request.replica))
        except DockerNotFound:
            raise NotFound(
                f"replica {request.replica} of cargo {cargo!r} has no container yet: "
                "wait until the cargo runs"
            ) from None
        if container.status != "running":
            raise ExecUnsupported(
                f"replica {request.replica} of cargo {cargo!r} is not running "
                f"(container {container.status}): exec needs a running replica"
            )
        try:
            exit_code, output = container.exec_run(request.command, stdout=True, stderr=True)
        except requests.exceptions.ReadTimeout:
            raise Conflict(
                f"the command did not finish within {request.timeout_seconds}s: "
                "raise timeoutSeconds or run it in the background"
            ) from None
        except APIError as err:
            raise ExecUnsupported(
                f"replica {request.replica} of cargo {cargo!r} cannot run the command: "
                f"{err.explanation or err}"
            ) from None
        except (DockerException, requests.exceptions.ConnectionError) as err:
            raise Unavailable(f"cannot reach the Docker host of cargo {cargo!r}: {err}") from None
    text = (output or b"").decode(errors="replace")
    return ExecResult(exit_code=exit_code if exit_code is not None else -1, output=text)


async def exec_in_replica(
    host: HostSpec, tenant: str, cargo: str, request: ExecRequest
) -> ExecResult:
    """Run ``request.command`` in the replica's container, off the event loop."""
    return await asyncio.to_thread(_run, host, tenant, cargo, request)
