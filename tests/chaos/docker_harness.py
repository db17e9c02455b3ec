"""The Docker-mode chaos run: ``crane serve --backend docker`` SIGKILLed during churn.

Three real dockerd (``hack/dockerd``) stand for three hosts: two H100 hosts in different racks
for the churn, one A100 host for the probe. The server (API + reconciler + SQLite) is SIGKILLed
at random points (some a moment after it starts) and started again at once on the same
database; a churn thread drives the REST API meanwhile (MiniClusters and Cargos of many shapes
and priorities, a priority-200 MiniCluster that needs borrowed GPUs, lowered min/max, grow and
shrink, deletes). After every kill, once the server is back, a probe Cargo must run again and
the invariants of :mod:`tests.chaos.invariants` are checked from SQL and Docker alone.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx

from tests.chaos import invariants as inv
from tests.chaos.kube_harness import (
    SOURCE,
    ChaosResult,
    ChurnStats,
    free_port,
    log,
    pick_op,
    wait_for,
)
from tests.process import ChildProcess

IMAGE = "crane-test:busybox"
WORK = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
"""Ends at once on SIGTERM, so deletions and preemptions do not wait out a grace period."""
POD = {"spec": {"containers": [{"name": "main", "image": IMAGE, "command": WORK}]}}
TENANT = "default"
RESUME_LIMIT_S = 30.0
"""After a kill, the probe must run within this many seconds (a process start included)."""


def host_bodies(urls: list[str]) -> list[dict[str, Any]]:
    """The three hosts as ``POST /v1/hosts`` bodies: H100 x8 in r1 and r2, A100 x4 (probe)."""
    shapes = [
        ("chaos-h0", "H100", 8, {"rack": "r1"}),
        ("chaos-h1", "H100", 8, {"rack": "r2"}),
        ("chaos-a0", "A100", 4, {"rack": "r3"}),
    ]
    return [
        {"name": name, "dockerHost": url, "gpus": gpus, "gpuType": gpu, "labels": labels}
        for (name, gpu, gpus, labels), url in zip(shapes, urls, strict=True)
    ]


class Server(ChildProcess):
    """``python -m crane serve --backend docker`` on one SQLite file, restartable."""

    def __init__(self, data: Path, token: str) -> None:
        """Not started yet: call :meth:`start`."""
        super().__init__(data / "serve.log")
        self.data = data
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = data / "crane.db"
        data.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        """Start the server process (returns at once; :meth:`healthy` tells when it answers)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRANE_", "DOCKER_"))}
        env.update(PYTHONPATH=str(SOURCE), CRANE_CONFIG_DIR=str(self.data / "cfg"))
        self.spawn(
            [
                sys.executable,
                "-m",
                "crane",
                "serve",
                "--backend",
                "docker",
                "--port",
                str(self.port),
                "--database-url",
                f"sqlite:///{self.database}",
                "--bootstrap-token",
                self.token,
                "--log-level",
                "warning",
            ],
            env,
            SOURCE,
        )

    def healthy(self) -> bool:
        """``/healthz`` answers 200."""
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def client(self, timeout: float = 20) -> httpx.Client:
        """An admin client of the API."""
        return httpx.Client(
            base_url=self.url, timeout=timeout, headers={"Authorization": f"Bearer {self.token}"}
        )


