"""YAML manifests as ``kubectl create -f`` takes them: the CRD shape, several per file.

No typer here.

A manifest is ``apiVersion: crane.io/v1alpha1``, ``kind: MiniCluster|Cargo``, ``metadata.name``
and ``spec``; documents are separated by ``---``; ``-`` reads stdin.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from crane.cli.term import UsageError
from crane.model.specs import CargoSpec, MiniClusterSpec

API_VERSION = "crane.io/v1alpha1"
SPECS: dict[str, type[MiniClusterSpec] | type[CargoSpec]] = {
    "MiniCluster": MiniClusterSpec,
    "Cargo": CargoSpec,
}


class ManifestError(UsageError):
    """A manifest that cannot be used; the message names the file, document and field."""


@dataclass(frozen=True)
class Manifest:
    """One document of a manifest: its kind, name, validated spec and where it was read."""

    kind: Literal["MiniCluster", "Cargo"]
    name: str
    spec: MiniClusterSpec | CargoSpec
    source: str


def _field_errors(exc: ValidationError) -> str:
    return "; ".join(
        ".".join(["spec", *(str(p) for p in err["loc"])]) + f": {err['msg']}"
        for err in exc.errors()
    )


def _one(doc: Any, where: str) -> Manifest:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: expected a mapping with apiVersion, kind, metadata, spec")
    version, kind = doc.get("apiVersion"), doc.get("kind")
    if version != API_VERSION:
        raise ManifestError(f"{where}: apiVersion is {version!r}; use {API_VERSION}")
    if kind not in SPECS:
        raise ManifestError(f"{where}: kind is {kind!r}; use MiniCluster or Cargo")
    name = (doc.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{where}: metadata.name is missing; give the {kind} a name")
    try:
        spec = SPECS[kind].model_validate(doc.get("spec") or {})
    except ValidationError as exc:
        raise ManifestError(f"{where} ({kind} {name}): {_field_errors(exc)}") from exc
    return Manifest(kind=kind, name=name, spec=spec, source=where)


def parse_manifests(text: str, source: str = "<stdin>") -> list[Manifest]:
    """Every manifest in ``text``, empty documents skipped. Raises ManifestError or YAMLError."""
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    if not docs:
        raise ManifestError(f"{source}: no manifest found")
    out: list[Manifest] = []
    for i, doc in enumerate(docs, start=1):
        where = source if len(docs) == 1 else f"{source} (document {i})"
        if isinstance(doc, dict) and doc.get("kind") == "List":
            out.extend(
                _one(item, f"{where} item {j}") for j, item in enumerate(doc.get("items") or [], 1)
            )
        else:
            out.append(_one(doc, where))
    return out


def load_manifests(paths: list[str]) -> list[Manifest]:
    """Manifests from files (``-`` is stdin), in order."""
    out: list[Manifest] = []
    for path in paths:
        if path == "-":
            out.extend(parse_manifests(sys.stdin.read(), "<stdin>"))
        else:
            out.extend(parse_manifests(Path(path).read_text(), path))
    return out
