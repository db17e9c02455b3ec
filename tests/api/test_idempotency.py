"""Idempotency keys on real SQLite and PostgreSQL: concurrent retries run the call once and
all get the first answer; a reused key with another body is refused; a server error frees it;
a key is kept a day; a claim whose server is gone is answered at once."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from crane.api import instances
from crane.api.db import IdempotencyRow, make_engine, migrate, utcnow
from crane.api.errors import Conflict, Invalid, Unavailable
from crane.api.idempotency import run_once

OWNER = instances.new_instance()


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    eng = make_engine(database_url)
    migrate(eng)
    instances.beat(eng, OWNER)
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
            *(run_once(engine, OWNER, "t/tok", "key-1", "fp", grow) for _ in range(50))
        )
        return [(r.status_code, bytes(r.body)) for r in responses]

    answers = asyncio.run(main())
    assert calls == 1
    assert {a for a in answers} == {(200, json.dumps({"result": "granted", "call": 1}).encode())}


def test_same_key_other_request_is_conflict(engine) -> None:  # type: ignore[no-untyped-def]
    async def ok() -> tuple[int, object]:
        return 201, {"name": "a"}

    async def main() -> None:
        await run_once(engine, OWNER, "t/tok", "k", "fp-1", ok)
        with pytest.raises(Conflict, match="different request"):
            await run_once(engine, OWNER, "t/tok", "k", "fp-2", ok)
        other_caller = await run_once(engine, OWNER, "u/tok", "k", "fp-2", ok)
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
            await run_once(engine, OWNER, "t/tok", "k", "fp", flaky)
        with pytest.raises(Invalid):
            await run_once(engine, OWNER, "t/tok", "k", "fp", flaky)
        replay = await run_once(engine, OWNER, "t/tok", "k", "fp", flaky)
        assert replay.status_code == 422 and replay.headers["Idempotent-Replayed"] == "true"
        assert json.loads(bytes(replay.body))["detail"] == "gpus.max exceeded: raise max"

    asyncio.run(main())
    assert attempts == 2


def test_a_key_is_forgotten_after_a_day(engine) -> None:  # type: ignore[no-untyped-def]
    """The table does not grow for ever: a day after its first answer, a key runs anew."""
    calls = 0

    async def create() -> tuple[int, object]:
        nonlocal calls
        calls += 1
        return 201, {"call": calls}

    async def main() -> None:
        await run_once(engine, OWNER, "t/tok", "k", "fp", create)
        replay = await run_once(engine, OWNER, "t/tok", "k", "fp", create)
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert instances.prune(engine, utcnow() + instances.KEY_TTL / 2) == 0
        assert instances.prune(engine, utcnow() + instances.KEY_TTL + timedelta(minutes=1)) == 1
        fresh = await run_once(engine, OWNER, "t/tok", "k", "fp", create)
        assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers

    asyncio.run(main())
    assert calls == 2
    with Session(engine) as session:
        assert len(session.exec(select(IdempotencyRow)).all()) == 1


def test_a_claim_whose_server_is_gone_is_answered_at_once(engine) -> None:  # type: ignore[no-untyped-def]
    """A claim left by a server that stopped beating: a retry is a 409 saying so, at once."""
    gone = instances.new_instance()
    instances.beat(engine, gone)

    async def never() -> tuple[int, object]:
        raise AssertionError("the retry must not run again")

    with Session(engine) as session:
        session.add(IdempotencyRow(principal="t/tok", key="k", fingerprint="fp", owner=gone))
        session.commit()
    instances.forget(engine, gone)

    async def main() -> None:
        with pytest.raises(Conflict, match="did not finish"):
            await asyncio.wait_for(run_once(engine, OWNER, "t/tok", "k", "fp", never), 10)

    asyncio.run(main())
