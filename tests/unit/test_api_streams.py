"""A followed stream looks its token up again while its source is quiet, not only per item."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from crane.api.errors import NotFound
from crane.api.streams import while_valid


async def _one_then_quiet(closed: list[bool]) -> AsyncIterator[str]:
    try:
        yield "ready"
        await asyncio.Event().wait()  # says nothing more, ever
    finally:
        closed.append(True)


def test_a_quiet_source_ends_once_the_token_stops_being_valid() -> None:
    """The replica printed one line and then nothing: the stream ended only at its next line,
    so a revoked token kept it open; now it ends within a recheck and closes its source."""
    closed: list[bool] = []
    answers = iter([True])

    async def valid() -> bool:
        return next(answers, False)

    async def main() -> list[str]:
        got = [item async for item in while_valid(_one_then_quiet(closed), valid, 0.01)]
        await asyncio.sleep(0)
        return got

    assert asyncio.run(asyncio.wait_for(main(), 10)) == ["ready"]
    assert closed == [True]


def test_items_flow_and_a_source_error_reaches_the_caller() -> None:
    async def failing() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        raise NotFound("no placed replica 3")

    async def valid() -> bool:
        return True

    async def main() -> list[str]:
        got: list[str] = []
        with pytest.raises(NotFound, match="no placed replica 3"):
            async for item in while_valid(failing(), valid, 5):
                got.append(item)
        return got

    assert asyncio.run(main()) == ["a", "b"]
