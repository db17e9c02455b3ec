"""Writes a :class:`Plan` to the API server, in order, with calls running in parallel threads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from kubernetes.client.exceptions import ApiException

from crane.kube.client import KubeClient
from crane.operator.metrics import Metrics
from crane.operator.plan import Plan

log = logging.getLogger(__name__)
COMPONENT = "crane-operator"


class Actuator:
    def __init__(self, client: KubeClient, metrics: Metrics, workers: int = 16) -> None:
        self.client = client
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="crane-write")

    async def _all(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self.pool, _logged(call)) for call in calls]
        return list(await asyncio.gather(*futures))

    async def apply(self, plan: Plan) -> None:
        """Statuses first; pods only for cargos whose placement was written; then the rest."""
        c = self.client
        written = await self._all(
            [
                partial(c.patch_status, w.plural, w.namespace, w.name, w.status)
                for w in plan.statuses
            ]
        )
        failed = {
            w.cargo_key for w, ok in zip(plan.statuses, written, strict=True) if ok is not True
        }
        await self._all(
            [partial(c.patch_metadata, *m) for m in plan.metadata]
            + [partial(c.create_cargo, b) for b in plan.cargo_creates]
            + [partial(c.delete_cargo, *d) for d in plan.cargo_deletes]
            + [partial(c.create_service, s) for s in plan.services]
        )
        pods = [pod for key, pod in plan.pods if key not in failed]
        created = await self._all([partial(c.create_pod, p) for p in pods])
        self.metrics.pods_created.inc(sum(1 for ok in created if ok))
        await self._all(
            [partial(c.delete_pod, *d) for d in plan.pod_deletes]
            + [partial(c.patch_pod_annotations, *a) for a in plan.pod_annotations]
            + [
                partial(c.post_event, e.involved, e.type, e.reason, e.message, COMPONENT)
                for e in plan.events
            ]
        )

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _logged(call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return call()
        except ApiException as err:
            log.warning("API call failed: %s %s", err.status, (err.body or "")[:300])
        except Exception:
            log.exception("API call failed")
        return None

    return run
