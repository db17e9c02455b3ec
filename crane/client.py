"""Typed Python SDK for Crane's REST API (``/v1``): :class:`Client` and :class:`AsyncClient`.

Both clients share request building (:class:`_Calls`), response parsing and error mapping; only
the sending differs. The base URL and token come from arguments, else from ``CRANE_API_URL`` and
``CRANE_TOKEN`` (what a MiniCluster's app manager receives), else from the ``crane`` CLI's config
file (``crane login``). Example::

    from crane.client import Client

    with Client() as crane:
        result = crane.grow("study", 4, wait=True, timeout=120)
        print(result.outcome, result.cargos)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

import crane
from crane.model.specs import CargoSpec, CargoStatus, MiniClusterSpec, MiniClusterStatus

ENV_URL = "CRANE_API_URL"
ENV_TOKEN = "CRANE_TOKEN"
ENV_CONTEXT = "CRANE_CONTEXT"
ENV_CONFIG_DIR = "CRANE_CONFIG_DIR"
API_PREFIX = "/v1"
PROBLEM_JSON = "application/problem+json"

T = TypeVar("T")


# ---------------------------------------------------------------- errors


class FieldError(BaseModel):
    """One invalid field of a request: where (``loc``) and what is wrong (``msg``)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(default_factory=list)
    msg: str = ""

    @property
    def field(self) -> str:
        return ".".join(str(p) for p in self.loc if p not in ("body", "query", "path"))


