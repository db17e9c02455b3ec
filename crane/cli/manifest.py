"""YAML manifests as ``kubectl create -f`` takes them: the CRD shape, several per file.

No typer here.

A manifest is ``apiVersion: crane.io/v1alpha1``, ``kind: MiniCluster|Cargo``, ``metadata.name``
and ``spec``; documents are separated by ``---``; ``-`` reads stdin.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import yaml
from pydantic import ValidationError
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from crane.cli.term import UsageError
from crane.model.specs import CargoSpec, MiniClusterSpec

API_VERSION = "crane.io/v1alpha1"
SPECS: dict[str, type[MiniClusterSpec] | type[CargoSpec]] = {
    "MiniCluster": MiniClusterSpec,
    "Cargo": CargoSpec,
}


MAX_MANIFEST_BYTES = 16 * 1024 * 1024
"""Largest manifest file (or stdin) read; more is refused instead of filling memory."""
MAX_MANIFEST_DEPTH = 100
"""Deepest nesting of a manifest's mappings and lists (a pod template may nest 64 levels)."""
MAX_MANIFEST_VALUES = 1_000_000
"""Most values one document may hold once its aliases are expanded (a YAML bomb holds more)."""


class ManifestError(UsageError):
    """A manifest that cannot be used; the message names the file, document and field."""


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses what a manifest never needs and a hostile file uses:
    nesting past :data:`MAX_MANIFEST_DEPTH`, aliases that expand a document past
    :data:`MAX_MANIFEST_VALUES` values (or refer to themselves), and a key given twice in one
    mapping (kubectl refuses it too; taking the last would create something else silently)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        """The next node, refusing it past the nesting limit before recursing into it."""
        self._depth += 1
        try:
            if self._depth > MAX_MANIFEST_DEPTH:
                raise ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_MANIFEST_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node | None:
        """The next document's node, refused when its aliases expand it past the limit."""
        node = super().compose_document()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_yaml_int(self, node: Node) -> int:
        """The integer of ``node``; one Python will not convert (past 4300 digits) is a
        ConstructorError at its line, not a ValueError."""
        try:
            return super().construct_yaml_int(node)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ConstructorError(
                None, None, f"the number is too long: {exc}".split(";")[0], node.start_mark
            ) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The mapping of ``node``, refusing a key given twice (``<<`` merges still override)."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: the base class says so
            if duplicate:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice; keep one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _check_expansion(root: Node) -> None:
    """Raise ComposerError when ``root`` refers to itself or expands past the value limit.

    Counts each node once per place it is used (an alias repeats its anchor's values), with
    the count of a node shared by aliases computed once, so a bomb is caught in linear time.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            open_.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_MANIFEST_VALUES:
                raise ComposerError(
                    None,
                    None,
                    f"expands to more than {MAX_MANIFEST_VALUES} values through its aliases",
                    node.start_mark,
                )
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_:
            raise ComposerError(None, None, "an alias refers to itself", node.start_mark)
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


@dataclass(frozen=True)
class Manifest:
    """One document of a manifest: its kind, name, validated spec and where it was read."""

    kind: Literal["MiniCluster", "Cargo"]
    name: str
    spec: MiniClusterSpec | CargoSpec
    source: str
    labels: dict[str, str] = field(default_factory=dict)
    """``metadata.labels`` (MiniClusters only; the server checks them as Kubernetes would)."""
    tenant: str | None = None
    """``metadata.tenant`` (as ``crane mc get -o yaml`` writes it) or ``metadata.namespace``
    (a Kubernetes manifest's): the tenant the object belongs in, when the file says."""


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
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ManifestError(f"{where}: metadata must be a mapping with a name")
    name = metadata.get("name")
    if name is not None and not isinstance(name, str):  # YAML read 2030-01-01, yes, 0x1f so
        raise ManifestError(
            f"{where}: metadata.name {name} is a {type(name).__name__}, not text: quote it "
            "in the file"
        )
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{where}: metadata.name is missing; give the {kind} a name")
    tenant = metadata.get("tenant", metadata.get("namespace"))
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise ManifestError(f"{where} ({kind} {name}): metadata.tenant must be a tenant's name")
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ManifestError(
            f"{where} ({kind} {name}): metadata.labels must map names to strings "
            "(quote values such as 'true' or '1')"
        )
    if labels and kind == "Cargo":
        raise ManifestError(
            f"{where} (Cargo {name}): a Cargo has no labels; remove metadata.labels "
            "(label its MiniCluster)"
        )
    try:
        spec = SPECS[kind].model_validate(doc.get("spec") or {})
    except ValidationError as exc:
        raise ManifestError(f"{where} ({kind} {name}): {_field_errors(exc)}") from exc
    return Manifest(kind=kind, name=name, spec=spec, source=where, labels=labels, tenant=tenant)


def _documents(text: str, source: str) -> list[Any]:
    """The non-empty YAML documents of ``text``; YAML errors name ``source``."""
    loader = _Loader(text)
    loader.name = source
    docs: list[Any] = []
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
        return docs
    finally:
        loader.dispose()


def parse_manifests(text: str, source: str = "<stdin>") -> list[Manifest]:
    """Every manifest in ``text``, empty documents skipped. Raises ManifestError or YAMLError."""
    docs = _documents(text, source)
    if not docs:
        raise ManifestError(f"{source}: no manifest found")
    out: list[Manifest] = []
    for i, doc in enumerate(docs, start=1):
        where = source if len(docs) == 1 else f"{source} (document {i})"
        if isinstance(doc, dict) and doc.get("kind") == "List":
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise ManifestError(f"{where}: items of a List must be a list of manifests")
            out.extend(_one(item, f"{where} item {j}") for j, item in enumerate(items, 1))
        else:
            out.append(_one(doc, where))
    return out


def _text(stream: BinaryIO, source: str) -> str:
    """The UTF-8 text of ``stream``, refused past :data:`MAX_MANIFEST_BYTES` or when not UTF-8."""
    data = stream.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{source}: larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB; "
            "split it into several files"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{source}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "pass a YAML file"
        ) from exc


def load_manifests(paths: list[str]) -> list[Manifest]:
    """Manifests from files (``-`` is stdin), in order."""
    out: list[Manifest] = []
    for path in paths:
        if path == "-":
            out.extend(parse_manifests(_text(sys.stdin.buffer, "<stdin>"), "<stdin>"))
        else:
            with Path(path).open("rb") as stream:
                out.extend(parse_manifests(_text(stream, path), path))
    return out


def acting_tenant(manifests: list[Manifest], given: str | None) -> str | None:
    """The tenant a command on ``manifests`` acts in, as kubectl picks a namespace: ``given``
    (``--tenant``), else the one the manifests name (None: the token's). A manifest naming
    another tenant than ``given``, or manifests naming several, are refused: the objects would
    land in a tenant their file does not say."""
    named = sorted({m.tenant for m in manifests if m.tenant})
    for m in manifests:
        if given and m.tenant and m.tenant != given:
            raise ManifestError(
                f"{m.source} ({m.kind} {m.name}): its tenant is {m.tenant!r}, not {given!r} "
                f"(--tenant): pass --tenant {m.tenant}, or remove its metadata.tenant"
            )
    if given or not named:
        return given
    if len(named) > 1:
        raise ManifestError(
            f"the manifests name tenants {', '.join(named)}: give each tenant's objects a "
            "command of their own"
        )
    return named[0]
