"""CLI misuse answered with one line on stderr and exit 2, never a traceback and never a request
to the wrong place: names with ``/`` or dot segments, an API URL without a scheme or host, a
jsonpath the renderer cannot read. The server runs the Docker backend without hosts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Crane
from tests.dockerd import DockerServer, serve_docker
from tests.support import free_port

ADMIN = "crane_advcli_" + "c" * 43


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerServer]:
    running = serve_docker(tmp_path_factory.mktemp("adv-cli"), ADMIN, [])
    with running.client() as admin:
        for tenant in ("adv", "victim"):
            assert admin.post("/v1/tenants", json={"name": tenant}).status_code == 201
    yield running
    running.stop()


def _usage(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """``done`` is a usage error (exit 2) of one stderr line that says ``words``."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["mc", "delete", "../tenants/victim", "--yes"],
        ["cargo", "delete", "../tenants/victim", "--yes"],
        ["mc", "get", "../../v1/tenants/victim"],
        ["tenant", "delete", "../tenants/victim", "--yes"],
        ["mc", "delete", "..", "--yes"],
    ],
)
def test_a_name_with_dot_segments_reaches_no_other_route(
    crane: Crane, bare: DockerServer, args: list[str]
) -> None:
    done = crane("--server", bare.url, "--token", ADMIN, "--tenant", "adv", *args)
    _usage(done, "invalid name")
    with bare.client() as admin:
        assert admin.get("/v1/tenants/victim").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "127.0.0.1:8080",
        "localhost:8080",
        "ftp://x",
        "http://[::1",
        "http://",
        "http:///v1",
        "http://" + "a" * 300,
        "http://127.0.0.1:99999",
        "http://127.0.0.1:0",
    ],
)
def test_an_api_url_without_scheme_or_host_is_a_usage_error(crane: Crane, url: str) -> None:
    """Also a host no resolver takes (a label over 63 characters) and a port outside 1-65535:
    the URL is the mistake, not an unreachable server or an 'unexpected UnicodeError'."""
    done = crane("--server", url, "--token", ADMIN, "mc", "list")
    _usage(done, "is not a URL", "http://HOST:PORT")
    env_done = crane("mc", "list", CRANE_API_URL=url, CRANE_TOKEN=ADMIN)
    _usage(env_done, "is not a URL")


@pytest.mark.parametrize("token", ["crane_\u00e4", "crane_a\nb", "crane_a b", "crane_\x7f"])
def test_a_token_no_header_can_carry_is_a_usage_error_that_keeps_it_secret(
    crane: Crane, token: str
) -> None:
    """A token with a non-ASCII letter, a line break, a space or a control character is one
    line saying so, exit 2, nothing sent (the URL below answers nothing); never an 'unexpected
    UnicodeEncodeError' or advice to check the API URL, and never the token itself."""
    for done in (
        crane("--server", "http://127.0.0.1:9", "--token", token, "mc", "list"),
        crane("mc", "list", CRANE_API_URL="http://127.0.0.1:9", CRANE_TOKEN=token),
    ):
        _usage(done, "the token has", "no HTTP header can carry", "CRANE_TOKEN")
        assert token not in done.stderr


@pytest.mark.parametrize(
    "template", ["{.items[", "{{.items}}", "{.items[abc]}", "{.items]}", ".items["]
)
def test_a_jsonpath_the_renderer_cannot_read_is_a_usage_error(
    crane: Crane, bare: DockerServer, template: str
) -> None:
    done = crane(
        "--server", bare.url, "--token", ADMIN, "--tenant", "adv", "mc", "list",
        "-o", f"jsonpath={template}",
    )  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "jsonpath" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["usage", "--days", "nan"],
        ["usage", "--days", "1e309"],
        ["usage", "--days", "999999999"],
        ["token", "create", "--for-tenant", "adv", "--expires-in-days", "-1"],
        ["token", "create", "--for-tenant", "adv", "--expires-in-days", "inf"],
        ["wait", "mc/none", "--for", "delete", "--timeout", "nan"],
        ["wait", "mc/none", "--for", "delete", "--timeout", "\u0661"],
        ["usage", "--days", "\uff17"],
        ["wait", "mc/none", "--for", "delete", "--interval", "-1"],
        ["mc", "grow", "none", "1", "--wait", "--timeout", "-5"],
        ["top", "--interval", "0"],
    ],
)
def test_non_finite_zero_or_negative_seconds_and_days_are_usage_errors(
    crane: Crane, bare: DockerServer, args: list[str]
) -> None:
    done = crane("--server", bare.url, "--token", ADMIN, "--tenant", "adv", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    said = "duration" if "--days" not in args and "--expires-in-days" not in args else "number"
    assert f"give a {said}" in done.stderr and "Traceback" not in done.stderr
    with bare.client() as admin:
        tokens = admin.get("/v1/tokens").json()["items"]
    assert not any(t["tenant"] == "adv" for t in tokens), tokens


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["mc", "list", "--bogus"], "No such option: --bogus"),
        (["nosuch"], "No such command 'nosuch'"),
        (["mc", "grow", "x", "notanumber"], "'count'"),
        (["mc", "grow"], "Missing argument 'name'"),
        (["mc", "list", "-o", "bogus"], "is not an output format"),
    ],
)
def test_a_command_line_the_parser_refuses_is_one_line_and_exit_2(
    crane: Crane, args: list[str], said: str
) -> None:
    """click's usage block (Usage:, Try ..., a blank line, Error:) was four lines; the
    standard is one line naming the mistake and where the help is, and exit 2."""
    done = crane(*args, CRANE_API_URL="http://127.0.0.1:9", CRANE_TOKEN=ADMIN)
    _usage(done, said, "--help`")
    assert done.stdout == ""


