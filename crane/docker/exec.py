"""A command run in a replica's container through the Docker API (``docker exec``)."""

from __future__ import annotations

import socket
import struct
import time
from contextlib import closing
from typing import Any

import requests
from docker.errors import APIError, DockerException
from docker.errors import NotFound as DockerNotFound

from crane.api.errors import ExecUnfinished, ExecUnsupported, NotFound, Unavailable
from crane.api.schemas import MAX_EXEC_OUTPUT, ExecRequest, ExecResult
from crane.api.threads import on_own_thread
from crane.docker import labels as L
from crane.docker.containers import is_own
from crane.docker.hosts import HostSpec, connect


class _TimedOut(Exception):
    """The command's ``timeoutSeconds`` ran out before it finished."""


class _TooLong(Exception):
    """The command wrote more than :data:`MAX_EXEC_OUTPUT` bytes."""


def _raw_socket(hijacked: Any) -> socket.socket:
    """The socket under what ``exec_start(socket=True)`` answers (a ``SocketIO`` on a Unix or
    TCP connection, the TLS socket itself on HTTPS)."""
    raw: socket.socket = getattr(hijacked, "_sock", hijacked)
    return raw


def _collect(sock: socket.socket, deadline: float) -> bytes:
    """The payload of Docker's multiplexed stream (8-byte frame headers: stream, size), read
    until the command closes it; :class:`_TimedOut` at ``deadline`` however often it writes,
    :class:`_TooLong` past :data:`MAX_EXEC_OUTPUT`."""
    data = bytearray()
    pending = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _TimedOut
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise _TimedOut from None
        if not chunk:
            return bytes(data)
        pending += chunk
        while len(pending) >= 8:
            (size,) = struct.unpack(">L", pending[4:8])
            if len(pending) < 8 + size:
                break
            data += pending[8 : 8 + size]
            del pending[: 8 + size]
        if len(data) + len(pending) > MAX_EXEC_OUTPUT + 8:
            raise _TooLong


def _run(host: HostSpec, tenant: str, cargo: str, request: ExecRequest) -> ExecResult:
    """Blocking: find the container, run the command, collect stdout and stderr until it
    ends, ``timeoutSeconds`` pass or it has written too much (the last two are a 409; the
    command is then left running in the container, as ``kubectl exec`` leaves it)."""
    deadline = time.monotonic() + request.timeout_seconds
    with closing(connect(host, timeout=request.timeout_seconds)) as client:
        try:
            container = client.containers.get(L.container_name(tenant, cargo, request.replica))
            if not is_own(container):  # a container of that name Crane did not make
                raise DockerNotFound("not Crane's")
        except DockerNotFound:
            raise NotFound(
                f"replica {request.replica} of cargo {cargo!r} has no container yet: "
                "wait until the cargo runs"
            ) from None
        except (DockerException, requests.exceptions.RequestException) as err:
            raise Unavailable(f"cannot reach the Docker host of cargo {cargo!r}: {err}") from None
        if container.status != "running":
            raise ExecUnsupported(
                f"replica {request.replica} of cargo {cargo!r} is not running "
                f"(container {container.status}): exec needs a running replica"
            )
        try:
            made = client.api.exec_create(container.id, request.command, stdout=True, stderr=True)
            hijacked = client.api.exec_start(made["Id"], socket=True)
            with closing(hijacked):
                output = _collect(_raw_socket(hijacked), deadline)
            exit_code = client.api.exec_inspect(made["Id"]).get("ExitCode")
        except _TimedOut:
            raise ExecUnfinished.timed_out(request.timeout_seconds) from None
        except _TooLong:
            raise ExecUnfinished.too_long(MAX_EXEC_OUTPUT) from None
        except requests.exceptions.ReadTimeout:
            raise ExecUnfinished.timed_out(request.timeout_seconds) from None
        except APIError as err:
            raise ExecUnsupported(
                f"replica {request.replica} of cargo {cargo!r} cannot run the command: "
                f"{err.explanation or err}"
            ) from None
        except (DockerException, requests.exceptions.ConnectionError, OSError) as err:
            raise Unavailable(f"cannot reach the Docker host of cargo {cargo!r}: {err}") from None
    text = output.decode(errors="replace")
    return ExecResult(exit_code=exit_code if exit_code is not None else -1, output=text)


async def exec_in_replica(
    host: HostSpec, tenant: str, cargo: str, request: ExecRequest
) -> ExecResult:
    """Run ``request.command`` in the replica's container on a thread of its own (it may last
    up to ``timeoutSeconds``: it must not hold one of the threads the rest of the API shares)."""
    return await on_own_thread(
        lambda: _run(host, tenant, cargo, request), f"crane-exec-{cargo}-{request.replica}"
    )
