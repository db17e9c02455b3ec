"""Prometheus metrics of the operator (served on ``--metrics-port``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from crane.model.gpu import family_of
from crane.placement.types import GpuCounts


class Metrics:
    """The operator's Prometheus gauges, counters and histograms, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.gpus_total = Gauge(
            "crane_gpus_total", "GPUs of the managed nodes", ["gpu_type"], registry=r
        )
        self.gpus_reserved = Gauge(
            "crane_gpus_reserved", "GPUs reserved for MiniClusters", ["gpu_type"], registry=r
        )
        self.gpus_in_use = Gauge(
            "crane_gpus_in_use", "GPUs used by cargos", ["gpu_type"], registry=r
        )
        self.gpus_borrowed = Gauge(
            "crane_gpus_borrowed",
            "GPUs used by cargos beyond their MiniCluster's reservation",
            ["gpu_type"],
            registry=r,
        )
        self.queue_length = Gauge(
            "crane_admission_queue_length", "MiniClusters waiting for admission", registry=r
        )
        self.decision_seconds = Histogram(
            "crane_decision_seconds",
            "Time of one scheduling pass (sync, admit, place)",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.pods_created = Counter(
            "crane_pods_created", "Pods created for cargo replicas", registry=r
        )
        self.api_errors = Counter(
            "crane_api_errors",
            "Writes to the API server that failed, by HTTP status ('none': no answer; "
            "'fenced': not sent, the leader lease may have lapsed)",
            ["code"],
            registry=r,
        )

        self.restore_conflicts = Counter(
            "crane_restore_conflicts",
            "Conflicting records (two claims on one GPU, a stale reservation) repaired when the "
            "operator rebuilt its state",
            ["kind"],
            registry=r,
        )

    def serve(self, port: int) -> None:
        """Serve the registry to Prometheus over HTTP on ``port``, from a background thread."""
        start_http_server(port, registry=self.registry)

    def observe_gpus(
        self, nodes: dict[str, GpuCounts], products: dict[str, str], queued: int
    ) -> None:
        """Set the GPU gauges from the engine's per-node GPU counts; ``products`` maps node ->
        GPU product."""
        counts: dict[str, list[int]] = {}
        types = {p: family_of(p) or p or "unknown" for p in set(products.values())}
        for node, c in nodes.items():
            gpu_type = types.get(products.get(node, ""), "unknown")
            row = counts.setdefault(gpu_type, [0, 0, 0, 0])
            row[0] += c.total
            row[1] += c.reserved
            row[2] += c.in_use
            row[3] += c.borrowed
        for gpu_type, (total, reserved, in_use, borrowed) in counts.items():
            self.gpus_total.labels(gpu_type).set(total)
            self.gpus_reserved.labels(gpu_type).set(reserved)
            self.gpus_in_use.labels(gpu_type).set(in_use)
            self.gpus_borrowed.labels(gpu_type).set(borrowed)
        self.queue_length.set(queued)