def test_a_group_without_its_command_shows_its_help(crane: Crane) -> None:
    done = crane("mc")
    assert done.returncode == 2 and "crane mc [OPTIONS]" in done.stderr and "grow" in done.stderr


def test_label_selectors_read_as_kubectl_reads_them(crane: Crane, bare: DockerServer) -> None:
    """``in``/``notin``/``==`` select as in kubectl; a selector kubectl would refuse is exit 2
    naming the bad term, not a list that silently matches nothing."""
    with bare.client() as admin:
        for name, team in (("sel-a", "a"), ("sel-b", "b"), ("sel-c", "c")):
            spec = {"gpuType": "H100", "gpus": {"min": 0, "max": 1}}
            body = {"name": name, "labels": {"team": team}, "spec": spec}
            made = admin.post("/v1/miniclusters", params={"tenant": "adv"}, json=body)
            assert made.status_code == 201, made.text

    def names(selector: str) -> set[str]:
        done = crane(
            "--server", bare.url, "--token", ADMIN, "--tenant", "adv", "mc", "list", "-l",
            selector, "-o", "name",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return {line.removeprefix("minicluster/") for line in done.stdout.split()}

    assert names("team in (a, b)") == {"sel-a", "sel-b"}
    assert names("team notin (a),team") == {"sel-b", "sel-c"}
    assert names("team==c") == {"sel-c"}
    for bad, word in (("team=a=b", "'a=b'"), ("team in (a", "parentheses"), ("a b", "'a b'")):
        done = crane(
            "--server", bare.url, "--token", ADMIN, "--tenant", "adv", "mc", "list", "-l", bad
        )  # fmt: skip
        _usage(done, word)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (b"{{{", "not valid YAML at line 1"),
        (b"current-context: 5\n", "current-context"),
        (b"contexts: {local: 7}\n", "contexts.local"),
        (b"\x00\xff\xfe", "cannot be read"),
        (b"[" * 5000 + b"]" * 5000, "nested too deep"),
        (b"current-context: " + b"9" * 5000 + b"\n", "Exceeds the limit"),
    ],
)
def test_a_broken_config_file_is_named_with_what_to_do(
    crane: Crane, text: bytes, says: str
) -> None:
    """A config file the CLI cannot read is one line naming the file and the remedy, exit 2;
    never a traceback, an 'unexpected' error, or advice about manifests."""
    crane.config_dir.mkdir(parents=True, exist_ok=True)
    path = crane.config_dir / "config.yaml"
    path.write_bytes(text)
    for args in (["mc", "list"], ["config", "view"]):
        done = crane(*args)
        _usage(done, str(path), says, "crane login")
        assert "manifest" not in done.stderr and "unexpected" not in done.stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--database-url", "garbage"], 2, "is not a database URL: write sqlite:///PATH"),
        (["--database-url", "sqlite:////proc/x/y.db"], 2, "cannot make the database's folder"),
        (
            ["--database-url", "postgresql://crane:secretpw@127.0.0.1:1/crane"],
            1,
            "cannot open the database",
        ),
        (["--log-level", "nonsense"], 2, "'nonsense' is not one of 'critical'"),
        (["--bootstrap-token", "short"], 2, "not a token: write crane_ID_SECRET"),
    ],
)
def test_crane_serve_refuses_bad_settings_in_one_line(
    crane: Crane, args: list[str], code: int, says: str
) -> None:
    """A database URL SQLAlchemy cannot read or reach, a log level uvicorn does not know and a
    bootstrap token of the wrong form were an 'unexpected' error or uvicorn's startup traceback;
    each is one line saying what to fix, never the URL's password."""
    done = crane("serve", "--backend", "docker", "--port", "0", *args)
    assert done.returncode == code, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert says in lines[0] and "secretpw" not in done.stderr, lines[0]


