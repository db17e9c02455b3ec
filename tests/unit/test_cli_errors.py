"""The error map: one line with a remedy, the right exit code, a traceback only when debugging."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import ValidationError

from crane.cli.errors import FAILED, USAGE, describe, report
from crane.cli.term import Declined, UsageError
from crane.client import (
    ConnectionFailed,
    CraneError,
    NotConfigured,
    WaitTimeout,
    error_from_response,
)
from crane.model.shares import TenantShare
from crane.model.specs import GpuRange
from tests.support import crane


def _problem(status: int, **extra: object) -> CraneError:
    body = {"type": "about:blank", "title": "t", "status": status, "detail": "mc x: boom", **extra}
    response = httpx.Response(
        status, json=body, headers={"content-type": "application/problem+json"}
    )
    return error_from_response(response)


def _validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as info:
        GpuRange(min=4, max=2)
    return info.value


def _yaml_error() -> yaml.YAMLError:
    with pytest.raises(yaml.YAMLError) as info:
        yaml.safe_load("a: [1, 2\nb: 3")
    return info.value


CASES: list[tuple[BaseException, int, str]] = [
    (_problem(400), USAGE, "--help"),
    (_problem(401), FAILED, "crane login"),
    (_problem(403), FAILED, "crane token create"),
    (_problem(404), FAILED, "crane mc list"),
    (_problem(409), FAILED, "another name"),
    (_problem(422, errors=[{"loc": ["body", "spec", "gpus"], "msg": "bad"}]), USAGE, "spec.gpus"),
    (_problem(500), FAILED, "server's log"),
    (_problem(503), FAILED, "/readyz"),
    (ConnectionFailed("x", url="http://h:1"), FAILED, "crane serve"),
    (NotConfigured("x"), USAGE, "crane login"),
    (WaitTimeout("cargos not Running after 5s"), FAILED, "crane mc explain"),
    (UsageError("refusing; pass --yes"), USAGE, "--yes"),
    (Declined("nothing done"), FAILED, "--yes"),
    (FileNotFoundError(2, "No such file or directory", "mc.yaml"), USAGE, "check the path"),
    (IsADirectoryError(21, "Is a directory", "dir"), USAGE, "YAML file"),
    (PermissionError(13, "Permission denied", "mc.yaml"), FAILED, "permissions"),
    (_yaml_error(), USAGE, "YAML syntax"),
    (_validation_error(), USAGE, "fix the manifest"),
    (httpx.ReadTimeout("timed out"), FAILED, "crane config current"),
    (RuntimeError("surprise"), FAILED, "CRANE_DEBUG=1"),
]


@pytest.mark.parametrize(("exc", "code", "remedy"), CASES, ids=lambda v: type(v).__name__)
def test_every_error_is_one_line_with_a_remedy(exc: BaseException, code: int, remedy: str) -> None:
    failure = describe(exc)
    line = failure.line()
    assert failure.code == code
    assert remedy in line
    assert "\n" not in line
    assert line.startswith("error: ")


def test_a_specific_conflict_keeps_the_servers_remedy_alone() -> None:
    detail = "hosts are managed by Kubernetes in kube mode; label nodes instead"
    kind = "https://crane.dev/problems/hosts-managed-by-kubernetes"
    assert describe(_problem(409, type=kind, detail=detail)).line() == f"error: conflict: {detail}"
    generic = describe(_problem(409, type="https://crane.dev/problems/conflict")).line()
    assert generic.endswith("; pick another name, or fetch the object again and retry")
    exists = "MiniCluster 'a' exists in tenant 't': pick another name or delete it first"
    told = describe(_problem(409, type="https://crane.dev/problems/conflict", detail=exists))
    assert told.line() == f"error: conflict: {exists}"  # its own remedy, not a second one


def test_problem_json_is_kept_on_the_exception() -> None:
    exc = _problem(422, errors=[{"loc": ["body", "spec", "gpus", "min"], "msg": "too big"}])
    assert exc.problem is not None and exc.problem.detail == "mc x: boom"
    assert describe(exc).line().count("spec.gpus.min: too big") == 1


def test_yaml_error_names_the_line() -> None:
    assert "line 2" in describe(_yaml_error()).line()


def test_traceback_only_with_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        raise RuntimeError("surprise")
    except RuntimeError as exc:
        caught = exc
    monkeypatch.delenv("CRANE_DEBUG", raising=False)
    quiet = io.StringIO()
    assert report(caught, quiet) == FAILED
    assert "Traceback" not in quiet.getvalue()
    assert len(quiet.getvalue().splitlines()) == 1
    monkeypatch.setenv("CRANE_DEBUG", "1")
    loud = io.StringIO()
    report(caught, loud)
    assert "Traceback" in loud.getvalue()


def test_cli_unreachable_server_is_one_line_exit_1(tmp_path: Path) -> None:
    proc = crane("login", "http://127.0.0.1:9", "--token", "x", config_dir=tmp_path / "cfg")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "cannot reach the Crane API at http://127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_cli_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = crane(
        "login", "http://127.0.0.1:9", "--token", "x", config_dir=tmp_path / "cfg", CRANE_DEBUG="1"
    )
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr


def test_cli_bad_option_is_usage_exit_2(tmp_path: Path) -> None:
    proc = crane("config", "view", "-o", "xml", config_dir=tmp_path / "cfg")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        (r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "not a valid name: use lower-case letters"),
        (r"^[^\x00-\x1f\x7f]*$", "has a control character"),
        (r"^[A-Za-z0-9][A-Za-z0-9_. -]*$", "not a GPU type"),
        (r"^(tcp|unix|ssh|http|https)://", "must start with tcp://"),
        (r"\S", "must not be blank"),
    ],
)
def test_each_pattern_is_told_in_its_own_words(pattern: str, says: str) -> None:
    """A token description with an escape sequence, a GPU type or a Docker host of the wrong
    form were each told 'not a valid name: use lower-case letters...'; each is told its rule."""
    from crane.cli.errors import plain_words

    told = plain_words(f"description: String should match pattern '{pattern}'")
    assert told == f"description: {says}" or told.startswith(f"description: {says}"), told
    if "name" not in says:
        assert "lower-case" not in told


def test_a_pattern_without_words_is_kept_as_it_is() -> None:
    from crane.cli.errors import plain_words

    message = "x: String should match pattern '^a+$'"
    assert plain_words(message) == message


@pytest.mark.parametrize(
    ("detail", "remedy"),
    [
        ("token 'nope' not found", "`crane token list`"),
        ("tenant 'nope' not found", "`crane tenant list`"),
        ("tenant 'team-a' has no share of A100", "`crane tenant share get team-a`"),
        ("cargo 'x' not found", "`crane cargo list`"),
    ],
)
def test_a_missing_object_is_looked_up_where_its_kind_is_listed(detail: str, remedy: str) -> None:
    # `crane token revoke nope` was told to check the name with `crane mc list`.
    line = describe(_problem(404, detail=detail)).line()
    assert remedy in line
    if "cargo" not in detail:
        assert "crane mc list" not in line and "crane cargo list" not in line


def test_a_rule_across_fields_reads_as_a_sentence_not_as_pydantic_wrote_it() -> None:
    # `crane tenant share set team-a --nominal 4 --lending-limit 5` printed
    # "error: invalid Value error, lendingLimit 5 is more than nominal 4; ...".
    with pytest.raises(ValidationError) as info:
        TenantShare(gpu_type="H100", nominal=4, lending_limit=5)
    line = describe(info.value).line()
    assert "Value error" not in line
    assert line.startswith("error: invalid request: lendingLimit 5 is more than nominal 4")
    server = _problem(422, errors=[{"loc": [], "msg": "Value error, replicas needs a template"}])
    assert "Value error" not in describe(server).line()
    assert "replicas needs a template" in describe(server).line()


def test_a_field_is_named_as_the_api_spells_it() -> None:
    # `crane tenant share set team-a --gpu-type ''` named the field `gpu_type`.
    with pytest.raises(ValidationError) as info:
        TenantShare(gpu_type="", nominal=4)
    assert describe(info.value).line().startswith("error: invalid gpuType: ")
