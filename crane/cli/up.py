"""``crane up``: the API, the reconciler, SQLite and the local Docker engine, in one command.

Before any banner, :func:`preflight` checks what would make it fail later (Docker unreachable,
the port taken, no GPUs found and none declared) and stops with one line and the remedy, exit 2,
leaving the CLI context as it was. The context ``local`` is saved only once the port is bound.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crane.cli.node import parse_labels
from crane.cli.term import UsageError, say

if TYPE_CHECKING:
    from crane.docker.hosts import HostSpec

DOCKER_DEFAULT = "unix:///var/run/docker.sock"


@dataclass
class Ready:
    """What the preflight found: the node to register and the socket the API will serve on."""

    spec: HostSpec
    sock: socket.socket
    docker_url: str


def bind(host: str, port: int) -> socket.socket:
    """Bind the API's listening socket now, so a busy port fails before anything else."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno in (98, 48):  # EADDRINUSE on Linux, macOS
            raise UsageError(
                f"port {port} on {host} is already in use (another `crane up` or `crane serve`?);"
                f" stop that, or pick another port with --port {port + 1}"
            ) from None
        if err.errno == 13:
            raise UsageError(
                f"not allowed to listen on {host}:{port}; pick a port above 1023 with --port"
            ) from None
        raise UsageError(
            f"cannot listen on {host}:{port}: {err.strerror or err}; check --host and --port"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def check_docker(url: str) -> None:
    """Ping the Docker engine at ``url``; one line with the remedy when it does not answer."""
    import docker
    from docker.errors import DockerException

    from crane.client import without_password

    try:
        engine = docker.DockerClient(base_url=url, timeout=10)
        try:
            engine.ping()
        finally:
            engine.close()
    except (DockerException, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if len(reason) > 160:
            reason = reason[:157] + "..."
        raise UsageError(
            f"cannot reach Docker at {without_password(url)} ({reason}); start Docker "
            "(and check you may use its socket), or point at it with --docker-host URL "
            "or DOCKER_HOST"
        ) from None


def node_spec(
    docker_url: str, gpus: int | None, gpu_type: str | None, labels: dict[str, str]
) -> HostSpec:
    """Node ``local``: the declared GPUs, or those NVML finds; none at all is a usage error."""
    from crane.docker.local import local_host

    if gpus is not None and gpus < 0:
        raise UsageError(f"--gpus {gpus}: give 0 or more")
    if gpus and not gpu_type:
        raise UsageError(f"--gpus {gpus} needs --gpu-type, e.g. --gpus {gpus} --gpu-type H100")
    from pydantic import ValidationError

    from crane.model.labels import label_key_issue, label_value_issue

    for key, value in labels.items():
        issue = label_key_issue(key) or label_value_issue(value)
        if issue:
            raise UsageError(f"--label {key}={value}: {issue}")
    try:
        spec = local_host(docker_url, gpus, gpu_type, labels)
    except ValidationError as err:
        first = err.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        flag = {"gpu_count": f"--gpus {gpus}", "gpu_product": f"--gpu-type {gpu_type}"}
        why = str(first["msg"]).removeprefix("Value error, ")
        if field == "gpu_count" and "le" in first.get("ctx", {}):
            why = f"give 0 to {first['ctx']['le']} (the most GPUs Crane keeps on one node)"
        raise UsageError(f"{flag.get(field, 'node local')}: {why}") from None
    except ValueError as err:
        raise UsageError(f"{err}") from None
    if gpus is None and not spec.gpu_count:
        raise UsageError(
            "no NVIDIA GPUs found on this machine (NVML) and none declared; declare simulated "
            "ones with `crane up --gpus 8 --gpu-type H100` (or --gpus 0 for a node without GPUs)"
        )
    return spec


def check_admin_token(data: Path) -> None:
    """The admin token kept in ``data`` (when there is one) must be readable and a Crane token;
    else one line naming the file and what to do (never its content: it may be a secret)."""
    import re

    from crane.api.settings import BOOTSTRAP_TOKEN_PATTERN

    path = data / "admin-token"
    if not path.exists() and not path.is_symlink():
        return
    try:
        text = path.read_bytes().decode("ascii").strip()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else "not ASCII text"
        raise UsageError(
            f"cannot read the admin token in {path} ({reason}); fix its permissions, or delete "
            "it and `crane up` makes a new one (tokens it made stay valid)"
        ) from None
    if not re.fullmatch(BOOTSTRAP_TOKEN_PATTERN, text):
        raise UsageError(
            f"{path} does not hold a Crane token (crane_ID_SECRET); put the admin token back in "
            "it, or delete it and `crane up` makes a new one"
        )


def api_url(host: str, port: int) -> str:
    """The URL the CLI context saves for an API bound to ``host``: an IPv6 address in
    brackets, and the loopback address for a wildcard one (0.0.0.0, ::)."""
    import ipaddress

    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"http://[{address}]:{port}" if address.version == 6 else f"http://{address}:{port}"


def preflight(
    host: str,
    port: int,
    docker_url: str,
    gpus: int | None,
    gpu_type: str | None,
    labels: dict[str, str],
    data: Path | None = None,
) -> Ready:
    """Everything ``crane up`` needs, checked before it prints or saves anything."""
    spec = node_spec(docker_url, gpus, gpu_type, labels)
    if data is not None:
        check_admin_token(data)
    sock = bind(host, port)
    try:
        check_docker(docker_url)
    except BaseException:
        sock.close()
        raise
    return Ready(spec, sock, docker_url)


def up(
    gpus: Annotated[
        int | None, typer.Option(help="Declare N simulated GPUs (no NVML).", metavar="N")
    ] = None,
    gpu_type: Annotated[
        str | None, typer.Option(help="GPU type of declared GPUs, e.g. H100.", metavar="TYPE")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="Topology label k=v of node local.", metavar="K=V")
    ] = None,
    host: Annotated[str, typer.Option(help="Address the API binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API binds.", envvar="CRANE_PORT")] = 8080,
    docker_host: Annotated[
        str | None, typer.Option(help="Local Docker engine URL.", metavar="URL")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the database and token live.", metavar="DIR")
    ] = None,
) -> None:
    """Run Crane on this machine's Docker engine; Ctrl-C stops Crane, containers keep running."""
    docker_url = docker_host or os.environ.get("DOCKER_HOST") or DOCKER_DEFAULT
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):  # an IPv6 address as written in a URL
        host = host[1:-1]
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: give a port from 1 to 65535")
    data = data_dir or default_data_dir()
    ready = preflight(host, port, docker_url, gpus, gpu_type, parse_labels(label), data)
    try:
        _serve(ready, host, port, data)
    finally:
        ready.sock.close()


