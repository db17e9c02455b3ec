"""The exception-to-remedy map: every error becomes one line on stderr saying what to do next.

Exit codes: 0 ok, 1 failed operation, 2 bad usage. A traceback is shown only with
``CRANE_DEBUG=1``. No typer here; ``crane.cli.main`` calls :func:`report`.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import httpx
import typer
import yaml
from pydantic import ValidationError

import crane
from crane.cli.render import JsonPathError, printable
from crane.cli.term import Declined, UsageError
from crane.client import (
    BadConfig,
    BadRequest,
    Conflict,
    ConnectionFailed,
    ConnectionLost,
    CraneError,
    Forbidden,
    Invalid,
    InvalidName,
    InvalidToken,
    InvalidURL,
    NotConfigured,
    NotCrane,
    NotFound,
    ServerError,
    Unauthorized,
    Unavailable,
    UnexpectedAnswer,
    UnknownContext,
    WaitTimeout,
    without_password,
)

OK, FAILED, USAGE = 0, 1, 2
DEBUG_ENV = "CRANE_DEBUG"


@dataclass(frozen=True)
class Failure:
    """What went wrong, what to do about it, and the exit code."""

    message: str
    remedy: str
    code: int

    def line(self) -> str:
        """The one line printed for it: ``error: <message>; <remedy>``, whitespace collapsed and
        control characters (a server's detail may hold ESC sequences) written as escapes."""
        text = f"error: {self.message}" + (f"; {self.remedy}" if self.remedy else "")
        return printable(re.sub(r"\s+", " ", text).strip())


def _command_line(exc: typer.TyperException) -> Failure:
    """A mistake the command-line parser found (an unknown option or command, a value of the
    wrong type, a missing argument): its message and where the command's help is, one line
    instead of click's usage block."""
    ctx = getattr(exc, "ctx", None)
    remedy = f"see `{ctx.command_path} --help`" if ctx is not None else ""
    message = exc.format_message().rstrip(".").replace("Value error, ", "")
    return Failure(message, remedy, getattr(exc, "exit_code", USAGE))


def _is_help(exc: BaseException) -> bool:
    """Whether ``exc`` is a group called without a command: its help is the answer."""
    ctx = getattr(exc, "ctx", None)
    return (
        isinstance(exc, typer.TyperException)
        and ctx is not None
        and exc.format_message() == ctx.get_help()
    )


def _camel(part: object) -> str:
    """A field's name as the API and the manifests spell it (``gpu_type`` is ``gpuType``)."""
    if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", str(part)):
        return str(part)  # an index, a camelCase name, a key of the user's (ENV_NAME)
    head, *rest = str(part).split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _sentence(msg: str) -> str:
    """A validation message without pydantic's ``Value error, `` prefix of a rule's own words."""
    return msg.removeprefix("Value error, ")


def _validation(exc: ValidationError) -> Failure:
    parts = []
    for err in exc.errors():
        where = ".".join(_camel(p) for p in err["loc"])
        msg = _sentence(err["msg"])
        parts.append(plain_words(f"{where}: {msg}" if where else msg))
    # A rule across fields has no location: say so rather than "invalid Value error, ...".
    message = "; ".join(parts) if exc.errors()[0]["loc"] else "request: " + "; ".join(parts)
    return Failure("invalid " + message, "fix the manifest or options and retry", USAGE)


NAME_RULE = (
    "use lower-case letters, digits and '-', starting and ending with a letter or digit "
    "(at most 63 characters)"
)
_PATTERN = re.compile(r"String should match pattern '([^']*)'")
_MEANINGS = {
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$": f"not a valid name: {NAME_RULE}",
    r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$": f"not a valid name: {NAME_RULE}",
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$": "not a valid name: use lower-case letters, digits, '-' "
    "and '.', starting and ending with a letter or digit",
    r"^[A-Za-z0-9][A-Za-z0-9_. -]*$": "not a GPU type: use letters, digits, '_', '.', '-' or "
    "spaces, starting with a letter or digit, e.g. H100",
    r"\S": "must not be blank",
    r"^(tcp|unix|ssh|http|https)://": "must start with tcp://, unix://, ssh://, http:// or "
    "https://",
    r"^[^\x00-\x1f\x7f]*$": "has a control character (an escape sequence, a tab or a line "
    "break): use printable text",
    r"^[A-Za-z0-9-]{1,32}$": "not a token id: use the ID column of `crane token list`",
    r"^crane_[A-Za-z0-9-]{1,32}_[!-~]+$": "not a token: write crane_ID_SECRET, the ID at most "
    "32 letters, digits or '-', the SECRET visible ASCII",
}
"""What each pattern of the models and the API means, in words; another pattern is kept."""


def plain_words(message: str) -> str:
    """A validation message with each raw regular expression it names replaced by what it
    means (never by a rule of another field: a GPU type is not told to be lower-case)."""
    return _PATTERN.sub(lambda m: _MEANINGS.get(m.group(1), m.group(0)), message)


def _invalid(exc: Invalid) -> Failure:
    fields = [
        plain_words(f"{e.field}: {_sentence(e.msg)}" if e.field else _sentence(e.msg))
        for e in exc.field_errors
    ]
    message = "; ".join(fields) if fields else exc.message
    return Failure(
        f"the server rejected the request: {message}", "fix those fields and retry", USAGE
    )


def _yaml(exc: yaml.YAMLError) -> Failure:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    source = f" in {mark.name}" if mark and mark.name and not mark.name.startswith("<") else ""
    return Failure(
        f"invalid YAML{source}{where}: {problem}", "fix the YAML syntax and retry", USAGE
    )


def _file(exc: OSError) -> Failure:
    name = exc.filename or "?"
    if isinstance(exc, FileNotFoundError):
        return Failure(f"no such file: {name}", "check the path (use -f - to read stdin)", USAGE)
    if isinstance(exc, IsADirectoryError):
        return Failure(f"{name} is a directory", "pass a YAML file", USAGE)
    if isinstance(exc, PermissionError):
        return Failure(f"permission denied: {name}", "check the file's permissions", FAILED)
    return Failure(f"{exc.strerror or exc} ({name})", "check the path and retry", FAILED)


def _server(message: str) -> str:
    return plain_words(message.rstrip(".")) or "unknown error"


def _has_remedy(message: str) -> bool:
    """Whether the server's message already says what to do (names a ``crane`` command)."""
    return "`crane " in message or "`kubectl " in message


_LISTED_BY = {
    "token": "`crane token list`",
    "tenant": "`crane tenant list`",
    "host": "`crane node list`",
}
"""Where a missing object of a kind other than MiniClusters and cargos is listed."""


def _where_listed(message: str) -> str:
    """The command that lists the kind of object ``message`` says is missing."""
    share = re.match(r"tenant '([^']*)' has no share of ", message)
    if share:
        return f"`crane tenant share get {share.group(1)}`"
    return _LISTED_BY.get(message.split(" ", 1)[0].lower(), "`crane mc list` or `crane cargo list`")


def _not_found(exc: NotFound) -> Failure:
    remedy = "" if _has_remedy(exc.message) else f"check the name with {_where_listed(exc.message)}"
    return Failure(f"not found: {_server(exc.message)}", remedy, FAILED)


def _specific(exc: CraneError, generic: str) -> bool:
    """Whether the server named a specific problem type, whose detail is then the remedy."""
    kind = exc.problem.type if exc.problem else "about:blank"
    return kind != "about:blank" and kind.rsplit("/", 1)[-1] != generic


def _conflict(exc: Conflict) -> Failure:
    remedy = (
        ""
        if _specific(exc, "conflict")
        or _has_remedy(exc.message)
        or "pick another name" in exc.message
        else "pick another name, or fetch the object again and retry"
    )
    return Failure(f"conflict: {_server(exc.message)}", remedy, FAILED)


def _api_of(exc: httpx.HTTPError) -> str:
    """The server ``exc`` came from, as ``the server at http://HOST:PORT`` (a password in the URL
    written ``***``), when known."""
    try:
        url = exc.request.url
    except RuntimeError:  # an error raised without its request
        return "the server"
    netloc = url.netloc.decode("ascii", "replace")
    return f"the server at {without_password(f'{url.scheme}://{netloc}')}"


def _unknown_context(exc: UnknownContext) -> Failure:
    """A context asked for that is not saved: which ones are, and how to pick or add one."""
    add = f"`crane login URL --token TOKEN --name {exc.name}`"
    remedy = (
        f"pick one with `crane config use NAME` (or --context NAME), or save it with {add}"
        if exc.saved
        else f"save it with {add}"
    )
    return Failure(str(exc), remedy, USAGE)


def _broken_answer(exc: httpx.HTTPError) -> Failure:
    """The server closed the connection mid-answer, or what it sent is not HTTP."""
    reason = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(".")
    if len(reason) > 120:
        reason = reason[:117] + "..."
    return Failure(
        f"{_api_of(exc)} broke off or sent something that is not HTTP ({printable(reason)})",
        "retry; if it persists, check the API URL is the Crane API's with `crane config current`",
        FAILED,
    )


_MAP: list[tuple[type[BaseException], Callable[[Any], Failure]]] = [
    (UsageError, lambda e: Failure(str(e), "", USAGE)),
    (
        JsonPathError,
        lambda e: Failure(str(e), "see what there is with -o json", FAILED),
    ),
    (typer.TyperException, _command_line),
    (typer.Abort, lambda e: Failure("aborted", "", FAILED)),
    (Declined, lambda e: Failure(f"aborted: {e}", "pass --yes to skip the question", FAILED)),
    (
        InvalidURL,
        lambda e: Failure(
            str(e), "pass it with --server, CRANE_API_URL or `crane login URL`", USAGE
        ),
    ),
    (
        InvalidToken,
        lambda e: Failure(
            str(e), "pass it as `crane token create` printed it (--token or CRANE_TOKEN)", USAGE
        ),
    ),
    (
        BadConfig,
        lambda e: Failure(
            str(e), "fix it, or delete it and run `crane login URL --token TOKEN`", USAGE
        ),
    ),
    (
        UnexpectedAnswer,
        lambda e: Failure(
            str(e),
            "check that the API URL is the Crane API's with `crane config current`; if it is, "
            f"the server may run another Crane version than this CLI ({crane.__version__})",
            FAILED,
        ),
    ),
    (
        NotCrane,
        lambda e: Failure(
            str(e),
            "is the API URL the Crane API's? check it with `crane config current`",
            FAILED,
        ),
    ),
    (UnknownContext, _unknown_context),
    (
        NotConfigured,
        lambda e: Failure(
            "no Crane API configured",
            "run `crane login URL --token TOKEN` or set CRANE_API_URL and CRANE_TOKEN",
            USAGE,
        ),
    ),
    (
        ConnectionLost,
        lambda e: Failure(
            str(e), "check the server (its log, `crane config current`), then run it again", FAILED
        ),
    ),
    (
        ConnectionFailed,
        lambda e: Failure(
            f"cannot reach the Crane API at {e.url}",
            "start it (`crane up` or `crane serve`), or point at it with `crane login URL` "
            "or CRANE_API_URL",
            FAILED,
        ),
    ),
    (
        Unauthorized,
        lambda e: Failure(
            f"not authenticated: {_server(e.message)}",
            "run `crane login URL --token TOKEN` or set CRANE_TOKEN to a valid token",
            FAILED,
        ),
    ),
    (
        Forbidden,
        lambda e: Failure(
            f"not allowed: {_server(e.message)}",
            "use a token whose scope covers this (ask an admin: `crane token create`)",
            FAILED,
        ),
    ),
    (NotFound, _not_found),
    (Conflict, _conflict),
    (InvalidName, lambda e: Failure(str(e), "check the name with `crane mc list`", USAGE)),
    (Invalid, _invalid),
    (
        BadRequest,
        lambda e: Failure(
            f"bad request: {_server(e.message)}", "check the command's options (--help)", USAGE
        ),
    ),
    (
        WaitTimeout,
        lambda e: Failure(
            str(e), "it may still happen: see why with `crane mc explain NAME`", FAILED
        ),
    ),
    (
        Unavailable,
        lambda e: Failure(
            f"the server cannot serve this now: {_server(e.message)}",
            "fix that, then retry (the server's /readyz says when it is ready)",
            FAILED,
        ),
    ),
    (
        ServerError,
        lambda e: Failure(
            f"the server failed: {_server(e.message)}",
            "retry; if it persists, look at the server's log",
            FAILED,
        ),
    ),
    (CraneError, lambda e: Failure(str(e), "", FAILED)),
    (ValidationError, _validation),
    (yaml.YAMLError, _yaml),
    (OSError, _file),
    ((httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError), _broken_answer),  # type: ignore[list-item]
    (
        httpx.TimeoutException,
        lambda e: Failure(
            f"{_api_of(e)} did not answer in time",
            "retry; if it persists, look at its log, and check the API URL with "
            "`crane config current`",
            FAILED,
        ),
    ),
    (
        httpx.HTTPError,
        lambda e: Failure(
            f"HTTP error: {e}", "check the API URL with `crane config current` and retry", FAILED
        ),
    ),
]


def describe(exc: BaseException) -> Failure:
    """The failure a person sees for ``exc``; unknown errors say how to get a traceback."""
    for cls, make in _MAP:
        if isinstance(exc, cls):
            return make(exc)
    return Failure(
        f"unexpected {type(exc).__name__}: {exc}",
        f"rerun with {DEBUG_ENV}=1 for a traceback and report it",
        FAILED,
    )


def report(exc: BaseException, stream: IO[str] | None = None) -> int:
    """Write the one-line failure (with ``CRANE_DEBUG=1`` the traceback too); give the exit code."""
    stream = stream or sys.stderr
    if _is_help(exc):
        stream.write(str(exc) + "\n")
        return USAGE
    failure = describe(exc)
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exception(exc, file=stream)
    stream.write(failure.line() + "\n")
    stream.flush()
    return failure.code
