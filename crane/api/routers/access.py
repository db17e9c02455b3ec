"""Tenants, tokens, the audit log and ``whoami``."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from crane.api.auth import Principal, mint
from crane.api.db import AuditRow, TenantRow, TokenRow
from crane.api.deps import AppState, Caller, Pages, State
from crane.api.errors import (
    Conflict,
    CraneError,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    Unauthorized,
    Unavailable,
)
from crane.api.podsecurity import apply_level
from crane.api.routers.miniclusters import PROBLEMS
from crane.api.schemas import (
    NAME_PATTERN,
    AuditEntry,
    Page,
    Scope,
    Tenant,
    TenantCreate,
    TenantPatch,
    TenantShareStatus,
    TokenCreate,
    TokenCreated,
    TokenPublic,
)
from crane.api.tenancy import reserved_reason
from crane.model.podsecurity import parse_level
from crane.model.shares import TenantShares

log = logging.getLogger(__name__)
router = APIRouter(tags=["access"], responses=PROBLEMS)
TenantName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63)]
TokenId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,32}$")]


def _token_public(row: TokenRow) -> TokenPublic:
    return TokenPublic(
        id=row.id,
        scope=Scope(row.scope),
        tenant=row.tenant,
        mini_cluster=row.minicluster,
        description=row.description,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked=row.revoked,
    )


@router.get("/whoami", operation_id="whoAmI", response_model=TokenPublic)
async def whoami(who: Caller, state: State) -> TokenPublic:
    """The calling token (never its secret)."""

    def load() -> TokenRow | None:
        with Session(state.db) as session:
            return session.get(TokenRow, who.token_id)

    row = await run_in_threadpool(load)
    if row is None:
        raise NotFound("this token was deleted: ask an admin for a new one")
    return _token_public(row)


# --- tenants --------------------------------------------------------------------------------


@router.get("/tenants", operation_id="listTenants", response_model=Page[Tenant])
async def list_tenants(who: Caller, state: State, pages: Pages) -> Page[Tenant]:
    """Every tenant, by name, with its shares per GPU type and their use (admin)."""
    who.require(Scope.ADMIN)

    def load() -> tuple[list[TenantRow], int]:
        with Session(state.db) as session:
            rows = list(session.exec(select(TenantRow).order_by(col(TenantRow.name))))
        return rows[pages.offset : pages.offset + pages.limit], len(rows)

    rows, count = await run_in_threadpool(load)
    shares = await _shares(state)
    return Page(items=[_tenant(r, shares.get(r.name, [])) for r in rows], count=count)


async def _shares(state: AppState) -> dict[str, list[TenantShareStatus]]:
    """Every tenant's shares with their use; none while the backend cannot be reached (the
    tenants themselves are the API's, and listed all the same)."""
    try:
        return await state.backend.tenant_shares()
    except Unavailable as err:
        log.warning("tenants listed without their shares: %s", err.detail)
        return {}


@router.get("/tenants/{name}", operation_id="getTenant", response_model=Tenant)
async def get_tenant(name: TenantName, who: Caller, state: State) -> Tenant:
    """One tenant with its shares per GPU type and what it uses and borrows of them (admin)."""
    who.require(Scope.ADMIN)
    row = await run_in_threadpool(_load_tenant, state, name)
    return _tenant(row, (await _shares(state)).get(name, []))


@router.put("/tenants/{name}/shares", operation_id="putTenantShares", response_model=Tenant)
async def put_tenant_shares(
    name: TenantName, body: TenantShares, who: Caller, state: State
) -> Tenant:
    """Replace a tenant's shares per GPU type (admin): guaranteed GPUs (nominal), borrowing
    and lending limits and weight; an empty list removes them. Docker mode stores them on the
    tenant row; kube mode answers 409: there they are TenantShare resources."""
    who.require(Scope.ADMIN)
    await run_in_threadpool(_load_tenant, state, name)
    await state.backend.set_tenant_shares(name, body)
    return await get_tenant(name, who, state)


def _load_tenant(state: AppState, name: str) -> TenantRow:
    with Session(state.db) as session:
        row = session.get(TenantRow, name)
    if row is None:
        raise NotFound(f"tenant {name!r} not found")
    return row


@router.post("/tenants", operation_id="createTenant", response_model=Tenant, status_code=201)
async def create_tenant(body: TenantCreate, who: Caller, state: State) -> Tenant:
    """Add a tenant (a namespace in kube mode); reserved namespaces are refused (422)."""
    who.require(Scope.ADMIN)
    why = reserved_reason(body.name, state.settings)
    if why is not None:
        raise Invalid(why, [FieldError(["body", "name"], why)])

    def add() -> TenantRow:
        with Session(state.db) as session:
            row = TenantRow(name=body.name, pod_security=body.pod_security.value)
            _revoke_tenant_tokens(session, body.name)  # of a namesake a crash left unrevoked
            session.add(row)  # a tenant of the name already: the commit fails, nothing changes
            try:
                session.commit()
            except IntegrityError:
                raise Conflict(f"tenant {body.name!r} exists already") from None
            session.refresh(row)
            return row

    row = await run_in_threadpool(add)
    await apply_level(state, row.name, body.pod_security)
    return _tenant(row)


