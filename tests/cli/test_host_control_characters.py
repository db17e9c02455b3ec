"""``crane node add`` with a control character in what reaches the Docker client (a line break
pasted into ``--docker-host``, an escape in a TLS file's path): one line naming the option's
field and exit 2, and nothing sent to the server. Before, the host was stored as given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import FakeApi, crane

TOKEN = "crane_hostctl_" + "t" * 40


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    yield fake
    fake.close()


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--docker-host", "tcp://gpu-02\n:2376", "dockerHost"),
        ("--tls-ca", "/etc/crane/ca\x1b[2J.pem", "tlsCa"),
        ("--tls-key", "/etc/crane/key.pem\r", "tlsKey"),
    ],
)
def test_node_add_with_a_control_character_is_one_line_exit_2_and_nothing_sent(
    tmp_path: Path, api: FakeApi, option: str, value: str, field: str
) -> None:
    args = ["node", "add", "gpu-02", "--docker-host", "tcp://gpu-02:2376", option, value]
    run = crane(
        "--server", api.url, "--token", TOKEN, *args, "--gpus", "8", "--gpu-type", "H100",
        config_dir=tmp_path / "cfg",
    )  # fmt: skip
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.count("\n") == 1, run.stderr
    assert f"invalid {field}: must not contain control characters" in run.stderr, run.stderr
    assert api.requests == []
