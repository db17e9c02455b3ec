"""The local Docker engine as node ``local``: declared GPUs, or what NVML finds."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from crane.docker.hosts import LOCAL, HostSpec
from crane.docker.nvml import discover
from crane.docker.store import HostRow


def local_host(
    url: str, gpus: int | None, gpu_type: str | None, labels: dict[str, str]
) -> HostSpec:
    """Declared GPUs are simulated; otherwise NVML decides (no GPU: a node without GPUs)."""
    if gpus is not None:
        if gpus and not gpu_type:
            raise ValueError("--gpus needs --gpu-type, e.g. --gpus 8 --gpu-type H100")
        return HostSpec(
            name=LOCAL,
            url=url,
            gpu_product=gpu_type or "",
            gpu_count=gpus,
            labels=labels,
            simulated=True,
        )
    found = discover()
    if found is None:
        return HostSpec(name=LOCAL, url=url, labels=labels)
    return HostSpec(
        name=LOCAL,
        url=url,
        gpu_product=found.product,
        gpu_count=found.count,
        islands=found.islands,
        labels=labels,
        simulated=False,
    )


def register(db: Engine, spec: HostSpec) -> None:
    """Add the host row, or replace its spec and end its drain when it exists."""
    with Session(db) as s:
        row = s.get(HostRow, spec.name) or HostRow(name=spec.name, spec="")
        row.spec, row.draining = spec.model_dump_json(), False
        s.add(row)
        s.commit()


def admin_token(data_dir: Path) -> tuple[str, bool]:
    """The admin token ``crane up`` keeps in the data directory; True when made just now."""
    path = data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip(), False
    data_dir.mkdir(parents=True, exist_ok=True)
    token = f"crane_up{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token, True
