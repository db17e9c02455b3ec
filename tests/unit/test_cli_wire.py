"""The CLI facing a server that is not quite Crane's: JSON of another shape, a web page or a
redirect where Crane's answer belongs, a context that is not saved, an event stream whose server
goes away. Each is one line on stderr naming the URL, a non-zero exit and nothing on stdout;
never a success, never the user's input blamed."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.support import Answer, FakeApi, crane, crane_env


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeApi]:
    server = FakeApi()
    yield server
    server.close()


def _env(url: str | None = None) -> dict[str, str]:
    """What a test's crane sees beyond :func:`crane_env`: 100 columns and, given ``url``, that
    API with a token."""
    env = {"COLUMNS": "100"}
    if url is not None:
        env.update(CRANE_API_URL=url, CRANE_TOKEN="crane_t1_secret")
    return env


def _one_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    """The single error line of a failed command that printed nothing on stdout."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


MC_ARGS = ["mc", "create", "study", "--gpu-type", "H100", "--min", "1", "--max", "2"]
JSON = "application/json"


@pytest.mark.parametrize(
    ("args", "body", "says"),
    [
        (["mc", "get", "x"], b"[1, 2]", "a list where a MiniCluster object belongs"),
        (["mc", "get", "x"], b'{"error": "upstream unavailable"}', "name: Field required"),
        (MC_ARGS, b'{"error": "upstream unavailable"}', "not a MiniCluster"),
        (["usage"], b'{"message": "ok"}', "not a UsageReport"),
        (["mc", "list"], b'{"items": [{"name": "x"}], "count": 1}', "not a MiniCluster"),
        (["mc", "list"], b"[]", "no list of"),
        (["mc", "explain", "x"], b'"fine"', "a string where"),
    ],
    ids=["list", "proxy-json", "create", "usage", "list-item", "list", "explain"],
)
def test_json_of_another_shape_is_the_servers_answer_not_the_users_input(
    fake: FakeApi, tmp_path: Path, args: list[str], body: bytes, says: str
) -> None:
    fake.answer = (200, JSON, body)
    line = _one_line(crane(*args, config_dir=tmp_path, **_env(fake.url)), 1)
    assert f"the answer of {fake.url}/v1/" in line and "(200)" in line, line
    assert "is not what Crane expected" in line and says in line, line
    assert "fix the manifest" not in line and "invalid" not in line.split(";")[0], line
    assert "crane config current" in line and "another Crane version" in line, line


LOGIN_PAGE = b"<html><body><form>Sign in</form></body></html>"


@pytest.mark.parametrize(
    ("args", "answer", "says"),
    [
        (["mc", "delete", "study", "-y"], (200, "text/html", LOGIN_PAGE), "200 with text/html"),
        (["cargo", "delete", "c1", "-y"], (200, "text/html", LOGIN_PAGE), "200 with text/html"),
        (
            ["tenant", "delete", "t", "-y"],
            (200, JSON, b'{"ok": true}'),
            "200 with application/json",
        ),
        (["token", "revoke", "abc", "-y"], (302, "", b""), "302 Found, redirecting to https://sso"),
        (["mc", "delete", "study", "-y"], (302, "text/html", LOGIN_PAGE), "302 Found"),
        (["cargo", "logs", "c1"], (200, "text/html", LOGIN_PAGE), "200 with text/html"),
        (["events"], (200, "text/html", LOGIN_PAGE), "200 with text/html"),
        (["events", "-w"], (200, JSON, b"{}"), "200 with application/json"),
        (["mc", "get", "study"], (404, "text/html", b"<h1>404 Not Found</h1>nginx"), "404 Not"),
        (["mc", "list"], (401, "text/html", LOGIN_PAGE), "401 Unauthorized with text/html"),
        (["mc", "get", "x"], (404, JSON, b'{"message": "no route"}'), '{"message": "no route"}'),
    ],
    ids=[
        "mc-delete-page",
        "cargo-delete-page",
        "tenant-delete-json",
        "token-revoke-redirect",
        "mc-delete-redirect",
        "logs-page",
        "events-page",
        "events-watch-json",
        "get-404-page",
        "list-401-page",
        "get-404-json",
    ],
)
def test_an_answer_that_is_not_cranes_is_an_error_never_a_success(
    fake: FakeApi, tmp_path: Path, args: list[str], answer: Answer, says: str
) -> None:
    fake.answer = answer
    line = _one_line(crane(*args, config_dir=tmp_path, **_env(fake.url)), 1)
    assert f"{fake.url}/v1/" in line and says in line, line
    assert "not the Crane API's" in line and "crane config current" in line, line
    assert "<" not in line, line  # never the page itself
    assert "deleted" not in line and "revoked" not in line and "not found:" not in line, line


