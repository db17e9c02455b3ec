"""Creating what ``-f`` manifests describe, for ``crane mc create`` and ``crane cargo add``,
and deleting several objects in turn."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from crane.cli.term import say

if TYPE_CHECKING:
    from crane.client import Cargo, Client, MiniCluster


def create_from_files(client: Client, paths: list[str]) -> list[MiniCluster | Cargo]:
    """Create every manifest of ``paths`` in order (all are parsed first, so a bad file creates
    nothing), in the tenant they name (:func:`crane.cli.manifest.acting_tenant`); a message
    per object on stderr. As kubectl, one the server refuses (it exists,
    its MiniCluster is missing, a field is invalid) is reported and the others are still
    created, then the last such failure is raised."""
    from crane.cli.errors import describe
    from crane.cli.manifest import acting_tenant, load_manifests
    from crane.client import Conflict, Invalid, NotFound
    from crane.model.specs import CargoSpec, MiniClusterSpec

    created: list[MiniCluster | Cargo] = []
    failed: Conflict | Invalid | NotFound | None = None
    manifests = load_manifests(paths)
    client.tenant = acting_tenant(manifests, client.tenant)
    for manifest in manifests:
        try:
            if isinstance(manifest.spec, MiniClusterSpec):
                created.append(
                    client.create_minicluster(manifest.name, manifest.spec, labels=manifest.labels)
                )
                say(f"minicluster/{manifest.name} created")
            elif isinstance(manifest.spec, CargoSpec):
                created.append(client.create_cargo(manifest.spec, name=manifest.name))
                say(f"cargo/{manifest.name} created")
        except (Conflict, Invalid, NotFound) as exc:
            if failed is not None:
                say(describe(failed).line())
            failed = exc
    if failed is not None:
        raise failed
    return created


def delete_each(names: Sequence[str], delete: Callable[[str], object], kind: str) -> None:
    """Delete each of ``names`` (all of one ``kind``) in turn; see :func:`delete_in_turn`."""
    delete_in_turn([(kind, name, delete) for name in names])


def delete_in_turn(targets: Sequence[tuple[str, str, Callable[[str], object]]]) -> None:
    """Delete each ``(kind, name, delete)`` in turn, as kubectl does: one not found or in
    conflict is reported and the others are still deleted, then the last such failure is raised
    (exit 1); any other error (an unreachable server, a bad token) stops at once."""
    from crane.cli.errors import describe
    from crane.client import Conflict, NotFound

    failed: NotFound | Conflict | None = None
    for kind, name, delete in targets:
        try:
            delete(name)
        except (NotFound, Conflict) as exc:
            if failed is not None:
                say(describe(failed).line())
            failed = exc
            continue
        say(f"{kind}/{name} deleted")
    if failed is not None:
        raise failed
