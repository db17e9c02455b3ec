"""Every ``crane`` command line README.md and docs/ show names commands and options that exist.

The quick starts of README.md run as written in tests/readme; the rest of the documentation's
command lines (code blocks and inline code) are checked here against the CLI itself, without a
server: a reader who copies one is never told ``No such option`` (docs/dashboard.md once said
``crane token create --tenant NAME``, an option that does not exist).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from crane.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
STOP = {"|", "||", "&&", ";", ">", ">>", "2>", "<", "&"}
"""Shell words after which the line is another command's."""


def _lines(text: str) -> list[str]:
    """The ``crane`` command lines of a Markdown text: lines of fenced blocks (joined across
    ``\\`` continuations, ``$ `` prompts dropped) and inline code spans starting with crane."""
    found: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("crane "):
                found.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found += [span for span in re.findall(r"`(crane [^`]+)`", prose)]
    return found


def _words(line: str) -> list[str] | None:
    """The words of ``line`` up to a comment or another command; None when it is not shell."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    for i, word in enumerate(words):
        if word in STOP:
            return words[:i]
    return words


def _options(command: Any) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}


def _problem(root: Any, words: list[str]) -> str | None:
    """What is wrong with ``crane WORDS`` as the CLI parses it, or None."""
    command = root
    known = _options(root) | {"--help"}
    args = words[1:]
    while hasattr(command, "list_commands") and args:
        word = args[0]
        if word.startswith("-"):
            if word.split("=", 1)[0] not in known:
                return f"no option {word} on `{' '.join(words[: words.index(word)])}`"
            args = args[1 if "=" in word else 2 :]
            continue
        sub = command.get_command(command.make_context("crane", [], resilient_parsing=True), word)
        if sub is None:
            if not re.fullmatch(r"[a-z-]+", word):
                return None  # a placeholder or alternatives (`list|get`): not a command line
            return f"no command {word!r}"
        command, args = sub, args[1:]
    if hasattr(command, "list_commands"):
        return None
    known = _options(command) | {"--help"}  # a global option goes before the command
    for word in args:
        if word == "--":
            break
        option = word.split("=", 1)[0]
        is_option = word.startswith("-") and word != "-" and not re.fullmatch(r"-\d+", word)
        if is_option and option not in known:
            return f"no option {option} on `crane ... {command.name}`"
    return None


def _every_line() -> list[tuple[str, str]]:
    return [(f"{doc.relative_to(ROOT)}", line) for doc in DOCS for line in _lines(doc.read_text())]


def test_the_docs_show_command_lines() -> None:
    lines = _every_line()
    assert len(lines) > 50, lines  # the extraction found them
    assert any(line.startswith("crane token create") for _, line in lines)


@pytest.mark.parametrize(("doc", "line"), _every_line())
def test_every_documented_command_line_parses(doc: str, line: str) -> None:
    words = _words(line)
    if not words:
        return
    root: Any = typer.main.get_command(app)
    problem = _problem(root, words)
    assert problem is None, f"{doc}: `{line}`: {problem}"