def test_grow_refuses_a_cargo_manifest_of_another_minicluster(crane: Crane, tmp_path: Path) -> None:
    """``crane mc grow a -f`` with a Cargo whose spec.miniCluster is b added it to a, silently;
    it is a usage error naming both (nothing is sent: the URL below answers nothing)."""
    path = tmp_path / "cargo.yaml"
    path.write_text(
        "apiVersion: crane.io/v1alpha1\nkind: Cargo\nmetadata: {name: t1}\n"
        "spec: {miniCluster: b, replicas: 1, gpusPerReplica: 1}\n"
    )
    done = crane(
        "--server", "http://127.0.0.1:9", "--token", ADMIN, "mc", "grow", "a", "-f", str(path)
    )
    _usage(done, "Cargo t1 is for MiniCluster b, not a")


def test_grow_takes_the_cargo_manifests_crane_cargo_get_writes(
    crane: Crane, bare: DockerServer, tmp_path: Path
) -> None:
    """Every Cargo manifest was refused by ``crane mc grow NAME -f`` ('expectedDurationSeconds:
    Extra inputs are not permitted'), the field a Cargo's spec has and a grow's cargo lacked;
    the cargo is added with its expected duration."""
    path = tmp_path / "cargo.yaml"
    path.write_text(
        "apiVersion: crane.io/v1alpha1\nkind: Cargo\nmetadata: {name: grown-1}\n"
        "spec: {miniCluster: grown, replicas: 1, gpusPerReplica: 1, expectedDurationSeconds: 600,"
        " template: {spec: {containers: [{name: main, image: crane-test:busybox}]}}}\n"
    )
    admin = ("--server", bare.url, "--token", ADMIN, "--tenant", "adv")
    made = crane(*admin, "mc", "create", "grown", "--gpu-type", "H100", "--min", "0", "--max", "8")
    assert made.returncode == 0, made.stderr
    done = crane(*admin, "mc", "grow", "grown", "-f", str(path), "--allow-pending")
    assert done.returncode == 0, done.stderr
    with bare.client() as client:
        cargo = client.get("/v1/cargos/grown-1", params={"tenant": "adv"})
        assert cargo.status_code == 200, cargo.text
        assert cargo.json()["spec"]["expectedDurationSeconds"] == 600


def test_a_minicluster_written_by_get_is_created_again_with_its_labels(
    crane: Crane, bare: DockerServer, tmp_path: Path
) -> None:
    """``crane mc get -o yaml`` then ``crane mc create -f`` lost the labels: the manifest's
    metadata.labels were read for nothing."""
    admin = ("--server", bare.url, "--token", ADMIN, "--tenant", "adv")
    with bare.client() as client:
        made = client.post(
            "/v1/miniclusters",
            params={"tenant": "adv"},
            json={"name": "lab", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 2}},
                  "labels": {"team": "ml", "crane.io/owner": "ana"}},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        shown = crane(*admin, "mc", "get", "lab", "-o", "yaml")
        assert shown.returncode == 0, shown.stderr
        (tmp_path / "lab.yaml").write_text(shown.stdout)
        assert client.delete("/v1/miniclusters/lab", params={"tenant": "adv"}).status_code == 204
        again = crane(*admin, "mc", "create", "-f", str(tmp_path / "lab.yaml"))
        assert again.returncode == 0, again.stderr
        got = client.get("/v1/miniclusters/lab", params={"tenant": "adv"}).json()
        assert got["labels"] == {"team": "ml", "crane.io/owner": "ana"}


