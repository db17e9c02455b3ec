"""A password written in the API URL (``http://user:PASSWORD@host``, as a proxy's basic auth
asks) never reaches the terminal: ``crane login``, ``crane config view`` and ``crane config
current`` show the URL with ``***`` in its place. Before, each printed the whole URL, and the
secret ended up in terminal scrollback and CI logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import FakeApi, crane

SECRET = "hunter2-url-secret"
TOKEN = "crane_urlpw_" + "t" * 40
WHOAMI = {
    "id": "tok1",
    "scope": "admin",
    "tenant": None,
    "miniCluster": None,
    "description": "",
    "createdAt": "2026-01-01T00:00:00Z",
}


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    fake.answer = (200, "application/json", json.dumps(WHOAMI).encode())
    yield fake
    fake.close()


def test_no_cli_command_prints_the_password_of_the_api_url(tmp_path: Path, api: FakeApi) -> None:
    url = api.url.replace("http://", f"http://ops:{SECRET}@")
    shown = api.url.replace("http://", "http://ops:***@")
    cfg = tmp_path / "cfg"
    runs = {
        "login": crane("login", url, "--token", TOKEN, config_dir=cfg),
        "view": crane("config", "view", config_dir=cfg),
        "view -o table": crane("config", "view", "-o", "table", config_dir=cfg),
        "view -o json": crane("config", "view", "-o", "json", config_dir=cfg),
        "current": crane("config", "current", config_dir=cfg),
        "current from env": crane("config", "current", config_dir=cfg, CRANE_API_URL=url),
    }
    for what, run in runs.items():
        assert run.returncode == 0, (what, run.stderr)
        said = run.stdout + run.stderr
        assert SECRET not in said, (what, said)
        assert shown in said, (what, said)
    assert api.requests == ["GET /v1/whoami"]
    assert SECRET in (cfg / "config.yaml").read_text()  # saved as given: the login still works


def test_a_refused_url_is_shown_without_its_password(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    for server in (f"ftp://ops:{SECRET}@files.example", f"http://ops:{SECRET}@two words:1"):
        run = crane("config", "set", "x", "--server", server, config_dir=cfg)
        assert run.returncode == 2, run.stderr
        assert SECRET not in run.stdout + run.stderr, run.stderr
        assert "ops:***@" in run.stderr, run.stderr
