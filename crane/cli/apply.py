"""Creating what ``-f`` manifests describe, for ``crane mc create`` and ``crane cargo add``."""

from __future__ import annotations

from crane.cli.manifest import load_manifests
from crane.cli.term import say
from crane.client import Cargo, Client, MiniCluster
from crane.model.specs import CargoSpec, MiniClusterSpec


def create_from_files(client: Client, paths: list[str]) -> list[MiniCluster | Cargo]:
    """Create every manifest of ``paths`` in order (all are parsed first, so a bad file creates
    nothing); a message per object on stderr."""
    created: list[MiniCluster | Cargo] = []
    for manifest in load_manifests(paths):
        if isinstance(manifest.spec, MiniClusterSpec):
            created.append(client.create_minicluster(manifest.name, manifest.spec))
            say(f"minicluster/{manifest.name} created")
        elif isinstance(manifest.spec, CargoSpec):
            created.append(client.create_cargo(manifest.spec, name=manifest.name))
            say(f"cargo/{manifest.name} created")
    return created
