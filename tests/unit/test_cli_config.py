"""The config store: contexts saved by ``crane login``/``crane config`` and read by the SDK."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from crane.client import (
    Context,
    CraneConfig,
    NotConfigured,
    config_path,
    load_config,
    resolve_settings,
    save_config,
)
from tests.support import crane


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRANE_CONFIG_DIR", str(tmp_path / "cfg"))
    for key in ("CRANE_API_URL", "CRANE_TOKEN", "CRANE_CONTEXT"):
        monkeypatch.delenv(key, raising=False)


def test_missing_file_is_empty_config() -> None:
    assert load_config() == CraneConfig()


def test_save_and_load_round_trip_owner_only(tmp_path: Path) -> None:
    config = CraneConfig(current_context="a", contexts={"a": Context(url="http://a", token="s")})
    path = save_config(config)
    assert path == tmp_path / "cfg" / "config.yaml" == config_path()
    assert load_config() == config
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "current-context: a" in path.read_text()


def test_xdg_config_home_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRANE_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path() == tmp_path / "xdg" / "crane" / "config.yaml"


def test_resolution_order_args_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    save_config(
        CraneConfig(
            current_context="a",
            contexts={"a": Context(url="http://a/", token="ta"), "b": Context(url="http://b")},
        )
    )
    assert resolve_settings() == ("http://a", "ta")
    assert resolve_settings(context="b") == ("http://b", None)
    monkeypatch.setenv("CRANE_CONTEXT", "b")
    assert resolve_settings() == ("http://b", None)
    monkeypatch.setenv("CRANE_API_URL", "http://env")
    monkeypatch.setenv("CRANE_TOKEN", "tenv")
    assert resolve_settings() == ("http://env", "tenv")
    assert resolve_settings("http://arg", "targ") == ("http://arg", "targ")


def test_nothing_configured_says_how() -> None:
    with pytest.raises(NotConfigured, match="crane login"):
        resolve_settings()


def test_config_commands(tmp_path: Path) -> None:
    cfg = tmp_path / "cli"
    assert (
        crane(
            "config",
            "set",
            "dev",
            "--server",
            "http://dev:1",
            "--token",
            "abcdefghij",
            config_dir=cfg,
        ).returncode
        == 0
    )
    assert (
        crane("config", "set", "prod", "--server", "http://prod:1", config_dir=cfg).returncode == 0
    )
    assert crane("config", "current", config_dir=cfg).stdout.startswith("dev: http://dev:1")
    assert crane("config", "use", "prod", config_dir=cfg).returncode == 0
    assert crane("config", "current", config_dir=cfg).stdout.startswith("prod: http://prod:1")
    view = crane("config", "view", "-o", "table", config_dir=cfg).stdout
    assert "abcdefghij" not in view and "...(redacted)" in view
    missing = crane("config", "use", "nope", config_dir=cfg)
    assert missing.returncode == 2
    assert "crane login URL --name nope" in missing.stderr
    assert crane("config", "delete", "prod", config_dir=cfg).returncode == 0
    assert crane("config", "current", config_dir=cfg).stdout.startswith("dev:")


@pytest.mark.parametrize("server", ["not a url", "http://two words:8080", "https://tab\there"])
def test_a_server_with_a_space_in_its_host_is_no_url(tmp_path: Path, server: str) -> None:
    """`crane config set ci --server 'not a url'` saved https://not a url, and every later
    command of that context failed with "cannot reach the Crane API" instead of the mistake."""
    cfg = tmp_path / "cli"
    saved = crane("config", "set", "ci", "--server", server, config_dir=cfg)
    assert saved.returncode == 2, saved.stderr
    assert "is not a URL" in saved.stderr and saved.stderr.count("\n") <= 2, saved.stderr
    assert not (cfg / "config.yaml").exists() or "ci" not in (cfg / "config.yaml").read_text()