def test_deleting_several_goes_past_one_that_is_not_there(crane: Crane, bare: DockerServer) -> None:
    """``crane mc delete a nope b`` deleted a, failed on nope and left b without a word about
    it; as kubectl, a and b are deleted and nope is reported (exit 1)."""
    admin = ("--server", bare.url, "--token", ADMIN, "--tenant", "adv")
    for name in ("del-a", "del-b"):
        made = crane(*admin, "mc", "create", name, "--gpu-type", "H100", "--min", "0", "--max", "1")
        assert made.returncode == 0, made.stderr
    done = crane(*admin, "mc", "delete", "del-a", "del-nope", "del-b", "--yes")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[:2] == ["minicluster/del-a deleted", "minicluster/del-b deleted"], lines
    assert len(lines) == 3 and "del-nope" in lines[2] and "not found" in lines[2], lines
    with bare.client() as client:
        for name in ("del-a", "del-b"):
            gone = client.get(f"/v1/miniclusters/{name}", params={"tenant": "adv"})
            assert gone.status_code == 404, gone.text


def test_creating_a_file_goes_past_an_object_that_exists(
    crane: Crane, bare: DockerServer, tmp_path: Path
) -> None:
    """A manifest file whose second MiniCluster exists already created the first and stopped:
    the third was never created and never mentioned. As kubectl, it is created too, and the
    one that exists is reported (exit 1)."""
    admin = ("--server", bare.url, "--token", ADMIN, "--tenant", "adv")
    made = crane(*admin, "mc", "create", "mf-2", "--gpu-type", "H100", "--min", "0", "--max", "1")
    assert made.returncode == 0, made.stderr
    docs = [
        "apiVersion: crane.io/v1alpha1\nkind: MiniCluster\n"
        f"metadata: {{name: mf-{i}}}\nspec: {{gpuType: H100, gpus: {{min: 0, max: 1}}}}\n"
        for i in (1, 2, 3)
    ]
    (tmp_path / "three.yaml").write_text("---\n".join(docs))
    done = crane(*admin, "mc", "create", "-f", str(tmp_path / "three.yaml"))
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[:2] == ["minicluster/mf-1 created", "minicluster/mf-3 created"], lines
    assert len(lines) == 3 and "mf-2" in lines[2] and "exists" in lines[2], lines


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["x", "--server", "http://127.0.0.1:9", "--token", "crane_\u00e4"], "no HTTP header"),
        (["x", "--server", "http://" + "a" * 300], "is not a URL"),
        (["", "--server", "http://127.0.0.1:9"], "a context needs a name"),
    ],
)
def test_config_set_saves_nothing_every_later_command_would_refuse(
    crane: Crane, args: list[str], says: str
) -> None:
    """A token no header carries, a URL no resolver takes and an empty context name were
    saved, and every later command failed on them; each is refused when given."""
    done = crane("config", "set", *args)
    _usage(done, says)
    assert not (crane.config_dir / "config.yaml").exists()


def test_following_every_replica_reports_an_unreadable_log_in_one_line(
    crane: Crane, bare: DockerServer
) -> None:
    """``crane cargo logs X --all-replicas -f`` printed a thread's traceback per replica whose
    log could not be read, and exited 0; it is one line per replica, exit 1. Following more
    replicas than connections are sensible is a usage error."""
    admin = ("--server", bare.url, "--token", ADMIN, "--tenant", "adv")
    made = crane(
        *admin, "mc", "create", "logs-mc", "--gpu-type", "H100", "--min", "0", "--max", "1"
    )
    assert made.returncode == 0, made.stderr
    template = {"spec": {"containers": [{"name": "main", "image": "crane-test:busybox"}]}}
    with bare.client() as client:
        for name, replicas in (("two", 2), ("many", 200)):
            spec = {"miniCluster": "logs-mc", "replicas": replicas, "gpusPerReplica": 0}
            cargo = {"name": name, "spec": {**spec, "template": template}}
            made_cargo = client.post("/v1/cargos", params={"tenant": "adv"}, json=cargo)
            assert made_cargo.status_code == 201, made_cargo.text
    done = crane(*admin, "cargo", "logs", "two", "--all-replicas", "-f")
    assert done.returncode == 1, done.stderr
    lines = sorted(done.stderr.strip().splitlines())
    assert [line.split("] ")[0] for line in lines] == ["[replica 0", "[replica 1"], done.stderr
    assert all("] error: " in x and "has no placed replica" in x for x in lines), done.stderr
    _usage(crane(*admin, "cargo", "logs", "many", "--all-replicas", "-f"), "has 200 (at most 128)")


def test_an_api_url_ending_in_v1_reaches_the_api(crane: Crane, bare: DockerServer) -> None:
    """The URL as pasted from the API's docs (``.../v1``) sent every request to /v1/v1/...:
    'not found: no route'; the prefix is the client's to add. A query or fragment is refused."""
    for url in (bare.url + "/v1", bare.url + "/v1/"):
        done = crane("--server", url, "--token", ADMIN, "--tenant", "adv", "mc", "list")
        assert done.returncode == 0, done.stderr
    _usage(crane("--server", bare.url + "?x=1", "--token", ADMIN, "mc", "list"), "query")