def default_data_dir() -> Path:
    """Where ``crane up`` keeps its database and admin token without --data-dir."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("crane"))


def _serve(ready: Ready, host: str, port: int, data: Path) -> None:
    import uvicorn

    from crane.api.app import create_app
    from crane.api.db import make_engine, migrate
    from crane.api.settings import ApiSettings, BackendKind
    from crane.client import Context, load_config, save_config, without_password
    from crane.docker.api_backend import DockerBackend
    from crane.docker.local import admin_token, register

    spec = ready.spec
    port = ready.sock.getsockname()[1]  # --port 0: the one the system picked
    url = f"sqlite:///{data / 'crane.db'}"
    token, first = admin_token(data)
    settings = ApiSettings(
        database_url=url, backend=BackendKind.DOCKER, host=host, port=port, bootstrap_token=token
    )
    db = make_engine(url)
    migrate(db)
    register(db, spec)
    db.dispose()
    url_of_api = api_url(host, port)
    config = load_config()
    config.contexts["local"] = Context(url=url_of_api, token=token)
    config.current_context = "local"
    save_config(config)
    gpus_text = f"{spec.gpu_count} x {spec.gpu_product}" if spec.gpu_count else "no GPUs"
    kind = "declared" if spec.simulated else "found with NVML"
    say(f"crane: node local: {gpus_text} ({kind}) on {without_password(ready.docker_url)}")
    say(f"crane: API at {url_of_api} (CLI context 'local' saved; try `crane mc create`)")
    if first:
        say(f"crane: admin token (also in {data / 'admin-token'}): {token}")
    backend = DockerBackend(settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, backend), log_level="warning", lifespan="on")
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        server.run(sockets=[ready.sock])
    if server.started:
        say("crane: stopped; containers keep running (`crane up` again picks them up)")
