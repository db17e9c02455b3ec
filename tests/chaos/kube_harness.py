"""The Kubernetes chaos run: `crane operator` SIGKILLed at random points while churn runs.

Shared by ``tests/chaos/test_operator_chaos.py`` (CI-sized) and ``benchmarks/chaos.py`` (the
long run). Everything is seeded; the seed is printed so a failing run can be replayed.

One run:

* a dedicated cluster (``hack/cluster up`` with its own ``CRANE_CLUSTER_NAME``, since the run
  restarts its kube-apiserver), a GPU fleet, plus one probe node of a GPU type the churn never
  uses;
* a churn thread: MiniClusters and Cargos of many shapes and priorities (some with templates,
  some Required within a rack, some ending on cue), a priority-200 MiniCluster whose ``min``
  needs borrowed GPUs (preemption), ``kubectl patch`` lowering min/max, ``kubectl scale
  mc/x --replicas=N``, deletes;
* the operator as a subprocess, SIGKILLed ``kills`` times: some a moment after it starts (cache
  priming), the others at a random delay once it has scheduled again; it is started again at
  once (as a Deployment would);
* once per run, one node made NotReady (kwok's ``sim.crane.io/not-ready``) and later Ready
  again, and one kube-apiserver restart (SIGKILL of its process, then ``kwokctl start cluster``,
  which starts what is not running);
* after every kill, once the operator is back: a probe Cargo must be placed within lease + 10 s
  of the kill (scheduling resumes), then every invariant of :mod:`tests.chaos.invariants` is
  checked from the API server alone; and again at the end.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.chaos import invariants as inv
from tests.process import ChildProcess
from tests.support import apply_leader_fence, wait_established

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "crane.io", "v1alpha1"
NAMESPACE = "chaos"
PROBE_NAMESPACE = "chaos-probe"
LEASE_NAMESPACE = "crane-system"
NOT_READY = "sim.crane.io/not-ready"
PROBE_PRODUCT = "NVIDIA-L4"
SOURCE = Path(os.environ.get("CRANE_CHAOS_SOURCE") or REPO)
"""The tree whose ``crane`` package the operator / server under test runs from: this
repository, or ``CRANE_CHAOS_SOURCE`` (e.g. an export of another branch, to try its fixes
against this harness)."""


def log(message: str) -> None:
    """One progress line on stderr (pytest shows it with -s, and on failure)."""
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Op = TypeVar("Op")


def pick_op(
    count: int,
    rng: random.Random,
    ops: list[tuple[Op, float]],
    owed: dict[int, tuple[Op, Callable[[], int]]],
) -> Op:
    """The churn's ``count``-th operation. ``owed`` maps a turn to an operation every run must
    carry out and the count of its successes: from that turn on it is chosen every other turn
    until it has succeeded once (a kill may lose the first try), later every 12 turns; the other
    turns draw from ``ops`` by weight."""
    for turn, (op, _) in owed.items():
        if count % 12 == turn:
            return op
    for turn, (op, done) in owed.items():
        if count >= turn and count % 2 == 1 and done() == 0:
            return op
    funcs, weights = zip(*ops, strict=True)
    return rng.choices(funcs, weights)[0]


def wait_for(check: Callable[[], Any], what: str, timeout: float, interval: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except Exception as err:  # the API server may be restarting: keep polling
            last = err
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})"
            )
        time.sleep(interval)


# --- the cluster -----


@dataclass
class Cluster:
    """A hack/cluster control plane of the run's own; ``restart_apiserver`` restarts it."""

    name: str
    tools_bin: Path
    kubeconfig: Path
    home: Path
    owned: bool

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses (KUBECONFIG, our kubectl first on PATH)."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.tools_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """The cluster's own kubectl; RuntimeError with stderr when ``check`` and it fails."""
        proc = subprocess.run(
            [str(self.tools_bin / "kubectl"), *args],
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def api_client(self) -> client.ApiClient:
        """A kubernetes ApiClient on this cluster (pooled, short timeouts through the calls)."""
        cfg = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig), client_configuration=cfg
        )
        cfg.connection_pool_maxsize = 16
        cfg.retries = False
        return client.ApiClient(cfg)

    @property
    def state_dir(self) -> Path:
        """kwokctl's directory of this cluster (pids/, logs/, kubeconfig.yaml)."""
        return self.home / "clusters" / self.name

    def ready(self) -> bool:
        """The API server answers /readyz."""
        proc = self.kubectl(
            "--request-timeout=5s", "get", "--raw", "/readyz", check=False, timeout=30
        )
        return proc.returncode == 0

    def restart_apiserver(self) -> float:
        """SIGKILL the kube-apiserver process, start it again with ``kwokctl start cluster``
        (which starts only the components that are not running) and wait for /readyz.
        Returns the seconds the API server was away.

        The new process is started once the old one has let go of its port (a killed Go
        process's threads may outlive its main thread for a moment); a start that still fails
        (the port briefly taken) is retried."""
        pid_file = self.state_dir / "pids" / "kube-apiserver.pid"
        pid = int(pid_file.read_text().strip())
        port = self._apiserver_port()
        started = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not _alive(pid), f"kube-apiserver pid {pid} to exit", 60)
        wait_for(lambda: _bindable(port), f"port {port} of the killed kube-apiserver free", 60)
        kwokctl = [
            str(self.tools_bin / "kwokctl"),
            "--name",
            self.name,
            "-c",
            str(REPO / "hack" / "kwok" / "kwokctl.yaml"),
            "-c",
            str(REPO / "hack" / "kwok" / "stages.yaml"),
            "start",
            "cluster",
        ]
        env = {**self.env, "KWOK_WORKDIR": str(self.home)}
        for attempt in range(1, 6):
            pid_file.unlink(missing_ok=True)  # a dead pid (or a zombie's) looks alive to kwokctl
            done = subprocess.run(kwokctl, env=env, capture_output=True, text=True, timeout=300)
            if done.returncode != 0 and attempt == 5:
                raise RuntimeError(f"kwokctl start cluster: {done.stderr.strip()[-2000:]}")
            try:
                wait_for(self.ready, "the kube-apiserver to answer /readyz again", 60, 0.5)
                break
            except TimeoutError:
                new = int(pid_file.read_text().strip()) if pid_file.exists() else 0
                if attempt == 5 or (new and _alive(new)):
                    raise
                log(f"kube-apiserver did not start (attempt {attempt}); starting it again")
                wait_for(lambda: _bindable(port), f"port {port} free", 60)
        return time.monotonic() - started

    def _apiserver_port(self) -> int:
        text = self.kubeconfig.read_text()
        server = next(line for line in text.splitlines() if "server:" in line)
        return int(server.rsplit(":", 1)[1].strip().rstrip("/"))


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie whose threads are all gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().split(")")[-1].split()[0]
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return False
    return state != "Z" or threads > 1


