"""Start-up stays light: the CLI's command tree loads without the HTTP client or wire models.

Issue 15: ``crane --help`` should not pay for httpx, pydantic and the API schemas; those load
when a command makes a request. The figures themselves are measured by
``benchmarks/cli_startup.py`` (a benchmark, never a timed test).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("httpx", "pydantic", "yaml", "crane.client", "crane.api.schemas")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys; {code}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_importing_the_cli_loads_no_http_client_or_wire_models() -> None:
    assert _loaded_after("import crane.cli.main") == []


def test_help_loads_no_http_client_or_wire_models() -> None:
    code = (
        "from typer.testing import CliRunner; from crane.cli.main import app; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        "assert 'mc' in r.output and 'cargo' in r.output"
    )
    assert _loaded_after(code) == []


def test_every_group_is_listed_and_runs_its_help() -> None:
    from typer.testing import CliRunner

    from crane.cli.main import GROUPS, app

    runner = CliRunner()
    for name in GROUPS:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert f"crane {name}" in result.output


def test_the_crane_process_loads_no_second_command_line_library_with_httpx() -> None:
    # httpx imports its own CLI (click, pygments) when click is installed; crane's never runs it
    code = (
        "import sys; sys.argv = ['crane', '--version']; from crane.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "import httpx; print(sorted({'click', 'pygments'} & set(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"
