"""``crane operator``: run the Kubernetes operator (kopf, embedded)."""

from __future__ import annotations

import logging
import os

import typer


def _check_kubeconfig(path: str) -> None:
    """Refuse (exit 2) a kubeconfig that cannot be read: kopf would retry it each minute, with a
    traceback each time, for a mistake of the command line that no retry mends. ``path`` may
    list several files, as KUBECONFIG does."""
    from kubernetes import client, config
    from yaml import YAMLError

    files = [p for p in path.split(os.pathsep) if p]
    if not any(os.path.isfile(p) for p in files):
        raise typer.BadParameter(
            f"{path!r} is no file: give a kubeconfig file, or none in a pod (in-cluster config)",
            param_hint="--kubeconfig",
        )
    try:
        config.load_kube_config(config_file=path, client_configuration=client.Configuration())
    except (config.ConfigException, OSError, YAMLError, ValueError, TypeError, KeyError) as err:
        why = " ".join(str(err).split())
        raise typer.BadParameter(
            f"cannot read kubeconfig {path!r}: {why}", param_hint="--kubeconfig"
        ) from None


def operator(
    kubeconfig: str = typer.Option(
        None, envvar="KUBECONFIG", help="Kubeconfig file; in-cluster config when unset."
    ),
    lease_namespace: str = typer.Option(
        os.environ.get("POD_NAMESPACE", "crane-system"), help="Namespace of the leader Lease."
    ),
    lease_name: str = typer.Option(
        "crane-operator", help="Name of the leader Lease: one active operator per name."
    ),
    lease_seconds: float = typer.Option(
        15.0, min=1.0, help="Lease duration; a standby takes over after it lapses."
    ),
    node_grace: float = typer.Option(
        60.0, min=0.0, help="Seconds a node may be NotReady before its cargos are failed or moved."
    ),
    metrics_port: int = typer.Option(
        0, min=0, max=65535, help="Port of the Prometheus /metrics endpoint (0: off)."
    ),
    liveness: str = typer.Option(
        None,
        help="kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz (unset: off).",
    ),
    topology_key: list[str] = typer.Option(
        [],
        help="Override a level's node label, ALIAS=LABEL (repeatable), "
        "e.g. block=cloud.google.com/gce-topology-block.",
    ),
    api_url: str = typer.Option(
        None,
        envvar="CRANE_API_URL",
        help="Crane's API as app manager pods reach it (spec.appManager needs it and --api-token).",
    ),
    api_token: str = typer.Option(
        None,
        envvar="CRANE_API_TOKEN",
        help="An admin token of Crane's API, to mint each app manager a MiniCluster token.",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail."),
) -> None:
    """Run the Crane operator: admit MiniClusters, place Cargos as gangs of pods."""
    import kopf

    import crane.operator.handlers  # noqa: F401  (registers the kopf handlers)
    from crane.model.topology import TopologyLevels
    from crane.operator.runtime import Operator, OperatorConfig

    overrides: dict[str, str] = {}
    for item in topology_key:
        alias, sep, key = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(
                f"{item!r}: write ALIAS=LABEL, e.g. rack=example.com/rack",
                param_hint="--topology-key",
            )
        overrides[alias] = key
    try:
        levels = TopologyLevels.with_keys(overrides)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--topology-key") from None
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    from crane.api.logsafe import install as escape_logged_values

    escape_logged_values()  # a tenant's text in a log line cannot start a forged line
    if kubeconfig:
        _check_kubeconfig(kubeconfig)
        os.environ["KUBECONFIG"] = kubeconfig
    config = OperatorConfig(
        kubeconfig=kubeconfig,
        lease_namespace=lease_namespace,
        lease_name=lease_name,
        lease_seconds=lease_seconds,
        node_grace_seconds=node_grace,
        metrics_port=metrics_port,
        topology=levels,
        api_url=api_url,
        api_token=api_token,
    )
    if liveness and not liveness.startswith("http://"):
        raise typer.BadParameter(
            f"{liveness!r}: give a URL such as http://0.0.0.0:8080/healthz", param_hint="--liveness"
        )
    kopf.run(
        clusterwide=True,
        standalone=True,
        liveness_endpoint=liveness or None,
        memo=kopf.Memo(operator=Operator(config)),
    )
