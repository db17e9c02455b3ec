"""The app manager of a MiniCluster: a pod ``<mc>-am`` with a token in Secret ``<mc>-am-token``.

The pod asks for no GPUs and sets no nodeName: kube-scheduler places it off Crane's GPU nodes
(it carries no toleration for their taint). It reads its token from the Secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crane.kube.builders import owner_reference
from crane.kube.names import APP_MANAGER_LABEL, MINICLUSTER_KIND, MINICLUSTER_LABEL
from crane.model.podtemplate import DEVICE_ENV, NO_DEVICES
from crane.model.specs import AppManager

TOKEN_KEY = "token"


def pod_name(minicluster: str) -> str:
    """The app manager pod's name, ``<minicluster>-am``."""
    return f"{minicluster}-am"


def secret_name(minicluster: str) -> str:
    """The name of the Secret with the app manager's token, ``<minicluster>-am-token``."""
    return f"{minicluster}-am-token"


def _meta(mc_meta: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": mc_meta["namespace"],
        "labels": {MINICLUSTER_LABEL: mc_meta["name"], APP_MANAGER_LABEL: "true"},
        "ownerReferences": [owner_reference(MINICLUSTER_KIND, mc_meta)],
    }


def build_secret(mc_meta: Mapping[str, Any], token: str) -> dict[str, Any]:
    """The Secret with ``token`` under key ``token``, owned by the MiniCluster."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(mc_meta, secret_name(mc_meta["name"])),
        "type": "Opaque",
        "stringData": {TOKEN_KEY: token},
    }


def build_pod(mc_meta: Mapping[str, Any], am: AppManager, api_url: str) -> dict[str, Any]:
    """The app manager pod: ``am``'s image, command, args and env, plus ``CRANE_API_URL``,
    ``CRANE_MINICLUSTER``, ``CRANE_NAMESPACE`` and ``CRANE_TOKEN`` (from the Secret)."""
    env: list[dict[str, Any]] = [
        {"name": k, "value": v} for k, v in sorted(am.env.items()) if k not in DEVICE_ENV
    ]
    env += [
        # It holds no GPU: the NVIDIA runtime would otherwise expose every GPU of its node to
        # an image (or an env) that sets NVIDIA_VISIBLE_DEVICES=all.
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": NO_DEVICES},
        {"name": "CRANE_API_URL", "value": api_url},
        {"name": "CRANE_MINICLUSTER", "value": mc_meta["name"]},
        {"name": "CRANE_NAMESPACE", "value": mc_meta["namespace"]},
        {
            "name": "CRANE_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": secret_name(mc_meta["name"]), "key": TOKEN_KEY}},
        },
    ]
    container: dict[str, Any] = {"name": "app-manager", "image": am.image, "env": env}
    if am.command:
        container["command"] = am.command
    if am.args:
        container["args"] = am.args
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(mc_meta, pod_name(mc_meta["name"])),
        "spec": {"restartPolicy": "OnFailure", "containers": [container]},
    }
