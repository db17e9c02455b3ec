"""Hyper-parameter search with Optuna whose trials run as cargos of one MiniCluster.

Each trial grows the MiniCluster by one cargo (``:grow`` with wait), reads the loss its container
prints (``step=N loss=X``, followed through the logs API), reports it to Optuna, and shrinks the
MiniCluster by that cargo when the trial ends. A trial Optuna prunes has its cargo deleted at
once, giving its GPUs to the next trial.

``--simulate`` is for clusters whose nodes run no containers (kwok, as in Crane's e2e tests):
the trial's pods carry ``sim.crane.io/exit-code: "0"`` and ``sim.crane.io/run-for`` (the
simulated training time), the trial waits for its cargo to succeed, and the loss curve is the
one the container would have printed, computed here. Placement, growth, completion and shrink
stay real. Run inside the MiniCluster's app manager (it receives
``CRANE_API_URL`` and ``CRANE_TOKEN``) or anywhere after ``crane login``::

    python examples/optuna_hpo.py --minicluster study --gpu-type H100 --max-gpus 8 --trials 20
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator

import optuna

from crane.client import Client, GrowOutcome, NotFound

METRIC = re.compile(r"step=(\d+)\s+loss=([-+0-9.eE]+)")
TRAIN = (
    "awk -v lr={lr} -v steps={steps} 'BEGIN {{ for (i = 1; i <= steps; i++) {{ "
    'printf "step=%d loss=%.6f\\n", i, lr / 0.01 + 0.01 / lr - 2 + 1 / i; '
    'fflush(); system("sleep {pause}") }} }}\''
)


def simulated(lr: float, steps: int) -> Iterator[str]:
    """The lines ``TRAIN`` prints for ``lr``, for nodes that run no container (``--simulate``)."""
    for i in range(1, steps + 1):
        yield f"step={i} loss={lr / 0.01 + 0.01 / lr - 2 + 1 / i:.6f}"


def metrics(lines: Iterator[str]) -> Iterator[tuple[int, float]]:
    """``(step, loss)`` for every metric line among ``lines``."""
    for line in lines:
        match = METRIC.search(line)
        if match:
            yield int(match.group(1)), float(match.group(2))


class Study:
    """Runs one Optuna trial as one cargo of ``minicluster``."""

    def __init__(self, client: Client, args: argparse.Namespace) -> None:
        self.client = client
        self.args = args

    def ensure_minicluster(self) -> None:
        try:
            self.client.get_minicluster(self.args.minicluster)
        except NotFound:
            if not self.args.gpu_type:
                raise
            spec = {
                "gpuType": self.args.gpu_type,
                "gpus": {"min": self.args.min_gpus, "max": self.args.max_gpus},
            }
            self.client.create_minicluster(self.args.minicluster, spec)

    def _shape(self, trial: optuna.Trial, lr: float) -> dict[str, object]:
        command = TRAIN.format(lr=lr, steps=self.args.steps, pause=self.args.pause)
        container = {"name": "trial", "image": self.args.image, "command": ["sh", "-c", command]}
        template: dict[str, object] = {"spec": {"containers": [container]}}
        if self.args.simulate:
            run_for = f"{self.args.steps * self.args.pause:g}s"
            annotations = {"sim.crane.io/exit-code": "0", "sim.crane.io/run-for": run_for}
            template["metadata"] = {"annotations": annotations}
        return {
            "name": f"{self.args.minicluster}-t{trial.number}",
            "gpusPerReplica": self.args.gpus_per_trial,
            "template": template,
        }

    def _lines(self, cargo: str, lr: float) -> Iterator[str]:
        """What the trial printed: its log, or with ``--simulate`` the same curve once it ends."""
        if not self.args.simulate:
            return self.client.follow_logs(cargo)
        self.client.wait_for_cargos([cargo], phases=["Succeeded"], timeout=self.args.timeout)
        return simulated(lr, self.args.steps)

    def objective(self, trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
        grown = self.client.grow(
            self.args.minicluster,
            cargos=[self._shape(trial, lr)],
            allow_pending=True,
            wait=True,
            timeout=self.args.timeout,
        )
        if grown.result is GrowOutcome.DENIED:
            raise optuna.TrialPruned(f"no GPUs for this trial: {'; '.join(grown.reasons)}")
        cargo = next(c.name for c in grown.cargos if c.added and c.name)
        loss = float("inf")
        try:
            self.client.wait_for_cargos([cargo], timeout=self.args.timeout)
            for step, loss in metrics(self._lines(cargo, lr)):
                trial.report(loss, step)
                if trial.should_prune():
                    self.client.delete_cargo(cargo, grace_period_seconds=0)
                    raise optuna.TrialPruned(f"pruned at step {step}")
        finally:
            self._release(cargo)
        return loss

    def _release(self, cargo: str) -> None:
        with contextlib.suppress(NotFound):
            self.client.shrink(self.args.minicluster, cargos=[cargo], grace_period_seconds=0)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minicluster", default="optuna")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=2, help="trials (cargos) at once")
    parser.add_argument("--gpus-per-trial", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds per training step")
    parser.add_argument("--image", default="busybox")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--gpu-type", help="create the MiniCluster with this GPU type if absent")
    parser.add_argument("--min-gpus", type=int, default=0)
    parser.add_argument("--max-gpus", type=int, default=4)
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="nodes run no containers (kwok): trials end on cue, the loss is computed here",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> optuna.Study:
    args = parse(argv)
    with Client() as client:
        runner = Study(client, args)
        runner.ensure_minicluster()
        study = optuna.create_study(
            direction="minimize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2)
        )
        study.optimize(runner.objective, n_trials=args.trials, n_jobs=args.parallel)
    done = [t for t in study.trials if t.state is optuna.trial.TrialState.COMPLETE]
    if done:
        print(
            f"best lr={study.best_params['lr']:.2e} loss={study.best_value:.4f} "
            f"({len(done)} of {len(study.trials)} trials completed)"
        )
    return study


if __name__ == "__main__":
    main()