class Problem(BaseModel):
    """An RFC 9457 ``application/problem+json`` body."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str = ""
    status: int | None = None
    detail: str = ""
    instance: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class CraneError(Exception):
    """Any failure talking to Crane; ``problem`` is the server's problem+json, if it sent one."""

    def __init__(self, message: str, *, status: int | None = None, problem: Problem | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.problem = problem


class BadRequest(CraneError):
    """400: the server could not use the request."""


class Unauthorized(CraneError):
    """401: no token, or one the server does not accept."""


class Forbidden(CraneError):
    """403: the token's scope does not allow this."""


class NotFound(CraneError):
    """404: no such object (or it belongs to another tenant)."""


class Conflict(CraneError):
    """409: the object exists, or changed meanwhile."""


class Invalid(CraneError):
    """422: the request failed validation; ``field_errors`` says which fields."""

    @property
    def field_errors(self) -> list[FieldError]:
        return self.problem.errors if self.problem else []


class ServerError(CraneError):
    """5xx: the server failed."""


class ConnectionFailed(CraneError):
    """The server could not be reached."""

    def __init__(self, message: str, *, url: str):
        super().__init__(message)
        self.url = url


class NotConfigured(CraneError):
    """No API URL was given, set in the environment, or saved by ``crane login``."""


class WaitTimeout(CraneError):
    """A wait ran past its timeout."""


_BY_STATUS: dict[int, type[CraneError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


def error_from_response(response: httpx.Response) -> CraneError:
    """The typed exception for an error response, carrying its problem+json."""
    problem: Problem | None = None
    try:
        problem = Problem.model_validate(response.json())
    except (ValueError, ValidationError):
        problem = None
    message = (problem.detail or problem.title) if problem else ""
    if not message:
        message = (
            response.text.strip()[:200] or response.reason_phrase or f"HTTP {response.status_code}"
        )
    cls = _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = ServerError if response.status_code >= 500 else CraneError
    return cls(message, status=response.status_code, problem=problem)


# ---------------------------------------------------------------- configuration


class Context(BaseModel):
    """One saved server: its URL and token."""

    url: str
    token: str | None = None


class CraneConfig(BaseModel):
    """The CLI's config file: named contexts and the current one."""

    model_config = ConfigDict(populate_by_name=True)

    current_context: str | None = Field(default=None, alias="current-context")
    contexts: dict[str, Context] = Field(default_factory=dict)

    def current(self, name: str | None = None) -> tuple[str, Context] | None:
        """The context called ``name`` (else ``$CRANE_CONTEXT``, else the current one), if saved."""
        chosen = name or os.environ.get(ENV_CONTEXT) or self.current_context
        if chosen is None or chosen not in self.contexts:
            return None
        return chosen, self.contexts[chosen]


def config_dir() -> Path:
    """``$CRANE_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/crane``, else ``~/.config/crane``."""
    explicit = os.environ.get(ENV_CONFIG_DIR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "crane"


def config_path() -> Path:
    return config_dir() / "config.yaml"


def load_config(path: Path | None = None) -> CraneConfig:
    """Read the config file (missing: empty). Raises yaml.YAMLError or ValidationError."""
    path = path or config_path()
    if not path.exists():
        return CraneConfig()
    data = yaml.safe_load(path.read_text()) or {}
    return CraneConfig.model_validate(data)


def save_config(config: CraneConfig, path: Path | None = None) -> Path:
    """Write the config file atomically, readable by its owner only (it holds tokens)."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config.model_dump(by_alias=True, exclude_none=True), sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def resolve_settings(
    url: str | None = None, token: str | None = None, context: str | None = None
) -> tuple[str, str | None]:
    """The base URL and token: arguments, else environment, else the saved context."""
    url = url or os.environ.get(ENV_URL)
    token = token or os.environ.get(ENV_TOKEN)
    if url is None or token is None:
        saved = load_config().current(context)
        if saved is not None:
            url = url or saved[1].url
            token = token or saved[1].token
    if not url:
        raise NotConfigured(f"no Crane API URL: pass url=, set {ENV_URL}, or run `crane login URL`")
    return url.rstrip("/"), token


# ---------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class ObjectMeta(_Model):
    name: str
    namespace: str | None = None
    uid: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: datetime | None = None


class MiniCluster(_Model):
    api_version: str = "crane.io/v1alpha1"
    kind: str = "MiniCluster"
    metadata: ObjectMeta
    spec: MiniClusterSpec
    status: MiniClusterStatus = Field(default_factory=MiniClusterStatus)

    @property
    def name(self) -> str:
        return self.metadata.name


class Cargo(_Model):
    api_version: str = "crane.io/v1alpha1"
    kind: str = "Cargo"
    metadata: ObjectMeta
    spec: CargoSpec
    status: CargoStatus = Field(default_factory=CargoStatus)

    @property
    def name(self) -> str:
        return self.metadata.name


class GrowOutcome(StrEnum):
    GRANTED = "granted"
    PARTIAL = "partial"
    DENIED = "denied"


class GrowResult(_Model):
    """What ``:grow`` gave: all, some or none of the cargos asked for, and why."""

    outcome: GrowOutcome
    requested: int = 0
    cargos: list[str] = Field(default_factory=list, description="names of the cargos added")
    reasons: list[str] = Field(default_factory=list)


class ShrinkResult(_Model):
    removed: list[str] = Field(default_factory=list)


class Explain(_Model):
    """Why a MiniCluster (or its cargos) waits, in numbers."""

    name: str
    message: str = ""
    reasons: list[str] = Field(default_factory=list)
    queue_position: int | None = None


class GpuCell(_Model):
    """One GPU of the map: who reserves it and who uses it."""

    id: int
    reserved_for: str | None = None
    minicluster: str | None = None
    cargo: str | None = None
    busy: bool = False

    @property
    def state(self) -> Literal["free", "reserved", "in-use", "borrowed", "busy"]:
        if self.busy:
            return "busy"
        if self.cargo:
            return "borrowed" if self.minicluster != self.reserved_for else "in-use"
        return "reserved" if self.reserved_for else "free"

    @property
    def owner(self) -> str | None:
        return self.minicluster or self.reserved_for


class NodeMap(_Model):
    name: str
    gpu_product: str = ""
    ready: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    gpus: list[GpuCell] = Field(default_factory=list)


class UsageRow(_Model):
    tenant: str = ""
    minicluster: str = ""
    gpu_seconds: float = 0.0


class Token(_Model):
    id: str
    name: str = ""
    scope: str = ""
    tenant: str | None = None
    minicluster: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    token: str | None = Field(default=None, description="the secret, only in the answer to create")


class DryRun(_Model):
    outcome: str
    message: str = ""
    placement: list[dict[str, Any]] = Field(default_factory=list)


class Event(_Model):
    """One event of the SSE stream."""

    id: str | None = None
    type: str = "message"
    kind: str | None = None
    name: str | None = None
    reason: str = ""
    message: str = ""
    time: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------- request building


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    idempotency_key: str | None = None
    timeout: float | None = None

    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}


def _one(model: type[T]) -> Callable[[httpx.Response], T]:
    return lambda r: model.model_validate(r.json())  # type: ignore[attr-defined, no-any-return]


def _items(model: type[T]) -> Callable[[httpx.Response], list[T]]:
    return lambda r: [model.model_validate(x) for x in r.json()["items"]]  # type: ignore[attr-defined]


def _nothing(_: httpx.Response) -> None:
    return None


def _spec_json(spec: BaseModel | dict[str, Any]) -> dict[str, Any]:
    if isinstance(spec, BaseModel):
        return spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return spec


def _key(given: str | None) -> str:
    return given or str(uuid.uuid4())


class _Calls:
    """Builds every request of the API once, for both clients."""

    @staticmethod
    def create_minicluster(
        name: str, spec: MiniClusterSpec | dict[str, Any], key: str | None
    ) -> _Call[MiniCluster]:
        body = {"metadata": {"name": name}, "spec": _spec_json(spec)}
        return _Call(
            "POST", "/miniclusters", _one(MiniCluster), body=body, idempotency_key=_key(key)
        )

    @staticmethod
    def list_miniclusters() -> _Call[list[MiniCluster]]:
        return _Call("GET", "/miniclusters", _items(MiniCluster))

    @staticmethod
    def get_minicluster(name: str) -> _Call[MiniCluster]:
        return _Call("GET", f"/miniclusters/{name}", _one(MiniCluster))

    @staticmethod
    def patch_minicluster(name: str, spec: dict[str, Any]) -> _Call[MiniCluster]:
        return _Call("PATCH", f"/miniclusters/{name}", _one(MiniCluster), body={"spec": spec})

    @staticmethod
    def delete_minicluster(name: str) -> _Call[None]:
        return _Call("DELETE", f"/miniclusters/{name}", _nothing)

    @staticmethod
    def grow(
        name: str,
        n: int | None,
        cargos: Iterable[CargoSpec | dict[str, Any]] | None,
        wait: bool,
        timeout: float | None,
        key: str | None,
    ) -> _Call[GrowResult]:
        if (n is None) == (cargos is None):
            raise ValueError("grow takes either n (template cargos) or cargos (specs), not both")
        body: dict[str, Any] = {"wait": wait}
        if n is not None:
            body["count"] = n
        else:
            body["cargos"] = [_spec_json(c) for c in cargos or ()]
        if timeout is not None:
            body["timeout"] = timeout
        http_timeout = (timeout or 0) + 30 if wait else None
        return _Call(
            "POST",
            f"/miniclusters/{name}:grow",
            _one(GrowResult),
            body=body,
            idempotency_key=_key(key),
            timeout=http_timeout,
        )

    @staticmethod
    def shrink(
        name: str, n: int | None, cargos: Iterable[str] | None, key: str | None
    ) -> _Call[ShrinkResult]:
        if (n is None) == (cargos is None):
            raise ValueError("shrink takes either n (newest cargos) or cargo names, not both")
        body: dict[str, Any] = {"count": n} if n is not None else {"cargos": list(cargos or ())}
        return _Call(
            "POST",
            f"/miniclusters/{name}:shrink",
            _one(ShrinkResult),
            body=body,
            idempotency_key=_key(key),
        )

    @staticmethod
    def explain(name: str) -> _Call[Explain]:
        return _Call("GET", f"/miniclusters/{name}:explain", _one(Explain))

    @staticmethod
    def create_cargo(name: str, spec: CargoSpec | dict[str, Any], key: str | None) -> _Call[Cargo]:
        body = {"metadata": {"name": name}, "spec": _spec_json(spec)}
        return _Call("POST", "/cargos", _one(Cargo), body=body, idempotency_key=_key(key))

    @staticmethod
    def list_cargos(minicluster: str | None) -> _Call[list[Cargo]]:
        params = {"minicluster": minicluster} if minicluster else {}
        return _Call("GET", "/cargos", _items(Cargo), params=params)

    @staticmethod
    def get_cargo(name: str) -> _Call[Cargo]:
        return _Call("GET", f"/cargos/{name}", _one(Cargo))

    @staticmethod
    def delete_cargo(name: str) -> _Call[None]:
        return _Call("DELETE", f"/cargos/{name}", _nothing)

    @staticmethod
    def logs(name: str, replica: int | None, follow: bool, tail: int | None) -> _Call[str]:
        params: dict[str, Any] = {"follow": str(follow).lower()}
        if replica is not None:
            params["replica"] = replica
        if tail is not None:
            params["tail"] = tail
        return _Call("GET", f"/cargos/{name}/logs", lambda r: r.text, params=params)

    @staticmethod
    def nodes() -> _Call[list[NodeMap]]:
        return _Call("GET", "/nodes", _items(NodeMap))

    @staticmethod
    def dryrun(kind: str, spec: BaseModel | dict[str, Any]) -> _Call[DryRun]:
        body = {"kind": kind, "spec": _spec_json(spec)}
        return _Call("POST", "/placement:dryrun", _one(DryRun), body=body)

    @staticmethod
    def usage() -> _Call[list[UsageRow]]:
        return _Call("GET", "/usage", _items(UsageRow))

    @staticmethod
    def create_token(
        name: str, scope: str, tenant: str | None, minicluster: str | None
    ) -> _Call[Token]:
        body = {"name": name, "scope": scope, "tenant": tenant, "minicluster": minicluster}
        return _Call("POST", "/tokens", _one(Token), body={k: v for k, v in body.items() if v})

    @staticmethod
    def list_tokens() -> _Call[list[Token]]:
        return _Call("GET", "/tokens", _items(Token))

    @staticmethod
    def revoke_token(token_id: str) -> _Call[None]:
        return _Call("DELETE", f"/tokens/{token_id}", _nothing)


# ---------------------------------------------------------------- waiting and SSE, shared


_DONE_PHASES = {"Running", "Succeeded"}
_FAILED_PHASES = {"Failed", "Preempted"}


def _cargos_settled(cargos: list[Cargo], names: set[str], phases: set[str]) -> bool:
    """Whether every named cargo reached one of ``phases``; raises CraneError if one failed."""
    by_name = {c.name: c for c in cargos}
    missing = names - by_name.keys()
    if missing:
        raise NotFound(f"cargo {sorted(missing)[0]} does not exist (deleted while waiting?)")
    for name in names:
        phase = str(by_name[name].status.phase)
        if phase in _FAILED_PHASES and phase not in phases:
            message = by_name[name].status.message
            raise CraneError(f"cargo {name} is {phase}" + (f": {message}" if message else ""))
    return all(str(by_name[n].status.phase) in phases for n in names)


class _SSEDecoder:
    """Turns SSE lines into :class:`Event` objects; remembers the last id for reconnecting."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._event = "message"
        self._data: list[str] = []
        self._id: str | None = None
        self.retry_s = 1.0

    def feed(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_s = int(value) / 1000
        return None

    def _dispatch(self) -> Event | None:
        if self._id is not None:
            self.last_id = self._id
        event_type, data, self._event, self._data, self._id = (
            self._event,
            self._data,
            "message",
            [],
            None,
        )
        if not data:
            return None
        text = "\n".join(data)
        try:
            payload = json.loads(text)
        except ValueError:
            payload = {"message": text}
        if not isinstance(payload, dict):
            payload = {"data": {"value": payload}}
        payload.setdefault("type", event_type)
        payload.setdefault("id", self.last_id)
        return Event.model_validate(payload)


def _sse_headers(last_id: str | None) -> dict[str, str]:
    headers = {"Accept": "text/event-stream"}
    if last_id:
        headers["Last-Event-ID"] = last_id
    return headers


# ---------------------------------------------------------------- clients


_RETRIES = 3
_RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError, httpx.RemoteProtocolError)


class _Base:
    """What both clients share: settings, headers, and turning answers into results or errors."""

    def __init__(
        self, url: str | None, token: str | None, context: str | None, timeout: float
    ) -> None:
        self.url, self.token = resolve_settings(url, token, context)
        self.timeout = timeout

    def _client_args(self) -> dict[str, Any]:
        headers = {"User-Agent": f"crane-client/{crane.__version__}", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return {"base_url": self.url + API_PREFIX, "headers": headers, "timeout": self.timeout}

    def _request_args(self, call: _Call[Any]) -> dict[str, Any]:
        args: dict[str, Any] = {"params": call.params, "headers": call.headers()}
        if call.body is not None:
            args["json"] = call.body
        if call.timeout is not None:
            args["timeout"] = call.timeout
        return args

    @staticmethod
    def _retryable(call: _Call[Any], attempt: int, exc: Exception) -> bool:
        """Connection errors were retried by the transport already; a request that may have
        reached the server is sent again only when that is safe (GET, DELETE, Idempotency-Key)."""
        connect = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        safe = call.method in ("GET", "DELETE") or call.idempotency_key is not None
        return attempt < _RETRIES and safe and not connect

    def _unreachable(self, exc: Exception) -> ConnectionFailed:
        return ConnectionFailed(f"cannot reach the Crane API at {self.url}: {exc}", url=self.url)

    @staticmethod
    def _result(call: _Call[T], response: httpx.Response) -> T:
        if response.is_error:
            raise error_from_response(response)
        return call.parse(response)


class Client(_Base):
    """Synchronous client. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        context: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, token, context, timeout)
        self._http = httpx.Client(
            transport=transport or httpx.HTTPTransport(retries=_RETRIES), **self._client_args()
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: _Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, **self._request_args(call))
            except _RETRYABLE as exc:
                attempt += 1
                if not self._retryable(call, attempt, exc):
                    raise self._unreachable(exc) from exc
                time.sleep(0.2 * 2**attempt)
                continue
            return self._result(call, response)

    def ping(self) -> None:
        """Check that the server answers and accepts the token (raises Unauthorized otherwise)."""
        self._run(_Calls.list_miniclusters())

    def create_minicluster(
        self,
        name: str,
        spec: MiniClusterSpec | dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> MiniCluster:
        return self._run(_Calls.create_minicluster(name, spec, idempotency_key))

    def list_miniclusters(self) -> list[MiniCluster]:
        return self._run(_Calls.list_miniclusters())

    def get_minicluster(self, name: str) -> MiniCluster:
        return self._run(_Calls.get_minicluster(name))

    def patch_minicluster(self, name: str, spec: dict[str, Any]) -> MiniCluster:
        """Merge-patch the spec, e.g. ``{"gpus": {"max": 32}}`` or ``{"replicas": 4}``."""
        return self._run(_Calls.patch_minicluster(name, spec))

    def delete_minicluster(self, name: str) -> None:
        self._run(_Calls.delete_minicluster(name))

    def grow(
        self,
        name: str,
        n: int | None = None,
        *,
        cargos: Iterable[CargoSpec | dict[str, Any]] | None = None,
        wait: bool = False,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> GrowResult:
        """Add ``n`` template cargos, or the given cargo specs; ``wait``: return once they run."""
        return self._run(_Calls.grow(name, n, cargos, wait, timeout, idempotency_key))

    def shrink(
        self,
        name: str,
        n: int | None = None,
        *,
        cargos: Iterable[str] | None = None,
        idempotency_key: str | None = None,
    ) -> ShrinkResult:
        """Remove the named cargos, or the ``n`` newest."""
        return self._run(_Calls.shrink(name, n, cargos, idempotency_key))

    def explain(self, name: str) -> Explain:
        return self._run(_Calls.explain(name))

    def create_cargo(
        self, name: str, spec: CargoSpec | dict[str, Any], *, idempotency_key: str | None = None
    ) -> Cargo:
        return self._run(_Calls.create_cargo(name, spec, idempotency_key))

    def list_cargos(self, minicluster: str | None = None) -> list[Cargo]:
        return self._run(_Calls.list_cargos(minicluster))

    def get_cargo(self, name: str) -> Cargo:
        return self._run(_Calls.get_cargo(name))

    def delete_cargo(self, name: str) -> None:
        self._run(_Calls.delete_cargo(name))

    def logs(self, name: str, *, replica: int | None = None, tail: int | None = None) -> str:
        return self._run(_Calls.logs(name, replica, False, tail))

    def follow_logs(
        self, name: str, *, replica: int | None = None, tail: int | None = None
    ) -> Iterator[str]:
        """Log lines as they are written, until the cargo ends."""
        call = _Calls.logs(name, replica, True, tail)
        try:
            with self._http.stream(
                call.method, call.path, params=call.params, timeout=None
            ) as resp:
                if resp.is_error:
                    resp.read()
                    raise error_from_response(resp)
                yield from resp.iter_lines()
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._unreachable(exc) from exc

    def nodes(self) -> list[NodeMap]:
        return self._run(_Calls.nodes())

    def dryrun(
        self, kind: Literal["MiniCluster", "Cargo"], spec: BaseModel | dict[str, Any]
    ) -> DryRun:
        return self._run(_Calls.dryrun(kind, spec))

    def usage(self) -> list[UsageRow]:
        return self._run(_Calls.usage())

    def create_token(
        self,
        name: str,
        *,
        scope: str = "tenant",
        tenant: str | None = None,
        minicluster: str | None = None,
    ) -> Token:
        return self._run(_Calls.create_token(name, scope, tenant, minicluster))

    def list_tokens(self) -> list[Token]:
        return self._run(_Calls.list_tokens())

    def revoke_token(self, token_id: str) -> None:
        self._run(_Calls.revoke_token(token_id))

    def wait_for_cargos(
        self,
        names: Iterable[str],
        *,
        phases: Iterable[str] = _DONE_PHASES,
        timeout: float = 300.0,
        interval: float = 1.0,
        on_update: Callable[[list[Cargo]], None] | None = None,
    ) -> list[Cargo]:
        """Poll until every named cargo is in one of ``phases``; WaitTimeout after ``timeout``.

        ``on_update`` sees the cargos after each poll (for progress displays).
        """
        wanted, accept = set(names), set(phases)
        deadline = time.monotonic() + timeout
        while True:
            cargos = [c for c in self.list_cargos() if c.name in wanted]
            if on_update is not None:
                on_update(cargos)
            if _cargos_settled(cargos, wanted, accept):
                return cargos
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"cargos not {'/'.join(sorted(accept))} after {timeout:g}s")
            time.sleep(interval)

    def events(
        self, *, last_event_id: str | None = None, reconnect: bool = True
    ) -> Iterator[Event]:
        """Events as they happen; reconnects with ``Last-Event-ID`` after a dropped connection."""
        decoder = _SSEDecoder()
        decoder.last_id = last_event_id
        while True:
            try:
                with self._http.stream(
                    "GET", "/events", headers=_sse_headers(decoder.last_id), timeout=None
                ) as resp:
                    if resp.is_error:
                        resp.read()
                        raise error_from_response(resp)
                    for line in resp.iter_lines():
                        event = decoder.feed(line)
                        if event is not None:
                            yield event
            except _RETRYABLE as exc:
                if not reconnect:
                    raise self._unreachable(exc) from exc
            if not reconnect:
                return
            time.sleep(decoder.retry_s)


class AsyncClient(_Base):
    """Asynchronous client with the same methods as :class:`Client`, to be awaited."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        context: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, token, context, timeout)
        self._http = httpx.AsyncClient(
            transport=transport or httpx.AsyncHTTPTransport(retries=_RETRIES), **self._client_args()
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: _Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, **self._request_args(call)
                )
            except _RETRYABLE as exc:
                attempt += 1
                if not self._retryable(call, attempt, exc):
                    raise self._unreachable(exc) from exc
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            return self._result(call, response)

    async def ping(self) -> None:
        await self._run(_Calls.list_miniclusters())

    async def create_minicluster(
        self,
        name: str,
        spec: MiniClusterSpec | dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> MiniCluster:
        return await self._run(_Calls.create_minicluster(name, spec, idempotency_key))

    async def list_miniclusters(self) -> list[MiniCluster]:
        return await self._run(_Calls.list_miniclusters())

    async def get_minicluster(self, name: str) -> MiniCluster:
        return await self._run(_Calls.get_minicluster(name))

    async def patch_minicluster(self, name: str, spec: dict[str, Any]) -> MiniCluster:
        return await self._run(_Calls.patch_minicluster(name, spec))

    async def delete_minicluster(self, name: str) -> None:
        await self._run(_Calls.delete_minicluster(name))

    async def grow(
        self,
        name: str,
        n: int | None = None,
        *,
        cargos: Iterable[CargoSpec | dict[str, Any]] | None = None,
        wait: bool = False,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> GrowResult:
        return await self._run(_Calls.grow(name, n, cargos, wait, timeout, idempotency_key))

    async def shrink(
        self,
        name: str,
        n: int | None = None,
        *,
        cargos: Iterable[str] | None = None,
        idempotency_key: str | None = None,
    ) -> ShrinkResult:
        return await self._run(_Calls.shrink(name, n, cargos, idempotency_key))

    async def explain(self, name: str) -> Explain:
        return await self._run(_Calls.explain(name))

    async def create_cargo(
        self, name: str, spec: CargoSpec | dict[str, Any], *, idempotency_key: str | None = None
    ) -> Cargo:
        return await self._run(_Calls.create_cargo(name, spec, idempotency_key))

    async def list_cargos(self, minicluster: str | None = None) -> list[Cargo]:
        return await self._run(_Calls.list_cargos(minicluster))

    async def get_cargo(self, name: str) -> Cargo:
        return await self._run(_Calls.get_cargo(name))

    async def delete_cargo(self, name: str) -> None:
        await self._run(_Calls.delete_cargo(name))

    async def logs(self, name: str, *, replica: int | None = None, tail: int | None = None) -> str:
        return await self._run(_Calls.logs(name, replica, False, tail))

    async def follow_logs(
        self, name: str, *, replica: int | None = None, tail: int | None = None
    ) -> AsyncIterator[str]:
        call = _Calls.logs(name, replica, True, tail)
        try:
            async with self._http.stream(
                call.method, call.path, params=call.params, timeout=None
            ) as resp:
                if resp.is_error:
                    await resp.aread()
                    raise error_from_response(resp)
                async for line in resp.aiter_lines():
                    yield line
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._unreachable(exc) from exc

    async def nodes(self) -> list[NodeMap]:
        return await self._run(_Calls.nodes())

    async def dryrun(
        self, kind: Literal["MiniCluster", "Cargo"], spec: BaseModel | dict[str, Any]
    ) -> DryRun:
        return await self._run(_Calls.dryrun(kind, spec))

    async def usage(self) -> list[UsageRow]:
        return await self._run(_Calls.usage())

    async def create_token(
        self,
        name: str,
        *,
        scope: str = "tenant",
        tenant: str | None = None,
        minicluster: str | None = None,
    ) -> Token:
        return await self._run(_Calls.create_token(name, scope, tenant, minicluster))

    async def list_tokens(self) -> list[Token]:
        return await self._run(_Calls.list_tokens())

    async def revoke_token(self, token_id: str) -> None:
        await self._run(_Calls.revoke_token(token_id))

    async def wait_for_cargos(
        self,
        names: Iterable[str],
        *,
        phases: Iterable[str] = _DONE_PHASES,
        timeout: float = 300.0,
        interval: float = 1.0,
        on_update: Callable[[list[Cargo]], None] | None = None,
    ) -> list[Cargo]:
        wanted, accept = set(names), set(phases)
        deadline = time.monotonic() + timeout
        while True:
            cargos = [c for c in await self.list_cargos() if c.name in wanted]
            if on_update is not None:
                on_update(cargos)
            if _cargos_settled(cargos, wanted, accept):
                return cargos
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"cargos not {'/'.join(sorted(accept))} after {timeout:g}s")
            await asyncio.sleep(interval)

    async def events(
        self, *, last_event_id: str | None = None, reconnect: bool = True
    ) -> AsyncIterator[Event]:
        decoder = _SSEDecoder()
        decoder.last_id = last_event_id
        while True:
            try:
                async with self._http.stream(
                    "GET", "/events", headers=_sse_headers(decoder.last_id), timeout=None
                ) as resp:
                    if resp.is_error:
                        await resp.aread()
                        raise error_from_response(resp)
                    async for line in resp.aiter_lines():
                        event = decoder.feed(line)
                        if event is not None:
                            yield event
            except _RETRYABLE as exc:
                if not reconnect:
                    raise self._unreachable(exc) from exc
            if not reconnect:
                return
            await asyncio.sleep(decoder.retry_s)
