"""The API events (``/v1/events``) Kubernetes mode's backend makes of a cargo's watch
notifications read as Docker mode's (``crane/lifecycle/cargo_status.py`` ``phase_event``): the
e2e parity suite checks both backends end to end; this checks the transitions a watch may show
that a test there cannot force (a pass that goes from Pending straight to Running, a running
gang whose replica ended)."""

from __future__ import annotations

from typing import Any

from crane.api.kube import KubeBackend, _cargo
from crane.api.settings import ApiSettings

PLACED = "1 replica x 2 GPUs on 1 node in n0, 2 GPUs borrowed (preemptible)"


def _body(phase: str, message: str = "", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "job",
            "namespace": "t",
            "uid": "u-job",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"miniCluster": "mc", "replicas": 1, "gpusPerReplica": 2, "template": {}},
        "status": {
            "phase": phase,
            "message": message,
            "replicas": 1,
            "conditions": [
                {
                    "type": "Placed",
                    "status": "True",
                    "reason": "Placed",
                    "message": PLACED,
                    "lastTransitionTime": "2026-01-01T00:00:01Z",
                }
            ],
            **status,
        },
    }


def _events(*phases: tuple[str, str]) -> list[tuple[str, str]]:
    backend = KubeBackend(ApiSettings(backend="kube"))
    seen: dict[str, Any] = {}
    out: list[tuple[str, str]] = []
    for phase, message in phases:
        cargo = _cargo(_body(phase, message))
        out += [(e.type.value, e.message) for e in backend._changes("MODIFIED", cargo, seen, set())]
    return out


def test_a_cargo_that_runs_and_succeeds_says_so_in_docker_modes_words() -> None:
    assert _events(("Pending", "waiting"), ("Placed", ""), ("Running", ""), ("Succeeded", "")) == [
        ("Placed", PLACED),
        ("Running", "every replica runs"),
        ("Succeeded", "all 1 replicas succeeded"),
    ]


def test_placed_comes_before_running_when_the_watch_shows_no_placed() -> None:
    """Kubernetes mode said ``Running`` and then ``Placed`` "placed"."""
    assert _events(("Pending", "waiting"), ("Running", "")) == [
        ("Placed", PLACED),
        ("Running", "every replica runs"),
    ]


def test_a_running_gang_whose_replica_ended_is_not_placed_again() -> None:
    """Running back to Placed ("1 of 2 replicas running"): no new placement, no ``Placed`` (Docker
    mode sends none); a failure says why, from the status."""
    assert _events(("Running", ""), ("Placed", ""), ("Failed", "replica 0 exited with code 3")) == [
        ("Placed", PLACED),
        ("Running", "every replica runs"),
        ("Failed", "replica 0 exited with code 3"),
    ]
