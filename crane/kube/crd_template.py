"""Write crane/model/podtemplate.py's PodTemplateSpec schema into the CRDs (one source).

``python -m crane.kube.crd_template`` rewrites the blocks between the ``BEGIN generated`` and
``END generated`` markers of helm/crane/crds/*.yaml; ``--check`` fails when they differ (the
unit tests run the same comparison).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from crane.model.podtemplate import POD_TEMPLATE_SCHEMA

BEGIN = "# BEGIN generated from crane/model/podtemplate.py: python -m crane.kube.crd_template"
END = "# END generated"


class _NoAliases(yaml.SafeDumper):
    """Spell every shared sub-schema out (no YAML anchors in a CRD)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def render(key: str, indent: int) -> str:
    """The ``key:`` block of the schema at ``indent`` spaces, between the markers."""
    pad = " " * indent
    body = yaml.dump(
        {key: POD_TEMPLATE_SCHEMA},
        Dumper=_NoAliases,
        sort_keys=False,
        default_flow_style=False,
        width=100,
    )
    lines = [pad + BEGIN, *(pad + line for line in body.splitlines()), pad + END]
    return "\n".join(lines) + "\n"


def rewrite(text: str) -> str:
    """``text`` with every generated block made anew (indent and key kept)."""
    out: list[str] = []
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == BEGIN:
            indent = len(line) - len(line.lstrip())
            key = lines[i + 1].strip().split(":", 1)[0]
            while lines[i].strip() != END:
                i += 1
            out.append(render(key, indent))
        else:
            out.append(line)
        i += 1
    return "".join(out)


def main(argv: list[str]) -> int:
    """Rewrite (or with ``--check`` compare) the CRDs under helm/crane/crds."""
    root = Path(__file__).resolve().parents[2] / "helm" / "crane" / "crds"
    stale = []
    for path in sorted(root.glob("*.yaml")):
        text = path.read_text()
        new = rewrite(text)
        if new != text:
            stale.append(path.name)
            if "--check" not in argv:
                path.write_text(new)
    if stale and "--check" in argv:
        print(f"stale generated schema in {', '.join(stale)}: python -m crane.kube.crd_template")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
