"""Every timeout and interval of the CLI takes kubectl-style durations (``30s``, ``2m``, ``1h``)
as well as plain seconds, and refuses anything else in one line, exit 2, naming the range."""

from __future__ import annotations

from pathlib import Path

import pytest

from crane.cli.options import seconds_in
from tests.support import crane, free_port


def _unreachable() -> dict[str, str]:
    """An API URL where nothing listens: a command whose options parse gets as far as
    'cannot reach the Crane API' (exit 1); a bad option is exit 2."""
    return {"CRANE_API_URL": f"http://127.0.0.1:{free_port()}", "CRANE_TOKEN": "crane_t1_secret"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("2m", 120),
        ("1h", 3600),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("1.5h", 5400),
        ("2d", 172800),
        ("90", 90),
        ("0.5", 0.5),
        (" 10S ", 10),
    ],
)
def test_durations_read_as_kubectl_reads_them(text: str, seconds: float) -> None:
    assert seconds_in(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "s", "30x", "1h 30m", "m5", "30s5", "\uff11\uff10s", "nan", "-5s"]
)
def test_non_durations(text: str) -> None:
    assert seconds_in(text) is None


COMMANDS = [
    ["wait", "mc/study", "--for", "delete", "--timeout", "30s"],
    ["wait", "cargo/train", "--for", "phase=Running", "--timeout", "2m", "--interval", "2s"],
    ["mc", "grow", "study", "1", "--wait", "--timeout", "1m"],
    ["exec", "train", "--timeout", "30s", "--", "true"],
    ["node", "remove", "n1", "--yes", "--timeout", "1h"],
    ["top", "--once", "--interval", "5s"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_timeout_takes_a_duration(args: list[str], tmp_path: Path) -> None:
    done = crane(*args, config_dir=tmp_path / "cfg", **_unreachable())
    assert done.returncode == 1, done.stderr
    assert "cannot reach the Crane API" in done.stderr
    assert "Invalid value" not in done.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["wait", "mc/study", "--for", "delete", "--timeout", "30x"], "not a duration"),
        (["mc", "grow", "study", "1", "--wait", "--timeout", "2h"], "at most 1h"),
        (["exec", "train", "--timeout", "500ms", "--", "true"], "at least 1s"),
        (["wait", "mc/study", "--for", "delete", "--timeout", "0s"], "at least"),
    ],
)
def test_a_bad_duration_is_one_line_and_usage(args: list[str], said: str, tmp_path: Path) -> None:
    done = crane(*args, config_dir=tmp_path / "cfg", **_unreachable())
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert said in lines[0]
    assert "--timeout" in lines[0]