class DockerChurn:
    """A thread driving the REST API: creates, grows, shrinks, patches and deletes."""

    def __init__(self, server: Server, rng: random.Random) -> None:
        """Not started yet: call :meth:`start`."""
        self.server = server
        self.rng = rng
        self.ledger = inv.Ledger()
        self.stats = ChurnStats()
        self.errors: list[str] = []
        self.miniclusters: dict[str, dict[str, Any]] = {}
        self.cargos: dict[str, str] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="docker-churn", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after its current operation."""
        self._stop.set()
        self._thread.join(timeout=300)

    @contextmanager
    def pause(self) -> Iterator[inv.Ledger]:
        """Hold the churn between two operations; yields a copy of the ledger."""
        with self._lock:
            yield self.ledger.copy()

    def _run(self) -> None:
        ops: list[tuple[Callable[[httpx.Client], None], float]] = [
            (self.create_minicluster, 3),
            (self.create_cargo, 5),
            (self.preempt, 1),
            (self.lower_bounds, 1.5),
            (self.grow, 1.5),
            (self.shrink, 1),
            (self.delete_cargo, 2),
            (self.delete_minicluster, 1.5),
        ]
        owed = {  # every run preempts; it grows every 12 turns
            5: (self.preempt, lambda: self.stats.preemptors),
            9: (self.grow, lambda: 1),
        }
        with self.server.client() as api:
            count = 0
            while not self._stop.is_set():
                count += 1
                op = pick_op(count, self.rng, ops, owed)
                with self._lock:
                    if self._stop.is_set():
                        break
                    try:
                        op(api)
                        self.stats.ops[op.__name__] = self.stats.ops.get(op.__name__, 0) + 1
                    except Exception as err:  # server down or request refused: churn goes on
                        self.stats.errors += 1
                        if len(self.errors) < 50:
                            self.errors.append(f"{op.__name__}: {str(err)[:300]}")
                self._stop.wait(self.rng.uniform(0.3, 1.2))

    def _name(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    def _send(
        self,
        api: httpx.Client,
        method: str,
        path: str,
        key: tuple[str, str] | None,
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One call. When its answer is lost (the server was killed) the object's fate is
        unknown: it leaves the ledger (neither "must exist" nor "must be gone"). A delete of
        an object already gone (404) is fine."""
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = api.request(method, path, json=json)
                break
            except httpx.ConnectError:
                # Refused: the server is down and nothing was sent. Wait for it, as a client would.
                if self._stop.is_set() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
            except httpx.TransportError:
                if key is not None:
                    self.ledger.live.pop((key[0], TENANT, key[1]), None)
                    self.ledger.deleted.pop((key[0], TENANT, key[1]), None)
                raise
        if key is not None and method == "DELETE":
            self.ledger.notes[(key[0], TENANT, key[1])] = (
                f"(DELETE answered {answer.status_code} at {time.strftime('%H:%M:%S')})"
            )
        if answer.status_code >= 400 and not (method == "DELETE" and answer.status_code == 404):
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        return answer

    def create_minicluster(self, api: httpx.Client) -> None:
        """A MiniCluster of a random shape (maybe with a template)."""
        if len(self.miniclusters) >= 6:
            return
        rng = self.rng
        lo = rng.choice([0, 0, 2, 4, 8])
        hi = max(1, lo + rng.choice([0, 4, 8]))
        spec: dict[str, Any] = {
            "gpuType": "H100",
            "gpus": {"min": lo, "max": hi},
            "priority": rng.choice([0, 0, 10, 50]),
        }
        if rng.random() < 0.3:
            spec["topology"] = {"level": "rack", "mode": rng.choice(["Required", "Preferred"])}
        if rng.random() < 0.4:
            spec["template"] = {
                "replicas": rng.choice([1, 2]),
                "gpusPerReplica": rng.choice([1, 2]),
                "template": POD,
            }
        name = self._name("mc")
        self._send(api, "POST", "/v1/miniclusters", None, {"name": name, "spec": spec})
        self.ledger.created("miniclusters", TENANT, name, "")
        self.miniclusters[name] = spec
        self.stats.created += 1

    def create_cargo(self, api: httpx.Client) -> None:
        """A Cargo in a MiniCluster without a template."""
        plain = sorted(n for n, s in self.miniclusters.items() if "template" not in s)
        if not plain:
            return self.create_minicluster(api)
        mc = self.rng.choice(plain)
        if sum(1 for m in self.cargos.values() if m == mc) >= 4:
            return None
        name = self._name("cg")
        spec = {
            "miniCluster": mc,
            "replicas": self.rng.choice([1, 1, 2]),
            "gpusPerReplica": self.rng.choice([1, 2, 4]),
            "restartPolicy": self.rng.choice(["Never", "OnFailure"]),
            "template": POD,
        }
        self._send(api, "POST", "/v1/cargos", None, {"name": name, "spec": spec})
        self.ledger.created("cargos", TENANT, name, "")
        self.cargos[name] = mc
        self.stats.created += 1
        return None

    def preempt(self, api: httpx.Client) -> None:
        """A priority-200 MiniCluster of min 8 H100 with one 8-GPU cargo."""
        if len(self.miniclusters) >= 7:
            return
        name = self._name("urgent")
        self._send(
            api,
            "POST",
            "/v1/miniclusters",
            None,
            {
                "name": name,
                "spec": {"gpuType": "H100", "gpus": {"min": 8, "max": 8}, "priority": 200},
            },
        )
        self.ledger.created("miniclusters", TENANT, name, "")
        self.miniclusters[name] = {"gpus": {"min": 8, "max": 8}}
        cargo = self._name("cg")
        self._send(
            api,
            "POST",
            "/v1/cargos",
            None,
            {
                "name": cargo,
                "spec": {"miniCluster": name, "replicas": 1, "gpusPerReplica": 8, "template": POD},
            },
        )
        self.ledger.created("cargos", TENANT, cargo, "")
        self.cargos[cargo] = name
        self.stats.created += 2
        self.stats.preemptors += 1

    def lower_bounds(self, api: httpx.Client) -> None:
        """PATCH a MiniCluster's min and max lower."""
        if not self.miniclusters:
            return
        name = self.rng.choice(sorted(self.miniclusters))
        gpus = self.miniclusters[name]["gpus"]
        lo = max(0, gpus["min"] - self.rng.choice([2, 4]))
        hi = max(lo, 1, gpus["max"] - self.rng.choice([0, 2, 4]))
        self._send(api, "PATCH", f"/v1/miniclusters/{name}", None, {"gpus": {"min": lo, "max": hi}})
        gpus.update(min=lo, max=hi)
        self.stats.patched += 1

    def grow(self, api: httpx.Client) -> None:
        """``:grow`` a MiniCluster with a template by one cargo (it may wait Pending)."""
        templated = sorted(n for n, s in self.miniclusters.items() if "template" in s)
        if templated:
            name = self.rng.choice(templated)
            self._send(
                api,
                "POST",
                f"/v1/miniclusters/{name}:grow",
                None,
                {"count": 1, "allowPending": True},
            )
            self.stats.scaled += 1

    def shrink(self, api: httpx.Client) -> None:
        """``:shrink`` a MiniCluster with a template by its newest cargo."""
        templated = sorted(n for n, s in self.miniclusters.items() if "template" in s)
        if templated:
            name = self.rng.choice(templated)
            try:
                self._send(api, "POST", f"/v1/miniclusters/{name}:shrink", None, {"count": 1})
            except RuntimeError:
                return  # nothing to shrink
            self.stats.scaled += 1

    def delete_cargo(self, api: httpx.Client) -> None:
        """Delete a standalone Cargo."""
        if self.cargos:
            name = self.rng.choice(sorted(self.cargos))
            del self.cargos[name]
            self.ledger.removed("cargos", TENANT, name)
            self._send(api, "DELETE", f"/v1/cargos/{name}", ("cargos", name))
            self.stats.deleted += 1

    def delete_minicluster(self, api: httpx.Client) -> None:
        """Delete a MiniCluster (and so its Cargos)."""
        if len(self.miniclusters) < 3:
            return
        name = self.rng.choice(sorted(self.miniclusters))
        del self.miniclusters[name]
        self.ledger.removed("miniclusters", TENANT, name)
        for cargo in [c for c, m in self.cargos.items() if m == name]:
            del self.cargos[cargo]
            self.ledger.removed("cargos", TENANT, cargo)
        self._send(api, "DELETE", f"/v1/miniclusters/{name}", ("miniclusters", name))
        self.stats.deleted += 1


