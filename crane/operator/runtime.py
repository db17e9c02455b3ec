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
from crane.kube.dra import RESOURCECLAIMS, RESOURCESLICES
from crane.lifecycle.decide import Decider, DecideSettings
from crane.model.topology import TopologyLevels
from crane.operator.actions import Actuator
from crane.operator.cache import ClusterCache
from crane.operator.leader import LeaseElector
from crane.operator.loop import SchedulingLoop
from crane.operator.metrics import Metrics
from crane.operator.tokens import TokenMinter
from crane.operator.watch import KindStream
from crane.placement import Engine

log = logging.getLogger(__name__)

WATCHED = (
    "nodes",
    "pods",
    RESOURCESLICES,
    RESOURCECLAIMS,
    "resourcequotas",
    "namespaces",
    "services",
    "tenantshares",
    "miniclusters",
    "cargos",
)


@dataclass(frozen=True)
class OperatorConfig:
    """The operator's settings: kubeconfig, leader lease, node grace, metrics, topology, API."""

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
    resync_seconds: float = 300.0
    """How often the cache is compared with full listings (events a watch lost are healed)."""


class Operator:
    """The operator process: the cluster cache, the scheduling loop and the leader election."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.cache = ClusterCache(lv.key for lv in config.topology.levels)
        self.metrics = Metrics()
        self.client: KubeClient | None = None
        self.actuator: Actuator | None = None
        self.task: asyncio.Task[None] | None = None
        self.resync_task: asyncio.Task[None] | None = None
        self.streams: list[asyncio.Task[None]] = []
        """One :class:`KindStream` per kind the cache holds."""
        self._watching: KubeClient | None = None
        """The streams' client (a connection pool of their own)."""
        self.elector: LeaseElector | None = None

    def _decider(self) -> Decider:
        c = self.config
        settings = DecideSettings(
            node_grace_seconds=c.node_grace_seconds,
            api_url=c.api_url if c.api_url and c.api_token else None,
        )
        return Decider(Engine(self.config.topology), settings)

    async def start(self) -> None:
        """Prime the cache with full listings, then start the loop and the watches (from the
        listings' resourceVersions, so no event between the two is lost)."""
        api = load_config(self.config.kubeconfig)
        self.client = KubeClient(api)
        versions: dict[str, str | None] = {}
        for kind in WATCHED:
            items, versions[kind] = await asyncio.to_thread(self.client.list_versioned, kind)
            self.cache.load(kind, items)
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
        c = self.config
        self.elector = LeaseElector(
            self.client.coordination,
            c.lease_namespace,
            c.lease_name,
            c.identity,
            c.lease_seconds,
            core=self.client.core,
        )
        self.actuator = Actuator(
            self.client,
            self.metrics,
            minter=minter,
            fence=self.elector.holds,
            stamp=self.elector.stamp,
        )
        loop = SchedulingLoop(
            self.cache,
            self._decider,
            self.actuator,
            self.elector,
            self.metrics,
            refresh=self.refresh,
        )
        self.task = asyncio.create_task(loop.run(), name="crane-scheduling-loop")
        # the watches hold their connections for minutes: a pool of their own
        self._watching = KubeClient(load_config(self.config.kubeconfig, pool_size=len(WATCHED)))
        self._watch(versions)
        self.resync_task = asyncio.create_task(self._resync(), name="crane-cache-resync")

    def _watch(self, versions: dict[str, str | None]) -> None:
        """Start a watch stream per kind, each from its listing's resourceVersion."""
        assert self._watching is not None
        self.streams = [
            asyncio.create_task(
                KindStream(self._watching, self.cache, kind, versions[kind]).run(),
                name=f"crane-watch-{kind}",
            )
            for kind in WATCHED
        ]

    async def refresh(self) -> None:
        """List every kind again into the cache and restart the watches from those listings
        (a new leader term decides on the API server's state: the events a standby's watches
        had not read yet, or a stopped process had buffered, go with the old streams)."""
        assert self.client is not None
        for task in self.streams:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        versions: dict[str, str | None] = {}
        try:
            for kind in WATCHED:
                since = self.cache.mark()
                items, versions[kind] = await asyncio.to_thread(self.client.list_versioned, kind)
                self.cache.resync(kind, items, since)
        finally:  # what was not listed again lists first (a version of None)
            self._watch({kind: versions.get(kind) for kind in WATCHED})
        log.info("cache listed again for a new leader term")

    async def _resync(self) -> None:
        """Every ``resync_seconds``, compare the cache with full listings: a safety net, as
        each watch lists again after any failure (:mod:`crane.operator.watch`); a deleted pod
        still cached would hold a cargo's deletion, and with it its MiniCluster's, forever."""
        assert self.client is not None
        while True:
            await asyncio.sleep(self.config.resync_seconds)
            for kind in WATCHED:
                since = self.cache.mark()
                try:
                    items = await asyncio.to_thread(self.client.list_items, kind)
                except Exception as err:  # the API server is away: next time
                    log.info("cache resync of %s failed: %s", kind, err)
                    continue
                dropped = self.cache.resync(kind, items, since)
                if dropped:
                    log.warning("cache resync: %d %s the watch had missed were gone", dropped, kind)

    async def stop(self) -> None:
        """Stop the resync and scheduling tasks, release the leader lease, close the actuator."""
        for task in [self.resync_task, *self.streams]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.elector is not None:
            await asyncio.to_thread(self.elector.release)
        if self.actuator is not None:
            self.actuator.close()
