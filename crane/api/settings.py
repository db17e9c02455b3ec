"""Settings of ``crane serve``: flags, then ``CRANE_*`` environment variables, then defaults."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from platformdirs import user_data_dir
from pydantic import AfterValidator, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crane.model.podsecurity import mount_root


def default_database_url() -> str:
    """SQLite in the user's data directory: ``sqlite:///<data dir>/crane.db``."""
    path = Path(user_data_dir("crane")) / "crane.db"
    return f"sqlite:///{path}"


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def own_namespace() -> str | None:
    """The namespace this process runs in when it runs in a Kubernetes pod (the Helm release's,
    shared with the operator), else None."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


class BackendKind(StrEnum):
    """Where MiniClusters and Cargos live: Kubernetes CRs or plain Docker hosts."""

    KUBE = "kube"
    DOCKER = "docker"


def _mount_roots(entries: list[str]) -> list[str]:
    """The allowed mounts, each checked (:func:`crane.model.podsecurity.mount_root`)."""
    for entry in entries:
        mount_root(entry)
    return entries


BOOTSTRAP_TOKEN_PATTERN = r"^crane_[A-Za-z0-9-]{1,32}_[!-~]+$"
"""A token as ``crane token create`` prints it: ``crane_<id>_<secret>``, the id as the API's
token paths take it, the secret visible ASCII (an ``Authorization`` header carries it)."""


class ApiSettings(BaseSettings):
    """The API server's settings, from ``CRANE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CRANE_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    backend: BackendKind = BackendKind.KUBE
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    bootstrap_token: str | None = Field(
        default=None,
        pattern=BOOTSTRAP_TOKEN_PATTERN,
        description="admin token to create on start if absent (else one is generated once)",
    )
    kubeconfig: str | None = Field(
        default=None, description="default: in-cluster, then ~/.kube/config"
    )

    @field_validator("bootstrap_token", mode="before")
    @classmethod
    def _strip_token(cls, value: object) -> object:
        """A token from a file or Secret may end with a line break: it is not part of it."""
        return value.strip() if isinstance(value, str) else value

    default_tenant: str = "default"
    event_buffer: int = Field(default=1024, ge=16, description="events kept per SSE subscriber")
    max_streams_per_tenant: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="event streams, followed logs and execs one tenant (or admin token) may "
        "hold open at once; past it a new one is a 429",
    )
    docker_allowed_mounts: Annotated[list[str], AfterValidator(_mount_roots)] = Field(
        default_factory=list,
        description="Docker mode: host paths that templates may bind-mount (hostPath volumes), "
        "read-only, whole or below; ':rw' after one lets tenants write to it, bound whole only; "
        'CRANE_DOCKER_ALLOWED_MOUNTS=\'["/data", "/scratch:rw"]\'. Empty: none',
    )
    docker_log_max_size: str = Field(
        default="100m",
        pattern=r"^[1-9][0-9]{0,8}[kmg]$",
        description="Docker mode: a replica's log (json-file) is rotated at this size (a number "
        "with k, m or g: CRANE_DOCKER_LOG_MAX_SIZE=20m)",
    )
    docker_log_max_file: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Docker mode: how many log files of this size a replica keeps; past them "
        "its oldest lines are dropped (CRANE_DOCKER_LOG_MAX_FILE)",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="largest request body accepted; a larger one is a 413",
    )
    kube_timeout: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="kube mode: seconds a call to the Kubernetes API may take before the "
        "request answers 503 (a stalled API server must not hold requests for ever)",
    )
    allow_default_namespace: bool = Field(
        default=False,
        description="kube mode: let a tenant named 'default' use the 'default' namespace",
    )
    operator_namespace: str = Field(
        default_factory=lambda: own_namespace() or "crane-system",
        description="the operator's own namespace (in a pod: the pod's); never a tenant",
    )
