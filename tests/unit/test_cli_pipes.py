"""The CLI used as shell users use kubectl: piped into ``head``, with stdout closed, in a
plain locale, on a dumb narrow terminal. A reader gone away ends any command quietly, exit 0
(``crane mc list -o name | head -1`` exited 1); nothing here ever shows a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crane.client import MiniCluster
from crane.model.specs import MiniClusterSpec
from tests.support import FakeApi, crane_env

MANY = 5000
"""More MiniClusters than a pipe holds in any format, one line each with -o name."""


def _mc(i: int) -> dict[str, object]:
    spec = MiniClusterSpec.model_validate({"gpuType": "H100", "gpus": {"min": 4, "max": 8}})
    mc = MiniCluster(
        name=f"mc-{i:05d}",
        tenant="default",
        uid=f"u{i}",
        spec=spec,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return mc.model_dump(mode="json", by_alias=True)


@pytest.fixture(scope="module")
def many() -> Iterator[FakeApi]:
    """An API whose every answer is a list of :data:`MANY` MiniClusters."""
    server = FakeApi()
    items = [_mc(i) for i in range(MANY)]
    server.answer = (200, "application/json", json.dumps({"items": items, "count": MANY}).encode())
    yield server
    server.close()


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    return crane_env(tmp_path / "cfg", CRANE_API_URL=url, CRANE_TOKEN="crane_t1_secret", **extra)


def _head_1(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """``crane ARGS | head -1``: crane's exit status and stderr, and what head printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crane", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = subprocess.run(
        ["head", "-1"], stdin=proc.stdout, capture_output=True, text=True, timeout=60, check=True
    )
    proc.stdout.close()  # head alone reads the pipe: once it exits, nobody does
    err = proc.stderr.read().decode()
    return proc.wait(timeout=60), err, head.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["mc", "list", "-o", "name"],
        ["mc", "list", "-o", "name", "-w"],
        ["mc", "list"],
        ["mc", "list", "-o", "wide"],
        ["mc", "list", "-o", "json"],
        ["mc", "list", "-o", "yaml"],
        ["mc", "list", "-o", "jsonpath={range .items[*]}{.metadata.name}{'\\n'}{end}"],
        ["--help"],
        ["mc", "list", "--help"],
    ],
)
def test_a_reader_gone_ends_the_command_quietly(
    many: FakeApi, tmp_path: Path, args: list[str]
) -> None:
    code, err, first = _head_1(args, _env(tmp_path, many.url))
    assert first.strip(), "head printed nothing"
    assert (code, err) == (0, ""), (code, err)


def test_a_closed_stdout_drops_the_output_and_succeeds(many: FakeApi, tmp_path: Path) -> None:
    """``crane mc list -o name >&-``: exit 1, 'unexpected AttributeError' (stdout is None)."""
    done = subprocess.run(
        [
            "sh",
            "-c",
            'exec "$@" >&-',
            "sh",
            sys.executable,
            "-m",
            "crane",
            "mc",
            "list",
            "-o",
            "name",
        ],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path, many.url),
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_a_closed_stderr_keeps_the_exit_code(tmp_path: Path) -> None:
    """``crane mc list 2>&-`` against nothing: still the failure's exit 1 (its line dropped),
    and the data of a command that works still comes out."""
    fake = FakeApi()
    try:
        fake.answer = (404, "application/json", b'{"title": "nope", "status": 404}')
        done = subprocess.run(
            ["sh", "-c", 'exec "$@" 2>&-', "sh", sys.executable, "-m", "crane", "mc", "get", "x"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_env(tmp_path, fake.url, CRANE_DEBUG="1"),
            timeout=60,
            check=False,
        )
    finally:
        fake.close()
    assert (done.returncode, done.stdout) == (1, "")


LONGEST = "a" * 62 + "z"
"""A MiniCluster name of the most characters a name may have (63)."""


@pytest.mark.parametrize(
    "env", [{}, {"TERM": "dumb", "NO_COLOR": "1"}, {"LANG": "C", "LC_ALL": "C"}]
)
def test_a_narrow_terminal_cuts_no_name(tmp_path: Path, env: dict[str, str]) -> None:
    """On a 20-column terminal `crane mc list` showed 'm…' for every name and 'M…' for MIN and
    MAX; now whole rows, which the terminal wraps, as kubectl's."""
    item = _mc(0)
    item["name"] = LONGEST
    fake = FakeApi()
    fake.answer = (200, "application/json", json.dumps({"items": [item], "count": 1}).encode())
    try:
        done = subprocess.run(
            [sys.executable, "-m", "crane", "mc", "list"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_env(tmp_path, fake.url, CRANE_FORCE_TTY="1", COLUMNS="20", **env),
            timeout=60,
            check=False,
        )
    finally:
        fake.close()
    assert (done.returncode, done.stderr) == (0, "")
    assert LONGEST in done.stdout and "…" not in done.stdout, done.stdout
    assert "MIN" in done.stdout and "MAX" in done.stdout, done.stdout
