"""Issue 15's polish and kubectl habits that need no server: help, errors, -o, login, config."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from crane.cli.cargo import parse_duration
from crane.cli.errors import describe
from crane.cli.manifest import parse_manifests
from crane.cli.objects import listing, manifest
from crane.cli.render import Column, Format, jsonpath, parse_format, render
from crane.cli.term import UsageError
from crane.client import MiniCluster, error_from_response
from crane.model.specs import MiniClusterSpec
from tests.support import crane, free_port


def _problem(
    status: int, detail: str, errors: list[dict[str, object]] | None = None
) -> BaseException:
    body: dict[str, object] = {
        "type": "about:blank",
        "title": "t",
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return error_from_response(
        httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})
    )


def _mc(name: str = "study", labels: dict[str, str] | None = None) -> MiniCluster:
    spec = MiniClusterSpec.model_validate({"gpuType": "H100", "gpus": {"min": 4, "max": 8}})
    return MiniCluster(
        name=name,
        tenant="default",
        uid="u1",
        spec=spec,
        labels=labels or {},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_help_has_no_python_type_names_and_every_level(tmp_path: Path) -> None:
    for command in (["mc", "create"], ["cargo", "add"], ["up"], ["mc", "list"]):
        text = crane(*command, "--help", config_dir=tmp_path, COLUMNS="80").stdout
        for python in ("<bool>", "<int>", "<str>", "<list[str]>", "<float>"):
            assert python not in text, (command, text)
    level = crane("mc", "create", "--help", config_dir=tmp_path, COLUMNS="80").stdout
    assert "…" not in level
    assert all(word in level for word in ("zone", "block", "rack", "nvlink", "node"))


def test_remedy_said_once_when_the_server_gives_one() -> None:
    exc = _problem(
        404, "cargo 'x' not found in tenant 'default': list them with `crane cargo list`"
    )
    line = describe(exc).line()
    assert line.count("crane cargo list") == 1
    assert "crane mc list" not in line


def test_invalid_name_is_a_sentence_not_a_regex() -> None:
    exc = _problem(
        422,
        "invalid",
        [
            {
                "loc": ["body", "name"],
                "msg": "String should match pattern '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
            }
        ],
    )
    line = describe(exc).line()
    assert "[a-z0-9]" not in line
    assert "lower-case letters, digits and '-'" in line


def test_login_without_scheme_says_what_it_uses(tmp_path: Path) -> None:
    port = free_port()
    done = crane("login", f"127.0.0.1:{port}", "--token", "t", config_dir=tmp_path, COLUMNS="80")
    assert f"using http://127.0.0.1:{port}" in done.stderr
    assert f"cannot reach the Crane API at http://127.0.0.1:{port}" in done.stderr
    assert "crane config current" not in done.stderr and "HTTP error" not in done.stderr


def test_config_view_masks_the_token_readably(tmp_path: Path) -> None:
    secret = "crane_abcdef_" + "x" * 30
    assert (
        crane(
            "config",
            "set",
            "dev",
            "--server",
            "http://dev:1",
            "--token",
            secret,
            config_dir=tmp_path,
            COLUMNS="80",
        ).returncode
        == 0
    )
    view = crane("config", "view", config_dir=tmp_path, COLUMNS="80").stdout
    assert secret not in view
    assert "\\u2026" not in view
    assert "crane_ab...(redacted)" in view


def test_get_yaml_is_a_manifest_create_takes_back() -> None:
    out = io.StringIO()
    render(manifest(_mc()), Format.YAML, stream=out)
    (back,) = parse_manifests(out.getvalue())
    assert back.kind == "MiniCluster" and back.name == "study"
    assert back.spec == _mc().spec
    out = io.StringIO()
    render(listing([_mc("a"), _mc("b")]), Format.YAML, stream=out)
    assert [m.name for m in parse_manifests(out.getvalue())] == ["a", "b"]
    assert yaml.safe_load(out.getvalue())["count"] == 2


def test_output_formats() -> None:
    cols = [Column("name", lambda m: m.name), Column("uid", lambda m: m.uid, wide=True)]
    out = io.StringIO()
    render([_mc()], Format.TABLE, cols, stream=out)
    assert out.getvalue().split() == ["NAME", "study"]
    out = io.StringIO()
    render([_mc()], Format.WIDE, cols, stream=out, headers=False)
    assert out.getvalue().split() == ["study", "u1"]
    out = io.StringIO()
    render([_mc("a"), _mc("b")], Format.NAME, cols, stream=out)
    assert out.getvalue() == "minicluster/a\nminicluster/b\n"
    doc = listing([_mc("a"), _mc("b")])
    assert jsonpath(doc, "{.items[*].metadata.name}") == "a b"
    assert jsonpath(doc, "{.items[0].spec.gpus.max}") == "8"
    assert parse_format("jsonpath={.count}") == "jsonpath={.count}"


def test_wait_message_when_matching_gpus_are_busy() -> None:
    """Eight H100 exist but all are used: the sentence says they are busy, not missing."""
    from crane.placement.types import Explanation

    busy = Explanation(needed_gpus=4, gpu_type="H100", level="node", required=False)
    assert "no node has matching GPUs" not in busy.sentence()
    assert "every H100 GPU is reserved or in use" in busy.sentence()
    none = Explanation(
        needed_gpus=4, gpu_type="B200", level="node", required=False, detail="no node has B200 GPUs"
    )
    assert none.sentence().count("no node has") == 1


def test_since_takes_kubectl_durations() -> None:
    assert parse_duration("30s") == 30
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2d") == 172_800
    for bad in ("10", "m", "1x", "-5m", "0s", "10m "):
        with pytest.raises(UsageError):
            parse_duration(bad)


@pytest.mark.parametrize("text", ["9" * 5000 + "s", "\u0661s", "\uff11m"])
def test_a_duration_of_absurd_or_foreign_digits_is_a_usage_error(text: str) -> None:
    """5000 digits were an 'unexpected ValueError' (Python's integer limit); Arabic-Indic or
    full-width digits were read as 1s or 1m."""
    with pytest.raises(UsageError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("{.items[5].metadata.name}", "index 5, length 2"),
        ("{.items[-3]}", "index -3, length 2"),
        ("{.items[*].spec.cargos[1]}", "index 1, length 1"),
    ],
)
def test_a_jsonpath_index_past_the_end_is_an_error_not_silence(template: str, said: str) -> None:
    """kubectl says 'array index out of bounds'; an empty line would read as 'no value'."""
    doc = {
        "items": [
            {"metadata": {"name": "a"}, "spec": {"cargos": ["x"]}},
            {"metadata": {"name": "b"}, "spec": {"cargos": ["y", "z"]}},
        ]
    }
    out = io.StringIO()
    with pytest.raises(ValueError) as caught:
        render(doc, parse_format(f"jsonpath={template}"), stream=out)
    assert out.getvalue() == ""
    failure = describe(caught.value)
    assert failure.code == 1
    assert "array index out of bounds" in failure.line() and said in failure.line()
    assert "unexpected" not in failure.line()
    # a missing field still reads as nothing, as kubectl's default
    render(doc, parse_format("jsonpath={.items[0].status.phase}"), stream=out)
    assert out.getvalue() == "\n"