def test_a_url_that_is_not_the_crane_api_says_so(crane: Crane) -> None:
    """A web server answering HTML was an 'unexpected JSONDecodeError'; one line now asks
    whether the URL is the Crane API's (exit 1)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    web = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        url = f"http://proxy:secretpw@127.0.0.1:{web.server_address[1]}"
        done = crane("--server", url, "--token", ADMIN, "mc", "list")
    finally:
        web.shutdown()
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "text/html, not the Crane API's JSON" in lines[0], done.stderr
    assert "is the API URL the Crane API's?" in lines[0]
    assert "secretpw" not in done.stderr and "proxy:***@127.0.0.1" in lines[0], lines[0]


def test_an_unreachable_api_url_is_shown_without_its_password(crane: Crane) -> None:
    """An API URL behind a proxy's basic auth (``http://user:password@host``) was printed
    whole when the server could not be reached: the password went to the terminal and to
    whatever log keeps stderr. It is shown as ``user:***@host``."""
    url = f"http://proxy:secretpw@127.0.0.1:{free_port()}"
    done = crane("--server", url, "--token", ADMIN, "mc", "list")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Crane API" in lines[0], done.stderr
    assert "secretpw" not in done.stderr and "proxy:***@127.0.0.1" in lines[0], lines[0]


def test_a_jsonpath_index_past_the_end_says_so(crane: Crane, bare: DockerServer) -> None:
    """Fewer MiniClusters than ``{.items[9999]...}`` asks for: kubectl's 'array index out of
    bounds', exit 1, not an empty line a script would take for an empty name."""
    done = crane(
        "--server", bare.url, "--token", ADMIN, "--tenant", "adv", "mc", "list",
        "-o", "jsonpath={.items[9999].metadata.name}",
    )  # fmt: skip
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "array index out of bounds: index 9999, length" in lines[0]


def test_delete_f_deletes_the_cargos_of_the_file_too(
    crane: Crane, bare: DockerServer, tmp_path: Path
) -> None:
    """``crane mc delete -f`` read only the MiniCluster documents: the Cargo documents of a
    multi-document file (their MiniCluster not in it) stayed, without a word. As kubectl
    delete -f, every object of the file goes."""
    admin = ("--server", bare.url, "--token", ADMIN, "--tenant", "adv")
    for name in ("df-keep", "df-gone"):
        made = crane(*admin, "mc", "create", name, "--gpu-type", "H100", "--min", "0", "--max", "4")
        assert made.returncode == 0, made.stderr
    with bare.client() as client:
        for cargo, mc in (("df-c1", "df-keep"), ("df-c2", "df-keep"), ("df-c3", "df-gone")):
            added = client.post(
                "/v1/cargos",
                params={"tenant": "adv", "allowPending": "true"},
                json={"name": cargo, "spec": {"miniCluster": mc, "replicas": 1,
                      "gpusPerReplica": 1, "template": {"spec": {"containers": [
                          {"name": "main", "image": "crane-test:busybox"}]}}}},
            )  # fmt: skip
            assert added.status_code == 201, added.text
    cargo = "apiVersion: crane.io/v1alpha1\nkind: Cargo\nmetadata: {{name: {}}}\nspec: {{miniCluster: {}, replicas: 1, gpusPerReplica: 1}}\n"  # noqa: E501
    docs = [
        cargo.format("df-c1", "df-keep"),
        "apiVersion: crane.io/v1alpha1\nkind: MiniCluster\nmetadata: {name: df-gone}\n"
        "spec: {gpuType: H100, gpus: {min: 0, max: 4}}\n",
        cargo.format("df-c3", "df-gone"),
    ]
    (tmp_path / "mixed.yaml").write_text("---\n".join(docs))
    done = crane(*admin, "mc", "delete", "-f", str(tmp_path / "mixed.yaml"), "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [
        "cargo/df-c1 deleted",
        "minicluster/df-gone deleted",
    ]
    with bare.client() as client:

        def status(path: str) -> int:
            return client.get(path, params={"tenant": "adv"}).status_code

        assert status("/v1/cargos/df-c1") == 404
        assert status("/v1/miniclusters/df-gone") == 404
        assert status("/v1/cargos/df-c2") == 200  # not in the file
        assert status("/v1/miniclusters/df-keep") == 200
    (tmp_path / "cargos.yaml").write_text(cargo.format("df-c2", "df-keep"))
    refused = crane(*admin, "cargo", "delete", "-f", str(tmp_path / "mixed.yaml"), "--yes")
    _usage(refused, "MiniCluster df-gone is no cargo", "crane mc delete -f")
    only = crane(*admin, "cargo", "delete", "-f", str(tmp_path / "cargos.yaml"), "--yes")
    assert only.returncode == 0, only.stderr
    assert only.stderr.strip() == "cargo/df-c2 deleted"
    again = crane(*admin, "mc", "delete", "-f", str(tmp_path / "cargos.yaml"), "--yes")
    assert again.returncode == 1 and "df-c2" in again.stderr, again.stderr


