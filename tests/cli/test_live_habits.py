"""kubectl habits and the tenant CLI against a real server (issue 15's findings, one by one)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import Crane

pytestmark = pytest.mark.usefixtures("backend_ready")

MC = """
apiVersion: crane.io/v1alpha1
kind: MiniCluster
metadata: {name: habits}
spec:
  gpuType: H100
  gpus: {min: 0, max: 2}
"""


def test_get_yaml_round_trips_into_create(logged_in: Crane) -> None:
    created = logged_in("mc", "create", "-f", "-", stdin=MC)
    assert created.returncode == 0, created.stderr
    try:
        exported = logged_in("mc", "get", "habits", "-o", "yaml")
        assert exported.returncode == 0, exported.stderr
        doc = yaml.safe_load(exported.stdout)
        assert doc["apiVersion"] == "crane.io/v1alpha1" and doc["kind"] == "MiniCluster"
        assert doc["metadata"]["name"] == "habits"
        assert logged_in("mc", "delete", "habits", "--yes").returncode == 0
        again = logged_in("mc", "create", "-f", "-", stdin=exported.stdout)
        assert again.returncode == 0, again.stderr
        assert "minicluster/habits created" in again.stderr
        listed = json.loads(logged_in("mc", "list", "-o", "json").stdout)
        assert set(listed) >= {"items", "count"}
        path = logged_in("mc", "get", "habits", "-o", "jsonpath={.spec.gpus.max}")
        assert path.stdout.strip() == "2"
        names = logged_in("mc", "list", "-o", "jsonpath={.items[*].metadata.name}")
        assert "habits" in names.stdout.split()
        bare = logged_in("mc", "list", "--no-headers")
        assert bare.returncode == 0 and "NAME" not in bare.stdout and "habits" in bare.stdout
        none = logged_in("mc", "list", "-l", "team=nobody", "-o", "name")
        assert none.returncode == 0 and none.stdout == ""
        every = logged_in("mc", "list", "-A")
        assert every.returncode == 0, every.stderr
        assert every.stdout.splitlines()[0].split()[:2] == ["TENANT", "NAME"]
        assert any(line.split()[:2] == ["default", "habits"] for line in every.stdout.splitlines())
        wide = logged_in("mc", "list", "-o", "wide")
        assert wide.returncode == 0 and "habits" in wide.stdout
        bad = logged_in("mc", "list", "-o", "tabel")
        assert bad.returncode == 2 and "table, wide, json, yaml, name" in bad.stderr
    finally:
        logged_in("mc", "delete", "habits", "--yes")


def test_tenant_commands_and_token_for_a_new_tenant(logged_in: Crane) -> None:
    missing = logged_in("token", "create", "--scope", "tenant", "--for-tenant", "team-habits")
    assert missing.returncode == 2
    assert "crane tenant create team-habits" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    made = logged_in("tenant", "create", "team-habits")
    assert made.returncode == 0, made.stderr
    try:
        assert "tenant/team-habits created" in made.stderr
        listed = logged_in("tenant", "list", "-o", "name")
        assert "tenant/team-habits" in listed.stdout.split()
        got = logged_in("tenant", "get", "team-habits", "-o", "json")
        assert json.loads(got.stdout)["name"] == "team-habits"
        token = logged_in("token", "create", "--scope", "tenant", "--for-tenant", "team-habits")
        assert token.returncode == 0, token.stderr
        assert token.stdout.strip().startswith("crane_")
        offered = logged_in(
            "token",
            "create",
            "--scope",
            "tenant",
            "--for-tenant",
            "team-habits2",
            "--create-tenant",
        )
        assert offered.returncode == 0, offered.stderr
        assert "tenant/team-habits2 created" in offered.stderr
    finally:
        logged_in("tenant", "delete", "team-habits", "team-habits2", "--yes")
    gone = logged_in("tenant", "get", "team-habits")
    assert gone.returncode == 1 and "not found" in gone.stderr


EVENTFUL = """
apiVersion: crane.io/v1alpha1
kind: MiniCluster
metadata: {name: habits-ev}
spec:
  gpuType: H100
  gpus: {min: 0, max: 1}
  template:
    replicas: 1
    gpusPerReplica: 1
    template: {spec: {containers: [{name: main, image: busybox, command: [sleep, "300"]}]}}
