"""The operator's plain watches (crane/operator/watch.py): events reach the cache, a watch
resumes from the last version it saw (bookmarks included), and a watch the API server expired
(410 Gone) or lost lists again, so a pod deleted while nobody watched leaves the cache."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from crane.operator import watch
from crane.operator.cache import ClusterCache
from crane.operator.watch import KindStream
from tests.unit.test_operator_decide import pod_of


def _pod(name: str, rv: str = "1") -> dict[str, Any]:
    """Pod ``<cargo>-0`` of cargo ``name[:-2]`` at resourceVersion ``rv``."""
    body = pod_of(name.rsplit("-", 1)[0], "n1", "0")
    body["metadata"]["resourceVersion"] = rv
    return body


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry within milliseconds, not seconds."""
    monkeypatch.setattr(watch, "RETRY_SECONDS", (0.01, 0.05))


class FakeApi:
    """Lists and watch streams scripted per call; records where each watch started."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[list[Any]]) -> None:
        self.lists = lists
        self.watches = watches
        self.started: list[str] = []
        self.listed = 0

    def list_versioned(self, kind: str) -> tuple[list[dict[str, Any]], str | None]:
        assert kind == "pods"
        items = self.lists[min(self.listed, len(self.lists) - 1)]
        self.listed += 1
        return items, f"list-{self.listed}"

    def watch(self, kind: str, version: str, timeout: int) -> Iterator[dict[str, Any]]:
        self.started.append(version)
        script = self.watches.pop(0) if self.watches else []
        for step in script:
            if isinstance(step, Exception):
                raise step
            yield step


async def _run_until(stream: KindStream, done: Any, timeout: float = 10.0) -> None:
    task = asyncio.create_task(stream.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_events_reach_the_cache_and_the_next_watch_starts_where_the_last_ended() -> None:
    gone = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}}
    api = FakeApi(
        lists=[[_pod("a-0")]],
        watches=[
            [{"type": "ADDED", "object": _pod("b-0", rv="5")}, gone],
            [{"type": "DELETED", "object": _pod("a-0", rv="8")}],
        ],
    )
    cache = ClusterCache(())

    async def main() -> None:
        await _run_until(
            KindStream(api, cache, "pods"),  # type: ignore[arg-type]
            lambda: "t/b-0" in cache.pods and "t/a-0" not in cache.pods,
        )

    asyncio.run(main())
    assert api.started[:2] == ["list-1", "7"], api.started  # resumed after the bookmark
    assert api.listed == 1


def test_an_expired_watch_lists_again_and_drops_what_was_deleted_meanwhile() -> None:
    expired = {"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}
    api = FakeApi(
        lists=[[_pod("a-0"), _pod("b-0")], [_pod("b-0")]],
        watches=[[expired], []],
    )
    cache = ClusterCache(())

    async def main() -> None:
        await _run_until(
            KindStream(api, cache, "pods"),  # type: ignore[arg-type]
            lambda: api.listed >= 2 and "t/a-0" not in cache.pods,
        )

    asyncio.run(main())
    assert "t/b-0" in cache.pods
    assert api.started[:2] == ["list-1", "list-2"], api.started


def test_a_watch_that_fails_backs_off_and_lists_again() -> None:
    api = FakeApi(
        lists=[[_pod("a-0")], []],
        watches=[[ConnectionResetError("the API server went away")]],
    )
    cache = ClusterCache(())

    async def main() -> None:
        await _run_until(
            KindStream(api, cache, "pods"),  # type: ignore[arg-type]
            lambda: api.listed >= 2 and not cache.pods,
        )

    asyncio.run(main())
    assert not cache.pods
