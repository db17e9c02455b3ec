"""`crane operator` SIGKILLed at least 20 times at random points (some during cache priming)
while churn runs with preemption, lowered min/max, `kubectl scale`, deletes, one node NotReady
and one kube-apiserver restart; every invariant checked from the API server after each kill and
at the end (see tests/chaos/kube_harness.py and tests/chaos/invariants.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from tests.chaos.kube_harness import ChaosConfig, Cluster, KubeChaos, log, prepare

pytestmark = pytest.mark.chaos


@pytest.mark.timeout(1500)
def test_operator_sigkilled_during_churn_never_double_books_nor_loses_anything(
    chaos_cluster: Cluster, tmp_path: Path, chaos_seed: int | None, chaos_kills: int | None
) -> None:
    api = chaos_cluster.api_client()
    try:
        prepare(chaos_cluster, client.CoreV1Api(api))
    finally:
        api.close()  # type: ignore[no-untyped-call]
    cfg = ChaosConfig(kills=chaos_kills or 20, seed=chaos_seed, work_dir=tmp_path)
    result = KubeChaos(chaos_cluster, cfg).run()
    report = result.report()
    log(f"operator chaos:\n{report}")
    assert result.ok, f"invariants violated (replay: CRANE_CHAOS_SEED={result.seed}):\n{report}"
    assert result.kills >= cfg.kills and result.priming_kills >= 1, report
    assert result.apiserver_restarts == 1 and result.nodes_failed == 1, report
    assert result.churn.preemptors >= 1 and result.churn.scaled >= 1, report