def test_a_gateways_error_names_what_answered_and_not_its_page(
    fake: FakeApi, tmp_path: Path
) -> None:
    fake.answer = (502, "text/html", b"<html><h1>502 Bad Gateway</h1></html>")
    line = _one_line(crane("mc", "get", "x", config_dir=tmp_path, **_env(fake.url)), 1)
    assert f"{fake.url}/v1/miniclusters/x answered 502 Bad Gateway with text/html" in line, line
    assert "<" not in line and "retry" in line, line


def _config(cfg: Path, text: str) -> None:
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.yaml").write_text(text)


SAVED = """current-context: nope
contexts:
  lab: {url: "http://127.0.0.1:9", token: crane_a_b}
  prod: {url: "https://crane.example", token: crane_c_d}
"""


@pytest.mark.parametrize(
    ("args", "env", "source"),
    [
        (["mc", "list"], {}, "the current-context of"),
        (["config", "current"], {}, "the current-context of"),
        (["--context", "nope", "mc", "list"], {}, "the context asked for"),
        (["mc", "list"], {"CRANE_CONTEXT": "nope"}, "$CRANE_CONTEXT's context"),
    ],
    ids=["current-context", "config-current", "--context", "CRANE_CONTEXT"],
)
def test_a_context_that_is_not_saved_is_named_with_the_saved_ones(
    tmp_path: Path, args: list[str], env: dict[str, str], source: str
) -> None:
    cfg = tmp_path / "cfg"
    _config(cfg, SAVED.replace("nope", "lab") if env or "--context" in args else SAVED)
    line = _one_line(crane(*args, config_dir=cfg, **{**_env(), **env}), 2)
    assert source in line and "'nope'" in line, line
    assert "'lab', 'prod'" in line and str(cfg / "config.yaml") in line, line
    assert "crane config use NAME" in line and "--name nope" in line, line


def test_a_current_context_with_nothing_saved_says_how_to_save_it(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    _config(cfg, "current-context: nope\n")
    line = _one_line(crane("mc", "list", config_dir=cfg, **_env()), 2)
    assert "'nope'" in line and "none" in line, line
    assert "crane login URL --token TOKEN --name nope" in line, line


def test_a_dangling_current_context_does_not_stop_an_explicit_url(
    fake: FakeApi, tmp_path: Path
) -> None:
    cfg = tmp_path / "cfg"
    _config(cfg, SAVED)
    fake.answer = (200, JSON, b'{"items": [], "count": 0}')
    done = crane("mc", "list", "-o", "json", config_dir=cfg, **_env(fake.url))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["items"] == []


# ---------------------------------------------------------------- crane events -w

EVENT = {
    "type": "Placed",
    "tenant": "t",
    "miniCluster": "study",
    "cargo": "study-0",
    "gpus": 2,
    "time": "2026-01-01T00:00:00Z",
}


class _Stream:
    """An event stream on a fixed port that can be stopped (its connections cut, its port
    closed) and started again: one event to a client without Last-Event-ID, then comments."""

    def __init__(self) -> None:
        self.port = 0
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        threading.Thread(
            target=self._accept, args=(self._listener, self._stop), daemon=True
        ).start()

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, stop), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket, stop: threading.Event) -> None:
        with conn:
            request = conn.recv(65536).decode("latin-1").lower()
            body = ": connected\n\nretry: 100\n\n"
            if "last-event-id: 0" in request:
                body += f"id: 1\ndata: {json.dumps(EVENT)}\n\n"
            head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            try:
                conn.sendall((head + body).encode())
                while not stop.wait(0.2):
                    conn.sendall(b": keep-alive\n\n")
            except OSError:
                return


