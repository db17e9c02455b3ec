"""Creating what ``-f`` manifests describe, for ``crane mc create`` and ``crane cargo add``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crane.cli.term import say

if TYPE_CHECKING:
    from crane.client import Cargo, Client, MiniCluster


def create_from_files(client: Client, paths: list[str]) -> list[MiniCluster | Cargo]:
    """Create every manifest of ``paths`` in order (all are parsed first, so a bad file creates
    nothing); a message per object on stderr."""
    from crane.cli.manifest import load_manifests
    from crane.model.specs import CargoSpec, MiniClusterSpec

    created: list[MiniCluster | Cargo] = []
    for manifest in load_manifests(paths):
        if isinstance(manifest.spec, MiniClusterSpec):
            created.append(
                client.create_minicluster(manifest.name, manifest.spec, labels=manifest.labels)
            )
            say(f"minicluster/{manifest.name} created")
        elif isinstance(manifest.spec, CargoSpec):
            created.append(client.create_cargo(manifest.spec, name=manifest.name))
            say(f"cargo/{manifest.name} created")
    return created
