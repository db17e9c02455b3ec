"""The reconcile pass lock of Docker mode (crane/docker/pass_lock.py) on SQLite: one holder at
a time across servers, free again once the holder ends, none needed in memory."""

from __future__ import annotations

import threading
from pathlib import Path

from crane.api.db import make_engine
from crane.docker.pass_lock import PassLock, lock_path


def test_a_second_server_on_one_sqlite_file_skips_while_the_first_holds_the_pass(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'crane.db'}"
    first, second = PassLock(make_engine(url)), PassLock(make_engine(url))
    with first.held() as mine:
        assert mine
        with second.held() as theirs:
            assert not theirs
    with second.held() as theirs:
        assert theirs
    assert lock_path(url) == tmp_path / "crane.db.pass-lock"


def test_a_pass_that_waits_takes_the_lock_once_the_other_server_lets_it_go(
    tmp_path: Path,
) -> None:
    """A grow's pass waits for another server's pass instead of skipping it; a wait that runs
    out yields False, as a skip does."""
    url = f"sqlite:///{tmp_path / 'crane.db'}"
    first, second = PassLock(make_engine(url)), PassLock(make_engine(url))
    got: list[bool] = []
    waiting = threading.Event()
    with first.held() as mine:
        assert mine
        with second.held(wait=0.2) as theirs:
            assert not theirs

        def wait() -> None:
            waiting.set()
            with second.held(wait=60) as theirs:
                got.append(theirs)

        waiter = threading.Thread(target=wait)
        waiter.start()
        waiting.wait(10)
    waiter.join(60)
    assert got == [True]


def test_an_in_memory_database_has_no_one_to_share_with() -> None:
    assert lock_path("sqlite://") is None
    assert lock_path("sqlite:///:memory:") is None
    with PassLock(make_engine("sqlite://")).held() as mine:
        assert mine
