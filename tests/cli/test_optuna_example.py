"""examples/optuna_hpo.py: trials as cargos of one MiniCluster."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import optuna
import pytest

from crane.client import Client
from examples.optuna_hpo import TRAIN, main, metrics

if TYPE_CHECKING:
    from conftest import Server


def test_the_trial_command_prints_what_the_study_reads() -> None:
    script = TRAIN.format(lr=0.01, steps=3, pause=0)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert list(metrics(iter(out.splitlines()))) == [(1, 1.0), (2, 0.5), (3, 0.333333)]


@pytest.mark.usefixtures("backend_ready")
def test_study_grows_and_shrinks_the_minicluster(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRANE_API_URL", server.url)
    monkeypatch.setenv("CRANE_TOKEN", server.token)
    study = main(
        [
            "--minicluster",
            "hpo-test",
            "--trials",
            "3",
            "--parallel",
            "2",
            "--steps",
            "2",
            "--pause",
            "0",
            "--gpu-type",
            "H100",
            "--max-gpus",
            "2",
            "--timeout",
            "120",
        ]
    )
    states = {t.state for t in study.trials}
    assert len(study.trials) == 3
    assert optuna.trial.TrialState.COMPLETE in states
    with Client(server.url, server.token) as client:
        assert client.list_cargos("hpo-test") == []
        client.delete_minicluster("hpo-test")


def test_simulated_trials_read_the_same_curve() -> None:
    from examples.optuna_hpo import simulated

    script = TRAIN.format(lr=0.003, steps=4, pause=0)
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert list(metrics(simulated(0.003, 4))) == list(metrics(iter(out.splitlines())))
