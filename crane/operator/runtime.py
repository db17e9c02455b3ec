"""The operator's parts wired together: settings, cache priming, the loop task, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
from dataclasses import dataclass, field

from crane.kube.client import KubeClient, load_config
from crane.model.topology import TopologyLevels
from crane.operator.actions import Actuator
from crane.operator.cache import ClusterCache
from crane.operator.decide import Decider, DecideSettings
from crane.operator.leader import LeaseElector
from crane.operator.loop import SchedulingLoop
from crane.operator.metrics import Metrics
from crane.operator.tokens import TokenMinter
from crane.placement import Engine

log = logging.getLogger(__name__)

WATCHED = ("nodes", "pods", "resourcequotas", "miniclusters", "cargos")


@dataclass(frozen=True)
class OperatorConfig:
    kubeconfig: str | None = None
    lease_namespace: str = "crane-system"
    lease_name: str = "crane-operator"
    lease_seconds: float = 15.0
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    node_grace_seconds: float = 60.0
    metrics_port: int = 0
    topology: TopologyLevels = field(default_factory=TopologyLevels)
    api_url: str | None = None
    api_token: str | None = None
    """An admin token of Crane's API: the operator mints app managers' tokens with it."""


class Operator:
    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.cache = ClusterCache(lv.key for lv in config.topology.levels)
        self.metrics = Metrics()
        self.client: KubeClient | None = None
        self.actuator: Actuator | None = None
        self.task: asyncio.Task[None] | None = None
        self.elector: LeaseElector | None = None

    def _decider(self) -> Decider:
        c = self.config
        settings = DecideSettings(
            node_grace_seconds=c.node_grace_seconds,
            api_url=c.api_url if c.api_url and c.api_token else None,
        )
        return Decider(Engine(self.config.topology), settings)

    async def start(self) -> None:
        """Prime the cache with full listings (before kopf's watches start), then start the loop."""
        api = load_config(self.config.kubeconfig)
        self.client = KubeClient(api)
        for kind in WATCHED:
            self.cache.load(kind, await asyncio.to_thread(self.client.list_items, kind))
        gc.collect()
        gc.freeze()  # the primed cache lives on: keep it out of the collector's full passes
        log.info(
            "cache primed: %d nodes, %d pods, %d MiniClusters, %d cargos",
            len(self.cache.nodes),
            len(self.cache.pods),
            len(self.cache.miniclusters),
            len(self.cache.cargos),
        )
        if self.config.metrics_port:
            self.metrics.serve(self.config.metrics_port)
        minter = (
            TokenMinter(self.config.api_url, self.config.api_token)
            if self.config.api_url and self.config.api_token
            else None
        )
        self.actuator = Actuator(self.client, self.metrics, minter=minter)
        c = self.config
        self.elector = LeaseElector(
            self.client.coordination, c.lease_namespace, c.lease_name, c.identity, c.lease_seconds
        )
        loop = SchedulingLoop(self.cache, self._decider, self.actuator, self.elector, self.metrics)
        self.task = asyncio.create_task(loop.run(), name="crane-scheduling-loop")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.elector is not None:
            await asyncio.to_thread(self.elector.release)
        if self.actuator is not None:
            self.actuator.close()
