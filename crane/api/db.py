"""The API's tables (sqlmodel) and the database engine. The schema is Alembic's to create."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Dialect, Engine, UniqueConstraint, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Field, SQLModel, create_engine
from sqlmodel.sql.sqltypes import UTCDateTime

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    """Now, in UTC (timezone-aware)."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """``value`` with UTC where it has no zone (SQLite stores none)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UNREADABLE_TIME = datetime.min.replace(tzinfo=UTC)
"""What a stored time that does not parse reads as (0001-01-01T00:00:00Z). Where the time
decides something, its row is not trusted: a token is refused, a usage interval counts for
nothing, a Docker-mode row is left as it is (``crane.docker.store``), a server is taken as
gone until it beats again. Elsewhere (a tenant's or an audit entry's time) it is shown."""


class StoredTime(UTCDateTime):
    """sqlmodel's time column (aware, in UTC; same DDL), with hand-edited text (SQLite keeps
    any) read as :data:`UNREADABLE_TIME` instead of failing every query that loads its row:
    one such row would stop every list, and every pass, that reads it."""

    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """sqlmodel's parsing, with a value it cannot parse read as
        :data:`UNREADABLE_TIME`. (``UTCDateTime`` always has a processor: it overrides
        ``process_result_value``.)"""
        parse = super().result_processor(dialect, coltype)

        def lenient(value: object) -> datetime | None:
            try:
                return parse(value)  # type: ignore[misc]  # never None: see above
            except (ValueError, TypeError, OverflowError):
                return UNREADABLE_TIME

        return lenient


class TenantRow(SQLModel, table=True):
    """A tenant of the API, with its Pod Security level and (Docker mode) its GPU shares."""

    __tablename__ = "tenants"

    name: str = Field(primary_key=True, max_length=63)
    created_at: datetime = Field(default_factory=utcnow, sa_type=StoredTime)
    pod_security: str = Field(default="baseline", max_length=16)
    """The tenant's Pod Security Standards level: privileged, baseline or restricted."""
    shares: str = Field(default="[]")
    """The tenant's shares per GPU type (``crane.model.shares.TenantShares.shares``) as JSON;
    Docker mode's engine reads them (``crane.docker.store.share_table``)."""


class TokenRow(SQLModel, table=True):
    """A bearer token; only the SHA-256 of its secret is stored."""

    __tablename__ = "tokens"

    id: str = Field(primary_key=True, max_length=32)
    secret_sha256: str = Field(max_length=64)
    scope: str = Field(max_length=16)
    tenant: str | None = Field(default=None, max_length=63, index=True)
    minicluster: str | None = Field(default=None, max_length=63)
    description: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=StoredTime)
    expires_at: datetime | None = Field(default=None, sa_type=StoredTime)
    revoked: bool = False
    minted_by: str | None = Field(default=None, max_length=32, index=True)
    """The id of the token that minted this one (None: an admin's bootstrap or the operator's)."""

    @property
    def unreadable(self) -> bool:
        """Whether a time of this token was edited by hand into text that is no time: such a
        token is refused, never taken as unexpiring (``crane.api.auth.authenticate``)."""
        return UNREADABLE_TIME in (self.created_at, self.expires_at)


class AuditRow(SQLModel, table=True):
    """One mutating call: who (token), what (method and path), when, and the result."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = Field(default_factory=utcnow, index=True, sa_type=StoredTime)
    token_id: str | None = Field(default=None, max_length=32)
    tenant: str | None = Field(default=None, max_length=63, index=True)
    action: str = Field(max_length=16)
    target: str = Field(max_length=300)
    status: int
    detail: str = Field(default="", max_length=1000)


class UsageIntervalRow(SQLModel, table=True):
    """A cargo held ``gpus`` GPUs from ``start`` until ``end`` (open while it still holds them)."""

    __tablename__ = "usage_intervals"

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=63, index=True)
    minicluster: str = Field(max_length=63)
    cargo: str = Field(max_length=63)
    gpus: int
    start: datetime = Field(index=True, sa_type=StoredTime)
    end: datetime | None = Field(default=None, index=True, sa_type=StoredTime)
    state: str | None = Field(default=None, max_length=16)
    """How the interval ended: the event type (Succeeded, Failed, Preempted, Deleted)."""
    exit_code: int | None = None

    @property
    def unreadable(self) -> bool:
        """Whether a time of this interval was edited by hand into text that is no time: such
        an interval counts for nothing and is left as it is (``crane.api.usage``)."""
        return UNREADABLE_TIME in (self.start, self.end)


class IdempotencyRow(SQLModel, table=True):
    """The first answer to a request sent with an ``Idempotency-Key``.

    A row with ``status`` null is a claim: that request is still running.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key", name="uq_idempotency_principal_key"),)

    id: int | None = Field(default=None, primary_key=True)
    principal: str = Field(max_length=100)
    key: str = Field(max_length=200)
    fingerprint: str = Field(max_length=64)
    status: int | None = None
    body: str | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=StoredTime)
    owner: str | None = Field(default=None, max_length=32)
    """The API server (``crane.api.instances``) running the request while it is a claim."""


class ServerRow(SQLModel, table=True):
    """An API server process of this database and when it last said it was alive."""

    __tablename__ = "api_servers"

    instance: str = Field(primary_key=True, max_length=32)
    seen_at: datetime = Field(default_factory=utcnow, index=True, sa_type=StoredTime)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
