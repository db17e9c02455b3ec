"""Settings of ``crane serve``: flags, then ``CRANE_*`` environment variables, then defaults."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    path = Path(user_data_dir("crane")) / "crane.db"
    return f"sqlite:///{path}"


class BackendKind(StrEnum):
    KUBE = "kube"
    DOCKER = "docker"


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRANE_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    backend: BackendKind = BackendKind.KUBE
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    bootstrap_token: str | None = Field(
        default=None,
        description="admin token to create on start if absent (else one is generated once)",
    )
    kubeconfig: str | None = Field(
        default=None, description="default: in-cluster, then ~/.kube/config"
    )
    default_tenant: str = "default"
    event_buffer: int = Field(default=1024, ge=16, description="events kept per SSE subscriber")
