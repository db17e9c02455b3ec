"""Docker hosts through the API: rows of ``docker_hosts`` in, public :class:`Host` out."""

from __future__ import annotations

from docker.errors import DockerException
from docker.utils import parse_host
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from crane.api.errors import Conflict, FieldError, Invalid, NotFound
from crane.api.schemas import Host, HostCreate, HostState
from crane.docker import store
from crane.docker.hosts import HostSpec
from crane.docker.reconciler import cargos_on
from crane.docker.store import HostRow
from crane.model import parse_islands


def spec_of(body: HostCreate) -> HostSpec:
    """The host a request describes; raises Invalid with the field to fix."""
    if body.gpus and not body.gpu_type:
        raise Invalid(
            "gpus needs gpuType, e.g. H100", [FieldError(["body", "gpuType"], "required")]
        )
    try:
        spec = HostSpec(
            name=body.name,
            url=body.docker_host,
            gpu_product=body.gpu_type,
            gpu_count=body.gpus,
            islands=body.islands,
            labels=body.labels,
            tls_ca=body.tls_ca,
            tls_cert=body.tls_cert,
            tls_key=body.tls_key,
            address=body.address,
        )
        parse_islands(spec.islands, spec.gpu_count)
    except (ValidationError, ValueError) as err:
        raise Invalid(f"the host is invalid: {_first_error(err)}") from None
    try:
        parse_host(spec.url)  # as the Docker client reads it: a port past 65535, a torn [IPv6
    except (DockerException, ValueError) as err:
        why = f"dockerHost {spec.url!r} is no Docker API address: {err}"
        fields = [FieldError(["body", "dockerHost"], why)]
        raise Invalid(f"the host is invalid: {why}", fields) from None
    return spec


def _first_error(err: Exception) -> str:
    if isinstance(err, ValidationError):
        return str(err.errors()[0]["msg"])
    return str(err)


def add(db: Engine, spec: HostSpec) -> None:
    """Store a new host row; raises Conflict when a host of that name exists."""
    with Session(db) as s:
        if s.get(HostRow, spec.name) is not None:
            raise Conflict(
                f"host {spec.name!r} exists: remove it first (crane node remove) or pick another "
                "name"
            )
        s.add(HostRow(name=spec.name, spec=spec.model_dump_json()))
        s.commit()


def row(s: Session, name: str) -> HostRow:
    """The row of host ``name``; raises NotFound when there is none."""
    found = s.get(HostRow, name)
    if found is None:
        raise NotFound(f"host {name!r} not found: list them with `crane node list`")
    return found


def drain(db: Engine, name: str, preempt: bool) -> None:
    """Stop placements on the host; the reconciler forgets it when its cargos are gone."""
    with Session(db) as s:
        found = row(s, name)
        found.draining = True
        found.preempt = found.preempt or preempt
        s.add(found)
        s.commit()


def host_out(s: Session, found: HostRow, errors: dict[str, str]) -> Host:
    """Host row ``found`` on the wire: ready unless ``errors`` (host -> why) names it."""
    spec = found.host()
    return Host(
        name=found.name,
        docker_host=spec.url,
        gpu_type=spec.gpu_product,
        gpus=spec.gpu_count,
        islands=spec.islands,
        labels=spec.labels,
        simulated=spec.simulated,
        address=spec.address,
        state=HostState.DRAINING if found.draining else HostState.ACTIVE,
        preempt=found.preempt,
        ready=found.name not in errors,
        message=errors.get(found.name, ""),
        cargos=len(cargos_on(s, found.name)),
        created_at=found.created_at,
    )


def hosts_out(db: Engine, errors: dict[str, str]) -> list[Host]:
    """Every host on the wire, oldest first (see :func:`host_out`)."""
    with Session(db) as s:
        return [host_out(s, r, errors) for r in store.hosts(s)]
