"""MiniClusters and Cargos as ``-o json|yaml`` prints them: the CRD (manifest) shape.

``crane mc get NAME -o yaml`` can be fed back to ``crane mc create -f``, and a list is
``{kind: List, items: [...], count: N}``, which ``-f`` also reads. No typer here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crane.cli.render import to_plain

if TYPE_CHECKING:
    from crane.client import Cargo, MiniCluster


def manifest(obj: MiniCluster | Cargo) -> dict[str, Any]:
    """``apiVersion``, ``kind``, ``metadata``, ``spec`` and ``status`` of one object."""
    from crane.cli.manifest import API_VERSION
    from crane.client import MiniCluster

    plain = to_plain(obj)
    metadata: dict[str, Any] = {"name": obj.name, "tenant": obj.tenant, "uid": obj.uid}
    if isinstance(obj, MiniCluster):
        if obj.labels:
            metadata["labels"] = dict(obj.labels)
        metadata["generation"] = obj.generation
    metadata["creationTimestamp"] = plain.get("createdAt")
    return {
        "apiVersion": API_VERSION,
        "kind": "MiniCluster" if isinstance(obj, MiniCluster) else "Cargo",
        "metadata": metadata,
        "spec": plain.get("spec", {}),
        "status": plain.get("status", {}),
    }


def listing(objs: Sequence[MiniCluster | Cargo]) -> dict[str, Any]:
    """Many objects as one document: ``{kind: List, items, count}`` (like ``usage``'s items)."""
    return {"kind": "List", "items": [manifest(o) for o in objs], "count": len(objs)}


def ref(obj: MiniCluster | Cargo) -> str:
    """``minicluster/NAME`` or ``cargo/NAME``, as ``-o name`` prints it."""
    from crane.client import MiniCluster

    return f"{'minicluster' if isinstance(obj, MiniCluster) else 'cargo'}/{obj.name}"