"""


def test_events_have_history_and_filters(logged_in: Crane) -> None:
    created = logged_in("mc", "create", "-f", "-", stdin=EVENTFUL)
    assert created.returncode == 0, created.stderr
    try:
        grown = logged_in("mc", "grow", "habits-ev", "1", "--wait", "--timeout", "120")
        assert grown.returncode == 0, grown.stderr
        cargo = logged_in(
            "cargo", "list", "--mc", "habits-ev", "-o", "jsonpath={.items[0].metadata.name}"
        ).stdout.strip()
        deadline = time.monotonic() + 90
        while True:
            past = logged_in("events", "--mc", "habits-ev", "-o", "json")
            assert past.returncode == 0, past.stderr
            docs = past.stdout.replace("}\n{", "}\0{").split("\0")
            seen = [json.loads(doc) for doc in docs if doc.strip()]
            if any(e.get("cargo") == cargo and e["type"] == "Placed" for e in seen):
                break
            assert time.monotonic() < deadline, f"no Placed event for {cargo} in {seen}"
            time.sleep(1)
        assert {e["miniCluster"] for e in seen} == {"habits-ev"}
        table = logged_in("events", "--cargo", cargo)
        assert table.stdout.splitlines()[0].split()[:2] == ["TIME", "TYPE"]
        assert all(cargo in line for line in table.stdout.splitlines()[1:]), table.stdout
        other = logged_in("events", "--mc", "nosuch", "--no-headers")
        assert other.returncode == 0 and other.stdout == ""
    finally:
        logged_in("mc", "delete", "habits-ev", "--yes")


def test_wait_priority_and_all_replica_logs(logged_in: Crane) -> None:
    made = logged_in("mc", "create", "habits-w", "--gpu-type", "H100", "--min", "0", "--max", "2")
    assert made.returncode == 0, made.stderr
    try:
        admitted = logged_in("wait", "--for=condition=Admitted", "mc/habits-w", "--timeout", "60")
        assert admitted.returncode == 0, admitted.stderr
        assert admitted.stdout.strip() == "minicluster/habits-w condition met"
        added = logged_in(
            "cargo",
            "add",
            "habits-w",
            "--name",
            "habits-w-logs",
            "--replicas",
            "2",
            "--image",
            "busybox",
            "--",
            "sh",
            "-c",
            "echo hello; sleep 300",
        )
        assert added.returncode == 0, added.stderr
        running = logged_in(
            "wait", "--for=phase=Running", "cargo/habits-w-logs", "--timeout", "120"
        )
        assert running.returncode == 0, running.stderr
        deadline = time.monotonic() + 60
        while True:
            logs = logged_in("cargo", "logs", "habits-w-logs", "--all-replicas")
            if {"[replica 0] hello", "[replica 1] hello"} <= set(logs.stdout.splitlines()):
                break
            assert time.monotonic() < deadline, logs.stdout + logs.stderr
            time.sleep(1)
        raised = logged_in("mc", "set-priority", "habits-w", "7")
        assert raised.returncode == 0, raised.stderr
        got = logged_in("mc", "get", "habits-w", "-o", "jsonpath={.spec.priority}")
        assert got.stdout.strip() == "7"
        bad = logged_in("wait", "--for=ready", "mc/habits-w")
        assert bad.returncode == 2 and "condition=NAME" in bad.stderr
    finally:
        logged_in("mc", "delete", "habits-w", "--yes")
    gone = logged_in("wait", "--for=delete", "mc/habits-w", "--timeout", "120")
    assert gone.returncode == 0, gone.stderr


def test_usage_per_cargo_like_sacct(logged_in: Crane) -> None:
    made = logged_in("mc", "create", "habits-u", "--gpu-type", "H100", "--min", "0", "--max", "3")
    assert made.returncode == 0, made.stderr
    try:
        added = logged_in(
            "cargo",
            "add",
            "habits-u",
            "--name",
            "habits-u-job",
            "--image",
            "busybox",
            "--wait",
            "--timeout",
            "120",
            "--",
            "sleep",
            "300",
        )
        assert added.returncode == 0, added.stderr
        deadline = time.monotonic() + 60
        while True:
            report = json.loads(logged_in("usage", "--cargos", "-o", "json").stdout)
            rows = [r for r in report["items"] if r.get("cargo") == "habits-u-job"]
            if rows:
                break
            assert time.monotonic() < deadline, report
            time.sleep(1)
        (row,) = rows
        assert row["miniCluster"] == "habits-u" and row["startedAt"]
        assert "endedAt" not in row or row["endedAt"] is None
        assert row["state"] == "Running" and row.get("exitCode") is None
        for name, script in (("habits-u-ok", "exit 0"), ("habits-u-bad", "exit 3")):
            ended = logged_in(
                "cargo", "add", "habits-u", "--name", name, "--image", "busybox",
                "--", "sh", "-c", f"sleep 1; {script}",
            )  # fmt: skip
            assert ended.returncode == 0, ended.stderr
        deadline = time.monotonic() + 90
        while True:
            report = json.loads(logged_in("usage", "--cargos", "-o", "json").stdout)
            done = {r["cargo"]: r for r in report["items"] if r.get("endedAt")}
            if {"habits-u-ok", "habits-u-bad"} <= set(done):
                break
            assert time.monotonic() < deadline, report
            time.sleep(1)
        assert (done["habits-u-ok"]["state"], done["habits-u-ok"]["exitCode"]) == ("Succeeded", 0)
        assert (done["habits-u-bad"]["state"], done["habits-u-bad"]["exitCode"]) == ("Failed", 3)
        table = logged_in("usage", "--cargos")
        assert table.stdout.splitlines()[0].split() == [
            "TENANT",
            "MINICLUSTER",
            "CARGO",
            "START",
            "END",
            "STATE",
            "EXIT",
            "GPU-HOURS",
        ]
        lines = table.stdout.splitlines()
        assert any("habits-u-job" in line and "Running" in line for line in lines), lines
        assert any(
            "habits-u-bad" in line and " Failed " in line and " 3 " in line for line in lines
        )
    finally:
        logged_in("mc", "delete", "habits-u", "--yes")
