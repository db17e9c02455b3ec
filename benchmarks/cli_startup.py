"""CPU time of ``crane --help`` and ``crane mc list``, and the ratio to ``python -c pass``.

    python benchmarks/cli_startup.py [--runs 10]

``mc list`` talks to a stub API on 127.0.0.1 (an empty list), so the figure is the CLI's own
cost: start-up, one request, rendering. CPU time (user + system) of the child processes, the
median over ``--runs``; wall time is printed too but depends on the machine's load. A
benchmark, never a timed test: issue 15 asks for --help <= 0.12 s and mc list <= 0.2 s CPU.

It also times the floor of the libraries the CLI is built on: a one-command typer app whose
command makes the same request with httpx and prints the answer, nothing of Crane's. Typer
0.29 coerces every parameter through a pydantic ``TypeAdapter``, so running any command imports
pydantic; the figure above that floor is what Crane itself costs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


FLOOR = """
import typer

app = typer.Typer()


@app.command()
def get(path: str = "/v1/miniclusters", limit: int = 100) -> None:
    import os

    import httpx

    with httpx.Client(verify=False) as http:  # plain http: no CA bundle, as Crane's client
        print(http.get(os.environ["CRANE_API_URL"] + path, params={"limit": limit}).json())


@app.command()
def other() -> None:
    pass


app()
"""
"""The libraries' floor: typer parsing two options, httpx making one request, a print."""


class _EmptyApi(BaseHTTPRequestHandler):
    """Answers every GET with an empty page, as ``GET /v1/miniclusters`` does on a new server."""

    def do_GET(self) -> None:
        body = json.dumps({"items": [], "count": 0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


def measure(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median CPU seconds (children's user + system) and median wall seconds of ``argv``."""
    cpu, wall = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            argv,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    """Print one line per command: CPU, wall, and the CPU ratio to ``python -c pass``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmptyApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRANE_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)])),
        CRANE_API_URL=f"http://127.0.0.1:{server.server_address[1]}",
        CRANE_TOKEN="crane_bench_x",
        CRANE_CONFIG_DIR=tempfile.mkdtemp(prefix="crane-bench-"),
    )
    python = [sys.executable]
    base_cpu, base_wall = measure([*python, "-c", "pass"], env, args.runs)
    print(f"python -c pass: {base_cpu * 1000:.0f} ms CPU, {base_wall * 1000:.0f} ms wall")
    floor_cpu, floor_wall = measure([*python, "-c", FLOOR, "get", "--limit", "5"], env, args.runs)
    print(
        f"floor (a typer command making one httpx request): {floor_cpu * 1000:.0f} ms CPU "
        f"({floor_cpu / base_cpu:.1f}x python -c pass), {floor_wall * 1000:.0f} ms wall"
    )
    for words in (["--help"], ["mc", "list"]):
        cpu, wall = measure([*python, "-m", "crane", *words], env, args.runs)
        print(
            f"crane {' '.join(words)}: {cpu * 1000:.0f} ms CPU ({cpu / base_cpu:.1f}x python -c "
            f"pass, {(cpu - floor_cpu) * 1000:+.0f} ms against the floor), "
            f"{wall * 1000:.0f} ms wall"
        )
    server.shutdown()


if __name__ == "__main__":
    main()
