"""Typed Python SDK for Crane's REST API (``/v1``): :class:`Client` and :class:`AsyncClient`.

Both clients share request building (:class:`_Calls`), response parsing and error mapping; only
the sending differs. The base URL and token come from arguments, else from ``CRANE_API_URL`` and
``CRANE_TOKEN`` (what a MiniCluster's app manager receives), else from the ``crane`` CLI's config
file (``crane login``). Example::

    from crane.client import Client

    with Client() as crane:
        result = crane.grow("study", 4, wait=True, timeout=120)
        print(result.result, [c.name for c in result.cargos if c.added])

The wire models are those of :mod:`crane.api.schemas` (pydantic only), re-exported here.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import crane
from crane.api.schemas import (
    Cargo,
    CargoCreate,
    CargoGrant,
    CargoShape,
    DryRunRequest,
    DryRunResult,
    Event,
    EventType,
    ExecRequest,
    ExecResult,
    ExplainResult,
    GpuSlotOut,
    GrowOutcome,
    GrowRequest,
    GrowResult,
    Host,
    HostCreate,
    MiniCluster,
    MiniClusterCreate,
    MiniClusterPatch,
    NodeOut,
    Scope,
    ShrinkRequest,
    ShrinkResult,
    Tenant,
    TenantCreate,
    TenantShareStatus,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UsageReport,
    UsageRow,
)
from crane.model.shares import TenantShare, TenantShares
from crane.model.specs import CargoSpec, MiniClusterSpec

__all__ = [
    "AsyncClient",
    "BadConfig",
    "BadRequest",
    "Cargo",
    "CargoGrant",
    "CargoShape",
    "CargoSpec",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "ConnectionLost",
    "CraneError",
    "DryRunResult",
    "Event",
    "EventType",
    "ExecResult",
    "ExplainResult",
    "Forbidden",
    "GpuSlotOut",
    "GrowOutcome",
    "GrowResult",
    "Host",
    "HostCreate",
    "Invalid",
    "MiniCluster",
    "MiniClusterSpec",
    "NodeOut",
    "NotConfigured",
    "NotCrane",
    "NotFound",
    "Outage",
    "Scope",
    "ServerError",
    "ShrinkResult",
    "Tenant",
    "TenantShare",
    "TenantShareStatus",
    "TenantShares",
    "TokenCreated",
    "TokenPublic",
    "Unauthorized",
    "Unavailable",
    "UnexpectedAnswer",
    "UnknownContext",
    "UsageReport",
    "UsageRow",
    "WaitTimeout",
]

ENV_URL = "CRANE_API_URL"
ENV_TOKEN = "CRANE_TOKEN"
ENV_CONTEXT = "CRANE_CONTEXT"
ENV_CONFIG_DIR = "CRANE_CONFIG_DIR"
API_PREFIX = "/v1"

T = TypeVar("T")


# ---------------------------------------------------------------- errors


class FieldError(BaseModel):
    """One invalid field of a request: where (``loc``) and what is wrong (``msg``)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(default_factory=list)
    msg: str = ""

    @property
    def field(self) -> str:
        """The field's dotted path in the request (``spec.gpus.max``), without body/query/path."""
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
        """The invalid fields, as the server listed them (empty if it sent no problem+json)."""
        return self.problem.errors if self.problem else []


class InvalidName(Invalid):
    """A name given to a call that no object can have; nothing was sent."""


class ServerError(CraneError):
    """5xx: the server failed."""


class Unavailable(ServerError):
    """503: the server runs but its backend (Kubernetes, Docker, database) cannot serve now."""


def without_password(url: str) -> str:
    """``url`` as it may be shown: a password in it (``http://user:pw@host``, a proxy's basic
    auth) written ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:  # not a URL this can read: nothing to hide in a known place
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))


class ConnectionFailed(CraneError):
    """The server could not be reached; ``url`` is shown without its password."""

    def __init__(self, message: str, *, url: str):
        super().__init__(message)
        self.url = without_password(url)


class ConnectionLost(ConnectionFailed):
    """A followed stream (events) lost its connection and could not get it back in time."""

    def __init__(self, message: str, *, url: str, after: float):
        super().__init__(message, url=url)
        self.after = after


class NotConfigured(CraneError):
    """No API URL was given, set in the environment, or saved by ``crane login``."""


class BadConfig(CraneError):
    """The config file cannot be read: not YAML, not UTF-8, not readable, or not Crane's shape."""


class NotCrane(CraneError):
    """The API URL answered, but not as the Crane API does (a web page, another service)."""


class UnexpectedAnswer(NotCrane):
    """The answer was JSON, but not of the shape Crane answers that request with (another
    service's JSON, a proxy's JSON error, or a server of another Crane version)."""


class UnknownContext(NotConfigured):
    """The context asked for (``context=``, ``$CRANE_CONTEXT`` or the config file's
    ``current-context``) is not one of the saved contexts; ``saved`` lists those that are."""

    def __init__(self, message: str, *, name: str, saved: list[str]):
        super().__init__(message)
        self.name = name
        self.saved = saved


class InvalidURL(NotConfigured):
    """The API URL given, set in the environment or saved is not an ``http(s)://HOST`` URL."""


class InvalidToken(NotConfigured):
    """The token given, set in the environment or saved holds a character that no
    ``Authorization`` header can carry (a space, a control character, a non-ASCII letter)."""


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


def _where(response: httpx.Response) -> str:
    """The URL ``response`` answered, without its query (``the server`` when unknown)."""
    try:
        return without_password(str(response.request.url.copy_with(query=None)))
    except RuntimeError:  # a response made without its request (tests)
        return "the server"


def _media(response: httpx.Response) -> str:
    """The answer's media type (``text/html``), or ``no content type``."""
    return response.headers.get("content-type", "").split(";")[0].strip() or "no content type"


