"""The real public trace Alibaba cluster-trace-gpu-v2023 "openb" as a benchmark workload.

Read at run time from ``../shared/traces/alibaba-openb`` relative to the repository root
(never copied into the repository; see its SOURCE.md). Whole GPUs: a fractional GPU request
(``gpu_milli`` < 1000) counts as one GPU; CPU-only tasks are left out; the trace has no GPU
type constraints in its default list, so a task accepts every GPU model (an ordered
``gpuType`` list of all of them).

- **Nodes**: the 1,213 nodes of ``openb_node_list_gpu_node.csv`` (6,212 GPUs, 7 models, 1 to 8
  GPUs). The trace has no racks: nodes are put in synthetic racks of 8 per model, in file
  order (label ``crane.io/rack``), one island per node.
- **Tasks with departures**: tasks drawn (seeded, with replacement) from
  ``openb_pod_list_default.csv`` with their real lifetime (deletion - creation). The trace's
  own arrivals keep the demand far below the cluster (SOURCE.md), so arrivals are Poisson at
  the offered load of the synthetic churn (Little's law on the trace's mean lifetime);
  lifetimes are capped at 6 h (:data:`MAX_LIFETIME`).
- **Multi-tenant mix**: tenant ``trace`` sends the tasks above; tenant ``train`` sends gangs
  of 8-GPU replicas, 16 or 32 GPUs Required within one rack, on the 8-GPU model G2 (1 job in
  20). A gang that does not fit when it arrives waits (retried, oldest first, after each
  departure) up to a patience of twice the median task lifetime, then is dropped.
"""

from __future__ import annotations

import csv
import heapq
import math
import os
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.workload import OFFERED, Job, Stream
from crane.model.inventory import NodeInventory
from crane.model.topology import DEFAULT_LEVEL_KEYS


def _trace_dir() -> Path:
    """``$CRANE_TRACE_DIR``, else ``../shared/traces/alibaba-openb`` relative to the repository
    root, else the same under the nearest ancestor that has it (a git worktree nested deeper)."""
    if os.environ.get("CRANE_TRACE_DIR"):
        return Path(os.environ["CRANE_TRACE_DIR"])
    root = Path(__file__).resolve().parents[1]
    for base in root.parents:
        candidate = base / "shared" / "traces" / "alibaba-openb"
        if candidate.exists():
            return candidate
    return root.parent / "shared" / "traces" / "alibaba-openb"


TRACE = _trace_dir()
RACK_SIZE = 8
MAX_LIFETIME = 6 * 3600.0
"""Lifetimes are capped at 6 h (the trace's p90 is 1.8 h, its longest 145 days): without a cap
the demand present would take millions of arrivals to build up."""
GANG_MODEL = "G2"
GANG_SHARE = 0.05
"""Share of jobs that are tenant ``train``'s gangs in the multi-tenant mix."""


@dataclass(frozen=True)
class Task:
    gpus: int
    lifetime: float


def available() -> bool:
    """Whether the trace files are where the benchmark reads them."""
    return (TRACE / "openb_node_list_gpu_node.csv").exists()


def nodes() -> list[NodeInventory]:
    """The trace's GPU nodes, in synthetic racks of 8 per model."""
    out: list[NodeInventory] = []
    per_model: Counter[str] = Counter()
    with (TRACE / "openb_node_list_gpu_node.csv").open() as f:
        for row in csv.DictReader(f):
            model, gpus = row["model"], int(row["gpu"])
            rack = f"{model.lower()}-r{per_model[model] // RACK_SIZE}"
            per_model[model] += 1
            out.append(
                NodeInventory(
                    name=row["sn"],
                    gpu_product=model,
                    gpu_count=gpus,
                    labels={
                        DEFAULT_LEVEL_KEYS["rack"]: rack,
                        DEFAULT_LEVEL_KEYS["block"]: "b0",
                        DEFAULT_LEVEL_KEYS["zone"]: "z0",
                    },
                )
            )
    return out


def tasks() -> list[Task]:
    """GPU tasks of the default pod list: whole GPUs and their lifetime in seconds."""
    out: list[Task] = []
    with (TRACE / "openb_pod_list_default.csv").open() as f:
        for row in csv.DictReader(f):
            gpus = int(row["num_gpu"])
            if gpus <= 0 or not row["deletion_time"]:
                continue
            life = max(float(row["deletion_time"]) - float(row["creation_time"]), 1.0)
            life = min(life, MAX_LIFETIME)
            out.append(Task(gpus, life))
    return out


def stream(
    nodes_: Sequence[NodeInventory], checkpoints: Sequence[float], tenants: bool, seed: int = 11
) -> Stream:
    """Jobs until the GPU demand present passes the last checkpoint; see the module doc.

    Jobs of tenant ``train`` have keys starting ``train/``; the others ``trace/``."""
    rng = random.Random(seed)
    pool = tasks()
    models = sorted({n.gpu_product for n in nodes_})
    any_model = ",".join(models)
    total = sum(n.gpu_count for n in nodes_)
    mean_gpus = statistics.fmean(t.gpus for t in pool)
    mean_life = statistics.fmean(t.lifetime for t in pool)
    if tenants:
        gang_gpus = 24.0
        mean_gpus = (1 - GANG_SHARE) * mean_gpus + GANG_SHARE * gang_gpus
    rate = OFFERED * total / (mean_gpus * mean_life)
    out: list[Job] = []
    marks: dict[float, int] = {}
    ends: list[tuple[float, int]] = []
    present = 0
    now = 0.0
    while len(marks) < len(checkpoints):
        now += rng.expovariate(rate)
        if tenants and rng.random() < GANG_SHARE:
            size = rng.choice((16, 32))
            life = rng.choice(pool).lifetime
            job = Job(f"train/j{len(out)}", GANG_MODEL, size // 8, 8, "rack", now, now + life)
        else:
            task = rng.choice(pool)
            job = Job(f"trace/j{len(out)}", any_model, 1, task.gpus, None, now, now + task.lifetime)
        while ends and ends[0][0] <= now:
            present -= heapq.heappop(ends)[1]
        heapq.heappush(ends, (job.departure, job.gpus))
        out.append(job)
        present += job.gpus
        for mark in checkpoints:
            if mark not in marks and present >= mark * total:
                marks[mark] = len(out) - 1
    return Stream(out, marks, True)


def patience(pool: Sequence[Task] | None = None) -> float:
    """How long a gang waits before it is dropped: twice the median task lifetime."""
    lives = [t.lifetime for t in (pool if pool is not None else tasks())]
    return 2 * statistics.median(lives) if lives else math.inf
