"""Entry point of the ``crane`` command: every command and group is registered here, once."""

from __future__ import annotations

import errno
import importlib
import os
import select
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
import typer.main
from typer.core import TyperGroup
from typer.models import DefaultPlaceholder

import crane
from crane.cli import auth, cluster, helptext, interrupt
from crane.cli.execute import exec_
from crane.cli.operator import operator
from crane.cli.options import Settings
from crane.cli.serve import serve
from crane.cli.term import UsageError
from crane.cli.up import up
from crane.cli.wait import wait

helptext.install()

#: The sub-groups, in help order: name -> (module, Typer attribute). Each is imported and built
#: into a click group only when a command line, the help or completion asks for it, so that
#: ``crane mc list`` does not build the 30 other commands (typer evaluates every signature).
GROUPS: dict[str, tuple[str, str]] = {
    "config": ("crane.cli.auth", "config_app"),
    "mc": ("crane.cli.minicluster", "app"),
    "cargo": ("crane.cli.cargo", "app"),
    "token": ("crane.cli.token", "app"),
    "tenant": ("crane.cli.tenant", "app"),
    "node": ("crane.cli.node", "node_app"),
}


def _plain(sub: typer.Typer) -> bool:
    """Whether the help's command list shows ``sub`` by its help alone (what it reads: name,
    help, short help, hidden, deprecated, panel), so a stand-in group lists it the same."""
    fields = ("short_help", "hidden", "deprecated", "rich_help_panel")
    return isinstance(sub.info.help, str) and all(
        isinstance(getattr(sub.info, f), DefaultPlaceholder) for f in fields
    )


class _ReaderGone(Exception):
    """Whoever read stdout or stderr went away (``crane mc list -o name | head -1``): the
    command stops there, quietly and successfully, as kubectl does."""


def _gone(fd: int) -> bool:
    """Whether ``fd`` is a pipe or socket whose reader has gone away (a write would fail with
    EPIPE), told apart from any other pipe the command writes to (a socket, a child's stdin)."""
    poller = select.poll()
    try:
        poller.register(fd, select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


@contextmanager
def _readers_kept() -> Iterator[None]:
    """Turn a broken pipe on stdout or stderr into :class:`_ReaderGone`, before click's own
    handling of it (exit 1) sees it."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.EPIPE and (_gone(1) or _gone(2)):
            raise _ReaderGone from exc
        raise


def _quiet_exit() -> None:
    """Stop without a word: the output's reader is gone, so whatever is still buffered for it
    (or for stderr, when that is the broken one) goes to /dev/null, and Python's own flush at
    exit finds nothing to complain about ('Exception ignored ... BrokenPipeError')."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        if _gone(fd):
            os.dup2(devnull, fd)
    os.close(devnull)
    sys.exit(0)


def _std_streams() -> None:
    """Give a closed stdin, stdout or stderr (``crane ... >&-``) /dev/null, as the shell would
    give a file: what the command writes there is dropped, and neither Python's missing stream
    (``None``) nor a file it opens later (taking the free descriptor) ever gets its output."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, mode, closefd=False, encoding="utf-8"))  # noqa: SIM115


class _LazyGroups(TyperGroup):
    """The root group: its sub-groups (:data:`GROUPS`) are built the first time they are used."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        """Parse the command line (``--help``, ``--version`` print here): a reader gone is
        :class:`_ReaderGone`."""
        with _readers_kept():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        """Run the command: a reader gone is :class:`_ReaderGone`."""
        with _readers_kept():
            return super().invoke(ctx)

    def list_commands(self, ctx: Any) -> list[str]:
        """The commands, then the groups, in registration order (what typer itself lists)."""
        return [*super().list_commands(ctx), *(n for n in GROUPS if n not in self.commands)]

    listing = False

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """``crane --help``: the groups are listed from their Typer's help, not built."""
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command or group ``cmd_name``; a group is imported and built on first use."""
        if cmd_name not in self.commands and cmd_name in GROUPS:
            module, attribute = GROUPS[cmd_name]
            sub: typer.Typer = getattr(importlib.import_module(module), attribute)
            if self.listing and _plain(sub):
                return TyperGroup(name=cmd_name, help=sub.info.help)
            group = typer.main.get_group(sub)
            group.name = cmd_name
            self.commands[cmd_name] = group
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    rich_markup_mode=None,
    cls=_LazyGroups,
    name="crane",
    help="Crane: elastic GPU MiniClusters and all-or-nothing Cargos, on Kubernetes or Docker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(crane.__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    context: str | None = typer.Option(
        None, "--context", help="Saved context to use (crane config).", envvar="CRANE_CONTEXT"
    ),
    server: str | None = typer.Option(None, "--server", help="API URL, overriding config and env."),
    api_token: str | None = typer.Option(
        None, "--token", help="Bearer token, overriding config and env."
    ),
    tenant: str | None = typer.Option(
        None,
        "--tenant",
        help="Tenant to act in (admin tokens; default: the token's).",
        envvar="CRANE_TENANT",
    ),
) -> None:
    """Crane: elastic GPU MiniClusters and all-or-nothing Cargos."""
    if tenant == "":  # `--tenant "$TEAM"` with TEAM unset: never the token's tenant instead
        raise UsageError("--tenant is empty: give a tenant's name, or leave it out for the token's")
    Settings.context, Settings.server, Settings.token = context, server, api_token
    Settings.tenant = tenant


app.command("login")(auth.login)
app.command("nodes")(cluster.nodes)
app.command("top")(cluster.top)
app.command("usage")(cluster.usage)
app.command("events")(cluster.events)


app.command("serve")(serve)
app.command("wait")(wait)
app.command("exec")(exec_)
app.command("up")(up)
app.command("operator")(operator)


def main() -> None:
    """Run the CLI; an error becomes one line on stderr with a remedy (traceback: CRANE_DEBUG=1).

    A reader of stdout or stderr gone away (``| head -1``) ends any command here, once:
    quietly, exit 0. Ctrl-C, whenever it comes, ends it with 130 (:mod:`crane.cli.interrupt`)."""
    interrupt.install()
    # httpx imports its own command line (click, pygments, rich.progress: ~40 ms CPU, a fifth of
    # `crane mc list`) whenever click is installed. This process never runs it: marking it
    # absent makes httpx keep its documented fallback (`httpx.main` says to install httpx[cli]).
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    _std_streams()
    try:
        code = _run()
    except _ReaderGone:
        _quiet_exit()
    except SystemExit as exc:  # a watch ended by Ctrl-C stops quietly (crane.cli.listing)
        if exc.code != interrupt.INTERRUPTED:
            raise
        code = interrupt.INTERRUPTED
    interrupt.leave(code)


def _run() -> int:
    """The command's exit code; every error written as its one line."""
    try:
        code = app(standalone_mode=False)  # errors come here: one line each (errors.report)
        with _readers_kept():
            sys.stdout.flush()
    except _ReaderGone:
        raise
    except KeyboardInterrupt:
        with _readers_kept():
            sys.stderr.write("interrupted\n")
        return interrupt.INTERRUPTED
    except Exception as exc:
        from crane.cli.errors import report

        with _readers_kept():
            return report(exc)
    return code if isinstance(code, int) else 0
