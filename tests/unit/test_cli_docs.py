"""docs/cli.md's command reference is generated from the commands and cannot drift."""

from __future__ import annotations

from crane.cli import docs


def test_cli_reference_is_current() -> None:
    current = docs.DOC.read_text()
    assert docs.render(current) == current, "docs/cli.md is stale: run `python -m crane.cli.docs`"


def test_every_command_is_in_the_reference() -> None:
    text = docs.DOC.read_text()
    for command in ("crane tenant create", "crane wait", "crane mc set-priority", "crane events"):
        assert f"| `{command}` |" in text
    assert "## From Slurm / from kueuectl" in text
