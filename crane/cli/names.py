"""Shell completion of MiniCluster and cargo names, asked of the API (quietly: no API, no names).

Completion runs with the same context, environment and config as the command being typed.
"""

from __future__ import annotations


def _quiet(kind: str, incomplete: str) -> list[str]:
    try:
        from crane.cli.options import client

        with client() as api:
            found = api.list_miniclusters() if kind == "mc" else api.list_cargos()
    except Exception:
        return []
    return sorted(o.name for o in found if o.name.startswith(incomplete))


def minicluster(incomplete: str) -> list[str]:
    """MiniCluster names starting with ``incomplete``."""
    return _quiet("mc", incomplete)


def cargo(incomplete: str) -> list[str]:
    """Cargo names starting with ``incomplete``."""
    return _quiet("cargo", incomplete)