def _bindable(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (a listener could bind it now)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tools_bin() -> Path:
    """The directory of kubectl, kwokctl and the control plane (hack/build-tools --check)."""
    check = subprocess.run(
        [str(REPO / "hack" / "build-tools"), "--check"], capture_output=True, text=True, timeout=60
    )
    if check.returncode != 0:
        raise RuntimeError(f"tools are not built: {check.stderr.strip()} (run hack/build-tools)")
    return Path(check.stdout.strip())


def cluster_home() -> Path:
    """hack/cluster's state root (CRANE_CLUSTER_HOME, default ~/.cache/crane/kwok)."""
    return Path(os.environ.get("CRANE_CLUSTER_HOME", str(Path.home() / ".cache/crane/kwok")))


@contextmanager
def dedicated_cluster(name: str, fleet: Path) -> Iterator[Cluster]:
    """``hack/cluster up FLEET`` under its own name; ``hack/cluster down`` at the end."""
    bin_dir = tools_bin()
    env = {**os.environ, "CRANE_CLUSTER_NAME": name, "PYTHON": sys.executable}
    script = str(REPO / "hack" / "cluster")
    subprocess.run([script, "prune"], env=env, capture_output=True, text=True, timeout=120)
    up = subprocess.run(
        [script, "up", str(fleet)], env=env, capture_output=True, text=True, timeout=600
    )
    try:
        if up.returncode != 0:
            raise RuntimeError(f"hack/cluster up failed: {up.stderr.strip()[-2000:]}")
        kubeconfig = Path(up.stdout.split("export KUBECONFIG=", 1)[1].split()[0])
        yield Cluster(name, bin_dir, kubeconfig, cluster_home(), owned=True)
    finally:
        down = subprocess.run(
            [script, "down"], env=env, capture_output=True, text=True, timeout=180
        )
        if down.returncode != 0:
            log(f"hack/cluster down ({name}) failed: {down.stderr.strip()}")


# --- the operator -----


class Operator(ChildProcess):
    """``python -m crane operator`` as a subprocess, logging to a file, killed with SIGKILL."""

    def __init__(
        self, cluster: Cluster, log_path: Path, lease_seconds: float, node_grace: float
    ) -> None:
        """Not started yet: call :meth:`start`."""
        super().__init__(log_path)
        self.cluster = cluster
        self.lease_seconds = lease_seconds
        self.node_grace = node_grace
        self.starts = 0
        self._mark = 0
        self.up_at: float | None = None

    def start(self) -> None:
        """Start a new operator process (the previous one must be gone)."""
        self.up_at = None
        metrics, health = free_port(), free_port()
        self._mark = self.spawn(
            [
                sys.executable,
                "-m",
                "crane",
                "operator",
                "--lease-namespace",
                LEASE_NAMESPACE,
                "--lease-seconds",
                str(self.lease_seconds),
                "--node-grace",
                str(self.node_grace),
                "--metrics-port",
                str(metrics),
                "--liveness",
                f"http://127.0.0.1:{health}/healthz",
            ],
            {**self.cluster.env, "PYTHONPATH": str(SOURCE)},
            SOURCE,
            banner=f"start {self.starts} at {time.strftime('%H:%M:%S')}",
        )
        self.starts += 1

    def poll_up(self) -> float | None:
        """When the process was first seen up (it wrote its first log line: the interpreter
        and its imports are done); None while not yet. Call it while waiting."""
        if self.up_at is None and self.log_path.stat().st_size > self._mark:
            self.up_at = time.monotonic()
        return self.up_at

    def grep(self, *needles: str, limit: int = 8) -> list[str]:
        """Distinct log lines that contain any of ``needles`` (first ``limit``)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        found: list[str] = []
        for line in text.splitlines():
            if any(n in line for n in needles) and line not in found:
                found.append(line.strip()[:400])
                if len(found) >= limit:
                    break
        return found


# --- the churn -----

POD_SPEC = {
    "terminationGracePeriodSeconds": 1,
    "containers": [{"name": "main", "image": "busybox"}],
}


def _template(rng: random.Random) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if rng.random() < 0.2:  # some pods end on cue (kwok's crane-pod-exit stage)
        meta = {
            "annotations": {
                "sim.crane.io/exit-code": rng.choice(["0", "1"]),
                "sim.crane.io/run-for": f"{rng.randint(5, 30)}s",
            }
        }
    return {"metadata": meta, "spec": POD_SPEC}


@dataclass
class ChurnStats:
    """What the churn did."""

    created: int = 0
    deleted: int = 0
    patched: int = 0
    scaled: int = 0
    preemptors: int = 0
    errors: int = 0
    unlinked: int = 0
    """Cargos left behind by a MiniCluster deleted before the operator linked them."""
    ops: dict[str, int] = field(default_factory=dict)


class Churn:
    """A thread that keeps creating, changing and deleting MiniClusters and Cargos.

    ``pause()`` (a context manager) stops it between two operations, so the invariants are
    checked against a ledger that does not move.
    """

    def __init__(
        self,
        cluster: Cluster,
        custom: client.CustomObjectsApi,
        rng: random.Random,
        gpu_types: list[tuple[str, int]],
        max_miniclusters: int = 7,
        interval: tuple[float, float] = (0.2, 1.0),
    ) -> None:
        """``gpu_types``: (family, GPUs per node) the churn asks for."""
        self.cluster = cluster
        self.custom = custom
        self.rng = rng
        self.gpu_types = gpu_types
        self.max_miniclusters = max_miniclusters
        self.interval = interval
        self.ledger = inv.Ledger()
        self.stats = ChurnStats()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="churn", daemon=True)
        self._seq = 0
        self.miniclusters: dict[str, dict[str, Any]] = {}
        """name -> spec of the live MiniClusters the churn made."""
        self.cargos: dict[str, str] = {}
        """name -> MiniCluster of the live standalone Cargos the churn made."""

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

    def _name(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    def _run(self) -> None:
        ops: list[tuple[Callable[[], None], float]] = [
            (self.create_minicluster, 3),
            (self.create_cargo, 5),
            (self.preempt, 1),
            (self.lower_bounds, 1.5),
            (self.scale, 2),
            (self.delete_cargo, 2),
            (self.delete_minicluster, 1.5),
        ]
        owed = {  # every run preempts and scales
            5: (self.preempt, lambda: self.stats.preemptors),
            9: (self.scale, lambda: self.stats.scaled),
        }
        count = 0
        while not self._stop.is_set():
            count += 1
            op = pick_op(count, self.rng, ops, owed)
            with self._lock:
                if self._stop.is_set():
                    break
                try:
                    op()
                    name = op.__name__
                    self.stats.ops[name] = self.stats.ops.get(name, 0) + 1
                except Exception as err:  # a rejected or failed call is churn too; count it
                    self.stats.errors += 1
                    if len(self.errors) < 50:
                        self.errors.append(f"{op.__name__}: {str(err)[:300]}")
            self._stop.wait(self.rng.uniform(*self.interval))

    # -- operations (each runs with the lock held) --

    def _create(self, plural: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        try:
            made = self.custom.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, plural, body
            )
        except ApiException:
            raise
        except Exception:
            # The answer was lost (connection reset): look the object up to know what happened.
            made = _get(self.custom, plural, NAMESPACE, name)
            if made is None:
                raise
        self.ledger.created(plural, NAMESPACE, name, made["metadata"]["uid"])
        self.stats.created += 1

    def create_minicluster(self, templated: bool = False) -> None:
        """A MiniCluster of a random shape: min 0..16, max above it, a priority, maybe a
        template (``replicas`` cargos of a random shape; always when ``templated``), maybe
        Required within a rack. ``templated`` creates one even at the MiniCluster cap."""
        if len(self.miniclusters) >= self.max_miniclusters and not templated:
            return
        rng = self.rng
        family, per_node = rng.choice(self.gpu_types)
        lo = rng.choice([0, 0, 2, 4, 8, per_node])
        hi = lo + rng.choice([0, 4, 8, 16])
        spec: dict[str, Any] = {
            "gpuType": family,
            "gpus": {"min": lo, "max": max(hi, 1)},
            "priority": rng.choice([0, 0, 10, 50]),
        }
        if rng.random() < 0.3:
            spec["topology"] = {"level": "rack", "mode": rng.choice(["Required", "Preferred"])}
        if templated or rng.random() < 0.4:
            per_cargo, per_replica = rng.choice([1, 1, 2]), rng.choice([1, 2, 4])
            spec["replicas"] = rng.randint(0, 3)
            spec["gpus"]["max"] = max(
                spec["gpus"]["max"], spec["replicas"] * per_cargo * per_replica
            )
            spec["template"] = {
                "replicas": per_cargo,
                "gpusPerReplica": per_replica,
                "restartPolicy": rng.choice(["Never", "OnFailure"]),
                "template": _template(rng),
            }
        name = self._name("mc")
        self._create(
            "miniclusters",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MiniCluster",
                "metadata": {"name": name},
                "spec": spec,
            },
        )
        self.miniclusters[name] = spec

    def create_cargo(self) -> None:
        """A Cargo of a random shape in a MiniCluster without a template."""
        plain = [n for n, s in self.miniclusters.items() if "template" not in s]
        if not plain:
            return self.create_minicluster()
        mc = self.rng.choice(plain)
        if sum(1 for m in self.cargos.values() if m == mc) >= 5:
            return None
        per_node = dict(self.gpu_types).get(self.miniclusters[mc]["gpuType"], 8)
        gpus = self.rng.choice([g for g in (1, 2, 4, 8) if g <= per_node])
        name = self._name("cg")
        self._create(
            "cargos",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Cargo",
                "metadata": {"name": name},
                "spec": {
                    "miniCluster": mc,
                    "replicas": self.rng.choice([1, 1, 2, 3]),
                    "gpusPerReplica": gpus,
                    "restartPolicy": self.rng.choice(["Never", "OnFailure"]),
                    "template": _template(self.rng),
                },
            },
        )
        self.cargos[name] = mc
        return None

    def preempt(self) -> None:
        """A priority-200 MiniCluster whose min needs GPUs other MiniClusters borrowed, with a
        cargo that uses all of them."""
        if len(self.miniclusters) >= self.max_miniclusters + 1:
            return
        family, per_node = self.gpu_types[0]
        lo = 2 * per_node
        name = self._name("urgent")
        self._create(
            "miniclusters",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MiniCluster",
                "metadata": {"name": name},
                "spec": {"gpuType": family, "gpus": {"min": lo, "max": lo}, "priority": 200},
            },
        )
        self.miniclusters[name] = {"gpuType": family, "gpus": {"min": lo, "max": lo}}
        cargo = self._name("cg")
        self._create(
            "cargos",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Cargo",
                "metadata": {"name": cargo},
                "spec": {
                    "miniCluster": name,
                    "replicas": 2,
                    "gpusPerReplica": per_node,
                    "restartPolicy": "OnFailure",
                    "template": {"spec": POD_SPEC},
                },
            },
        )
        self.cargos[cargo] = name
        self.stats.preemptors += 1

    def lower_bounds(self) -> None:
        """``kubectl patch`` a MiniCluster's min and max lower."""
        if not self.miniclusters:
            return
        name = self.rng.choice(sorted(self.miniclusters))
        spec = self.miniclusters[name]
        gpus = spec["gpus"]
        lo = max(0, gpus["min"] - self.rng.choice([2, 4, 8]))
        hi = max(lo, gpus["max"] - self.rng.choice([0, 4, 8]), 1)
        if "template" in spec:  # keep replicas x template GPUs <= max (a valid spec)
            hi = max(hi, spec.get("replicas", 0) * _cargo_gpus(spec))
        patch = json.dumps({"spec": {"gpus": {"min": lo, "max": hi}}})
        self.cluster.kubectl("patch", "-n", NAMESPACE, f"mc/{name}", "--type=merge", "-p", patch)
        self.miniclusters[name]["gpus"] = {"min": lo, "max": hi}
        self.stats.patched += 1

    def scale(self) -> None:
        """``kubectl scale mc/x --replicas=N`` on a MiniCluster with a template."""
        templated = sorted(n for n, s in self.miniclusters.items() if "template" in s)
        if not templated:  # every run scales: make a MiniCluster with a template to scale
            self.create_minicluster(templated=True)
            templated = sorted(n for n, s in self.miniclusters.items() if "template" in s)
            if not templated:
                return
        name = self.rng.choice(templated)
        spec = self.miniclusters[name]
        most = spec["gpus"]["max"] // max(1, _cargo_gpus(spec))
        replicas = self.rng.randint(0, min(4, most))
        self.cluster.kubectl("scale", "-n", NAMESPACE, f"mc/{name}", f"--replicas={replicas}")
        self.miniclusters[name]["replicas"] = replicas
        self.stats.scaled += 1

    def delete_cargo(self) -> None:
        """Delete a standalone Cargo."""
        if not self.cargos:
            return
        name = self.rng.choice(sorted(self.cargos))
        self._delete("cargos", name)
        del self.cargos[name]

    def delete_minicluster(self) -> None:
        """Delete a MiniCluster. Its Cargos that the operator had already linked to it (an
        ownerReference) must go with it; one it never saw while the MiniCluster lived stays,
        Pending with "MiniCluster not found" (as a Cargo created before its MiniCluster
        does), so the ledger forgets it."""
        if len(self.miniclusters) < 3:
            return
        name = self.rng.choice(sorted(self.miniclusters))
        mc = _get(self.custom, "miniclusters", NAMESPACE, name)
        linked = {
            c: any(
                o.get("uid") == (mc or {}).get("metadata", {}).get("uid")
                for o in (
                    (_get(self.custom, "cargos", NAMESPACE, c) or {})
                    .get("metadata", {})
                    .get("ownerReferences")
                    or []
                )
            )
            for c, owner in self.cargos.items()
            if owner == name
        }
        self._delete("miniclusters", name)
        del self.miniclusters[name]
        for cargo, owned in linked.items():
            del self.cargos[cargo]
            if owned:
                self.ledger.removed("cargos", NAMESPACE, cargo)
            else:
                self.ledger.live.pop(("cargos", NAMESPACE, cargo), None)
                self.stats.unlinked += 1

    def _delete(self, plural: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name)
        except ApiException as err:
            if err.status != 404:
                raise
        self.ledger.removed(plural, NAMESPACE, name)
        self.stats.deleted += 1


def _cargo_gpus(spec: dict[str, Any]) -> int:
    """GPUs of one template cargo of a MiniCluster spec."""
    return int(spec["template"]["replicas"]) * int(spec["template"]["gpusPerReplica"])


def _get(custom: client.CustomObjectsApi, plural: str, ns: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return obj


# --- the run -----


@dataclass
class ChaosConfig:
    """How big a run is."""

    kills: int = 20
    minutes: float = 0.0
    """Keep killing until this many minutes have passed too (0: stop after ``kills``)."""
    seed: int | None = None
    lease_seconds: float = 5.0
    node_grace: float = 10.0
    priming_share: float = 0.2
    """Share of kills that land a moment after the start (cache priming)."""
    kill_delay: tuple[float, float] = (0.5, 4.0)
    """Seconds after the operator is back before the next kill."""
    settle_seconds: float = 90.0
    """How long consistency invariants may take to hold after a kill."""
    probe_timeout: float = 120.0
    stop_after_stalls: int = 3
    """Stop the run when this many probes in a row were never placed (the operator no longer
    schedules at all: more kills would only repeat it)."""
    gpu_types: list[tuple[str, int]] = field(default_factory=lambda: [("H100", 8), ("A100", 4)])
    max_miniclusters: int = 7
    work_dir: Path = Path("/tmp")


@dataclass
class ChaosResult:
    """Every figure of a run."""

    seed: int
    target: str = "crane operator"
    """What was SIGKILLed."""
    kills: int = 0
    priming_kills: int = 0
    crashes: int = 0
    apiserver_restarts: int = 0
    apiserver_down_s: float = 0.0
    nodes_failed: int = 0
    checks: int = 0
    recovery_s: list[float] = field(default_factory=list)
    startup_s: list[float] = field(default_factory=list)
    """Per recovery: seconds from the kill until the new process was up (imports done)."""
    violations: dict[str, list[str]] = field(default_factory=lambda: inv.empty())
    first_violation: dict[str, int] = field(default_factory=dict)
    """invariant -> the kill after which it was first seen."""
    churn: ChurnStats = field(default_factory=ChurnStats)
    churn_errors: list[str] = field(default_factory=list)
    operator_log_lines: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, found: inv.Violations, after_kill: int) -> None:
        """Merge one check's findings (distinct findings are counted once)."""
        for name, items in found.items():
            bucket = self.violations.setdefault(name, [])
            for item in items:
                if item not in bucket:
                    bucket.append(item)
            if items and name not in self.first_violation:
                self.first_violation[name] = after_kill

    @property
    def ok(self) -> bool:
        """No invariant was violated."""
        return not any(self.violations.values())

    def percentile(self, q: float) -> float:
        """Recovery time percentile (seconds), 0 when nothing was measured."""
        if not self.recovery_s:
            return 0.0
        ordered = sorted(self.recovery_s)
        if len(ordered) == 1:
            return ordered[0]
        return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]

    def report(self) -> str:
        """Every figure, one per line."""
        kube = self.target == "crane operator"
        lines = [
            f"seed: {self.seed}",
            f"{self.target} SIGKILLs: {self.kills} (during start-up / cache priming: "
            f"{self.priming_kills}); exits on its own (crashes): {self.crashes}",
            *(
                [
                    f"kube-apiserver restarts: {self.apiserver_restarts} (away "
                    f"{self.apiserver_down_s:.1f} s); nodes made NotReady: {self.nodes_failed}",
                    f"process start-up (kill -> first log line): p50 "
                    f"{statistics.median(self.startup_s) if self.startup_s else 0:.1f} s, max "
                    f"{max(self.startup_s, default=0):.1f} s",
                ]
                if kube
                else []
            ),
            f"invariant checks: {self.checks}",
            f"recovery (kill -> probe cargo placed): p50 {self.percentile(50):.1f} s, "
            f"p99 {self.percentile(99):.1f} s, max {max(self.recovery_s, default=0):.1f} s "
            f"over {len(self.recovery_s)}",
            f"churn: created {self.churn.created}, deleted {self.churn.deleted}, "
            f"patched {self.churn.patched}, scaled {self.churn.scaled}, "
            f"preemptors {self.churn.preemptors}, rejected/failed calls {self.churn.errors}"
            + (
                f", cargos never linked to a MiniCluster deleted early {self.churn.unlinked}"
                if kube
                else ""
            )
            + f"; operations {dict(sorted(self.churn.ops.items()))}",
            f"run time: {self.seconds:.0f} s",
            "violations (distinct findings per invariant):",
        ]
        for name, items in self.violations.items():
            first = (
                f" (first after kill {self.first_violation[name]})"
                if name in self.first_violation
                else ""
            )
            lines.append(f"  {name}: {len(items)}{first}")
            lines.extend(f"    - {item}" for item in items[:5])
        if self.churn_errors:
            kinds: dict[str, int] = {}
            for error in self.churn_errors:
                kinds[error[:120]] = kinds.get(error[:120], 0) + 1
            lines.append("churn calls refused or failed (first 50, by kind):")
            lines.extend(f"    {n} x {kind}" for kind, n in sorted(kinds.items()))
        if self.operator_log_lines:
            lines.append("operator log lines about restore / conflicts / tracebacks:")
            lines.extend(f"    {line}" for line in self.operator_log_lines)
        return "\n".join(lines)


