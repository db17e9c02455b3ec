"""README.md's quick starts, run as written: the blocks are read from README.md, not copied.

Each block follows a ``<!-- quickstart: NAME -->`` marker. A block whose last command keeps
running (``crane up``, ``crane operator``) runs in the background as the user's first terminal;
the next block runs as their second terminal. The only things set from outside are where the
user's machine is: KUBECONFIG and PATH (kubectl, crane), DOCKER_HOST (a hack/dockerd daemon),
CRANE_PORT, and fresh config and data directories.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import docker
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from crane.docker.containers import managed_containers
from tests.dockerd import clean, daemons
from tests.dockerd import env as crane_env
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DAEMON = range(5, 6)
"""A hack/dockerd daemon no other suite uses: ``crane up`` removes containers it does not know."""


def block(name: str) -> str:
    """The fenced bash block after ``<!-- quickstart: NAME -->`` in README.md."""
    found = re.search(
        rf"<!-- quickstart: {re.escape(name)} -->\s*```bash\n(.*?)```", README.read_text(), re.S
    )
    assert found, f"README.md has no quick-start block {name!r}"
    return found.group(1)


def _bash(script: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _run(script: str, env: dict[str, str], log: Path, timeout: float = 300) -> str:
    proc = _bash(script, env, log)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    text = log.read_text()
    assert code == 0, f"README block failed (exit {code}):\n{text[-4000:]}"
    return text


@contextmanager
def _terminal(script: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A block left running in its own terminal; Ctrl-C at the end, as a user stops it."""
    proc = _bash(script, env, log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def _until(
    what: str,
    check: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    log: Path,
    seconds: float = 180,
) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if proc.poll() is not None:
            raise AssertionError(f"{what}: the first terminal exited:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {seconds:.0f}s:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)


def _user_path(*dirs: Path) -> str:
    return os.pathsep.join([*(str(d) for d in dirs), os.environ.get("PATH", "")])


@pytest.mark.e2e
def test_kubernetes_quick_start_as_written(
    kube_cluster: object,
    tools_bin: Path,
    kubeconfig: Path,
    core_v1: client.CoreV1Api,
    kubectl: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    # A fresh machine: no crane-system namespace (nothing in the README creates it by hand).
    try:
        core_v1.delete_namespace("crane-system")
    except ApiException as err:
        if err.status != 404:
            raise
    deadline = time.monotonic() + 180
    while any(n.metadata.name == "crane-system" for n in core_v1.list_namespace().items):
        assert time.monotonic() < deadline, "namespace crane-system still terminating after 180s"
        time.sleep(0.5)
    env = {
        **crane_env(),
        "KUBECONFIG": str(kubeconfig),
        "PATH": _user_path(tools_bin, Path(sys.executable).parent),
        "HOME": str(tmp_path),
    }
    operator_log, use_log = tmp_path / "operator.log", tmp_path / "use.log"
    with _terminal(block("kube-operator"), env, operator_log) as operator:
        _until(
            "the operator takes its lease",
            lambda: "acquired the lease crane-system/crane-operator" in operator_log.read_text(),
            operator,
            operator_log,
        )
        try:
            out = _run(block("kube-use"), env, use_log)
            assert "minicluster.crane.io/llm-train condition met" in out
            mc = json.loads(kubectl("get", "mc", "llm-train", "-o", "json").stdout)
            cargos = json.loads(kubectl("get", "cg", "-o", "json").stdout)["items"]
            mine = [c for c in cargos if c["spec"].get("miniCluster") == "llm-train"]
            assert len(mine) == 2, out

            def placed() -> bool:
                items = json.loads(kubectl("get", "cg", "-o", "json").stdout)["items"]
                return (
                    sum(
                        1
                        for c in items
                        if c["spec"].get("miniCluster") == "llm-train"
                        and (c.get("status") or {}).get("placement")
                    )
                    == 2
                )

            _until("both cargos placed", placed, operator, operator_log)
            assert any(
                c["type"] == "Admitted" and c["status"] == "True"
                for c in mc["status"]["conditions"]
            )
            log = operator_log.read_text()
            assert "namespace crane-system for the leader lease does not exist" in log
            assert 'namespaces "crane-system" not found' not in log, log[-3000:]
        finally:
            kubectl(
                "delete",
                "-f",
                str(REPO / "examples" / "elastic-training.yaml"),
                "--wait=true",
                "--timeout=120s",
                check=False,
            )


@pytest.mark.docker
def test_docker_quick_start_as_written(tmp_path: Path) -> None:
    (url,) = daemons(DAEMON)
    clean([url])
    port = free_port()
    env = crane_env(
        DOCKER_HOST=url,
        CRANE_PORT=str(port),
        CRANE_CONFIG_DIR=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        PATH=_user_path(Path(sys.executable).parent),
    )
    up_log, use_log = tmp_path / "up.log", tmp_path / "use.log"
    try:
        with _terminal(block("docker-up"), env, up_log) as up:
            _until(
                "crane up serves",
                lambda: "CLI context 'local' saved" in up_log.read_text(),
                up,
                up_log,
            )
            out = _run(block("docker-use"), env, use_log)
            assert "minicluster/study created" in out
            assert "study" in out  # the GPU map's legend and the explanation name it

            with closing(docker.DockerClient(base_url=url)) as engine:

                def running() -> bool:
                    return sum(1 for c in managed_containers(engine) if c.status == "running") == 2

                _until("the cargo's 2 containers run", running, up, up_log)
        assert "crane: stopped" in up_log.read_text()
    finally:
        clean([url])
