"""Docker hosts of plain-Docker mode (admin only); in kube mode every call is a 409."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from crane.api.deps import Caller, Pages, State
from crane.api.routers.miniclusters import PROBLEMS
from crane.api.schemas import NAME_PATTERN, Host, HostCreate, Page, Scope

router = APIRouter(prefix="/hosts", tags=["hosts"], responses=PROBLEMS)
HostName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63)]


@router.post("", operation_id="createHost", response_model=Host, status_code=201)
async def create(body: HostCreate, who: Caller, state: State) -> Host:
    """Add a Docker host; its labels act as topology levels (``rack=r2``)."""
    who.require(Scope.ADMIN)
    return await state.backend.add_host(body)


@router.get("", operation_id="listHosts", response_model=Page[Host])
async def list_(who: Caller, state: State, pages: Pages) -> Page[Host]:
    """Every Docker host, oldest first (admin)."""
    who.require(Scope.ADMIN)
    items = await state.backend.list_hosts()
    return Page(items=items[pages.offset : pages.offset + pages.limit], count=len(items))


@router.get("/{name}", operation_id="getHost", response_model=Host)
async def get(name: HostName, who: Caller, state: State) -> Host:
    """One Docker host: its GPUs, labels, drain state and whether it answers (admin)."""
    who.require(Scope.ADMIN)
    return await state.backend.get_host(name)


@router.delete("/{name}", operation_id="deleteHost", response_model=Host, status_code=202)
async def delete(
    name: HostName,
    who: Caller,
    state: State,
    preempt: Annotated[
        bool,
        Query(
            description="move OnFailure cargos elsewhere and fail Never ones, instead of "
            "waiting for them to end"
        ),
    ] = False,
) -> Host:
    """Drain the host: no new placements at once; it is forgotten once no cargo runs there."""
    who.require(Scope.ADMIN)
    return await state.backend.remove_host(name, preempt)