def _revoke_tenant_tokens(session: Session, tenant: str) -> None:
    """Mark every token of ``tenant`` revoked (in ``session``, not committed): at a delete,
    and at a create, for the tokens of a deleted namesake whose delete a crash cut short."""
    for token in session.exec(select(TokenRow).where(TokenRow.tenant == tenant)):
        if not token.revoked:
            token.revoked = True
            session.add(token)


def _tenant(row: TenantRow, shares: list[TenantShareStatus] | None = None) -> Tenant:
    return Tenant(
        name=row.name,
        created_at=row.created_at,
        pod_security=parse_level(row.pod_security),
        shares=shares or [],
    )


@router.patch("/tenants/{name}", operation_id="patchTenant", response_model=Tenant)
async def patch_tenant(name: TenantName, body: TenantPatch, who: Caller, state: State) -> Tenant:
    """Change a tenant's Pod Security level (admin): checked for templates created from now on
    and for every pod or container made from now on (a waiting cargo that breaks it fails,
    reason ``PodSecurity``); running ones are left alone.

    On Kubernetes the tenant's namespace label ``pod-security.kubernetes.io/enforce`` follows.
    """
    who.require(Scope.ADMIN)

    def change() -> TenantRow:
        with Session(state.db) as session:
            row = session.get(TenantRow, name)
            if row is None:
                raise NotFound(f"tenant {name!r} not found")
            row.pod_security = body.pod_security.value
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    row = await run_in_threadpool(change)
    await apply_level(state, name, body.pod_security)
    return _tenant(row)


@router.delete("/tenants/{name}", operation_id="deleteTenant", status_code=204)
async def delete_tenant(name: TenantName, who: Caller, state: State) -> Response:
    """Delete a tenant with no MiniClusters left (none being deleted either: their cargos may
    still hold GPUs, and their last events belong to this tenant, not to a namesake made next)
    and revoke its tokens.

    Its MiniClusters are looked for again once the tenant is gone: a MiniCluster created
    meanwhile either is found then (the tenant comes back as it was, 409) or finds its tenant
    gone (its create answers 404 and takes it back), on any server of the database. Its
    tokens are revoked last (and again when a tenant of the name is made: a crash between the
    two leaves none working); a token minted for it meanwhile finds it gone and is revoked too.
    """
    who.require(Scope.ADMIN)
    if name == state.settings.default_tenant:
        raise Conflict(f"{name!r} is the default tenant and stays")

    def exists() -> bool:
        with Session(state.db) as session:
            return session.get(TenantRow, name) is not None

    def drop() -> dict[str, Any]:
        with Session(state.db) as session:
            row = session.get(TenantRow, name)
            if row is None:
                raise NotFound(f"tenant {name!r} not found")
            kept = row.model_dump()
            session.delete(row)
            session.commit()
            return kept

    def restore(kept: dict[str, Any]) -> None:
        with Session(state.db) as session:
            session.add(TenantRow.model_validate(kept))
            session.commit()

    def revoke_tokens() -> None:
        with Session(state.db) as session:
            _revoke_tenant_tokens(session, name)
            session.commit()

    still_has = (
        f"tenant {name!r} still has MiniClusters: delete them first, and ask again once they "
        "are gone (one being deleted stays until its cargos have stopped)"
    )
    if not await run_in_threadpool(exists):
        raise NotFound(f"tenant {name!r} not found")
    if await state.backend.has_miniclusters(name):
        raise Conflict(still_has)
    kept = await run_in_threadpool(drop)
    try:
        left = await state.backend.has_miniclusters(name)
    except BaseException:
        await run_in_threadpool(restore, kept)
        raise
    if left:  # created while this delete ran: the tenant stays as it was
        await run_in_threadpool(restore, kept)
        raise Conflict(still_has)
    await run_in_threadpool(revoke_tokens)
    return Response(status_code=204)


# --- tokens ---------------------------------------------------------------------------------


def _may_manage(who: Principal, tenant: str | None, scope: Scope) -> None:
    """Admins manage every token; a tenant token manages its tenant's non-admin tokens."""
    if who.is_admin:
        return
    who.require(Scope.TENANT)
    if scope is Scope.ADMIN:
        raise Forbidden("only an admin token can create or revoke admin tokens")
    if tenant != who.tenant:
        raise NotFound(f"tenant {tenant!r} not found")


def _gone_meanwhile(session: Session, who: Principal, tenant: str | None) -> CraneError | None:
    """Why a token just stored must not work: its minter (not an admin token) was revoked,
    or its tenant deleted, while it was minted. None when neither happened."""
    if not who.is_admin:
        minter = session.get(TokenRow, who.token_id, populate_existing=True)
        if minter is None or minter.revoked:
            return Unauthorized(f"token {who.token_id} was revoked: ask an admin for a new one")
    if tenant is not None and session.get(TenantRow, tenant, populate_existing=True) is None:
        return NotFound(f"tenant {tenant!r} was deleted while the token was minted")
    return None


