"""The config store: contexts saved by ``crane login``/``crane config`` and read by the SDK."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
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

ROOT = Path(__file__).resolve().parents[2]


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


def _crane(*args: str, cfg: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRANE_")}
    env.update(PYTHONPATH=str(ROOT), CRANE_CONFIG_DIR=str(cfg))
    return subprocess.run(
        [sys.executable, "-m", "crane", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_config_commands(tmp_path: Path) -> None:
    cfg = tmp_path / "cli"
    assert (
        _crane(
            "config", "set", "dev", "--server", "http://dev:1", "--token", "abcdefghij", cfg=cfg
        ).returncode
        == 0
    )
    assert _crane("config", "set", "prod", "--server", "http://prod:1", cfg=cfg).returncode == 0
    assert _crane("config", "current", cfg=cfg).stdout.startswith("dev: http://dev:1")
    assert _crane("config", "use", "prod", cfg=cfg).returncode == 0
    assert _crane("config", "current", cfg=cfg).stdout.startswith("prod: http://prod:1")
    view = _crane("config", "view", "-o", "table", cfg=cfg).stdout
    assert "abcdefghij" not in view and "...(redacted)" in view
    missing = _crane("config", "use", "nope", cfg=cfg)
    assert missing.returncode == 2
    assert "crane login URL --name nope" in missing.stderr
    assert _crane("config", "delete", "prod", cfg=cfg).returncode == 0
    assert _crane("config", "current", cfg=cfg).stdout.startswith("dev:")