@dataclass
class DockerChaosConfig:
    """How big a Docker-mode run is."""

    kills: int = 8
    minutes: float = 0.0
    seed: int | None = None
    priming_share: float = 0.2
    kill_delay: tuple[float, float] = (0.5, 4.0)
    settle_seconds: float = 90.0
    probe_timeout: float = 180.0


class DockerChaos:
    """One Docker-mode chaos run on three dockerd (URLs given), in ``work``."""

    def __init__(self, urls: list[str], work: Path, cfg: DockerChaosConfig) -> None:
        """The server (not started), the engines, the seeded churn."""
        self.urls = urls
        self.cfg = cfg
        seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(1 << 31)
        self.result = ChaosResult(seed=seed, target="crane serve --backend docker")
        self.result.violations = inv.empty(inv.DOCKER_INVARIANTS)
        self.rng = random.Random(seed)
        self.server = Server(work, "crane_chaosdock_" + "c" * 43)
        self.hosts = host_bodies(urls)
        self.engines = {
            h["name"]: docker.DockerClient(base_url=h["dockerHost"]) for h in self.hosts
        }
        self.churn = DockerChurn(self.server, random.Random(self.rng.random()))
        self.probe_seq = 0

    def _up(self) -> None:
        self.server.start()

    def probe(self, since: float) -> float:
        """A 1-GPU Cargo on the A100 host; seconds from ``since`` until it runs."""
        self.probe_seq += 1
        name = f"probe{self.probe_seq}"
        body = {
            "name": name,
            "spec": {"miniCluster": "probe", "replicas": 1, "gpusPerReplica": 1, "template": POD},
        }
        with self.server.client() as api:

            def created() -> bool:
                if self.server.crashed() is not None:
                    self.result.crashes += 1
                    self._up()
                    return False
                answer = api.post("/v1/cargos", json=body)
                return answer.status_code in (201, 409)

            wait_for(
                created,
                f"probe cargo {name} created ({self.server.tail(20)})",
                self.cfg.probe_timeout,
                0.3,
            )

            def running() -> bool:
                answer = api.get(f"/v1/cargos/{name}")
                return answer.status_code == 200 and answer.json()["status"]["phase"] == "Running"

            wait_for(
                running,
                f"probe cargo {name} Running (server log:\n{self.server.tail(20)})",
                self.cfg.probe_timeout,
                0.2,
            )
            elapsed = time.monotonic() - since
            api.delete(f"/v1/cargos/{name}")
        return elapsed

    def _recovered(self, since: float, after_kill: int) -> None:
        try:
            seconds = self.probe(since)
        except TimeoutError as err:
            self.result.add(
                {"scheduling_stalled": [f"after kill {after_kill}: {err}"[:800]]}, after_kill
            )
            return
        self.result.recovery_s.append(seconds)
        if seconds > RESUME_LIMIT_S:
            self.result.add(
                {
                    "scheduling_stalled": [
                        f"after kill {after_kill}: probe ran {seconds:.1f} s after the kill "
                        f"(limit {RESUME_LIMIT_S:g} s)"
                    ]
                },
                after_kill,
            )

    def check(self, after_kill: int) -> None:
        """Pause the churn; every invariant from SQL and Docker alone."""
        with self.churn.pause() as ledger:
            found = inv.check_docker(
                str(self.server.database), self.engines, ledger, timeout=self.cfg.settle_seconds
            )
        self.result.checks += 1
        self.result.add(found, after_kill)
        if any(found.values()):
            log(f"docker, after kill {after_kill}: {inv.summary(found, 3)}")

    def run(self) -> ChaosResult:
        """Start, churn, kill, probe and check (see the module docstring)."""
        cfg = self.cfg
        started = time.monotonic()
        log(f"docker chaos seed {self.result.seed}: {cfg.kills} kills")
        self._up()
        wait_for(self.server.healthy, f"crane serve healthy ({self.server.tail()})", 120, 0.3)
        with self.server.client() as api:
            for host in self.hosts:
                added = api.post("/v1/hosts", json=host)
                assert added.status_code == 201, added.text
            made = api.post(
                "/v1/miniclusters",
                json={
                    "name": "probe",
                    "spec": {"gpuType": "A100", "gpus": {"min": 0, "max": 4}, "priority": 1000},
                },
            )
            assert made.status_code == 201, made.text
        self._recovered(time.monotonic(), 0)
        self.churn.start()
        deadline = started + cfg.minutes * 60
        try:
            kill = 0
            while kill < cfg.kills or time.monotonic() < deadline:
                kill += 1
                priming = kill > 1 and (kill % 4 == 2 or self.rng.random() < cfg.priming_share)
                time.sleep(
                    self.rng.uniform(0.05, 1.5) if priming else self.rng.uniform(*cfg.kill_delay)
                )
                if self.server.crashed() is not None:
                    self.result.crashes += 1
                self.server.kill()
                killed_at = time.monotonic()
                self.result.kills += 1
                self.result.priming_kills += priming
                self._up()
                if priming and kill < cfg.kills:
                    continue
                self._recovered(killed_at, kill)
                self.check(kill)
                log(
                    f"docker kill {kill}: recovered in {self.result.recovery_s[-1]:.1f} s"
                    if self.result.recovery_s
                    else f"docker kill {kill}"
                )
        finally:
            self.churn.stop()
        self._recovered(time.monotonic(), self.result.kills)
        self.check(self.result.kills)
        self.server.stop()
        self.result.churn = self.churn.stats
        self.result.churn_errors = self.churn.errors
        self.result.seconds = time.monotonic() - started
        return self.result

    def close(self) -> None:
        """Stop the server, remove every Crane container and network, close the engines."""
        self.server.stop()
        for engine in self.engines.values():
            with closing(engine):
                for c in engine.containers.list(all=True, filters={"label": "crane.io/managed"}):
                    c.remove(force=True)
                for n in engine.networks.list(filters={"label": "crane.io/managed"}):
                    n.remove()
