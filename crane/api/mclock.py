"""One read-decide-write on a MiniCluster at a time, across every server on one database.

A grow reads the MiniCluster's cargos, decides against ``gpus.max`` and writes; so do a
shrink and a cargo create. Within a server an asyncio lock per MiniCluster keeps them apart;
two servers on one database (a second ``crane serve`` in Docker mode, ``api.replicas`` > 1 on
Kubernetes) would each grant the same room. :class:`MiniClusterLock` keeps them apart too.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

MINICLUSTER_CLASS = 0x6D63  # "mc"
"""The first key of the PostgreSQL advisory locks of :class:`MiniClusterLock` (the second is
the MiniCluster's bucket); two-key advisory locks never meet Docker mode's one-key pass lock."""
BUCKETS = 16
"""MiniClusters share this many locks (a hash of ``tenant/name`` picks one): two MiniClusters
in one bucket only wait for each other, and the lock files of SQLite stay few."""
POLL_SECONDS = 0.02


def bucket(key: str) -> int:
    """The lock bucket of MiniCluster ``key`` (``tenant/name``), the same on every server."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % BUCKETS


class MiniClusterLock:
    """What serialises the grows, shrinks and cargo creates of one MiniCluster across every
    server on one database.

    An asyncio lock per bucket within the server, then a PostgreSQL advisory lock or for
    SQLite an ``flock`` on a file beside the database; an in-memory database has only the
    first (one process uses it). The advisory lock is held on a connection of its own, outside
    the database's pool (gone if the server dies): a server holds at most :data:`BUCKETS` of
    them, and its pool stays free for the work done under them. Waiting polls, so a caller
    cancelled while waiting leaves nothing held.
    """

    def __init__(self, db: Engine) -> None:
        self.db = db
        self._dir = _lock_dir(db)
        self._here: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._own: Engine | None = None

    @asynccontextmanager
    async def held(self, tenant: str, name: str) -> AsyncIterator[None]:
        """Hold MiniCluster ``name`` of ``tenant``, waiting as long as another call of this
        server or of another server on the database holds it."""
        slot = bucket(f"{tenant}/{name}")
        async with self._here[slot], self._across(slot):
            yield

    def dispose(self) -> None:
        """Close the connections of the advisory locks (none is held once calls ended)."""
        if self._own is not None:
            self._own.dispose()

    @asynccontextmanager
    async def _across(self, slot: int) -> AsyncIterator[None]:
        if self.db.dialect.name == "postgresql":
            if self._own is None:
                self._own = create_engine(self.db.url, poolclass=NullPool)
            conn = await asyncio.to_thread(self._own.connect)
            try:
                while not await asyncio.to_thread(self._try_advisory, conn, slot):
                    await asyncio.sleep(POLL_SECONDS)
                try:
                    yield
                finally:
                    await asyncio.to_thread(self._unlock_advisory, conn, slot)
            finally:
                conn.close()
        elif self._dir is not None:
            self._dir.mkdir(exist_ok=True)
            fd = os.open(self._dir / f"{slot:02d}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while not _try_flock(fd):
                    await asyncio.sleep(POLL_SECONDS)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        else:
            yield

    @staticmethod
    def _try_advisory(conn: Connection, slot: int) -> bool:
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:c, :s)"), {"c": MINICLUSTER_CLASS, "s": slot}
        ).scalar()
        conn.commit()
        return bool(got)

    @staticmethod
    def _unlock_advisory(conn: Connection, slot: int) -> None:
        try:
            conn.execute(
                text("SELECT pg_advisory_unlock(:c, :s)"), {"c": MINICLUSTER_CLASS, "s": slot}
            )
            conn.commit()
        except Exception:
            conn.invalidate()  # a broken connection ends its session, and the lock
            raise


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_dir(db: Engine) -> Path | None:
    """The folder of lock files beside a SQLite database file (None: in-memory, or not SQLite)."""
    url = make_url(db.url.render_as_string(hide_password=True))
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(f"{url.database}.mc-locks")
