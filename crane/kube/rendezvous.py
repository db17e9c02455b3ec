"""A MiniCluster's rendezvous store on Kubernetes: Deployment and Service ``<mc>-rdzv``.

One replica, no GPU, no nodeName: kube-scheduler places it, preferably off Crane's GPU nodes,
on one of them (it tolerates their taint) when the cluster has no other node; it outlives
every cargo and never holds a GPU a cargo could use. It runs
the MiniCluster template's image (which has torch) under the ``restricted`` Pod Security level.
Both objects are owned by the MiniCluster: deleting it deletes them (garbage collector).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crane.kube.builders import owner_reference
from crane.kube.names import MINICLUSTER_KIND, MINICLUSTER_LABEL, RENDEZVOUS_LABEL
from crane.model.inventory import MANAGED_LABEL
from crane.model.podtemplate import NO_DEVICES
from crane.model.specs import MiniClusterSpec
from crane.model.world import rendezvous_command, rendezvous_name

NOBODY = 65534
"""The store runs as this non-root user (``restricted`` forbids root)."""


def _meta(mc_meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": rendezvous_name(mc_meta["name"]),
        "namespace": mc_meta["namespace"],
        "labels": _labels(mc_meta),
        "ownerReferences": [owner_reference(MINICLUSTER_KIND, mc_meta)],
    }


def _labels(mc_meta: Mapping[str, Any]) -> dict[str, str]:
    return {MINICLUSTER_LABEL: mc_meta["name"], RENDEZVOUS_LABEL: mc_meta["name"]}


def _image(spec: MiniClusterSpec) -> str:
    template = spec.template.template if spec.template is not None else {}
    containers = (template.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("image", ""))


def build_deployment(mc_meta: Mapping[str, Any], spec: MiniClusterSpec) -> dict[str, Any]:
    """The store's Deployment: one pod running a torch TCPStore on ``spec.rendezvous.port``."""
    port = spec.rendezvous.port if spec.rendezvous is not None else 0
    container = {
        "name": "rendezvous",
        "image": _image(spec),
        "command": rendezvous_command(port),
        "ports": [{"name": "rendezvous", "containerPort": port, "protocol": "TCP"}],
        # It holds no GPU: without this, the NVIDIA runtime would expose every GPU of its node
        # to an image that sets NVIDIA_VISIBLE_DEVICES=all (the CUDA images do), as Docker mode's
        # store already says.
        "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": NO_DEVICES}],
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(mc_meta),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {RENDEZVOUS_LABEL: mc_meta["name"]}},
            "template": {
                "metadata": {"labels": _labels(mc_meta)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "tolerations": [{"key": MANAGED_LABEL, "operator": "Exists"}],
                    "affinity": {
                        "nodeAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "preference": {
                                        "matchExpressions": [
                                            {"key": MANAGED_LABEL, "operator": "DoesNotExist"}
                                        ]
                                    },
                                }
                            ]
                        }
                    },
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": NOBODY,
                        "runAsGroup": NOBODY,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }


def build_service(mc_meta: Mapping[str, Any], spec: MiniClusterSpec) -> dict[str, Any]:
    """The store's Service: the stable ``<mc>-rdzv.<ns>.svc:<port>`` every replica dials."""
    port = spec.rendezvous.port if spec.rendezvous is not None else 0
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(mc_meta),
        "spec": {
            "selector": {RENDEZVOUS_LABEL: mc_meta["name"]},
            "ports": [{"name": "rendezvous", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }
