"""Bearer tokens: minting, hashing, lookup, and what each scope may reach.

A token reads ``crane_<id>_<secret>``; the database keeps the id and the SHA-256 of the
secret, so a leaked database grants nothing. Secrets have 256 bits of entropy, which is why a
fast hash is enough (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from crane.api.db import TenantRow, TokenRow
from crane.api.errors import Forbidden, Invalid, NotFound, Unauthorized
from crane.api.schemas import Scope

PREFIX = "crane_"


@dataclass(frozen=True)
class Principal:
    """Who calls: the token's id and scope, its tenant and, for app managers, its MiniCluster."""

    token_id: str
    scope: Scope
    tenant: str | None
    minicluster: str | None
    expires_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the token has the admin scope."""
        return self.scope is Scope.ADMIN

    def require(self, *scopes: Scope) -> None:
        """Raise 403 unless this token has one of ``scopes``."""
        if self.scope not in scopes:
            names = " or ".join(s.value for s in scopes)
            raise Forbidden(f"this needs a token of scope {names}; yours is {self.scope.value}")

    def tenant_for(self, requested: str | None, default: str) -> str:
        """The tenant a call acts in; another tenant than the token's is 404, as if absent."""
        if self.is_admin:
            return requested or default
        assert self.tenant is not None
        if requested is not None and requested != self.tenant:
            raise NotFound(f"tenant {requested!r} not found")
        return self.tenant

    def check_minicluster(
        self, name: str, kind: str = "minicluster", obj: str | None = None
    ) -> None:
        """A MiniCluster-scoped token sees only its MiniCluster (and its cargos): others are 404."""
        if self.scope is Scope.MINICLUSTER and name != self.minicluster:
            raise NotFound(f"{kind} {obj or name!r} not found")

    def lifetime(self, requested: datetime | None) -> datetime | None:
        """The expiry of a token this one mints: never later than this token's own (422 if
        asked), and this token's when none is asked, so a short-lived token cannot mint a
        permanent one."""
        if self.expires_at is None:
            return requested
        if requested is None:
            return self.expires_at
        if requested > self.expires_at:
            raise Invalid(
                f"a token cannot outlive the token that mints it: yours expires "
                f"{self.expires_at:%Y-%m-%d %H:%M}Z; ask for that or earlier"
            )
        return requested


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint(
    scope: Scope,
    tenant: str | None = None,
    minicluster: str | None = None,
    description: str = "",
    expires_at: datetime | None = None,
    secret: str | None = None,
) -> tuple[TokenRow, str]:
    """A new token row and its plain text (shown once). ``secret`` fixes the whole token text."""
    if secret is not None:
        token_id, _, raw = secret.removeprefix(PREFIX).partition("_")
        if not secret.startswith(PREFIX) or not token_id or not raw:
            raise ValueError(f"a bootstrap token must look like {PREFIX}<id>_<secret>")
        text = secret
    else:
        token_id, raw = secrets.token_hex(8), secrets.token_urlsafe(32)
        text = f"{PREFIX}{token_id}_{raw}"
    row = TokenRow(
        id=token_id,
        secret_sha256=_sha256(raw),
        scope=scope.value,
        tenant=tenant,
        minicluster=minicluster,
        description=description,
        expires_at=expires_at,
    )
    return row, text


def authenticate(engine: Engine, header: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer`` header; 401 with the remedy otherwise."""
    if not header:
        raise Unauthorized("no token: send 'Authorization: Bearer <token>' (see crane login)")
    kind, _, text = header.partition(" ")
    text = text.strip()
    # printable ASCII only: a NUL (a JSON body may carry one) is no text PostgreSQL can query
    if kind.lower() != "bearer" or not text.startswith(PREFIX) or not _printable_ascii(text):
        raise Unauthorized("malformed token: send 'Authorization: Bearer crane_<id>_<secret>'")
    token_id, _, raw = text.removeprefix(PREFIX).partition("_")
    with Session(engine) as session:
        row = session.get(TokenRow, token_id)
    if row is None or not hmac.compare_digest(row.secret_sha256, _sha256(raw)):
        raise Unauthorized("unknown token: ask an admin for a new one (crane token create)")
    if row.revoked:
        raise Unauthorized(f"token {token_id} was revoked: ask an admin for a new one")
    if row.unreadable:
        raise Unauthorized(
            f"token {token_id} cannot be read (a time stored for it is not a time): "
            "ask an admin to revoke it and give you a new one"
        )
    if row.expires_at is not None and _aware(row.expires_at) <= datetime.now(UTC):
        raise Unauthorized(f"token {token_id} expired at {row.expires_at:%Y-%m-%d %H:%M}Z")
    expires = None if row.expires_at is None else _aware(row.expires_at)
    return Principal(token_id, Scope(row.scope), row.tenant, row.minicluster, expires)


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def bootstrap(engine: Engine, default_tenant: str, token: str | None) -> str | None:
    """Create the default tenant and, when no admin token exists, an admin token.

    Returns the new token's text (to print once), or None when nothing was minted.
    """
    with Session(engine) as session:
        if session.get(TenantRow, default_tenant) is None:
            session.add(TenantRow(name=default_tenant))
            session.commit()
        if token is not None:
            row, text = mint(Scope.ADMIN, description="bootstrap", secret=token)
            existing = session.get(TokenRow, row.id)
            if existing is not None and existing.secret_sha256 == row.secret_sha256:
                return None
            if existing is not None:
                raise ValueError(f"token id {row.id} exists with another secret: choose another id")
            session.add(row)
            session.commit()
            return text
        has_admin = session.exec(
            select(TokenRow).where(TokenRow.scope == Scope.ADMIN.value, TokenRow.revoked == False)  # noqa: E712
        ).first()
        if has_admin is not None:
            return None
        row, text = mint(Scope.ADMIN, description="bootstrap")
        session.add(row)
        session.commit()
        return text
