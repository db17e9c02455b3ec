"""Kubernetes glue: Node to inventory, pod and service builders, CRD manifests, client helpers."""
