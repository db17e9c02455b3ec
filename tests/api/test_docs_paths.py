"""Every ``METHOD /path`` README.md and docs/ name is an operation of the API.

docs/operations.md once sent readers to ``POST /v1/miniclusters/NAME:explain``, a 405: the
operation is a GET. The docs' operations (inline ``GET /v1/...`` and the table of docs/api.md)
under /v1 are checked against the OpenAPI of a Docker-mode app.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crane.api.app import create_app
from crane.api.settings import ApiSettings, BackendKind

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
METHODS = "GET|POST|PUT|PATCH|DELETE|HEAD"
PLACEHOLDER = re.compile(r"\{[^}]+\}|[A-Z][A-Z_]*|team-[a-z]|study")
"""A documented path segment that stands for any name."""


def _mentions() -> list[tuple[str, str, str]]:
    """(doc, method, path) for each operation the docs name."""
    found: list[tuple[str, str, str]] = []
    table = re.compile(rf"^\| ((?:{METHODS})(?:, (?:{METHODS}))*) \| (/\S+) \|", re.M)
    for doc in DOCS:
        text = doc.read_text()
        name = str(doc.relative_to(ROOT))
        for method, path in re.findall(rf"`({METHODS}) (/[^` ?]*)", text):
            found.append((name, method, path))
        for methods, path in table.findall(text):
            found += [(name, method, path) for method in methods.split(", ")]
    return found


def _segment(segment: str) -> str:
    head, _, action = segment.partition(":")
    head_re = r"\{[^}]+\}" if PLACEHOLDER.fullmatch(head) else re.escape(head)
    return head_re + (":" + re.escape(action) if action else "")


def _pattern(path: str) -> re.Pattern[str]:
    """A documented path as a pattern of route paths; ``[/{name}]`` is optional."""
    optional = re.fullmatch(r"(.*)\[(.*)\]", path)
    if optional:
        base, rest = optional.groups()
        return re.compile(
            "/".join(map(_segment, base.split("/")))
            + "(?:"
            + "/".join(map(_segment, rest.split("/")))
            + ")?"
        )
    return re.compile("/".join(map(_segment, path.split("/"))))


@pytest.fixture(scope="module")
def operations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    db = tmp_path_factory.mktemp("docs") / "crane.db"
    settings = ApiSettings(database_url=f"sqlite:///{db}", backend=BackendKind.DOCKER)
    paths = create_app(settings).openapi()["paths"]
    return {path: {method.upper() for method in item} for path, item in paths.items()}


def test_the_docs_name_operations() -> None:
    assert len(_mentions()) > 30


@pytest.mark.parametrize(("doc", "method", "path"), _mentions())
def test_every_documented_operation_exists(
    operations: dict[str, set[str]], doc: str, method: str, path: str
) -> None:
    if not path.startswith("/v1/"):
        return  # the dashboard's session and assets, health and metrics: outside the OpenAPI
    pattern = _pattern(path)
    matching = {p: m for p, m in operations.items() if pattern.fullmatch(p)}
    assert matching, f"{doc}: `{method} {path}`: no such path"
    answered = set().union(*matching.values())
    assert method in answered or (method == "HEAD" and "GET" in answered), (
        f"{doc}: `{method} {path}`: the API answers it with {sorted(answered)}"
    )
