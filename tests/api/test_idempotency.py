"""Idempotency keys on real SQLite and PostgreSQL: concurrent retries run the call once and
all get the first answer; a reused key with another body is refused; a server error frees it."""

from __future__ import annotations

import asyncio
import json

import pytest

from crane.api.db import make_engine, migrate
from crane.api.errors import Conflict, Invalid, Unavailable
from crane.api.idempotency import run_once


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    eng = make_engine(database_url)
    migrate(eng)
    yield eng
    eng.dispose()


def test_fifty_concurrent_retries_run_once(engine) -> None:  # type: ignore[no-untyped-def]
    calls = 0

    async def grow() -> tuple[int, object]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return 200, {"result": "granted", "call": calls}

    async def main() -> list[tuple[int, bytes]]:
        responses = await asyncio.gather(
            *(run_once(engine, "t/tok", "key-1", "fp", grow) for _ in range(50))
        )
        return [(r.status_code, bytes(r.body)) for r in responses]

    answers = asyncio.run(main())
    assert calls == 1
    assert {a for a in answers} == {(200, json.dumps({"result": "granted", "call": 1}).encode())}


def test_same_key_other_request_is_conflict(engine) -> None:  # type: ignore[no-untyped-def]
    async def ok() -> tuple[int, object]:
        return 201, {"name": "a"}

    async def main() -> None:
        await run_once(engine, "t/tok", "k", "fp-1", ok)
        with pytest.raises(Conflict, match="different request"):
            await run_once(engine, "t/tok", "k", "fp-2", ok)
        other_caller = await run_once(engine, "u/tok", "k", "fp-2", ok)
        assert other_caller.status_code == 201

    asyncio.run(main())


def test_client_error_is_replayed_server_error_is_retried(engine) -> None:  # type: ignore[no-untyped-def]
    attempts = 0

    async def flaky() -> tuple[int, object]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise Unavailable("Kubernetes API down")
        raise Invalid("gpus.max exceeded: raise max")

    async def main() -> None:
        with pytest.raises(Unavailable):
            await run_once(engine, "t/tok", "k", "fp", flaky)
        with pytest.raises(Invalid):
            await run_once(engine, "t/tok", "k", "fp", flaky)
        replay = await run_once(engine, "t/tok", "k", "fp", flaky)
        assert replay.status_code == 422 and replay.headers["Idempotent-Replayed"] == "true"
        assert json.loads(bytes(replay.body))["detail"] == "gpus.max exceeded: raise max"

    asyncio.run(main())
    assert attempts == 2
