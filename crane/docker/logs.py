"""A replica's log through the Docker API, followed when asked."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

from docker.errors import NotFound as DockerNotFound

from crane.api.errors import NotFound
from crane.api.loglines import log_lines
from crane.docker import labels as L
from crane.docker.containers import is_own
from crane.docker.hosts import HostSpec, connect

_END = object()


async def replica_log_lines(
    host: HostSpec,
    tenant: str,
    cargo: str,
    replica: int,
    follow: bool,
    tail: int | None,
    since_seconds: int | None = None,
) -> AsyncIterator[str]:
    """Lines of the replica's container (the last ``tail``, those of the last
    ``since_seconds``); a thread reads Docker's stream into an async queue."""
    client = connect(host, timeout=3600)
    try:
        container = client.containers.get(L.container_name(tenant, cargo, replica))
        if not is_own(container):  # a container of that name Crane did not make
            raise DockerNotFound("not Crane's")
    except DockerNotFound:
        client.close()
        raise NotFound(
            f"replica {replica} of cargo {cargo!r} has no container yet: wait until the cargo runs"
        ) from None
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1000)

    def pump() -> None:
        try:
            stream = container.logs(
                stream=True,
                follow=follow,
                tail=tail if tail else "all",
                since=int(time.time()) - since_seconds if since_seconds else None,
            )
            for line in log_lines(stream):
                asyncio.run_coroutine_threadsafe(queue.put(line), loop).result()
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(_END), loop)

    threading.Thread(target=pump, name=f"crane-logs-{cargo}-{replica}", daemon=True).start()
    try:
        while (item := await queue.get()) is not _END:
            yield f"{item}\n"
    finally:
        client.close()