def prepare(cluster: Cluster, core: client.CoreV1Api) -> None:
    """CRDs applied and Established, the chart's leader fence, the Lease and chaos namespaces
    (with their default ServiceAccount), and the probe node (a GPU type the churn never asks
    for)."""
    from crane.kube.fleet import apply_nodes, fleet_manifests, wait_ready
    from crane.model.fleet import FleetSpec, NodeGroup

    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "helm" / "crane" / "crds"))
    wait_established(cluster.kubectl, "crd/miniclusters.crane.io", "crd/cargos.crane.io")
    apply_leader_fence(cluster.kubectl, cluster.tools_bin)
    for ns in (LEASE_NAMESPACE, NAMESPACE, PROBE_NAMESPACE):
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        except ApiException as err:
            if err.status != 409:
                raise
        wait_for(
            lambda ns=ns: any(
                sa.metadata.name == "default"
                for sa in core.list_namespaced_service_account(ns).items
            ),
            f"the default ServiceAccount of {ns}",
            60,
        )
    spec = FleetSpec(
        groups=[
            NodeGroup(
                name="probe",
                product=PROBE_PRODUCT,
                gpus_per_node=8,
                racks_per_block=1,
                nodes_per_rack=1,
            )
        ]
    )
    nodes = fleet_manifests(spec)
    apply_nodes(core, nodes)
    wait_ready(core, [n["metadata"]["name"] for n in nodes], timeout=120)


