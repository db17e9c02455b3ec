"""Build the configured backend."""

from __future__ import annotations

from crane.api.backend import Backend
from crane.api.settings import ApiSettings, BackendKind


def make_backend(settings: ApiSettings) -> Backend:
    """The Kubernetes backend, or the Docker one (``crane.docker.api_backend.DockerBackend``)."""
    if settings.backend is BackendKind.KUBE:
        from crane.api.kube import KubeBackend

        return KubeBackend(settings)
    from crane.docker.api_backend import DockerBackend

    backend: Backend = DockerBackend(settings)
    return backend