@pytest.mark.parametrize("kind", ["missing", "folder", "not-yaml"])
def test_crane_operator_refuses_a_kubeconfig_it_cannot_read_in_one_line(
    crane: Crane, tmp_path: Path, kind: str
) -> None:
    """``crane operator --kubeconfig`` naming no file, a folder or a file that is no YAML ran
    on: kopf logged a traceback ('Service host/port is not set', 'Is a directory') and tried
    again each minute, for ever. The file is the command line's mistake: one line, exit 2."""
    path = tmp_path / "kubeconfig"
    if kind == "folder":
        path.mkdir()
    elif kind == "not-yaml":
        path.write_text("clusters: [")
    done = crane("operator", "--kubeconfig", str(path))
    _usage(done, str(path), "--kubeconfig")


def test_a_manifest_lands_in_the_tenant_it_names_or_is_refused(
    crane: Crane, bare: DockerServer, tmp_path: Path
) -> None:
    """``crane mc get -o yaml`` writes metadata.tenant, and ``crane mc create -f`` read it for
    nothing: an admin creating the file again without ``--tenant`` made the MiniCluster in
    tenant default, and with another ``--tenant`` in that one, without a word. As kubectl with
    a namespace, the file's tenant is used, and a ``--tenant`` saying another is exit 2."""
    admin = ("--server", bare.url, "--token", ADMIN)
    with bare.client() as client:
        made = client.post(
            "/v1/miniclusters",
            params={"tenant": "adv"},
            json={"name": "moved", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 2}}},
        )
        assert made.status_code == 201, made.text
        shown = crane(*admin, "--tenant", "adv", "mc", "get", "moved", "-o", "yaml")
        assert shown.returncode == 0, shown.stderr
        path = tmp_path / "moved.yaml"
        path.write_text(shown.stdout)
        assert client.delete("/v1/miniclusters/moved", params={"tenant": "adv"}).status_code == 204

        elsewhere = crane(*admin, "--tenant", "victim", "mc", "create", "-f", str(path))
        _usage(elsewhere, "its tenant is 'adv', not 'victim'", "--tenant adv")
        again = crane(*admin, "mc", "create", "-f", str(path))
        assert again.returncode == 0, again.stderr
        for tenant, status in (("adv", 200), ("victim", 404), ("default", 404)):
            got = client.get("/v1/miniclusters/moved", params={"tenant": tenant})
            assert got.status_code == status, (tenant, got.text)
        gone = crane(*admin, "mc", "delete", "-f", str(path), "--yes")
        assert gone.returncode == 0, gone.stderr
        assert client.get("/v1/miniclusters/moved", params={"tenant": "adv"}).status_code == 404


def test_an_empty_tenant_is_a_usage_error_not_the_default_tenant(
    crane: Crane, bare: DockerServer
) -> None:
    """``--tenant "$TEAM"`` with ``TEAM`` unset must not act in the default tenant: the CLI
    says so in one line (exit 2) and the SDK sends the empty name, which the API refuses; the
    default tenant's MiniCluster of that name is kept either way."""
    from crane.client import Client, Invalid

    with bare.client() as admin:
        body = {"name": "kept", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 1}}}
        made = admin.post("/v1/miniclusters", json=body)
        assert made.status_code == 201, made.text
    done = crane(
        "--server", bare.url, "--token", ADMIN, "--tenant", "", "mc", "delete", "kept", "-y"
    )
    _usage(done, "--tenant", "empty")
    with Client(bare.url, ADMIN, tenant="") as sdk, pytest.raises(Invalid):
        sdk.delete_minicluster("kept")
    with bare.client() as admin:
        assert admin.get("/v1/miniclusters/kept").status_code == 200