def _printable(text: str, limit: int = 120) -> str:
    """``text`` on one line, each control character as ``?``, at most ``limit`` characters."""
    flat = "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _problem_of(response: httpx.Response) -> Problem | None:
    """The answer's problem+json: a JSON object with a ``detail`` or ``title`` (what Crane's and
    FastAPI's errors have); None for anything else (a proxy's page, another service's JSON)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not any(
        isinstance(body.get(k), str) and body[k].strip() for k in ("detail", "title")
    ):
        return None
    try:
        return Problem.model_validate(body)
    except ValidationError:
        return None


def _foreign_error(response: httpx.Response) -> str:
    """What an error answer that is not Crane's problem+json says: its status, its media type,
    and the start of its text unless it is a web page."""
    status = f"{response.status_code} {response.reason_phrase}".strip()
    media = _media(response)
    text = "" if "html" in media else _printable(response.text)
    said = f": {text}" if text else ""
    return f"{_where(response)} answered {status} with {media}{said}"


def error_from_response(response: httpx.Response) -> CraneError:
    """The typed exception for an error response, carrying its problem+json.

    A 4xx answer that is no problem+json (a proxy's or another service's page or JSON: a 404
    for a wrong URL, a login page's 401) is :class:`NotCrane`, never a verdict on the object
    asked for; a 5xx one (a gateway's 502 while Crane restarts) stays a :class:`ServerError`
    saying what answered."""
    problem = _problem_of(response)
    status = response.status_code
    if problem is None:
        if status < 500:
            return NotCrane(
                f"{_foreign_error(response)}, not the Crane API's answer", status=status
            )
        cls: type[CraneError] = Unavailable if status == 503 else ServerError
        return cls(_foreign_error(response), status=status)
    message = problem.detail or problem.title
    found = _BY_STATUS.get(status)
    if status == 503:
        found = Unavailable
    if found is None:
        found = ServerError if status >= 500 else CraneError
    return found(message, status=status, problem=problem)


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

    def missing(self, name: str | None = None, path: Path | None = None) -> UnknownContext | None:
        """The error for a context asked for (``name``, else ``$CRANE_CONTEXT``, else
        ``current-context``) that is not saved, naming where it was asked for and the saved
        ones; None when it is saved or none is asked for."""
        env = os.environ.get(ENV_CONTEXT)
        chosen = name or env or self.current_context
        if chosen is None or chosen in self.contexts:
            return None
        where = path or config_path()
        if chosen == env:  # the CLI's --context reads it too
            source = f"${ENV_CONTEXT}'s context"
        elif name:
            source = "the context asked for"
        else:
            source = f"the current-context of {where}"
        saved = list(self.contexts)
        known = ", ".join(repr(n) for n in saved) if saved else "none"
        return UnknownContext(
            f"{source}, {chosen!r}, is not a saved context (saved in {where}: {known})",
            name=chosen,
            saved=saved,
        )


def config_dir() -> Path:
    """``$CRANE_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/crane``, else ``~/.config/crane``."""
    explicit = os.environ.get(ENV_CONFIG_DIR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "crane"


def config_path() -> Path:
    """The CLI's and SDK's config file: ``config.yaml`` in :func:`config_dir`."""
    return config_dir() / "config.yaml"


def load_config(path: Path | None = None) -> CraneConfig:
    """Read the config file (missing: empty). Raises :class:`BadConfig`, naming the file and
    what is wrong with it, when it cannot be read."""
    path = path or config_path()
    if not path.exists():
        return CraneConfig()
    import yaml  # deferred: a command that needs no config file does not load YAML

    try:
        return CraneConfig.model_validate(yaml.safe_load(path.read_text("utf-8")) or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "the top level"
        raise BadConfig(f"config file {path}: {where}: {first['msg']}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise BadConfig(f"config file {path} is not valid YAML{at}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise BadConfig(f"config file {path} cannot be read: {exc}") from None
    except RecursionError:
        raise BadConfig(f"config file {path} is nested too deep to be a config") from None
    except ValueError as exc:  # an integer past 4300 digits
        raise BadConfig(f"config file {path} cannot be read: {str(exc).split(';')[0]}") from None


def save_config(config: CraneConfig, path: Path | None = None) -> Path:
    """Write the config file atomically, readable by its owner only (it holds tokens)."""
    path = path or config_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BadConfig(
            f"cannot save the config file {path}: {path.parent} or a folder above it is a file, "
            "not a folder"
        ) from None
    import yaml

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
        config = load_config()
        saved = config.current(context)
        if saved is not None:
            url = url or saved[1].url
            token = token or saved[1].token
        missing = config.missing(context)
        if missing is not None and (url is None or context or os.environ.get(ENV_CONTEXT)):
            raise missing  # asked for by name, or the only place a URL could come from
    if not url:
        raise NotConfigured(f"no Crane API URL: pass url=, set {ENV_URL}, or run `crane login URL`")
    return check_url(url), check_token(token)


def check_token(token: str | None) -> str | None:
    """``token`` without surrounding whitespace, if every character of it can be sent in an
    ``Authorization`` header (visible ASCII); else :class:`InvalidToken`, which never repeats
    the token (it is a secret)."""
    if token is None:
        return None
    token = token.strip()
    for i, char in enumerate(token):
        if not "!" <= char <= "~":
            raise InvalidToken(
                f"the token has {char!r} at character {i + 1}, which no HTTP header can carry "
                "(a Crane token is crane_ID_SECRET in ASCII letters, digits and '_')"
            )
    return token


def check_url(url: str) -> str:
    """``url`` without a trailing ``/`` if it is an ``http://`` or ``https://`` URL with a host
    (and a valid port); else :class:`InvalidURL` saying what a URL looks like."""
    try:
        parsed = httpx.URL(url.strip())
        valid = (
            parsed.scheme in ("http", "https")
            and bool(parsed.host)
            and not any(char.isspace() for char in url.strip())  # httpx quotes "not a url"
            and (parsed.port is None or 0 < parsed.port < 65536)
        )
        if valid:
            parsed.host.encode("idna")  # a label over 63 characters: UnicodeError
    except (httpx.InvalidURL, ValueError, TypeError):
        valid = False
    if not valid:
        raise InvalidURL(
            f"the API URL {without_password(url)!r} is not a URL: write http://HOST:PORT or https://HOST"
        )
    if valid and (parsed.query or parsed.fragment):
        raise InvalidURL(
            f"the API URL {without_password(url)!r} has a query or fragment: "
            "write http://HOST:PORT or https://HOST"
        )
    base = url.strip().rstrip("/")
    if parsed.path.rstrip("/").endswith(API_PREFIX):
        # the API's own prefix, as pasted from its docs: requests would go to /v1/v1/...
        base = base.removesuffix(API_PREFIX).rstrip("/")
    return base


# ---------------------------------------------------------------- request building


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One request and how to read its answer; ``paged`` lists are fetched page by page."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    idempotency_key: str | None = None
    timeout: float | None = None
    tenant_scoped: bool = True
    paged: bool = False

    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}


_PAGE = 500
_M = TypeVar("_M", bound=BaseModel)


def _json(response: httpx.Response) -> Any:
    """The JSON of a successful answer; :class:`NotCrane` when it has none (a web page, say)."""
    try:
        return response.json()
    except ValueError:
        raise NotCrane(
            f"{_where(response)} answered {response.status_code} with {_media(response)}, "
            "not the Crane API's JSON"
        ) from None


def _unexpected(response: httpx.Response, why: str) -> UnexpectedAnswer:
    return UnexpectedAnswer(
        f"the answer of {_where(response)} ({response.status_code}) is not what Crane expected: "
        f"{_printable(why)}",
        status=response.status_code,
    )


def _valid(model: type[_M], data: Any, response: httpx.Response) -> _M:
    """``data`` read as ``model``; :class:`UnexpectedAnswer` (never a ValidationError, which
    reads as the caller's mistake) when the server's JSON is not of that shape."""
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(data), "a number"
        )
        raise _unexpected(response, f"{kind} where a {model.__name__} object belongs")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        why = f"{where}: {first['msg']}" if where else first["msg"]
        raise _unexpected(response, f"not a {model.__name__} ({why})") from None


def _one(model: type[_M]) -> Callable[[httpx.Response], _M]:
    return lambda r: _valid(model, _json(r), r)


def _items(model: type[_M]) -> Callable[[httpx.Response], list[_M]]:
    def parse(response: httpx.Response) -> list[_M]:
        body = _json(response)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise _unexpected(response, f"no list of {model.__name__} (no 'items')")
        return [_valid(model, x, response) for x in body["items"]]

    return parse


def _nothing(response: httpx.Response) -> None:
    """An answer with no body (Crane's 204 to a DELETE); any body (a login page answering 200,
    another service's JSON) is :class:`NotCrane`: the request may not have done anything."""
    if response.content.strip():
        raise NotCrane(
            f"{_where(response)} answered {response.status_code} with {_media(response)}, not "
            "the Crane API's answer, so it may not have been done"
        )


def _text(response: httpx.Response) -> str:
    """The plain text of an answer (a log); another media type (a web page) is :class:`NotCrane`."""
    if _media(response) != "text/plain":
        raise NotCrane(
            f"{_where(response)} answered {response.status_code} with {_media(response)}, not "
            "the Crane API's text/plain log"
        )
    return response.text


def _body(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _segment(name: str) -> str:
    """``name`` as one path segment of a URL, percent-encoded; a name no object can have that a
    URL would read as more than one segment (``/``, ``.``, ``..``: ``../tenants/x`` would reach
    another route) raises :class:`InvalidName` instead."""
    if "/" in name or name.strip(".") == "":
        raise InvalidName(
            f"invalid name {name!r}: use lower-case letters, digits and '-', starting and "
            "ending with a letter or digit"
        )
    return quote(name, safe="")


def _key(given: str | None) -> str:
    return given or str(uuid.uuid4())


class _Calls:
    """Builds every request of the API once, for both clients; bodies are validated here."""

    @staticmethod
    def whoami() -> _Call[TokenPublic]:
        return _Call("GET", "/whoami", _one(TokenPublic), tenant_scoped=False)

    @staticmethod
    def create_minicluster(
        name: str,
        spec: MiniClusterSpec | dict[str, Any],
        labels: dict[str, str] | None,
        key: str | None,
    ) -> _Call[MiniCluster]:
        body = MiniClusterCreate.model_validate(
            {"name": name, "spec": spec, "labels": labels or {}}
        )
        return _Call(
            "POST", "/miniclusters", _one(MiniCluster), body=_body(body), idempotency_key=_key(key)
        )

    @staticmethod
    def list_miniclusters() -> _Call[list[MiniCluster]]:
        return _Call("GET", "/miniclusters", _items(MiniCluster), paged=True)

    @staticmethod
    def get_minicluster(name: str) -> _Call[MiniCluster]:
        return _Call("GET", f"/miniclusters/{_segment(name)}", _one(MiniCluster))

    @staticmethod
    def patch_minicluster(
        name: str, patch: MiniClusterPatch | dict[str, Any]
    ) -> _Call[MiniCluster]:
        body = MiniClusterPatch.model_validate(patch)
        return _Call(
            "PATCH", f"/miniclusters/{_segment(name)}", _one(MiniCluster), body=_body(body)
        )

    @staticmethod
    def delete_minicluster(name: str) -> _Call[None]:
        return _Call("DELETE", f"/miniclusters/{_segment(name)}", _nothing)

    @staticmethod
    def grow(
        name: str,
        n: int | None,
        cargos: Iterable[CargoShape | dict[str, Any]] | None,
        allow_pending: bool,
        wait: bool,
        timeout: float,
        key: str | None,
    ) -> _Call[GrowResult]:
        body = GrowRequest(
            count=n,
            cargos=None if cargos is None else [CargoShape.model_validate(c) for c in cargos],
            allow_pending=allow_pending,
            wait=wait,
            timeout_seconds=timeout,
        )
        return _Call(
            "POST",
            f"/miniclusters/{_segment(name)}:grow",
            _one(GrowResult),
            body=_body(body),
            idempotency_key=_key(key),
            timeout=timeout + 30 if wait else None,
        )

    @staticmethod
    def shrink(
        name: str, n: int | None, cargos: Iterable[str] | None, grace: int | None, key: str | None
    ) -> _Call[ShrinkResult]:
        body = ShrinkRequest(
            count=n, cargos=None if cargos is None else list(cargos), grace_period_seconds=grace
        )
        return _Call(
            "POST",
            f"/miniclusters/{_segment(name)}:shrink",
            _one(ShrinkResult),
            body=_body(body),
            idempotency_key=_key(key),
        )

    @staticmethod
    def explain(name: str) -> _Call[ExplainResult]:
        return _Call("GET", f"/miniclusters/{_segment(name)}:explain", _one(ExplainResult))

    @staticmethod
    def create_cargo(
        name: str | None, spec: CargoSpec | dict[str, Any], key: str | None
    ) -> _Call[Cargo]:
        body = CargoCreate.model_validate({"name": name, "spec": spec})
        return _Call("POST", "/cargos", _one(Cargo), body=_body(body), idempotency_key=_key(key))

    @staticmethod
    def list_cargos(minicluster: str | None) -> _Call[list[Cargo]]:
        params = {"miniCluster": minicluster} if minicluster else {}
        return _Call("GET", "/cargos", _items(Cargo), params=params, paged=True)

    @staticmethod
    def get_cargo(name: str) -> _Call[Cargo]:
        return _Call("GET", f"/cargos/{_segment(name)}", _one(Cargo))

    @staticmethod
    def delete_cargo(name: str, grace: int | None) -> _Call[None]:
        params = {} if grace is None else {"gracePeriodSeconds": grace}
        return _Call("DELETE", f"/cargos/{_segment(name)}", _nothing, params=params)

    @staticmethod
    def logs(
        name: str, replica: int, follow: bool, tail: int | None, since: float | None
    ) -> _Call[str]:
        params: dict[str, Any] = {"replica": replica, "follow": str(follow).lower()}
        if tail is not None:
            params["tail"] = tail
        if since is not None:
            params["sinceSeconds"] = max(1, math.ceil(since))
        return _Call("GET", f"/cargos/{_segment(name)}/logs", _text, params=params)

    @staticmethod
    def exec(name: str, command: list[str], replica: int, timeout: int) -> _Call[ExecResult]:
        body = ExecRequest(replica=replica, command=command, timeout_seconds=timeout)
        return _Call(
            "POST",
            f"/cargos/{_segment(name)}:exec",
            _one(ExecResult),
            body=_body(body),
            timeout=timeout + 30,
        )

    @staticmethod
    def nodes() -> _Call[list[NodeOut]]:
        return _Call("GET", "/nodes", _items(NodeOut), tenant_scoped=False)

    @staticmethod
    def dryrun(
        minicluster: MiniClusterSpec | dict[str, Any] | None,
        cargo: CargoSpec | dict[str, Any] | None,
    ) -> _Call[DryRunResult]:
        body = DryRunRequest.model_validate({"miniCluster": minicluster, "cargo": cargo})
        return _Call("POST", "/placement:dryrun", _one(DryRunResult), body=_body(body))

    @staticmethod
    def usage(
        since: datetime | None, until: datetime | None, by_cargo: bool = False
    ) -> _Call[UsageReport]:
        params: dict[str, Any] = {
            k: v.isoformat() for k, v in (("since", since), ("until", until)) if v
        }
        if by_cargo:
            params["byCargo"] = "true"
        return _Call("GET", "/usage", _one(UsageReport), params=params)

    @staticmethod
    def create_token(body: TokenCreate) -> _Call[TokenCreated]:
        return _Call("POST", "/tokens", _one(TokenCreated), body=_body(body), tenant_scoped=False)

    @staticmethod
    def list_tokens() -> _Call[list[TokenPublic]]:
        return _Call("GET", "/tokens", _items(TokenPublic), paged=True)

    @staticmethod
    def revoke_token(token_id: str) -> _Call[None]:
        return _Call("DELETE", f"/tokens/{_segment(token_id)}", _nothing, tenant_scoped=False)

    @staticmethod
    def list_tenants() -> _Call[list[Tenant]]:
        return _Call("GET", "/tenants", _items(Tenant), tenant_scoped=False, paged=True)

    @staticmethod
    def create_tenant(name: str) -> _Call[Tenant]:
        body = _body(TenantCreate(name=name))
        return _Call("POST", "/tenants", _one(Tenant), body=body, tenant_scoped=False)

    @staticmethod
    def delete_tenant(name: str) -> _Call[None]:
        return _Call("DELETE", f"/tenants/{_segment(name)}", _nothing, tenant_scoped=False)

    @staticmethod
    def get_tenant(name: str) -> _Call[Tenant]:
        return _Call("GET", f"/tenants/{_segment(name)}", _one(Tenant), tenant_scoped=False)

    @staticmethod
    def set_tenant_shares(name: str, shares: TenantShares | dict[str, Any]) -> _Call[Tenant]:
        body = TenantShares.model_validate(shares)
        return _Call(
            "PUT",
            f"/tenants/{_segment(name)}/shares",
            _one(Tenant),
            body=_body(body),
            tenant_scoped=False,
        )

    @staticmethod
    def add_host(body: HostCreate) -> _Call[Host]:
        return _Call("POST", "/hosts", _one(Host), body=_body(body), tenant_scoped=False)

    @staticmethod
    def list_hosts() -> _Call[list[Host]]:
        return _Call("GET", "/hosts", _items(Host), tenant_scoped=False, paged=True)

    @staticmethod
    def get_host(name: str) -> _Call[Host]:
        return _Call("GET", f"/hosts/{_segment(name)}", _one(Host), tenant_scoped=False)

    @staticmethod
    def remove_host(name: str, preempt: bool) -> _Call[Host]:
        params = {"preempt": str(preempt).lower()}
        return _Call(
            "DELETE", f"/hosts/{_segment(name)}", _one(Host), params=params, tenant_scoped=False
        )


# ---------------------------------------------------------------- waiting and SSE, shared


_DONE_PHASES = frozenset({"Running", "Succeeded"})
_FAILED_PHASES = frozenset({"Failed", "Preempted"})
_EVENTS: _Call[None] = _Call("GET", "/events", _nothing)


def _events_call(mini_cluster: str | None, cargo: str | None, follow: bool) -> _Call[None]:
    params: dict[str, Any] = {}
    if mini_cluster:
        params["miniCluster"] = mini_cluster
    if cargo:
        params["cargo"] = cargo
    if not follow:
        params["follow"] = "false"
    return _Call("GET", "/events", _nothing, params=params) if params else _EVENTS


class _Waiter:
    """The decision of :meth:`Client.wait_for_cargos`, shared by both clients."""

    FIRST_POLL = 0.05
    """Seconds before the second poll; each wait after doubles, up to the caller's interval."""

    def __init__(self, names: Iterable[str], phases: Iterable[str], timeout: float) -> None:
        self.names, self.phases = set(names), set(phases)
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self._delay = self.FIRST_POLL

    def delay(self, interval: float) -> float:
        """Seconds to wait before the next poll: 50 ms at first (a cargo often runs within a
        fraction of a second), doubling up to ``interval``."""
        now = min(self._delay, interval)
        self._delay = now * 2
        return now

    def pick(self, cargos: list[Cargo]) -> list[Cargo]:
        return [c for c in cargos if c.name in self.names]

    def done(self, cargos: list[Cargo]) -> bool:
        """True when all reached a wanted phase; raises when one failed, vanished or time is up."""
        by_name = {c.name: c for c in cargos}
        missing = self.names - by_name.keys()
        if missing:
            raise NotFound(f"cargo {sorted(missing)[0]} does not exist (deleted while waiting?)")
        for cargo in cargos:
            phase = str(cargo.status.phase)
            if phase in _FAILED_PHASES and phase not in self.phases:
                why = f": {cargo.status.message}" if cargo.status.message else ""
                raise CraneError(f"cargo {cargo.name} is {phase}{why}")
        if all(str(c.status.phase) in self.phases for c in cargos):
            return True
        if time.monotonic() >= self.deadline:
            waiting = sorted(c.name for c in cargos if str(c.status.phase) not in self.phases)
            raise WaitTimeout(
                f"after {self.timeout:g}s, {len(waiting)} cargo(s) not "
                f"{'/'.join(sorted(self.phases))}: {', '.join(waiting)}"
            )
        return False


class _SSEDecoder:
    """Turns SSE lines into :class:`Event` objects; remembers the last id for reconnecting.

    Events of a kind this client does not know are skipped.
    """

    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id
        self.retry_s = 1.0
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_s = int(value) / 1000
        return None

    def _dispatch(self) -> Event | None:
        if self._id is not None:
            self.last_id = self._id
        data, self._data, self._id = self._data, [], None
        if not data:
            return None
        try:
            return Event.model_validate_json("\n".join(data))
        except ValidationError:
            return None


_SSE = "text/event-stream"
_SSE_SILENCE = 60.0
"""Seconds without a byte on an event stream (the server sends a comment every 15 s) after
which its connection counts as lost."""
_LOST = (
    ConnectionFailed,
    ServerError,
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.RemoteProtocolError,
)
"""What ends a followed event stream that reconnecting may mend."""


class Outage:
    """When a followed event stream (or a watch that polls) reconnects, says so, and gives up;
    shared by both clients and the CLI's ``-w``.

    A stream that never connected is not retried (the server is down or the URL wrong: the error
    is the answer, as for any other call); one that did is reconnected until ``give_up_after``
    seconds pass without the connection back. ``on_connection`` hears the error once when a
    connection is lost and ``None`` once it is back."""

    def __init__(
        self,
        url: str,
        reconnect: bool,
        give_up_after: float | None,
        on_connection: Callable[[Exception | None], None] | None,
    ) -> None:
        self.url, self.reconnect = url, reconnect
        self.give_up_after, self.on_connection = give_up_after, on_connection
        self.connected = False
        self.since: float | None = None

    MENDABLE = _LOST
    """The errors :meth:`lost` may reconnect after (others are the answer)."""

    def back(self) -> None:
        """A line arrived: the connection is up (again)."""
        self.connected = True
        if self.since is not None:
            self.since = None
            if self.on_connection is not None:
                self.on_connection(None)

    def lost(self, exc: Exception) -> None:
        """The stream failed with ``exc``: return to reconnect, or raise it (or
        :class:`ConnectionLost` once ``give_up_after`` has passed)."""
        gateway = not isinstance(exc, ServerError) or exc.status in (None, 502, 503, 504)
        if not (self.reconnect and self.connected and gateway):
            raise exc
        now = time.monotonic()
        if self.since is None:
            self.since = now
            if self.on_connection is not None:
                self.on_connection(exc)
        if self.give_up_after is not None and now - self.since >= self.give_up_after:
            raise ConnectionLost(
                f"lost the connection to the Crane API at {without_password(self.url)} and "
                "could not get it back "
                f"in {self.give_up_after:g}s: {exc}",
                url=self.url,
                after=self.give_up_after,
            ) from exc


def _sse_headers(last_id: str | None) -> dict[str, str]:
    headers = {"Accept": "text/event-stream"}
    if last_id:
        headers["Last-Event-ID"] = last_id
    return headers


# ---------------------------------------------------------------- clients


_RETRIES = 3
_RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError, httpx.RemoteProtocolError)


class _Base:
    """What both clients share: settings, headers, retries, paging, answers into results."""

    def __init__(
        self,
        url: str | None,
        token: str | None,
        context: str | None,
        tenant: str | None,
        timeout: float,
    ) -> None:
        self.url, self.token = resolve_settings(url, token, context)
        self.tenant = tenant
        self.timeout = timeout

    def _tls(self) -> bool:
        """Whether the transport needs a TLS context: only for an ``https://`` API. A plain
        ``http://`` one (``crane up``, a port-forward) never makes a TLS connection (redirects
        are not followed), and loading the CA bundle costs 20-35 ms of every CLI start."""
        return not self.url.lower().startswith("http://")

    def _client_args(self) -> dict[str, Any]:
        headers = {"User-Agent": f"crane-client/{crane.__version__}", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return {"base_url": self.url + API_PREFIX, "headers": headers, "timeout": self.timeout}

    def _params(self, call: _Call[Any]) -> dict[str, Any]:
        if self.tenant is not None and call.tenant_scoped:  # "" too: the API refuses it
            return {"tenant": self.tenant, **call.params}
        return dict(call.params)

    def _request_args(self, call: _Call[Any]) -> dict[str, Any]:
        args: dict[str, Any] = {"params": self._params(call), "headers": call.headers()}
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
        shown = without_password(self.url)
        return ConnectionFailed(f"cannot reach the Crane API at {shown}: {exc}", url=self.url)

    @staticmethod
    def _checked(response: httpx.Response, media: str | None = None) -> httpx.Response:
        """``response`` if it is a success (of ``media``, when given); else the error it is.
        A redirect (a login page's 302) is :class:`NotCrane`: Crane's API never redirects."""
        if response.is_error:
            raise error_from_response(response)
        if not response.is_success:
            to = response.headers.get("location")
            raise NotCrane(
                f"{_where(response)} answered {response.status_code} "
                f"{response.reason_phrase}".rstrip()
                + (f", redirecting to {_printable(to)}" if to else "")
                + ", not the Crane API's answer"
            )
        if media is not None and _media(response) != media:
            raise NotCrane(
                f"{_where(response)} answered {response.status_code} with {_media(response)}, "
                f"not the Crane API's {media}"
            )
        return response

    @staticmethod
    def _first_page(call: _Call[T]) -> _Call[T]:
        return replace(call, params={**call.params, "limit": _PAGE, "offset": 0})

    @staticmethod
    def _next_page(page: _Call[T], response: httpx.Response, acc: list[Any]) -> _Call[T] | None:
        """Add this page's items to ``acc``; the next page's call, or None after the last."""
        got = cast(list[Any], page.parse(response))  # a paged call parses to a list
        acc.extend(got)
        count = _json(response).get("count", 0)
        if not isinstance(count, int) or isinstance(count, bool):
            raise _unexpected(response, f"its count is {count!r}, not a number")
        if not got or len(acc) >= count:
            return None
        return replace(page, params={**page.params, "offset": len(acc)})

    def _stream_args(self, call: _Call[Any], headers: dict[str, str], media: str) -> dict[str, Any]:
        # an event stream gets a comment at least every 15 s: silence past _SSE_SILENCE is a
        # connection lost without a word (a server gone from the network); a log may be quiet
        silence = _SSE_SILENCE if media == _SSE else None
        timeout = None if silence is None else httpx.Timeout(self.timeout, read=silence)
        return {"params": self._params(call), "headers": headers, "timeout": timeout}


class Client(_Base):
    """Synchronous client. Use as a context manager or call :meth:`close`.

    ``tenant`` picks the tenant for an admin token (default: the token's own tenant).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        context: str | None = None,
        tenant: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Open a client (no request is sent yet).

        Args:
            url: The API's base URL; else ``$CRANE_URL``, else the saved context's.
            token: The bearer token; else ``$CRANE_TOKEN``, else the saved context's.
            context: The saved context to read (default: ``$CRANE_CONTEXT``, else the current one).
            tenant: The tenant to act in, for an admin token (default: the token's own tenant).
            timeout: Seconds per request (a waiting ``grow`` gets its own ``timeout`` plus 30 s).
            transport: An httpx transport to use instead of the default one (tests, proxies).

        Raises:
            NotConfigured: No URL was given, set in the environment, or saved by ``crane login``.
        """
        super().__init__(url, token, context, tenant, timeout)
        self._http = httpx.Client(
            transport=transport or httpx.HTTPTransport(retries=_RETRIES, verify=self._tls()),
            **self._client_args(),
        )

    def __enter__(self) -> Client:
        """Enter the ``with`` block; the connections are closed at its end."""
        return self

    def __exit__(self, *_: object) -> None:
        """Close the connections (:meth:`close`)."""
        self.close()

    def close(self) -> None:
        """Close the connections; the client cannot be used afterwards."""
        self._http.close()

    def _send(self, call: _Call[Any]) -> httpx.Response:
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
            return self._checked(response)

    def _run(self, call: _Call[T]) -> T:
        if not call.paged:
            return call.parse(self._send(call))
        acc: list[Any] = []
        page: _Call[T] | None = self._first_page(call)
        while page is not None:
            page = self._next_page(page, self._send(page), acc)
        return cast(T, acc)  # a paged call's T is the list

    def _lines(self, call: _Call[Any], headers: dict[str, str], media: str) -> Iterator[str]:
        try:
            with self._http.stream(
                call.method, call.path, **self._stream_args(call, headers, media)
            ) as resp:
                if resp.is_error:
                    resp.read()
                self._checked(resp, media)
                yield from resp.iter_lines()
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._unreachable(exc) from exc

    def whoami(self) -> TokenPublic:
        """The token in use: its id, scope and tenant.

        Raises:
            Unauthorized: The server does not accept the token.
        """
        return self._run(_Calls.whoami())

    def create_minicluster(
        self,
        name: str,
        spec: MiniClusterSpec | dict[str, Any],
        *,
        labels: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> MiniCluster:
        """Create a MiniCluster in the tenant.

        Args:
            name: The MiniCluster's name (a DNS label).
            spec: Its spec: GPUs (``min``/``max``), topology, priority, template and the rest.
            labels: Labels to set on it.
            idempotency_key: Sent as ``Idempotency-Key``; a retry with the same key creates it once
                (default: a fresh key, so the client's own retries are safe).

        Returns:
            The MiniCluster as stored; admission happens afterwards (see :meth:`explain`).

        Raises:
            Invalid: The spec fails validation (``field_errors`` names the fields).
            Conflict: A MiniCluster of that name exists.
        """
        return self._run(_Calls.create_minicluster(name, spec, labels, idempotency_key))

    def list_miniclusters(self) -> list[MiniCluster]:
        """The tenant's MiniClusters (every page, in one list)."""
        return self._run(_Calls.list_miniclusters())

    def get_minicluster(self, name: str) -> MiniCluster:
        """One MiniCluster, with its status (phase, conditions, reservation, usage).

        Raises:
            NotFound: No MiniCluster of that name in the tenant.
        """
        return self._run(_Calls.get_minicluster(name))

    def patch_minicluster(self, name: str, patch: MiniClusterPatch | dict[str, Any]) -> MiniCluster:
        """Change a MiniCluster by JSON merge-patch.

        Args:
            name: The MiniCluster.
            patch: The fields to change, e.g. ``{"gpus": {"min": 8, "max": 32}}`` or
                ``{"replicas": 4}``; lowering ``max`` preempts borrowed cargos with notice.

        Returns:
            The MiniCluster after the change.

        Raises:
            NotFound: No MiniCluster of that name.
            Invalid: The result would not be a valid spec.
        """
        return self._run(_Calls.patch_minicluster(name, patch))

    def hold(self, name: str) -> MiniCluster:
        """Hold a MiniCluster (``spec.suspend: true``, like ``scontrol hold``): its cargos are
        stopped (each with its grace period) and its GPUs released; the object, its spec and
        its placement rules stay.

        Returns:
            The MiniCluster; its status says ``Held`` once the pass has run.

        Raises:
            NotFound: No MiniCluster of that name.
        """
        return self._run(_Calls.patch_minicluster(name, {"suspend": True}))

    def release(self, name: str) -> MiniCluster:
        """Release a held MiniCluster: it queues for admission again and its template cargos
        regrow to ``spec.replicas`` once it is admitted.

        Raises:
            NotFound: No MiniCluster of that name.
        """
        return self._run(_Calls.patch_minicluster(name, {"suspend": False}))

    def delete_minicluster(self, name: str) -> None:
        """Delete a MiniCluster and its cargos; its GPUs are released once they have stopped.

        Raises:
            NotFound: No MiniCluster of that name.
        """
        self._run(_Calls.delete_minicluster(name))

    def grow(
        self,
        name: str,
        n: int | None = None,
        *,
        cargos: Iterable[CargoShape | dict[str, Any]] | None = None,
        allow_pending: bool = False,
        wait: bool = False,
        timeout: float = 60.0,
        idempotency_key: str | None = None,
    ) -> GrowResult:
        """Add cargos to a MiniCluster: ``n`` of its template, or the given shapes.

        For a MiniCluster with a template, growing by ``n`` raises ``spec.replicas`` by ``n``.

        Args:
            name: The MiniCluster.
            n: How many template cargos to add.
            cargos: Explicit cargo shapes to add instead (``replicas``, ``gpusPerReplica``, ...).
            allow_pending: Accept cargos that cannot be placed now (they wait); by default a grow
                that does not fit is denied and nothing changes.
            wait: Answer only once the new cargos run (or fail, or ``timeout`` passes).
            timeout: Seconds to wait with ``wait``.
            idempotency_key: Sent as ``Idempotency-Key``; a retry with the same key grows once.

        Returns:
            The outcome (granted, partial or denied) and, per cargo, its name and placement or
            why it was denied (over ``gpus.max``, or no room now without ``allow_pending``).

        Raises:
            NotFound: No MiniCluster of that name.
            Invalid: Neither or both of ``n`` and ``cargos``, a bad shape, or ``n`` for a
                MiniCluster without a template.
        """
        call = _Calls.grow(name, n, cargos, allow_pending, wait, timeout, idempotency_key)
        return self._run(call)

    def shrink(
        self,
        name: str,
        n: int | None = None,
        *,
        cargos: Iterable[str] | None = None,
        grace_period_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> ShrinkResult:
        """Remove cargos from a MiniCluster: the named ones, or ``n`` of them.

        For a MiniCluster with a template, shrinking by ``n`` lowers ``spec.replicas`` and removes
        the highest indices; otherwise the ``n`` newest cargos go.

        Args:
            name: The MiniCluster.
            n: How many cargos to remove.
            cargos: The names of the cargos to remove instead.
            grace_period_seconds: Seconds between SIGTERM and SIGKILL (default: the cargo's own).
            idempotency_key: Sent as ``Idempotency-Key``; a retry with the same key shrinks once.

        Returns:
            The cargos removed.

        Raises:
            NotFound: No MiniCluster (or named cargo) of that name.
            Invalid: Neither or both of ``n`` and ``cargos``.
        """
        return self._run(_Calls.shrink(name, n, cargos, grace_period_seconds, idempotency_key))

    def explain(self, name: str) -> ExplainResult:
        """Why a MiniCluster is where it is: admission, reservation, and per cargo why it waits.

        Raises:
            NotFound: No MiniCluster of that name.
        """
        return self._run(_Calls.explain(name))

    def create_cargo(
        self,
        spec: CargoSpec | dict[str, Any],
        *,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Cargo:
        """Create a cargo (an all-or-nothing gang of replicas) in a MiniCluster.

        Args:
            spec: The cargo's spec: its MiniCluster, ``replicas``, ``gpusPerReplica``, template, ...
            name: The cargo's name (default: ``<minicluster>-<next index>``).
            idempotency_key: Sent as ``Idempotency-Key``; a retry with the same key creates it once.

        Returns:
            The cargo as stored; placement happens afterwards (see :meth:`wait_for_cargos`).

        Raises:
            Invalid: The spec fails validation.
            NotFound: Its MiniCluster does not exist.
            Conflict: A cargo of that name exists.
        """
        return self._run(_Calls.create_cargo(name, spec, idempotency_key))

    def list_cargos(self, minicluster: str | None = None) -> list[Cargo]:
        """The tenant's cargos (every page, in one list).

        Args:
            minicluster: Only the cargos of this MiniCluster.
        """
        return self._run(_Calls.list_cargos(minicluster))

    def get_cargo(self, name: str) -> Cargo:
        """One cargo, with its status (phase, placement, conditions).

        Raises:
            NotFound: No cargo of that name in the tenant.
        """
        return self._run(_Calls.get_cargo(name))

    def delete_cargo(self, name: str, *, grace_period_seconds: int | None = None) -> None:
        """Delete a cargo: its replicas get SIGTERM, then SIGKILL after the grace period.

        Args:
            name: The cargo.
            grace_period_seconds: Seconds between SIGTERM and SIGKILL (default: the cargo's own).

        Raises:
            NotFound: No cargo of that name.
        """
        self._run(_Calls.delete_cargo(name, grace_period_seconds))

    def logs(
        self, name: str, *, replica: int = 0, tail: int | None = None, since: float | None = None
    ) -> str:
        """The log of one replica of a cargo, as text.

        Args:
            name: The cargo.
            replica: The replica's index.
            tail: Only the last ``tail`` lines.
            since: Only lines written in the last ``since`` seconds (rounded up).

        Raises:
            NotFound: No such cargo or replica.
        """
        return self._run(_Calls.logs(name, replica, False, tail, since))

    def follow_logs(
        self, name: str, *, replica: int = 0, tail: int | None = None, since: float | None = None
    ) -> Iterator[str]:
        """The log lines of one replica as they are written, until the replica ends.

        Args:
            name: The cargo.
            replica: The replica's index.
            tail: Start with the last ``tail`` lines (default: the whole log so far).
            since: Start with the lines of the last ``since`` seconds.

        Raises:
            NotFound: No such cargo or replica.
        """
        return self._lines(_Calls.logs(name, replica, True, tail, since), {}, "text/plain")

    def exec(
        self, name: str, command: list[str], *, replica: int = 0, timeout: int = 60
    ) -> ExecResult:
        """Run a command in one replica's container, like ``kubectl exec`` (no TTY, no stdin).

        Args:
            name: The cargo.
            command: Program and arguments (not run by a shell).
            replica: The replica's index.
            timeout: Seconds after which the server gives up on the command.

        Returns:
            Its output (stdout and stderr together) and exit code.

        Raises:
            NotFound: No such cargo or replica.
            Conflict: The replica is not running, or its node cannot run commands
                (``exec-unsupported``: kwok's simulated nodes), or the command outlasted
                ``timeout`` or wrote more than 1 MiB (``exec-unfinished``).
        """
        return self._run(_Calls.exec(name, command, replica, timeout))

    def nodes(self) -> list[NodeOut]:
        """The GPU map: every node and, per GPU, who reserves it and which cargo uses it."""
        return self._run(_Calls.nodes())

    def dryrun(
        self,
        *,
        minicluster: MiniClusterSpec | dict[str, Any] | None = None,
        cargo: CargoSpec | dict[str, Any] | None = None,
    ) -> DryRunResult:
        """Place a hypothetical MiniCluster or cargo against the live state; nothing changes.

        Args:
            minicluster: A MiniCluster spec to try (its reservation and template cargos).
            cargo: A cargo spec to try in an existing MiniCluster.

        Returns:
            The verdict admission would reach now, where it would place, and the explanation.

        Raises:
            Invalid: Neither or both given, or a bad spec.
        """
        return self._run(_Calls.dryrun(minicluster, cargo))

    def usage(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        by_cargo: bool = False,
    ) -> UsageReport:
        """GPU-seconds per tenant and MiniCluster in a window.

        Args:
            since: The window's start (default: the beginning of the records).
            until: The window's end (default: now).
            by_cargo: Break each MiniCluster down per cargo.
        """
        return self._run(_Calls.usage(since, until, by_cargo))

    def create_token(self, body: TokenCreate | dict[str, Any]) -> TokenCreated:
        """Create an API token (admin, or a tenant admin for its own tenant).

        Args:
            body: The token's name, scope, tenant and expiry.

        Returns:
            The token record and its secret, shown this once.

        Raises:
            Forbidden: The token in use may not create that scope.
        """
        return self._run(_Calls.create_token(TokenCreate.model_validate(body)))

    def list_tokens(self) -> list[TokenPublic]:
        """The tokens visible to the token in use (never their secrets)."""
        return self._run(_Calls.list_tokens())

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token; requests with it fail with Unauthorized from then on.

        Raises:
            NotFound: No token with that id.
        """
        self._run(_Calls.revoke_token(token_id))

    def list_tenants(self) -> list[Tenant]:
        """The tenants (admin)."""
        return self._run(_Calls.list_tenants())

    def create_tenant(self, name: str) -> Tenant:
        """Create a tenant (admin).

        Raises:
            Conflict: A tenant of that name exists.
            Invalid: The name is not a DNS label.
        """
        return self._run(_Calls.create_tenant(name))

    def delete_tenant(self, name: str) -> None:
        """Delete a tenant (admin).

        Raises:
            NotFound: No tenant of that name.
            Conflict: It still holds MiniClusters, or it is the default tenant.
        """
        self._run(_Calls.delete_tenant(name))

    def get_tenant(self, name: str) -> Tenant:
        """One tenant with its shares per GPU type and what it uses and borrows (admin).

        Raises:
            NotFound: No tenant of that name.
        """
        return self._run(_Calls.get_tenant(name))

    def set_tenant_shares(self, name: str, shares: TenantShares | dict[str, Any]) -> Tenant:
        """Replace a tenant's shares per GPU type (admin); an empty list removes them.

        Args:
            name: The tenant.
            shares: Its shares: per GPU type, ``nominal`` (guaranteed GPUs),
                ``borrowingLimit`` and ``lendingLimit`` (None: no limit) and ``weight`` in
                the fair division of idle GPUs; a :class:`TenantShares` or its wire dict
                (``{"shares": [{"gpuType": "H100", "nominal": 8}]}``).

        Returns:
            The tenant with its shares and what it uses of them.

        Raises:
            NotFound: No tenant of that name.
            Invalid: A share is out of range (e.g. lendingLimit above nominal).
            Conflict: Kube mode, where shares are TenantShare resources.
        """
        return self._run(_Calls.set_tenant_shares(name, shares))

    def add_host(self, body: HostCreate | dict[str, Any]) -> Host:
        """Add a Docker host to the fleet (Docker mode, admin).

        Args:
            body: The host's name, Docker API URL, GPU type and count, islands, topology labels
                and TLS files.

        Raises:
            Conflict: A host of that name exists, or the server runs in Kubernetes mode.
            Invalid: A bad URL or GPU declaration.
        """
        return self._run(_Calls.add_host(HostCreate.model_validate(body)))

    def list_hosts(self) -> list[Host]:
        """The Docker hosts, with their state and GPUs (Docker mode, admin)."""
        return self._run(_Calls.list_hosts())

    def get_host(self, name: str) -> Host:
        """One Docker host (Docker mode, admin).

        Raises:
            NotFound: No host of that name.
        """
        return self._run(_Calls.get_host(name))

    def remove_host(self, name: str, *, preempt: bool = False) -> Host:
        """Start draining a Docker host; it is gone (NotFound) once none of its cargos runs.

        Args:
            name: The host.
            preempt: Move its OnFailure cargos elsewhere and fail its Never ones, rather than wait
                for them to end.

        Returns:
            The host, now draining.
        """
        return self._run(_Calls.remove_host(name, preempt))

    def wait_for_cargos(
        self,
        names: Iterable[str],
        *,
        phases: Iterable[str] = _DONE_PHASES,
        timeout: float = 300.0,
        interval: float = 1.0,
        on_update: Callable[[list[Cargo]], None] | None = None,
    ) -> list[Cargo]:
        """Poll until every named cargo is in one of ``phases``.

        Args:
            names: The cargos to wait for.
            phases: The phases that end the wait (default: ``Running`` or ``Succeeded``).
            timeout: Seconds before giving up.
            interval: The longest wait between polls (the first is 50 ms, then doubling).
            on_update: Called with the cargos after each poll (for progress displays).

        Returns:
            The cargos, each in one of ``phases``.

        Raises:
            WaitTimeout: ``timeout`` passed first.
            CraneError: A cargo failed, was preempted or vanished while waited for.
        """
        waiter = _Waiter(names, phases, timeout)
        while True:
            cargos = waiter.pick(self.list_cargos())
            if on_update is not None:
                on_update(cargos)
            if waiter.done(cargos):
                return cargos
            time.sleep(waiter.delay(interval))

    def events(
        self,
        *,
        last_event_id: str | None = None,
        reconnect: bool = True,
        mini_cluster: str | None = None,
        cargo: str | None = None,
        follow: bool = True,
        give_up_after: float | None = None,
        on_connection: Callable[[Exception | None], None] | None = None,
    ) -> Iterator[Event]:
        """Events as they happen, from the server's event stream (SSE).

        After a dropped connection it reconnects and resumes with ``Last-Event-ID`` (a first
        connection that fails raises, as any call does).

        Args:
            last_event_id: Resume after this event; ``"0"`` first replays the events the server
                keeps (its last 1000).
            reconnect: Reconnect after a dropped connection.
            mini_cluster: Only this MiniCluster's events.
            cargo: Only this cargo's events.
            follow: Keep listening; ``False`` stops after the replay.
            give_up_after: Seconds to keep reconnecting after the connection is lost before
                raising :class:`ConnectionLost` (default: forever).
            on_connection: Called with the error when the connection is lost (once per outage)
                and with ``None`` when it is back.
        """
        decoder = _SSEDecoder(last_event_id)
        call = _events_call(mini_cluster, cargo, follow)
        outage = Outage(self.url, reconnect and follow, give_up_after, on_connection)
        while True:
            try:
                for line in self._lines(call, _sse_headers(decoder.last_id), _SSE):
                    outage.back()
                    event = decoder.feed(line)
                    if event is not None:
                        yield event
            except _LOST as exc:
                outage.lost(exc)
            if not outage.reconnect:
                return
            time.sleep(decoder.retry_s)


class AsyncClient(_Base):
    """Asynchronous client: the methods of :class:`Client`, to be awaited."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        context: str | None = None,
        tenant: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Open a client (no request is sent yet).

        Args:
            url: The API's base URL; else ``$CRANE_URL``, else the saved context's.
            token: The bearer token; else ``$CRANE_TOKEN``, else the saved context's.
            context: The saved context to read (default: ``$CRANE_CONTEXT``, else the current one).
            tenant: The tenant to act in, for an admin token (default: the token's own tenant).
            timeout: Seconds per request (a waiting ``grow`` gets its own ``timeout`` plus 30 s).
            transport: An httpx transport to use instead of the default one (tests, proxies).

        Raises:
            NotConfigured: No URL was given, set in the environment, or saved by ``crane login``.
        """
        super().__init__(url, token, context, tenant, timeout)
        self._http = httpx.AsyncClient(
            transport=transport or httpx.AsyncHTTPTransport(retries=_RETRIES, verify=self._tls()),
            **self._client_args(),
        )

    async def __aenter__(self) -> AsyncClient:
        """Enter the ``async with`` block; the connections are closed at its end."""
        return self

    async def __aexit__(self, *_: object) -> None:
        """Close the connections (:meth:`aclose`)."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections; the client cannot be used afterwards."""
        await self._http.aclose()

    async def _send(self, call: _Call[Any]) -> httpx.Response:
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
                import asyncio  # deferred: the sync client (the CLI) never needs it

                await asyncio.sleep(0.2 * 2**attempt)
                continue
            return self._checked(response)

    async def _run(self, call: _Call[T]) -> T:
        if not call.paged:
            return call.parse(await self._send(call))
        acc: list[Any] = []
        page: _Call[T] | None = self._first_page(call)
        while page is not None:
            page = self._next_page(page, await self._send(page), acc)
        return cast(T, acc)  # a paged call's T is the list

    async def _lines(
        self, call: _Call[Any], headers: dict[str, str], media: str
    ) -> AsyncIterator[str]:
        try:
            async with self._http.stream(
                call.method, call.path, **self._stream_args(call, headers, media)
            ) as resp:
                if resp.is_error:
                    await resp.aread()
                self._checked(resp, media)
                async for line in resp.aiter_lines():
                    yield line
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._unreachable(exc) from exc

    async def whoami(self) -> TokenPublic:
        """The token in use: its id, scope and tenant.

        Raises:
            Unauthorized: The server does not accept the token.
        """
        return await self._run(_Calls.whoami())

    async def create_minicluster(
        self,
        name: str,
        spec: MiniClusterSpec | dict[str, Any],
        *,
        labels: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> MiniCluster:
        """Create a MiniCluster in the tenant.

        Args:
            name: The MiniCluster's name (a DNS label).
            spec: Its spec: GPUs (``min``/``max``), topology, priority, template and the rest.
            labels: Labels to set on it.
            idempotency_key: Sent as ``Idempotency-Key``; a retry with the same key creates it once
                (default: a fresh key, so the client's own retries are safe).

        Returns:
            The MiniCluster as stored; admission happens afterwards (see :meth:`explain`).

        Raises:
            Invalid: The spec fails validation (``field_errors`` names the fields).
            Conflict: A MiniCluster of that name exists.
        """
        return await self._run(_Calls.create_minicluster(name, spec, labels, idempotency_key))

    async def list_miniclusters(self) -> list[MiniCluster]:
        """The tenant's MiniClusters (every page, in one list)."""
        return await self._run(_Calls.list_miniclusters())

    async def get_minicluster(self, name: str) -> MiniCluster:
        """One MiniCluster, with its status (phase, conditions, reservation, usage).

        Raises:
            NotFound: No MiniCluster of that name in the tenant.
        """
        return await self._run(_Calls.get_minicluster(name))

    async def patch_minicluster(
        self, name: str, patch: MiniClusterPatch | dict[str, Any]
    ) -> MiniCluster:
        """Change a MiniCluster by JSON merge-patch.

        Args:
            name: The MiniCluster.
            patch: The fields to change, e.g. ``{"gpus": {"min": 8, "max": 32}}`` or
                ``{"replicas": 4}``; lowering ``max`` preempts borrowed cargos with notice.

        Returns:
            The MiniCluster after the change.

        Raises:
            NotFound: No MiniCluster of that name.
            Invalid: The result would not be a valid spec.
        """
        return await self._run(_Calls.patch_minicluster(name, patch))

    async def hold(self, name: str) -> MiniCluster:
        """Hold a MiniCluster (``spec.suspend: true``, like ``scontrol hold``): its cargos are
        stopped (each with its grace period) and its GPUs released; the object, its spec and
        its placement rules stay.

        Returns:
            The MiniCluster; its status says ``Held`` once the pass has run.

        Raises:
            NotFound: No MiniCluster of that name.
        """
        return await self._run(_Calls.patch_minicluster(name, {"suspend": True}))

    async def release(self, name: str) -> MiniCluster:
        """Release a held MiniCluster: it queues for admission again and its template cargos
        regrow to ``spec.replicas`` once it is admitted.

        Raises:
            NotFound: No MiniCluster of that name.
        """
        return await self._run(_Calls.patch_minicluster(name, {"suspend": False}))

    async def delete_minicluster(self, name: str) -> None:
        """Delete a MiniCluster and its cargos; its GPUs are released once they have stopped.

        Raises:
            NotFound: No MiniCluster of that name.
        """
        await self._run(_Calls.delete_minicluster(name))

    async def grow(
        self,
        name: str,
        n: int | None = None,
        *,
        cargos: Iterable[CargoShape | dict[str, Any]] | None = None,
        allow_pending: bool = False,
        wait: bool = False,
        timeout: float = 60.0,
        idempotency_key: str | None = None,
    ) -> GrowResult:
        """Add cargos to a MiniCluster: ``n`` of its template, or the given shapes.

        For a MiniCluster with a template, growing by ``n`` raises ``spec.replicas`` by ``n``.

        Args:
            name: The MiniCluster.
            n: How many template cargos to add.
            cargos: Explicit cargo shapes to add instead (``replicas``, ``gpusPerReplica``, ...).
            allow_pending: Accept cargos that cannot be placed now (they wait); by default a grow
                that does not fit is denied and nothing changes.
            wait: Answer only once the new cargos run (or fail, or ``timeout`` passes).
            timeout: Seconds to wait with ``wait``.
            idempotency_key: Sent as ``Idempotency-Key``; a retry with the same key grows once.

        Returns:
            The outcome (granted, partial or denied) and, per cargo, its name and placement or
            why it was denied (over ``gpus.max``, or no room now without ``allow_pending``).

        Raises:
            NotFound: No MiniCluster of that name.
            Invalid: Neither or both of ``n`` and ``cargos``, a bad shape, or ``n`` for a
                MiniCluster without a template.
        """
        call = _Calls.grow(name, n, cargos, allow_pending, wait, timeout, idempotency_key)
        return await self._run(call)

    async def shrink(
        self,
        name: str,
        n: int | None = None,
        *,
        cargos: Iterable[str] | None = None,
        grace_period_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> ShrinkResult:
        """Remove cargos from a MiniCluster: the named ones, or ``n`` of them.

        For a MiniCluster with a template, shrinking by ``n`` lowers ``spec.replicas`` and removes
        the highest indices; otherwise the ``n`` newest cargos go.

        Args:
            name: The MiniCluster.
            n: How many cargos to remove.
            cargos: The names of the cargos to remove instead.
            grace_period_seconds: Seconds between SIGTERM and SIGKILL (default: the cargo's own).
            idempotency_key: Sent as ``Idempotency-Key``; a retry with the same key shrinks once.

        Returns:
            The cargos removed.

        Raises:
            NotFound: No MiniCluster (or named cargo) of that name.
            Invalid: Neither or both of ``n`` and ``cargos``.
        """
        call = _Calls.shrink(name, n, cargos, grace_period_seconds, idempotency_key)
        return await self._run(call)

    async def explain(self, name: str) -> ExplainResult:
        """Why a MiniCluster is where it is: admission, reservation, and per cargo why it waits.

        Raises:
            NotFound: No MiniCluster of that name.
        """
        return await self._run(_Calls.explain(name))

    async def create_cargo(
        self,
        spec: CargoSpec | dict[str, Any],
        *,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Cargo:
        """Create a cargo (an all-or-nothing gang of replicas) in a MiniCluster.

        Args:
            spec: The cargo's spec: its MiniCluster, ``replicas``, ``gpusPerReplica``, template, ...
            name: The cargo's name (default: ``<minicluster>-<next index>``).
            idempotency_key: Sent as ``Idempotency-Key``; a retry with the same key creates it once.

        Returns:
            The cargo as stored; placement happens afterwards (see :meth:`wait_for_cargos`).

        Raises:
            Invalid: The spec fails validation.
            NotFound: Its MiniCluster does not exist.
            Conflict: A cargo of that name exists.
        """
        return await self._run(_Calls.create_cargo(name, spec, idempotency_key))

    async def list_cargos(self, minicluster: str | None = None) -> list[Cargo]:
        """The tenant's cargos (every page, in one list).

        Args:
            minicluster: Only the cargos of this MiniCluster.
        """
        return await self._run(_Calls.list_cargos(minicluster))

    async def get_cargo(self, name: str) -> Cargo:
        """One cargo, with its status (phase, placement, conditions).

        Raises:
            NotFound: No cargo of that name in the tenant.
        """
        return await self._run(_Calls.get_cargo(name))

    async def delete_cargo(self, name: str, *, grace_period_seconds: int | None = None) -> None:
        """Delete a cargo: its replicas get SIGTERM, then SIGKILL after the grace period.

        Args:
            name: The cargo.
            grace_period_seconds: Seconds between SIGTERM and SIGKILL (default: the cargo's own).

        Raises:
            NotFound: No cargo of that name.
        """
        await self._run(_Calls.delete_cargo(name, grace_period_seconds))

    async def logs(
        self, name: str, *, replica: int = 0, tail: int | None = None, since: float | None = None
    ) -> str:
        """The log of one replica of a cargo, as text.

        Args:
            name: The cargo.
            replica: The replica's index.
            tail: Only the last ``tail`` lines.
            since: Only lines written in the last ``since`` seconds (rounded up).

        Raises:
            NotFound: No such cargo or replica.
        """
        return await self._run(_Calls.logs(name, replica, False, tail, since))

    def follow_logs(
        self, name: str, *, replica: int = 0, tail: int | None = None, since: float | None = None
    ) -> AsyncIterator[str]:
        """The log lines of one replica as they are written, until the replica ends.

        Args:
            name: The cargo.
            replica: The replica's index.
            tail: Start with the last ``tail`` lines (default: the whole log so far).
            since: Start with the lines of the last ``since`` seconds.

        Raises:
            NotFound: No such cargo or replica.
        """
        return self._lines(_Calls.logs(name, replica, True, tail, since), {}, "text/plain")

    async def exec(
        self, name: str, command: list[str], *, replica: int = 0, timeout: int = 60
    ) -> ExecResult:
        """Run a command in one replica's container, like ``kubectl exec`` (no TTY, no stdin).

        Args:
            name: The cargo.
            command: Program and arguments (not run by a shell).
            replica: The replica's index.
            timeout: Seconds after which the server gives up on the command.

        Returns:
            Its output (stdout and stderr together) and exit code.

        Raises:
            NotFound: No such cargo or replica.
            Conflict: The replica is not running, or its node cannot run commands
                (``exec-unsupported``: kwok's simulated nodes), or the command outlasted
                ``timeout`` or wrote more than 1 MiB (``exec-unfinished``).
        """
        return await self._run(_Calls.exec(name, command, replica, timeout))

    async def nodes(self) -> list[NodeOut]:
        """The GPU map: every node and, per GPU, who reserves it and which cargo uses it."""
        return await self._run(_Calls.nodes())

    async def dryrun(
        self,
        *,
        minicluster: MiniClusterSpec | dict[str, Any] | None = None,
        cargo: CargoSpec | dict[str, Any] | None = None,
    ) -> DryRunResult:
        """Place a hypothetical MiniCluster or cargo against the live state; nothing changes.

        Args:
            minicluster: A MiniCluster spec to try (its reservation and template cargos).
            cargo: A cargo spec to try in an existing MiniCluster.

        Returns:
            The verdict admission would reach now, where it would place, and the explanation.

        Raises:
            Invalid: Neither or both given, or a bad spec.
        """
        return await self._run(_Calls.dryrun(minicluster, cargo))

    async def usage(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        by_cargo: bool = False,
    ) -> UsageReport:
        """GPU-seconds per tenant and MiniCluster in a window.

        Args:
            since: The window's start (default: the beginning of the records).
            until: The window's end (default: now).
            by_cargo: Break each MiniCluster down per cargo.
        """
        return await self._run(_Calls.usage(since, until, by_cargo))

    async def create_token(self, body: TokenCreate | dict[str, Any]) -> TokenCreated:
        """Create an API token (admin, or a tenant admin for its own tenant).

        Args:
            body: The token's name, scope, tenant and expiry.

        Returns:
            The token record and its secret, shown this once.

        Raises:
            Forbidden: The token in use may not create that scope.
        """
        return await self._run(_Calls.create_token(TokenCreate.model_validate(body)))

    async def list_tokens(self) -> list[TokenPublic]:
        """The tokens visible to the token in use (never their secrets)."""
        return await self._run(_Calls.list_tokens())

    async def revoke_token(self, token_id: str) -> None:
        """Revoke a token; requests with it fail with Unauthorized from then on.

        Raises:
            NotFound: No token with that id.
        """
        await self._run(_Calls.revoke_token(token_id))

    async def list_tenants(self) -> list[Tenant]:
        """The tenants (admin)."""
        return await self._run(_Calls.list_tenants())

    async def create_tenant(self, name: str) -> Tenant:
        """Create a tenant (admin).

        Raises:
            Conflict: A tenant of that name exists.
            Invalid: The name is not a DNS label.
        """
        return await self._run(_Calls.create_tenant(name))

    async def delete_tenant(self, name: str) -> None:
        """Delete a tenant (admin).

        Raises:
            NotFound: No tenant of that name.
            Conflict: It still holds MiniClusters, or it is the default tenant.
        """
        await self._run(_Calls.delete_tenant(name))

    async def get_tenant(self, name: str) -> Tenant:
        """One tenant with its shares per GPU type and what it uses and borrows (admin).

        Raises:
            NotFound: No tenant of that name.
        """
        return await self._run(_Calls.get_tenant(name))

    async def set_tenant_shares(self, name: str, shares: TenantShares | dict[str, Any]) -> Tenant:
        """Replace a tenant's shares per GPU type (admin); an empty list removes them.

        Args:
            name: The tenant.
            shares: Its shares: per GPU type, ``nominal`` (guaranteed GPUs),
                ``borrowingLimit`` and ``lendingLimit`` (None: no limit) and ``weight`` in
                the fair division of idle GPUs; a :class:`TenantShares` or its wire dict
                (``{"shares": [{"gpuType": "H100", "nominal": 8}]}``).

        Returns:
            The tenant with its shares and what it uses of them.

        Raises:
            NotFound: No tenant of that name.
            Invalid: A share is out of range (e.g. lendingLimit above nominal).
            Conflict: Kube mode, where shares are TenantShare resources.
        """
        return await self._run(_Calls.set_tenant_shares(name, shares))

    async def add_host(self, body: HostCreate | dict[str, Any]) -> Host:
        """Add a Docker host to the fleet (Docker mode, admin).

        Args:
            body: The host's name, Docker API URL, GPU type and count, islands, topology labels
                and TLS files.

        Raises:
            Conflict: A host of that name exists, or the server runs in Kubernetes mode.
            Invalid: A bad URL or GPU declaration.
        """
        return await self._run(_Calls.add_host(HostCreate.model_validate(body)))

    async def list_hosts(self) -> list[Host]:
        """The Docker hosts, with their state and GPUs (Docker mode, admin)."""
        return await self._run(_Calls.list_hosts())

    async def get_host(self, name: str) -> Host:
        """One Docker host (Docker mode, admin).

        Raises:
            NotFound: No host of that name.
        """
        return await self._run(_Calls.get_host(name))

    async def remove_host(self, name: str, *, preempt: bool = False) -> Host:
        """Start draining a Docker host; it is gone (NotFound) once none of its cargos runs.

        Args:
            name: The host.
            preempt: Move its OnFailure cargos elsewhere and fail its Never ones, rather than wait
                for them to end.

        Returns:
            The host, now draining.
        """
        return await self._run(_Calls.remove_host(name, preempt))

    async def wait_for_cargos(
        self,
        names: Iterable[str],
        *,
        phases: Iterable[str] = _DONE_PHASES,
        timeout: float = 300.0,
        interval: float = 1.0,
        on_update: Callable[[list[Cargo]], None] | None = None,
    ) -> list[Cargo]:
        """Poll until every named cargo is in one of ``phases``.

        Args:
            names: The cargos to wait for.
            phases: The phases that end the wait (default: ``Running`` or ``Succeeded``).
            timeout: Seconds before giving up.
            interval: The longest wait between polls (the first is 50 ms, then doubling).
            on_update: Called with the cargos after each poll (for progress displays).

        Returns:
            The cargos, each in one of ``phases``.

        Raises:
            WaitTimeout: ``timeout`` passed first.
            CraneError: A cargo failed, was preempted or vanished while waited for.
        """
        waiter = _Waiter(names, phases, timeout)
        while True:
            cargos = waiter.pick(await self.list_cargos())
            if on_update is not None:
                on_update(cargos)
            if waiter.done(cargos):
                return cargos
            import asyncio  # deferred: the sync client (the CLI) never needs it

            await asyncio.sleep(waiter.delay(interval))

    async def events(
        self,
        *,
        last_event_id: str | None = None,
        reconnect: bool = True,
        mini_cluster: str | None = None,
        cargo: str | None = None,
        follow: bool = True,
        give_up_after: float | None = None,
        on_connection: Callable[[Exception | None], None] | None = None,
    ) -> AsyncIterator[Event]:
        """Events as they happen, from the server's event stream (SSE).

        After a dropped connection it reconnects and resumes with ``Last-Event-ID`` (a first
        connection that fails raises, as any call does).

        Args:
            last_event_id: Resume after this event; ``"0"`` first replays the events the server
                keeps (its last 1000).
            reconnect: Reconnect after a dropped connection.
            mini_cluster: Only this MiniCluster's events.
            cargo: Only this cargo's events.
            follow: Keep listening; ``False`` stops after the replay.
            give_up_after: Seconds to keep reconnecting after the connection is lost before
                raising :class:`ConnectionLost` (default: forever).
            on_connection: Called with the error when the connection is lost (once per outage)
                and with ``None`` when it is back.
        """
        decoder = _SSEDecoder(last_event_id)
        call = _events_call(mini_cluster, cargo, follow)
        outage = Outage(self.url, reconnect and follow, give_up_after, on_connection)
        while True:
            try:
                async for line in self._lines(call, _sse_headers(decoder.last_id), _SSE):
                    outage.back()
                    event = decoder.feed(line)
                    if event is not None:
                        yield event
            except _LOST as exc:
                outage.lost(exc)
            if not outage.reconnect:
                return
            import asyncio  # deferred: the sync client (the CLI) never needs it

            await asyncio.sleep(decoder.retry_s)
