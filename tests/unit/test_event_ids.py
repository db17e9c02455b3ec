"""Event ids on ``/v1/events``: a client reconnecting with ``Last-Event-ID`` (as the browser's
``EventSource`` and the SDK do) gets the events it missed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from crane.api.backend import Backend
from crane.api.db import make_engine, migrate
from crane.api.events import EventHub
from crane.api.schemas import Event, EventType


class Feed:
    """A backend whose event stream is whatever the test puts in."""

    name = "feed"

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    async def events(self) -> AsyncIterator[Any]:
        while True:
            yield await self.queue.get()


def _event(cargo: str) -> Event:
    return Event(
        type=EventType.SUCCEEDED, tenant="t", mini_cluster="mc", cargo=cargo, time=datetime.now(UTC)
    )


def test_a_reconnect_with_last_event_id_gets_what_it_missed(tmp_path: Path) -> None:
    db = make_engine(f"sqlite:///{tmp_path / 'crane.db'}")
    migrate(db)
    feed = Feed()
    hub = EventHub(cast(Backend, feed), db, 64)

    async def scenario() -> None:
        pump = asyncio.create_task(hub.run())
        try:
            with hub.subscribe_numbered() as live:
                await feed.queue.put(_event("a"))
                first_id, first = await asyncio.wait_for(live.get(), 30)
            assert first.cargo == "a"
            # disconnected: two events pass by
            with hub.subscribe_numbered() as watcher:
                await feed.queue.put(_event("b"))
                await feed.queue.put(_event("c"))
                for _ in range(2):
                    await asyncio.wait_for(watcher.get(), 30)
            missed = hub.since(first_id)
            assert [e.cargo for _, e in missed] == ["b", "c"]
            assert len({first_id, *(i for i, _ in missed)}) == 3
            # an id past the newest (another run of the server) replays nothing
            assert hub.since(first_id + 100) == []
        finally:
            pump.cancel()

    asyncio.run(scenario())
    db.dispose()