class _Lines:
    """The lines of a child's stream as they come, read by a thread (a wait never blocks)."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put("")  # the end

    def until(self, wanted: str, limit: float = 60) -> str:
        """The next line holding ``wanted``; AssertionError after ``limit`` seconds or the end."""
        deadline = time.monotonic() + limit
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if not line:
                raise AssertionError(f"{wanted!r} never came: {self.seen}")
            self.seen.append(line)
            if wanted in line:
                return line

    def rest(self, limit: float = 60) -> list[str]:
        """The lines left until the end."""
        got: list[str] = []
        while (line := self._queue.get(timeout=limit)) != "":
            got.append(line)
        return got


def _watch(
    url: str, cfg: Path, *extra: str, command: tuple[str, ...] = ("events",)
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crane", *command, "-w", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=crane_env(cfg, **_env(url)),
        # a test run in the background inherits SIGINT ignored: the child gets the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _killed(proc: subprocess.Popen[str]) -> Callable[[], None]:
    def kill() -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    return kill


def test_events_watch_says_when_the_connection_is_lost_and_back_then_gives_up(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = _Stream()
    request.addfinalizer(server.stop)
    proc = _watch(server.url, tmp_path, "--reconnect-for", "2s")
    request.addfinalizer(_killed(proc))
    out, err = _Lines(proc.stdout), _Lines(proc.stderr)
    out.until("study-0")
    server.stop()
    lost = err.until("lost the connection")
    assert server.url in lost and "2s" in lost and "Ctrl-C" in lost, lost
    server.start()
    assert server.url in err.until("back")
    server.stop()
    err.until("lost the connection")
    assert proc.wait(timeout=60) == 1
    rest = err.rest()
    assert len(rest) == 1 and rest[0].startswith("error: "), rest
    assert f"lost the connection to the Crane API at {server.url}" in rest[0], rest
    assert "in 2s" in rest[0], rest
    assert out.rest() == []  # the event once: the reconnection resumed after it


def test_events_watch_stops_on_ctrl_c_while_it_reconnects(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = _Stream()
    request.addfinalizer(server.stop)
    proc = _watch(server.url, tmp_path)
    request.addfinalizer(_killed(proc))
    _Lines(proc.stdout).until("study-0")
    server.stop()
    _Lines(proc.stderr).until("lost the connection")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130  # as kubectl get -w, and `crane mc list -w`
    assert _Lines(proc.stderr).rest() == []  # after 'lost the connection': not a word more


def test_events_watch_against_no_server_fails_at_once(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        done = subprocess.run(
            [sys.executable, "-m", "crane", "events", "-w"],
            capture_output=True,
            text=True,
            env=crane_env(tmp_path, **_env(url)),
            timeout=60,
            check=False,
        )
    line = _one_line(done, 1)
    assert f"cannot reach the Crane API at {url}" in line, line


@pytest.mark.parametrize("bad", ["0", "-5s", "forever", "2y"])
def test_reconnect_for_takes_a_duration(tmp_path: Path, bad: str) -> None:
    line = _one_line(
        crane("events", "-w", "--reconnect-for", bad, config_dir=tmp_path, **_env()), 2
    )
    assert "duration" in line and "--reconnect-for" in line, line


def test_the_async_client_reports_a_lost_stream_and_gives_up() -> None:
    import asyncio

    from crane.client import AsyncClient, ConnectionFailed, ConnectionLost

    calls: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) > 1:
            raise httpx.ConnectError("refused", request=request)
        body = f": connected\nretry: 1\nid: 1\ndata: {json.dumps(EVENT)}\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    heard: list[Exception | None] = []

    async def run() -> list[int]:
        got = []
        async with AsyncClient(
            "http://crane.test", "s", transport=httpx.MockTransport(handler)
        ) as api:
            stream = api.events(give_up_after=0.05, on_connection=heard.append)
            with pytest.raises(ConnectionLost) as info:
                async for event in stream:
                    got.append(event.gpus)
            assert "could not get it back in 0.05s" in str(info.value)
        return got

    assert asyncio.run(run()) == [2]
    assert len(heard) == 1 and isinstance(heard[0], ConnectionFailed)


def test_the_sdk_raises_unexpected_answer_for_another_shape() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"name": 1}], "count": "many"})

    from crane.client import Client, UnexpectedAnswer

    with (
        Client("http://crane.test", "s", transport=httpx.MockTransport(handler)) as api,
        pytest.raises(UnexpectedAnswer, match="not a Cargo"),
    ):
        api.list_cargos()


# ---------------------------------------------------------------- -o jsonpath= as kubectl reads it

LISTED = {
    "kind": "List",
    "items": [
        {"metadata": {"name": "a"}, "status": {"phase": "Running"}},
        {"metadata": {"name": "b"}, "status": {"phase": "Pending"}},
    ],
}


@pytest.mark.parametrize(
    ("template", "printed"),
    [
        ('{range .items[*]}{.metadata.name}{"\\n"}{end}', "a\nb\n"),
        (
            '{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}',
            "a\tRunning\nb\tPending\n",
        ),
        ("names: {.items[*].metadata.name}", "names: a b\n"),
        ("{.kind}/{.items[0].metadata.name}", "List/a\n"),
        ("{$.kind}", "List\n"),
        ("{.items[*].metadata.name}", "a b\n"),
        (".kind", "List\n"),
        ("{range .items[*]}{@.metadata.name}{end}", "ab\n"),  # printed nothing
    ],
    ids=["range", "range-tab", "text", "two", "root", "plain", "relaxed", "current"],
)
def test_jsonpath_reads_kubectls_templates(template: str, printed: str) -> None:
    """kubectl users' habits (`{range}...{end}`, `{"\\n"}`, text around paths, `$`) printed
    nothing, or dropped the text, exit 0: a script read an empty answer."""
    import io

    from crane.cli.render import parse_format, render

    out = io.StringIO()
    render(LISTED, parse_format(f"jsonpath={template}"), stream=out)
    assert out.getvalue() == printed


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{range .items[*]}{.metadata.name}", "{range} without {end}"),
        ("{.metadata.name}{end}", "{end} without {range}"),
        ("{.items[?(@.x)]}", "cannot read"),
        ("{.a b}", "cannot read"),
        ("{..name}", "recursive descent"),  # printed nothing, exit 0
        ("{.items[*]..name}", "recursive descent"),
    ],
)
def test_a_jsonpath_template_it_cannot_read_is_one_line_exit_2(
    tmp_path: Path, template: str, says: str
) -> None:
    line = _one_line(
        crane("mc", "list", "-o", f"jsonpath={template}", config_dir=tmp_path, **_env()), 2
    )
    assert says in line and "jsonpath" in line, line


def test_a_config_folder_that_is_a_file_is_named(tmp_path: Path) -> None:
    """CRANE_CONFIG_DIR naming a file: `crane config set` said 'File exists (DIR); check the
    path and retry', naming neither the config file nor what is wrong with it."""
    cfg = tmp_path / "crane"
    cfg.write_text("not a folder\n")
    line = _one_line(
        crane("config", "set", "a", "--server", "http://127.0.0.1:1", config_dir=cfg, **_env()), 2
    )
    assert f"cannot save the config file {cfg / 'config.yaml'}" in line, line
    assert "is a file, not a folder" in line, line