@router.post("/tokens", operation_id="createToken", response_model=TokenCreated, status_code=201)
async def create_token(body: TokenCreate, who: Caller, state: State) -> TokenCreated:
    """Mint a token; its secret is in this answer only. Give app managers a minicluster token."""
    _may_manage(who, body.tenant, body.scope)
    expires_at = who.lifetime(body.expires_at)

    def add() -> tuple[TokenRow, str]:
        with Session(state.db) as session:
            if body.tenant is not None and session.get(TenantRow, body.tenant) is None:
                raise NotFound(f"tenant {body.tenant!r} not found: create it first")
            row, text = mint(
                body.scope, body.tenant, body.mini_cluster, body.description, expires_at
            )
            row.minted_by = who.token_id
            session.add(row)
            session.commit()
            session.refresh(row)
            # stored first, then its minter and tenant looked at: see revoke_token, delete_tenant
            why = _gone_meanwhile(session, who, body.tenant)
            if why is not None:
                row.revoked = True
                session.add(row)
                session.commit()
                raise why
            return row, text

    row, text = await run_in_threadpool(add)
    return TokenCreated(**_token_public(row).model_dump(), token=text)


@router.get("/tokens", operation_id="listTokens", response_model=Page[TokenPublic])
async def list_tokens(who: Caller, state: State, pages: Pages) -> Page[TokenPublic]:
    """Admins see every token, a tenant token its tenant's; a token whose stored times were
    edited into text that is no time is left out (it is refused; revoke it by its id)."""
    who.require(Scope.ADMIN, Scope.TENANT)

    def load() -> list[TokenRow]:
        query = select(TokenRow).order_by(col(TokenRow.created_at))
        if not who.is_admin:
            query = query.where(TokenRow.tenant == who.tenant)
        with Session(state.db) as session:
            return list(session.exec(query))

    rows = await run_in_threadpool(load)
    if unreadable := [r.id for r in rows if r.unreadable]:
        log.warning("tokens left out of the list, a stored time not a time: %s", unreadable)
        rows = [r for r in rows if not r.unreadable]
    items = [_token_public(r) for r in rows[pages.offset : pages.offset + pages.limit]]
    return Page(items=items, count=len(rows))


def _with_minted(session: Session, root: TokenRow) -> list[TokenRow]:
    """``root`` and, unless it is an admin token, every token minted from it, transitively.

    An admin token's tokens survive it, so rotating an admin token does not cut off every
    tenant; a leaked tenant token takes what it minted down with it.
    """
    found = [root]
    if root.scope == Scope.ADMIN.value:
        return found
    frontier = [root.id]
    seen = {root.id}
    while frontier:
        children = session.exec(select(TokenRow).where(col(TokenRow.minted_by).in_(frontier)))
        frontier = []
        for child in children:
            if child.id not in seen and child.scope != Scope.ADMIN.value:
                seen.add(child.id)
                found.append(child)
                frontier.append(child.id)
    return found


@router.delete("/tokens/{token_id}", operation_id="revokeToken", status_code=204)
async def revoke_token(token_id: TokenId, who: Caller, state: State) -> Response:
    """Revoke a token: it stops working at once, and so do the tokens a tenant or MiniCluster
    token minted, and theirs. Admins revoke any; a tenant token revokes its tenant's non-admin
    tokens (an admin token is 403, another tenant's token 404)."""

    def revoke() -> None:
        with Session(state.db) as session:
            row = session.get(TokenRow, token_id)
            if row is None or (not who.is_admin and row.tenant != who.tenant):
                raise NotFound(f"token {token_id!r} not found")
            _may_manage(who, row.tenant, Scope(row.scope))
            # Until a look finds nothing more to revoke, each committed before the next: a token
            # minted meanwhile is either found by a later look, or stored after its minter was
            # revoked, and then its mint (which looks at the minter once stored) revokes it.
            while found := [t for t in _with_minted(session, row) if not t.revoked]:
                for revoked in found:
                    revoked.revoked = True
                    session.add(revoked)
                session.commit()

    await run_in_threadpool(revoke)
    return Response(status_code=204)


# --- audit ----------------------------------------------------------------------------------


@router.get("/audit", operation_id="listAudit", response_model=Page[AuditEntry])
async def list_audit(who: Caller, state: State, pages: Pages) -> Page[AuditEntry]:
    """Every mutating call, newest first: token, tenant, method and path, status, detail."""
    who.require(Scope.ADMIN)

    def load() -> tuple[list[AuditRow], int]:
        with Session(state.db) as session:
            query = select(AuditRow).order_by(col(AuditRow.id).desc())
            rows = list(session.exec(query.offset(pages.offset).limit(pages.limit)))
            count = session.exec(select(func.count()).select_from(AuditRow)).one()
            return rows, count

    rows, count = await run_in_threadpool(load)
    items = [AuditEntry.model_validate(r, from_attributes=True) for r in rows]
    return Page(items=items, count=count)
