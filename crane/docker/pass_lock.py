"""One reconcile pass at a time across every Docker-mode server on one database.

Each pass rebuilds the engine from SQL, decides, and commits; two servers on one database
(a second ``crane serve`` for availability, or one started by mistake) that ran passes at
the same moment would each place cargos on GPUs the other was just giving away. A pass
therefore runs only while it holds a lock every server on that database shares: a
PostgreSQL advisory lock (held by the pass's own connection, gone if the server dies), or
for SQLite an ``flock`` on a file beside the database (gone with the process). A server
that finds the lock taken skips its pass: the other server's pass is deciding for both,
and the next interval tries again. A pass whose outcome an API call answers with (a
``:grow`` without ``allowPending`` grants only what its pass placed) waits for the lock
instead: skipped, it would deny cargos the other pass was about to place.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine as Database
from sqlalchemy import make_url, text

log = logging.getLogger(__name__)

ADVISORY_KEY = 0x63_72_61_6E_65  # "crane"
"""The PostgreSQL advisory lock key of the reconcile pass."""
RETRY_SECONDS = 0.05
"""How often a pass that waits for the lock tries to take it again."""


def lock_path(database: str) -> Path | None:
    """The lock file of a SQLite database file (None: an in-memory one, or not SQLite)."""
    url = make_url(database)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(f"{url.database}.pass-lock")


class PassLock:
    """The lock a reconcile pass holds on the database ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._file = lock_path(db.url.render_as_string(hide_password=True))

    @contextmanager
    def held(self, wait: float = 0.0) -> Iterator[bool]:
        """Take the lock, trying for up to ``wait`` seconds (0: once, without waiting);
        yields whether this pass holds it."""
        deadline = time.monotonic() + wait
        if self.db.dialect.name == "postgresql":
            with self._advisory(deadline) as mine:
                yield mine
        elif self._file is not None:
            with self._flock(self._file, deadline) as mine:
                yield mine
        else:
            yield True

    @contextmanager
    def _advisory(self, deadline: float) -> Iterator[bool]:
        conn = self.db.connect()
        try:
            while True:
                mine = bool(
                    conn.execute(
                        text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}
                    ).scalar()
                )
                conn.commit()
                if mine or time.monotonic() >= deadline:
                    break
                time.sleep(RETRY_SECONDS)
            try:
                yield mine
            finally:
                if mine:
                    try:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                        conn.commit()
                    except Exception:
                        conn.invalidate()  # a broken connection ends its session, and the lock
                        raise
        finally:
            conn.close()

    @staticmethod
    @contextmanager
    def _flock(path: Path, deadline: float) -> Iterator[bool]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(RETRY_SECONDS)
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