class KubeChaos:
    """One chaos run on a prepared cluster (see the module docstring)."""

    def __init__(self, cluster: Cluster, cfg: ChaosConfig) -> None:
        """Clients, the seeded random source, the operator and the churn (not started)."""
        self.cluster = cluster
        self.cfg = cfg
        seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(1 << 31)
        self.result = ChaosResult(seed=seed)
        self.rng = random.Random(seed)
        self.api = cluster.api_client()
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.operator = Operator(
            cluster, cfg.work_dir / "operator.log", cfg.lease_seconds, cfg.node_grace
        )
        self.churn = Churn(
            cluster,
            self.custom,
            random.Random(self.rng.random()),
            cfg.gpu_types,
            cfg.max_miniclusters,
        )
        self.probe_seq = 0
        self.stalls = 0
        self.failed_node: str | None = None

    # -- probe: scheduling resumes --

    def _ensure_probe_minicluster(self) -> None:
        if _get(self.custom, "miniclusters", PROBE_NAMESPACE, "probe") is None:
            self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                PROBE_NAMESPACE,
                "miniclusters",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "MiniCluster",
                    "metadata": {"name": "probe"},
                    "spec": {"gpuType": "L4", "gpus": {"min": 0, "max": 8}, "priority": 1000},
                },
            )

    def probe(self, since: float) -> float:
        """Create a 1-GPU probe Cargo and wait until the operator has made its pod; the
        seconds since ``since``. The probe is deleted afterwards."""
        self.probe_seq += 1
        name = f"probe{self.probe_seq}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Cargo",
            "metadata": {"name": name},
            "spec": {
                "miniCluster": "probe",
                "replicas": 1,
                "gpusPerReplica": 1,
                "template": {"spec": POD_SPEC},
            },
        }

        def created() -> bool:
            try:
                self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, PROBE_NAMESPACE, "cargos", body
                )
            except ApiException as err:
                if err.status != 409:  # 409: an earlier try got through
                    raise
            return True

        wait_for(created, f"probe cargo {name} created", 120, 0.5)

        def placed() -> bool:
            self.operator.poll_up()
            if self.operator.crashed() is not None:
                self.result.crashes += 1
                self.operator.start()
            pods = self.core.list_namespaced_pod(
                PROBE_NAMESPACE, label_selector=f"crane.io/cargo={name}"
            ).items
            return bool(pods)  # the operator creates pods only once it has placed the cargo

        wait_for(
            placed,
            f"probe cargo {name} placed (operator log:\n{self.operator.tail(30)}\n)",
            self.cfg.probe_timeout,
            0.2,
        )
        elapsed = time.monotonic() - since
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, PROBE_NAMESPACE, "cargos", name
            )
        except ApiException as err:
            if err.status != 404:
                raise
        return elapsed

    # -- checks --

    def check(self, after_kill: int) -> inv.Violations:
        """Pause the churn and check every invariant from the API server alone."""
        with self.churn.pause() as ledger:
            found = inv.check_kube(
                self.core,
                self.custom,
                ledger,
                [NAMESPACE, PROBE_NAMESPACE],
                timeout=self.cfg.settle_seconds,
            )
        self.result.checks += 1
        self.result.add(found, after_kill)
        if any(found.values()):
            log(f"after kill {after_kill}: {inv.summary(found, 3)}")
        return found

    def _recovered(self, since: float, after_kill: int) -> None:
        try:
            seconds = self.probe(since)
        except TimeoutError as err:
            self.stalls += 1
            self.result.add(
                {"scheduling_stalled": [f"after kill {after_kill}: {err}"[:1500]]}, after_kill
            )
            return
        self.stalls = 0
        self.result.recovery_s.append(seconds)
        # The bound is for Crane's own recovery: lease expiry, cache priming and the first
        # pass. The interpreter start and imports of the new process (seconds on a loaded
        # machine, and a Deployment's restart delay in a real cluster) are not Crane's
        # scheduling: they are measured (first log line) and reported, not counted.
        up = self.operator.up_at
        startup = max(0.0, up - since) if up is not None and up > since else 0.0
        self.result.startup_s.append(startup)
        limit = self.cfg.lease_seconds + 10
        if seconds - startup > limit:
            self.result.add(
                {
                    "scheduling_stalled": [
                        f"after kill {after_kill}: probe placed {seconds:.1f} s after the kill, "
                        f"{seconds - startup:.1f} s after the new process was up (limit: lease "
                        f"{self.cfg.lease_seconds:g} s + 10 s)"
                    ]
                },
                after_kill,
            )

    # -- faults --

    def fail_node(self) -> None:
        """Make one node of the churn's first GPU type NotReady (kwok stops its heartbeat)."""
        family = self.cfg.gpu_types[0][0]
        nodes = [
            n.metadata.name
            for n in self.core.list_node().items
            if family in (n.metadata.labels or {}).get("nvidia.com/gpu.product", "")
        ]
        self.failed_node = self.rng.choice(sorted(nodes))
        self.core.patch_node(self.failed_node, {"metadata": {"annotations": {NOT_READY: "true"}}})
        self.result.nodes_failed += 1
        log(f"node {self.failed_node} made NotReady")

    def heal_node(self) -> None:
        """Make the failed node Ready again."""
        if self.failed_node is not None:
            self.core.patch_node(self.failed_node, {"metadata": {"annotations": {NOT_READY: None}}})
            log(f"node {self.failed_node} Ready again")
            self.failed_node = None

    def restart_apiserver(self) -> None:
        """Restart the kube-apiserver with the churn paused (the operator keeps running)."""
        with self.churn.pause():
            away = self.cluster.restart_apiserver()
        self.result.apiserver_restarts += 1
        self.result.apiserver_down_s += away
        log(f"kube-apiserver restarted (away {away:.1f} s)")

    # -- the run --

    def run(self) -> ChaosResult:
        """Kill, restart, probe and check until the kills (and minutes) are done."""
        cfg = self.cfg
        started = time.monotonic()
        log(
            f"seed {self.result.seed}: {cfg.kills} kills, {cfg.minutes:g} min, lease "
            f"{cfg.lease_seconds:g} s (replay with --seed {self.result.seed})"
        )
        self._ensure_probe_minicluster()
        self.operator.start()
        self._recovered(time.monotonic(), 0)
        self.churn.start()
        fail_at = max(1, cfg.kills // 4)
        heal_at = max(2, cfg.kills // 2)
        restart_at = max(3, (cfg.kills * 2) // 3)
        deadline = started + cfg.minutes * 60
        try:
            kill = 0
            while kill < cfg.kills or time.monotonic() < deadline:
                kill += 1
                if kill == fail_at:
                    self.fail_node()
                if kill == heal_at:
                    self.heal_node()
                # Early kills: during start-up and cache priming of the process just started.
                priming = kill > 1 and (kill % 4 == 2 or self.rng.random() < cfg.priming_share)
                if priming:
                    time.sleep(self.rng.uniform(0.05, 2.0))
                else:
                    time.sleep(self.rng.uniform(*cfg.kill_delay))
                if self.operator.crashed() is not None:
                    self.result.crashes += 1
                self.operator.kill()
                killed_at = time.monotonic()
                self.result.kills += 1
                self.result.priming_kills += priming
                self.operator.start()
                if priming and kill < cfg.kills:
                    continue  # killed again before it had a pass; checked after the next one
                self._recovered(killed_at, kill)
                if self.stalls >= cfg.stop_after_stalls:
                    log(f"kill {kill}: {self.stalls} probes in a row never placed; stopping")
                    break
                if kill >= restart_at and not self.result.apiserver_restarts:
                    self.restart_apiserver()
                    self._recovered(time.monotonic(), kill)
                self.check(kill)
                log(
                    f"kill {kill}: recovered in {self.result.recovery_s[-1]:.1f} s"
                    if self.result.recovery_s
                    else f"kill {kill}"
                )
            self.heal_node()
            self.churn.stop()
            self._recovered(time.monotonic(), self.result.kills)
            self.check(self.result.kills)
        finally:
            self.churn.stop()
            self.operator.stop()
        self.result.churn = self.churn.stats
        self.result.churn_errors = self.churn.errors
        self.result.operator_log_lines = self.operator.grep(
            "cannot restore", "two statuses claim", "Traceback", "Error", limit=12
        )
        self.result.seconds = time.monotonic() - started
        self.api.close()  # type: ignore[no-untyped-call]
        return self.result