MC_LIST = json.dumps(
    {
        "items": [
            {
                "name": "study",
                "tenant": "default",
                "uid": "u1",
                "spec": {"gpuType": "H100", "gpus": {"min": 4, "max": 8}},
                "createdAt": "2026-01-01T00:00:00Z",
            }
        ],
        "count": 1,
    }
).encode()


def _mc_api(port: int = 0) -> FakeApi:
    api = FakeApi(port)
    api.answer = (200, JSON, MC_LIST)
    return api


def test_mc_list_watch_reconnects_as_events_watch_does(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`crane mc list -w` ended at the first lost connection ('cannot reach', exit 1); now it
    says so, keeps polling for --reconnect-for, says when it is back, then gives up in one
    line, exit 1: the words of `crane events -w`."""
    api = _mc_api()
    request.addfinalizer(lambda: api.close())
    url, port = api.url, api.server.server_address[1]
    proc = _watch(url, tmp_path, "-o", "name", "--reconnect-for", "2s", command=("mc", "list"))
    request.addfinalizer(_killed(proc))
    out, err = _Lines(proc.stdout), _Lines(proc.stderr)
    out.until("minicluster/study")
    api.close()
    lost = err.until("lost the connection")
    assert lost == f"lost the connection to {url}; reconnecting for up to 2s (Ctrl-C stops)\n"
    api = _mc_api(port)
    assert err.until("back") == f"connection to {url} back; following again\n"
    api.close()
    err.until("lost the connection")
    assert proc.wait(timeout=60) == 1
    rest = err.rest()
    assert len(rest) == 1 and rest[0].startswith("error: "), rest
    assert f"lost the connection to the Crane API at {url}" in rest[0], rest
    assert "in 2s" in rest[0], rest
    assert out.rest() == []  # nothing changed: no row printed again


@pytest.mark.parametrize("lose", [False, True])
def test_mc_list_watch_stops_quietly_on_ctrl_c(
    tmp_path: Path, request: pytest.FixtureRequest, lose: bool
) -> None:
    """Ctrl-C killed `crane mc list -w` by SIGINT while it waited between polls (-2 to its
    parent, not 130); now as `crane events -w`: exit 130, not a word (but the 'lost' line
    when it was reconnecting)."""
    api = _mc_api()
    request.addfinalizer(lambda: api.close())
    proc = _watch(api.url, tmp_path, "-o", "name", command=("mc", "list"))
    request.addfinalizer(_killed(proc))
    out, err = _Lines(proc.stdout), _Lines(proc.stderr)
    out.until("minicluster/study")
    if lose:
        api.close()
        err.until("lost the connection")
    else:  # a SIGINT before the watch polls is the listing's (exit 130): wait for its poll
        deadline = time.monotonic() + 60
        while len(api.requests) < 2:
            assert time.monotonic() < deadline, api.requests
            time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert err.rest() == []


def test_every_watch_takes_reconnect_for(tmp_path: Path) -> None:
    for command in (
        ["mc", "list"],
        ["mc", "get", "x"],
        ["cargo", "list"],
        ["cargo", "get", "x"],
        ["events"],
    ):
        line = _one_line(
            crane(*command, "-w", "--reconnect-for", "2y", config_dir=tmp_path, **_env()), 2
        )
        assert "--reconnect-for" in line and "duration" in line, (command, line)
