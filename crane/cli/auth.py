"""``crane login`` and ``crane config``: saved contexts (server URL + token) in the config file."""

from __future__ import annotations

import os
import sys
from operator import itemgetter
from typing import Annotated

import typer

from crane.cli.options import Output, Settings
from crane.cli.render import Column, Format, render
from crane.cli.term import UsageError, is_tty, say

config_app = typer.Typer(
    rich_markup_mode=None,
    help="View and change saved contexts (server URL + token).",
    no_args_is_help=True,
)


def _redact(token: str | None) -> str:
    """A token as ``crane_ab...(redacted)``: enough to tell tokens apart, never the secret."""
    if not token:
        return ""
    shown = token[:8] if len(token) > 16 else ""
    return f"{shown}...(redacted)"


LOOPBACK = ("127.", "localhost", "[::1]", "0.0.0.0")


def with_scheme(url: str) -> str:
    """``URL`` as given, or with ``http://`` (loopback) / ``https://`` (any other host) added;
    what it says shows the URL without its password."""
    from crane.client import without_password

    url = url.strip().rstrip("/")
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise UsageError(f"{without_password(url)}: use an http:// or https:// URL")
        return url
    if not url:
        raise UsageError("give the API URL, e.g. `crane login http://127.0.0.1:8080`")
    scheme = "http" if url.startswith(LOOPBACK) else "https"
    shown = without_password(f"{scheme}://{url}")
    say(f"no scheme in {shown.partition('://')[2]!r}: using {shown}")
    return f"{scheme}://{url}"


def login(
    url: Annotated[str, typer.Argument(help="The Crane API URL, e.g. http://127.0.0.1:8080.")],
    api_token: Annotated[
        str | None,
        typer.Option(
            "--token", "-t", help="Bearer token; else $CRANE_TOKEN, else asked for on a terminal."
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Name of the saved context.")] = "default",
) -> None:
    """Check URL and token against the API, then save them as the current context."""
    from crane.client import (
        ENV_TOKEN,
        Client,
        Context,
        load_config,
        save_config,
        without_password,
    )

    secret = api_token or os.environ.get(ENV_TOKEN)
    if secret is None:
        if not is_tty(sys.stdin):
            raise UsageError("no token: pass --token TOKEN or set CRANE_TOKEN")
        secret = typer.prompt("Token", hide_input=True)
    if not name.strip():
        raise UsageError("a context needs a name: pass --name NAME")
    url = with_scheme(url)
    with Client(url, secret) as client:
        client.whoami()
        url, secret = client.url, client.token or secret
    config = load_config()
    config.contexts[name] = Context(url=url, token=secret)
    config.current_context = name
    path = save_config(config)
    say(f"logged in to {without_password(url)}; saved as context {name!r} in {path}")


@config_app.command("view")
def view(output: Output = Format.YAML) -> None:
    """Show the saved contexts (tokens shortened, URLs without their password)."""
    from crane.client import load_config, without_password

    config = load_config()
    rows = [
        {
            "name": n,
            "current": n == config.current_context,
            "url": without_password(c.url),
            "token": _redact(c.token),
        }
        for n, c in config.contexts.items()
    ]
    columns = [Column(h, itemgetter(h)) for h in ("name", "current", "url", "token")]
    if output == Format.TABLE:
        render(rows, output, columns)
    else:
        render({"current-context": config.current_context, "contexts": rows}, output)


@config_app.command("current")
def current() -> None:
    """Print the server URL in use (without its password) and where it comes from."""
    from crane.client import ENV_CONTEXT, ENV_URL, config_path, load_config, without_password

    env_url = os.environ.get(ENV_URL)
    if env_url:
        typer.echo(f"{without_password(env_url)} (from ${ENV_URL})")
        return
    config = load_config()
    saved = config.current(Settings.context)
    if saved is None:
        missing = config.missing(Settings.context)
        if missing is not None:
            raise missing
        raise UsageError(f"no current context in {config_path()}: run `crane login URL`")
    source = (
        "--context"
        if Settings.context
        else f"${ENV_CONTEXT}"
        if os.environ.get(ENV_CONTEXT)
        else str(config_path())
    )
    typer.echo(f"{saved[0]}: {without_password(saved[1].url)} (from {source})")


@config_app.command("use")
def use(name: Annotated[str, typer.Argument(help="A saved context.")]) -> None:
    """Make a saved context the current one."""
    from crane.client import load_config, save_config

    config = load_config()
    if name not in config.contexts:
        known = ", ".join(config.contexts) or "none"
        raise UsageError(
            f"no context {name!r} (saved: {known}); add it with `crane login URL --name {name}`"
        )
    config.current_context = name
    save_config(config)
    say(f"current context is now {name!r}")


@config_app.command("set")
def set_context(
    name: Annotated[str, typer.Argument(help="Context to create or change.")],
    server: Annotated[str | None, typer.Option("--server", help="API URL.")] = None,
    api_token: Annotated[str | None, typer.Option("--token", help="Bearer token.")] = None,
) -> None:
    """Create or change a context without contacting the server."""
    from crane.client import Context, check_token, check_url, load_config, save_config

    if not name.strip():
        raise UsageError("a context needs a name: crane config set NAME --server URL")
    config = load_config()
    old = config.contexts.get(name)
    url = check_url(with_scheme(server)) if server else (old.url if old else None)
    if url is None:
        raise UsageError(f"context {name!r} is new: pass --server URL")
    token = check_token(api_token) if api_token else (old.token if old else None)
    config.contexts[name] = Context(url=url, token=token)
    config.current_context = config.current_context or name
    save_config(config)
    say(f"context {name!r} saved")


@config_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="Context to forget.")]) -> None:
    """Forget a saved context."""
    from crane.client import load_config, save_config

    config = load_config()
    if config.contexts.pop(name, None) is None:
        raise UsageError(f"no context {name!r}")
    if config.current_context == name:
        config.current_context = next(iter(config.contexts), None)
    save_config(config)
    say(f"context {name!r} deleted")
