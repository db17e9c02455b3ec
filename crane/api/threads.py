"""Blocking work that may last long, each on a thread of its own.

``asyncio.to_thread`` shares the loop's default executor (a handful of threads on a small
machine) with every short blocking call of the API: creates, lists, the GPU map. A call a
tenant may keep going for minutes (a command run in a replica, up to ``timeoutSeconds``) must
not take one of those threads, or a few of them stall the API for every tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def on_own_thread(fn: Callable[[], T], name: str) -> T:
    """``fn()`` on a new daemon thread named ``name``; its result or its exception. Cancelling
    the caller leaves the thread to end on its own (``fn`` must bound its own time)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = fn()
        except BaseException as err:  # handed to the awaiting coroutine
            error = err
        # RuntimeError: the loop closed meanwhile, so no one waits any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done
