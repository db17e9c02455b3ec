"""Input a careless or hostile client sends, each answered with a 422 naming the field, nothing
stored, and the server serving on: JSON booleans and strings where numbers or booleans belong,
labels Kubernetes would refuse, a gpuType or miniCluster the CRDs refuse, a template nested
past any real pod's depth. The server runs the Docker backend without hosts (no daemon)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.dockerd import DockerServer, serve_docker

ADMIN = "crane_advinput_" + "a" * 43
TENANT = "adv"
SPEC: dict[str, Any] = {"gpuType": "H100", "gpus": {"min": 0, "max": 8}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerServer]:
    running = serve_docker(tmp_path_factory.mktemp("adv-input"), ADMIN, [])
    with running.client() as admin:
        assert admin.post("/v1/tenants", json={"name": TENANT}).status_code == 201
        made = admin.post(
            "/v1/miniclusters",
            params={"tenant": TENANT},
            json={"name": "keep", "spec": SPEC, "labels": {"team": "ml"}},
        )
        assert made.status_code == 201, made.text
    yield running
    running.stop()


@pytest.fixture
def admin(server: DockerServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def _refused(answer: httpx.Response, field: str, words: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert any(".".join(map(str, e["loc"][1:])) == field for e in problem["errors"]), problem
    assert words in problem["detail"], problem["detail"]


def _names(admin: httpx.Client) -> list[str]:
    listed = admin.get("/v1/miniclusters", params={"tenant": TENANT})
    assert listed.status_code == 200, listed.text
    return [mc["name"] for mc in listed.json()["items"]]


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({**SPEC, "gpus": {"min": True, "max": 8}}, "spec.gpus.min", "not a boolean"),
        ({**SPEC, "gpus": {"min": 0, "max": "8"}}, "spec.gpus.max", "not a string"),
        ({**SPEC, "priority": "5"}, "spec.priority", "not a string"),
        ({**SPEC, "suspend": 1}, "spec.suspend", "true or false"),
        ({**SPEC, "suspend": "false"}, "spec.suspend", "true or false"),
    ],
)
def test_json_booleans_and_strings_are_not_numbers_or_flags(
    admin: httpx.Client, spec: dict[str, Any], field: str, words: str
) -> None:
    made = admin.post(
        "/v1/miniclusters", params={"tenant": TENANT}, json={"name": "typed", "spec": spec}
    )
    _refused(made, field, words)
    assert "typed" not in _names(admin)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/miniclusters/keep", {"replicas": False}, "replicas"),
        ("/v1/miniclusters/keep", {"suspend": "yes"}, "suspend"),
        ("/v1/miniclusters/keep:grow", {"count": True}, "count"),
        ("/v1/miniclusters/keep:grow", {"count": 1, "wait": "true"}, "wait"),
        ("/v1/miniclusters/keep:grow", {"count": 1, "timeoutSeconds": True}, "timeoutSeconds"),
        ("/v1/miniclusters/keep:shrink", {"count": "1"}, "count"),
    ],
)
def test_patch_grow_and_shrink_take_json_types_only(
    admin: httpx.Client, path: str, body: dict[str, Any], field: str
) -> None:
    method = "PATCH" if ":" not in path else "POST"
    answer = admin.request(method, path, params={"tenant": TENANT}, json=body)
    _refused(answer, field, "Input should be")
    kept = admin.get("/v1/miniclusters/keep", params={"tenant": TENANT}).json()
    assert kept["spec"]["suspend"] is False and kept["spec"]["replicas"] is None
    assert kept["status"]["cargos"] == 0


@pytest.mark.parametrize(
    "labels",
    [
        {"a/b/c": "x"},
        {"team": "\x00"},
        {"ü": "x"},
        {"k" * 64: "v"},
        {"team": "v" * 64},
        {"": "x"},
        {f"k{i}": "v" for i in range(65)},
    ],
)
def test_labels_kubernetes_would_refuse_are_422_and_change_nothing(
    admin: httpx.Client, labels: dict[str, str]
) -> None:
    made = admin.post(
        "/v1/miniclusters",
        params={"tenant": TENANT},
        json={"name": "labelled", "spec": SPEC, "labels": labels},
    )
    assert made.status_code == 422 and made.json()["errors"][0]["loc"][-1] == "labels", made.text
    patched = admin.patch(
        "/v1/miniclusters/keep", params={"tenant": TENANT}, json={"labels": labels}
    )
    assert patched.status_code == 422, patched.text
    assert "labelled" not in _names(admin)
    kept = admin.get("/v1/miniclusters/keep", params={"tenant": TENANT}).json()
    assert kept["labels"] == {"team": "ml"}


def test_prefixed_labels_are_kept(admin: httpx.Client) -> None:
    labels = {"crane.io/study": "s-1", "team": "", "A.b_c": "V.1"}
    made = admin.post(
        "/v1/miniclusters",
        params={"tenant": TENANT},
        json={"name": "prefixed", "spec": SPEC, "labels": labels},
    )
    assert made.status_code == 201, made.text
    assert made.json()["labels"] == labels
    assert admin.delete("/v1/miniclusters/prefixed", params={"tenant": TENANT}).status_code in (
        200,
        202,
        204,
    )


def test_gpu_type_and_minicluster_names_the_crds_refuse_are_422(admin: httpx.Client) -> None:
    long_type = admin.post(
        "/v1/miniclusters",
        params={"tenant": TENANT},
        json={"name": "long", "spec": {**SPEC, "gpuType": "H" * 129}},
    )
    _refused(long_type, "spec.gpuType", "at most 128 characters")
    assert "long" not in _names(admin)
    cargo = admin.post(
        "/v1/cargos", params={"tenant": TENANT}, json={"spec": {"miniCluster": "../keep"}}
    )
    _refused(cargo, "spec.miniCluster", "should match pattern")


def test_a_template_nested_too_deep_is_422_and_the_server_serves_on(admin: httpx.Client) -> None:
    deep: dict[str, Any] = {"a": 1}
    for _ in range(900):
        deep = {"a": deep}
    container = {"name": "main", "image": "crane-test:busybox", "x": deep}
    template = {"template": {"spec": {"containers": [container]}}}
    made = admin.post(
        "/v1/miniclusters",
        params={"tenant": TENANT},
        json={"name": "deep", "spec": {**SPEC, "template": template}},
    )
    assert made.status_code == 422, made.text
    assert "nests deeper than 64 levels" in made.json()["detail"]
    assert "deep" not in _names(admin)
    assert admin.get("/healthz").status_code == 200


def _docker_template(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    main = {"name": "main", "image": "crane-test:busybox", **container}
    return {"spec": {"containers": [main], **spec}}


@pytest.mark.parametrize(
    ("template", "words"),
    [
        (_docker_template({"resources": {"limits": {"cpu": "1e400"}}}), "not a quantity"),
        (_docker_template({"resources": {"limits": {"cpu": "1e300"}}}), "below 2^63"),
        (_docker_template({"resources": {"limits": {"memory": "nan"}}}), "not a quantity"),
        (_docker_template({"resources": {"limits": {"memory": "-5Gi"}}}), "not a quantity"),
        (
            _docker_template(
                {"volumeMounts": [{"name": "s", "mountPath": "/dev/shm"}]},
                volumes=[{"name": "s", "emptyDir": "big"}],
            ),
            "must be an object",
        ),
        (
            _docker_template(
                {"volumeMounts": [{"name": "c", "mountPath": "/c"}]},
                volumes=[{"name": "c", "persistentVolumeClaim": ["x"]}],
            ),
            "must be an object",
        ),
        (
            {
                "metadata": {"annotations": {"crane.io/ulimits": "nofile=99999999999999999999"}},
                **_docker_template({}),
            },
            "crane.io/ulimits",
        ),
        (
            _docker_template({"env": [{"name": "NVIDIA_VISIBLE_DEVICES=all,", "value": ""}]}),
            "env[0].name: 'NVIDIA_VISIBLE_DEVICES=all,' has '='",
        ),
        (_docker_template({"env": [{"name": "A=B", "value": "c"}]}), "without '='"),
        (
            {
                "metadata": {"annotations": {"crane.io/ulimits": "rtprio=99"}},
                **_docker_template({}),
            },
            "rtprio lets the container raise its own scheduling priority",
        ),
        (
            {"metadata": {"annotations": {"crane.io/ulimits": "bogus=1"}}, **_docker_template({})},
            "'bogus=1' is not name=soft[:hard]",
        ),
        (
            _docker_template(
                {
                    "volumeMounts": [
                        {"name": "c", "mountPath": "/var/run/nvidia-container-devices/all"}
                    ]
                },
                volumes=[{"name": "c", "persistentVolumeClaim": {"claimName": "c"}}],
            ),
            "reads a mount there as a request for GPUs",
        ),
        (
            {"metadata": {"labels": {"crane.io/cargo": "other"}}, **_docker_template({})},
            "metadata.labels[crane.io/cargo]: is Crane's own",
        ),
        (
            {"metadata": {"annotations": {"crane.io/notice": "x"}}, **_docker_template({})},
            "metadata.annotations[crane.io/notice]: is Crane's own",
        ),
        (
            _docker_template({"env": [{"name": "CRANE_RDZV_ENDPOINT", "value": "other-rdzv:1"}]}),
            "env[0]: CRANE_RDZV_ENDPOINT is Crane's",
        ),
        (_docker_template({"env": [{"name": "MASTER_ADDR", "value": "x"}]}), "MASTER_ADDR is"),
        (_docker_template({"env": [{"name": "", "value": "c"}]}), "env[0].name: must not be"),
        (_docker_template({"env": [{"name": "T\u00e4g", "value": "c"}]}), "printable ASCII"),
    ],
)
def test_absurd_docker_template_values_are_422_not_500(
    admin: httpx.Client, template: dict[str, Any], words: str
) -> None:
    """Numbers Docker cannot take (infinite, NaN, negative, past int64), volume sources that
    are not objects, and env names Kubernetes refuses (Docker would set another variable from
    ``A=B``, or with ``NVIDIA_VISIBLE_DEVICES=all,`` one Crane did not choose): a 422 saying
    which, nothing stored, never a 500."""
    cargo = {"miniCluster": "keep", "gpusPerReplica": 0, "template": template}
    made = admin.post("/v1/cargos", params={"tenant": TENANT}, json={"name": "odd", "spec": cargo})
    assert made.status_code == 422, made.text
    assert made.headers["content-type"] == "application/problem+json"
    assert words in made.json()["detail"], made.json()["detail"]
    assert admin.get("/v1/cargos/odd", params={"tenant": TENANT}).status_code == 404


def test_a_token_description_with_control_characters_is_422(admin: httpx.Client) -> None:
    before = admin.get("/v1/tokens").json()["count"]
    for text in ("\x1b[31mred", "line\nbreak", "nul\x00"):
        made = admin.post(
            "/v1/tokens", json={"scope": "tenant", "tenant": TENANT, "description": text}
        )
        _refused(made, "description", "should match pattern")
    assert admin.get("/v1/tokens").json()["count"] == before


def test_a_name_being_deleted_says_so_instead_of_delete_it_first(admin: httpx.Client) -> None:
    """Right after DELETE the MiniCluster reads as gone (404) while its cargos stop; a create
    of the same name meanwhile must not tell the user to delete what they cannot see."""
    template = {"spec": {"containers": [{"name": "main", "image": "crane-test:busybox"}]}}
    spec = {**SPEC, "template": {"template": template}}
    body = {"name": "again", "spec": spec}
    assert admin.post("/v1/miniclusters", params={"tenant": TENANT}, json=body).status_code == 201
    grown = admin.post(
        "/v1/miniclusters/again:grow",
        params={"tenant": TENANT},
        json={"count": 2, "allowPending": True},
    )
    assert grown.status_code == 200 and grown.json()["added"] == 2, grown.text
    assert admin.delete("/v1/miniclusters/again", params={"tenant": TENANT}).status_code == 204
    deadline = time.monotonic() + 60
    while True:
        made = admin.post("/v1/miniclusters", params={"tenant": TENANT}, json=body)
        if made.status_code == 201:
            break
        assert made.status_code == 409, made.text
        assert "is being deleted" in made.json()["detail"], made.text
        assert admin.get("/v1/miniclusters/again", params={"tenant": TENANT}).status_code == 404
        assert time.monotonic() < deadline, "the deleted MiniCluster never went away"
        time.sleep(0.05)
    assert admin.delete("/v1/miniclusters/again", params={"tenant": TENANT}).status_code == 204


def test_head_answers_wherever_the_allow_header_says_it_does(admin: httpx.Client) -> None:
    """Every 405 lists HEAD where GET is; HEAD then answers as GET does, without the body."""
    refused = admin.put("/v1/miniclusters")
    assert "HEAD" in refused.headers["allow"]
    for path in ("/v1/miniclusters", "/v1/miniclusters/keep"):
        got = admin.get(path, params={"tenant": TENANT})
        head = admin.head(path, params={"tenant": TENANT})
        assert head.status_code == got.status_code == 200, head.text
        assert head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"]
    missing = admin.head("/v1/miniclusters/nope", params={"tenant": TENANT})
    assert missing.status_code == 404 and missing.content == b""
    assert admin.get("/healthz").status_code == 200


def test_deleting_the_minicluster_ends_a_waiting_grow_at_once(server: DockerServer) -> None:
    """A grow with wait=true whose MiniCluster is deleted meanwhile answers promptly (not
    after the whole timeout) with 404 saying the MiniCluster was deleted, as in Kubernetes
    mode (tests/e2e/test_backend_parity.py runs the same on both backends)."""
    template = {"spec": {"containers": [{"name": "main", "image": "crane-test:busybox"}]}}
    body = {"name": "waited", "spec": {**SPEC, "template": {"template": template}}}
    answer: dict[str, Any] = {}
    with server.client() as admin:
        made = admin.post("/v1/miniclusters", params={"tenant": TENANT}, json=body)
        assert made.status_code == 201, made.text

        def grow() -> None:
            with server.client() as other:
                started = time.monotonic()
                answer["response"] = other.post(
                    "/v1/miniclusters/waited:grow",
                    params={"tenant": TENANT},
                    json={"count": 2, "allowPending": True, "wait": True, "timeoutSeconds": 120},
                )
                answer["seconds"] = time.monotonic() - started

        waiting = threading.Thread(target=grow)
        waiting.start()
        deadline = time.monotonic() + 30
        params = {"tenant": TENANT, "miniCluster": "waited"}
        while admin.get("/v1/cargos", params=params).json()["count"] < 2:
            assert time.monotonic() < deadline, "the grow added no cargos"
            time.sleep(0.05)
        assert admin.delete("/v1/miniclusters/waited", params={"tenant": TENANT}).status_code == 204
        waiting.join(timeout=90)
        assert not waiting.is_alive(), "the grow still waits for cargos that were deleted"
    grown = answer["response"]
    assert grown.status_code == 404, grown.text
    assert answer["seconds"] < 60
    assert "MiniCluster 'waited' was deleted while the grow waited" in grown.text, grown.text


@pytest.mark.parametrize(
    ("content", "media", "words"),
    [
        (b'{"name": "ct", "spec": {}}', "text/plain", "Content-Type 'text/plain'"),
        (b"name=ct", "application/x-www-form-urlencoded", "must be JSON"),
        (b'{"name": "ct", "spec": {}}', None, "no Content-Type"),
        (b'{"name": ', "application/json", "not valid JSON"),
    ],
)
def test_a_body_that_is_not_json_is_a_400_saying_so(
    admin: httpx.Client, content: bytes, media: str | None, words: str
) -> None:
    headers = {"content-type": media} if media else {}
    made = admin.post(
        "/v1/miniclusters", params={"tenant": TENANT}, content=content, headers=headers
    )
    assert made.status_code == 400, made.text
    assert made.headers["content-type"] == "application/problem+json"
    assert words in made.json()["detail"], made.json()["detail"]
    assert "ct" not in _names(admin)


def test_the_log_of_a_replica_past_1023_can_be_asked_for(admin: httpx.Client) -> None:
    """A cargo may have 10000 replicas: the log of replica 1500 is asked like any other (here
    the cargo waits for a host, so it has no container yet), while past the cargo's maximum it
    is a 422 naming the range."""
    template = _docker_template({})
    cargo = {"miniCluster": "keep", "replicas": 2000, "gpusPerReplica": 0, "template": template}
    made = admin.post("/v1/cargos", params={"tenant": TENANT}, json={"name": "wide", "spec": cargo})
    assert made.status_code == 201, made.text
    try:
        url = "/v1/cargos/wide/logs"
        answer = admin.get(url, params={"tenant": TENANT, "replica": 1500})
        assert answer.status_code == 404, answer.text
        assert "no placed replica 1500: it has 2000 replicas" in answer.json()["detail"]
        past = admin.get(url, params={"tenant": TENANT, "replica": 10_000})
        assert past.status_code == 422 and "9999" in past.json()["detail"], past.text
    finally:
        admin.delete("/v1/cargos/wide", params={"tenant": TENANT})


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_no_json_numbers(admin: httpx.Client, constant: str) -> None:
    """Python's JSON parser takes NaN and Infinity; a template holding one was stored and came
    back as null (and Kubernetes refuses them). A 400 says so; the word in a string is fine."""
    container = '{"name": "main", "image": "crane-test:busybox"}'
    template = f'{{"metadata": {{"x": {constant}}}, "spec": {{"containers": [{container}]}}}}'
    spec = f'{{"miniCluster": "keep", "gpusPerReplica": 0, "template": {template}}}'
    body = f'{{"name": "nonfinite", "spec": {spec}}}'
    made = admin.post(
        "/v1/cargos",
        params={"tenant": TENANT},
        content=body,
        headers={"content-type": "application/json"},
    )
    assert made.status_code == 400, made.text
    assert made.headers["content-type"] == "application/problem+json"
    assert f"{constant.lstrip('-')} is no JSON number" in made.json()["detail"]
    assert admin.get("/v1/cargos/nonfinite", params={"tenant": TENANT}).status_code == 404
    words = admin.patch(
        "/v1/miniclusters/keep",
        params={"tenant": TENANT},
        content='{"labels": {"team": "ml", "note": "NaN-Infinity"}}',
        headers={"content-type": "application/json"},
    )
    assert words.status_code == 200, words.text
    admin.patch("/v1/miniclusters/keep", params={"tenant": TENANT}, json={"labels": {"team": "ml"}})


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"until": "0001-01-01T00:00:00Z"}, "until"),  # the default window starts a day before
        ({"until": "0001-01-01T12:00:00+14:00"}, "until"),  # before year 1 in UTC
        ({"until": "9999-12-31T23:59:59-14:00"}, "until"),  # after year 9999 in UTC
        ({"since": "0001-01-01T00:00:00+14:00"}, "since"),
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_422_not_500(
    admin: httpx.Client, params: dict[str, str], field: str
) -> None:
    """``GET /v1/usage?until=0001-01-01T00:00:00Z`` answered 500 (OverflowError: the default
    window starts a day earlier), and a date past year 9999 in UTC a 500 from the database."""
    _refused(admin.get("/v1/usage", params=params), field, "outside the dates Crane takes")
    assert admin.get("/v1/usage").status_code == 200


def test_a_token_expiring_past_the_calendar_is_422(admin: httpx.Client) -> None:
    body = {"scope": "tenant", "tenant": TENANT, "expiresAt": "9999-12-31T23:59:59-14:00"}
    _refused(admin.post("/v1/tokens", json=body), "expiresAt", "outside the dates Crane takes")


def test_a_cargo_past_the_worlds_node_max_is_422_and_a_grow_is_denied(
    admin: httpx.Client,
) -> None:
    """torchrun keeps nodes past ``CRANE_NNODES``' max out of the world, waiting: a cargo that
    would add them was created and idled on its GPUs; now a 422 (create) or a denial (grow),
    naming the bound."""
    container = {"name": "m", "image": "busybox"}
    template = {"spec": {"containers": [container]}}
    spec = {
        "gpuType": "H100",
        "gpus": {"min": 4, "max": 8},
        "template": {"replicas": 1, "gpusPerReplica": 4, "template": template},
        "rendezvous": {"enabled": True},
    }  # CRANE_NNODES=1:2
    made = admin.post(
        "/v1/miniclusters", params={"tenant": TENANT}, json={"name": "world", "spec": spec}
    )
    assert made.status_code == 201, made.text
    try:
        # 4 nodes of 1 GPU: within gpus.max, past the world's 2 nodes
        cargo = {"miniCluster": "world", "replicas": 4, "gpusPerReplica": 1, "template": template}
        added = admin.post(
            "/v1/cargos", params={"tenant": TENANT}, json={"name": "extra", "spec": cargo}
        )
        assert added.status_code == 422, added.text
        assert "4 torchrun nodes" in added.json()["detail"], added.text
        assert "over CRANE_NNODES=1:2" in added.json()["detail"], added.text
        shape = {"replicas": 3, "gpusPerReplica": 1, "template": template}
        grown = admin.post(
            "/v1/miniclusters/world:grow", params={"tenant": TENANT}, json={"cargos": [shape]}
        )
        assert "over CRANE_NNODES=1:2" in grown.text, grown.text
    finally:
        assert admin.delete("/v1/miniclusters/world", params={"tenant": TENANT}).is_success


@pytest.mark.parametrize(
    "url", ["tcp://[::1", "tcp://127.0.0.1:99999999", "tcp://h:-1", "tcp://", "https://h:port"]
)
def test_a_docker_host_address_the_client_cannot_read_is_422_and_nothing_is_stored(
    admin: httpx.Client, url: str
) -> None:
    """A torn IPv6 address or a port out of range was a 500 (the Docker client's ValueError)."""
    body = {"name": "h-bad-url", "dockerHost": url, "gpuType": "H100", "gpus": 8}
    answer = admin.post("/v1/hosts", json=body)
    _refused(answer, "dockerHost", "no Docker API address")
    assert admin.get("/v1/hosts/h-bad-url").status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dockerHost", "tcp://gpu-02\n:2376"),
        ("dockerHost", "unix:///var/run/docker.sock\x00"),
        ("dockerHost", "ssh://gpu-02\x1b[2J"),
        ("tlsCa", "/etc/crane/ca.pem\x00"),
        ("tlsCert", "/etc/crane/cert\n.pem"),
        ("tlsKey", "/etc/crane/key.pem\x7f"),
        ("gpuType", "H100\t"),
    ],
)
def test_a_docker_host_field_with_control_characters_is_422_and_nothing_is_stored(
    admin: httpx.Client, field: str, value: str
) -> None:
    """A NUL byte, newline or escape in what the server hands to the Docker client (its
    address, TLS files) was stored and shown back: such a host can never be reached, and a
    line break in it forges lines in every listing and log that shows it."""
    body = {"name": "h-ctl", "dockerHost": "tcp://gpu-02:2376", "gpuType": "H100", "gpus": 8}
    answer = admin.post("/v1/hosts", json={**body, field: value})
    _refused(answer, field, "control character")
    assert admin.get("/v1/hosts/h-ctl").status_code == 404
    assert admin.get("/v1/hosts").json()["count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "NaN" + "]" * 100_000,
        '{"name": "deep", "labels": ' + '{"a": ' * 20_000 + '"NaN"' + "}" * 20_000 + "}",
    ],
    ids=["constant", "string"],
)
def test_a_body_nested_deep_that_says_nan_is_a_400_not_a_500(
    admin: httpx.Client, body: str
) -> None:
    """A body nested 20,000 levels deep holding the word NaN (a string is enough) answered a
    text/plain 500 with a RecursionError in the log: the NaN check parsed it before any
    router and did not expect the parser to give up on depth."""
    made = admin.post(
        "/v1/miniclusters",
        params={"tenant": TENANT},
        content=body,
        headers={"content-type": "application/json"},
    )
    assert made.status_code == 400, made.text
    assert made.headers["content-type"] == "application/problem+json"
    assert "nested too deep" in made.json()["detail"], made.json()["detail"]
    assert "deep" not in _names(admin)
    assert admin.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (
            '{"name": "dup-a", "name": "dup-b", "spec": {"gpuType": "H100", "gpus": '
            '{"min": 0, "max": 8}}}',
            "name",
        ),
        (
            '{"name": "dup-c", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 8, '
            '"max": 2}}}',
            "max",
        ),
    ],
)
def test_a_key_sent_twice_in_one_object_is_refused(
    admin: httpx.Client, body: str, key: str
) -> None:
    """``{"name": "dup-a", "name": "dup-b"}`` made MiniCluster dup-b: the last of two keys won
    without a word, so a proxy or an audit reading the first saw another request than the one
    that ran. Now a 400 naming the key, and nothing is made."""
    made = admin.post(
        "/v1/miniclusters",
        params={"tenant": TENANT},
        content=body,
        headers={"content-type": "application/json"},
    )
    assert made.status_code == 400, made.text
    assert made.headers["content-type"] == "application/problem+json"
    assert f"the key {key!r} twice" in made.json()["detail"], made.json()["detail"]
    assert not {"dup-a", "dup-b", "dup-c"} & set(_names(admin))
