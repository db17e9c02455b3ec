"""Docker mode: `crane serve --backend docker` (API + reconciler + SQLite) SIGKILLed at random
points while churn drives the REST API on three real dockerd; invariants checked from SQL and
Docker alone after each kill and at the end (see tests/chaos/docker_harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.docker_harness import DockerChaos, DockerChaosConfig
from tests.chaos.kube_harness import log

pytestmark = [pytest.mark.chaos, pytest.mark.docker]


@pytest.mark.timeout(1200)
def test_crane_serve_sigkilled_during_churn_never_double_books_nor_loses_anything(
    chaos_docker_urls: list[str],
    tmp_path: Path,
    chaos_seed: int | None,
    chaos_kills: int | None,
) -> None:
    cfg = DockerChaosConfig(kills=chaos_kills or 8, seed=chaos_seed)
    run = DockerChaos(chaos_docker_urls, tmp_path, cfg)
    try:
        result = run.run()
    finally:
        run.close()
    report = result.report()
    log(f"docker chaos:\n{report}")
    assert result.ok, f"invariants violated (replay: CRANE_CHAOS_SEED={result.seed}):\n{report}"
    assert result.kills >= cfg.kills and result.priming_kills >= 1, report
    assert result.churn.preemptors >= 1, report
