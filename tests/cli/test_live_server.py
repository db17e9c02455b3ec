"""The SDK and the ``crane`` CLI against a real ``crane serve``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import yaml

from crane.client import Client, NotFound, Scope, Unauthorized

if TYPE_CHECKING:
    from conftest import Crane, Server


def test_login_verifies_and_saves_the_context(crane: Crane, server: Server) -> None:
    proc = crane("login", server.url, "--token", server.token, "--name", "live")
    assert proc.returncode == 0, proc.stderr
    assert "logged in" in proc.stderr and proc.stdout == ""
    assert crane("config", "current").stdout.startswith(f"live: {server.url}")
    saved = yaml.safe_load((crane.config_dir / "config.yaml").read_text())
    assert saved["contexts"]["live"] == {"url": server.url, "token": server.token}


def test_login_with_a_bad_token_saves_nothing(crane: Crane, server: Server) -> None:
    proc = crane("login", server.url, "--token", "crane_nope_nope")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: not authenticated")
    assert "crane login URL --token TOKEN" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (crane.config_dir / "config.yaml").exists()


def test_login_without_token_off_a_terminal_is_usage(crane: Crane, server: Server) -> None:
    proc = crane("login", server.url)
    assert proc.returncode == 2
    assert "pass --token TOKEN" in proc.stderr


def test_sdk_whoami_and_tokens(server: Server) -> None:
    with Client(server.url, server.token) as admin:
        assert admin.whoami().scope is Scope.ADMIN
        admin.create_tenant("team-a")
        assert "team-a" in [t.name for t in admin.list_tenants()]
        made = admin.create_token({"scope": "tenant", "tenant": "team-a", "description": "sdk"})
        assert made.token
    with Client(server.url, made.token) as tenant:
        me = tenant.whoami()
        assert (me.scope, me.tenant) == (Scope.TENANT, "team-a")
    with Client(server.url, server.token) as admin:
        assert made.id in [t.id for t in admin.list_tokens()]
        admin.revoke_token(made.id)
        with pytest.raises(NotFound):
            admin.revoke_token("no-such-token")
    with Client(server.url, made.token) as revoked, pytest.raises(Unauthorized):
        revoked.whoami()


def test_cli_token_create_list_revoke(logged_in: Crane) -> None:
    created = logged_in("token", "create", "--scope", "admin", "-d", "cli-test", "-o", "json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)
    assert token["token"] and token["scope"] == "admin"
    listed = logged_in("token", "list", "-o", "yaml")
    assert token["id"] in [t["id"] for t in yaml.safe_load(listed.stdout)]
    table = logged_in("token", "list").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "SCOPE", "TENANT"]
    refused = logged_in("token", "revoke", token["id"])
    assert refused.returncode == 2
    assert "pass --yes" in refused.stderr
    assert logged_in("token", "revoke", token["id"], "--yes").returncode == 0
    with Client(token=token["token"], url=_url(logged_in)) as client, pytest.raises(Unauthorized):
        client.whoami()


def test_cli_secret_goes_to_stdout_message_to_stderr(logged_in: Crane) -> None:
    proc = logged_in("token", "create", "--scope", "admin")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("crane_")
    assert "not shown again" in proc.stderr


def test_cli_errors_from_a_live_server(logged_in: Crane, server: Server) -> None:
    bad = logged_in("--token", "crane_x_y", "mc", "list")
    assert bad.returncode == 1 and bad.stderr.startswith("error: not authenticated")
    env_token = logged_in("token", "list", CRANE_TOKEN="crane_x_y")
    assert env_token.returncode == 1 and "not authenticated" in env_token.stderr
    gone = logged_in("--server", "http://127.0.0.1:9", "mc", "list")
    assert gone.returncode == 1
    assert "cannot reach the Crane API at http://127.0.0.1:9" in gone.stderr
    for proc in (bad, env_token, gone):
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_backend_errors_are_one_line(crane: Crane, unready_server: Server) -> None:
    proc = crane("--server", unready_server.url, "--token", unready_server.token, "mc", "list")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: the server cannot serve this now")
    assert "/readyz" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _url(crane: Crane) -> str:
    return str(
        yaml.safe_load((crane.config_dir / "config.yaml").read_text())["contexts"]["default"]["url"]
    )
