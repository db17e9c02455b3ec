"""Event ids on ``/v1/events``: a client reconnecting with ``Last-Event-ID`` (as the browser's
``EventSource`` and the SDK do) gets the events it missed."""

from __future__ import annotations

import asyncio
import time
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
            # an id past the newest (another server's) replays nothing
            assert hub.since(first_id + 100) == []
        finally:
            pump.cancel()

    asyncio.run(scenario())
    db.dispose()


def test_a_reconnect_after_a_restart_of_the_server_gets_every_event_of_the_new_run(
    tmp_path: Path,
) -> None:
    # a client saw the first run's events, the server was killed and started again, and the
    # new run published three events before the client (EventSource, the SDK) reconnected
    db = make_engine(f"sqlite:///{tmp_path / 'crane.db'}")
    migrate(db)
    first = EventHub(cast(Backend, Feed()), db, 64)
    for cargo in ("a", "b", "c", "d", "e"):
        first.publish(_event(cargo))
    seen = first.since(0)[-1][0]
    while time.time_ns() // 1000 <= seen:  # a restart takes longer than five events' microseconds
        time.sleep(0.001)
    runs = [first, EventHub(cast(Backend, Feed()), db, 64)]
    for cargo in ("f", "g", "h"):
        runs[1].publish(_event(cargo))
    missed = [e.cargo for _, e in runs[1].since(seen)]
    assert missed == ["f", "g", "h"], f"after the restart the client got only {missed}"
    db.dispose()
