"""Requests/s and p99 of ``GET /v1/miniclusters`` and ``:grow`` against one ``crane serve`` worker.

Runs the server in a subprocess (SQLite by default, ``--database-url`` for PostgreSQL) with the
Docker backend and no hosts, so ``:grow`` exercises auth, idempotency, the audit log and the
engine's dry run, and answers ``denied``. Not a test: prints a table.

    PYTHONPATH=. python benchmarks/api_bench.py --requests 2000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.api.conftest import ADMIN, start_server, stop_server


async def _load(
    client: httpx.AsyncClient, method: str, path: str, total: int, concurrency: int, **kw: object
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def worker() -> None:
        nonlocal errors
        while not queue.empty():
            queue.get_nowait()
            start = time.perf_counter()
            r = await client.request(method, path, **kw)  # type: ignore[arg-type]
            latencies.append(time.perf_counter() - start)
            errors += r.status_code >= 400

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began, latencies, errors


def _row(name: str, elapsed: float, lat: list[float], errors: int) -> str:
    p50 = statistics.median(lat) * 1000
    p99 = statistics.quantiles(lat, n=100)[98] * 1000
    return f"{name:<28} {len(lat) / elapsed:>9.0f} {p50:>9.1f} {p99:>9.1f} {errors:>7}"


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="crane-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    server = start_server(
        url, tmp / "serve.log", extra=["--bootstrap-token", ADMIN, "--backend", "docker"]
    )
    try:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as c:
            for i in range(args.miniclusters):
                spec = {
                    "gpuType": "H100",
                    "gpus": {"min": 0, "max": 64},
                    "template": {"replicas": 1, "gpusPerReplica": 8},
                }
                r = await c.post("/v1/miniclusters", json={"name": f"mc-{i}", "spec": spec})
                r.raise_for_status()
            print(f"{'operation':<28} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
            got = await _load(c, "GET", "/v1/miniclusters", args.requests, args.concurrency)
            print(_row("GET /v1/miniclusters", *got))
            got = await _load(
                c,
                "POST",
                "/v1/miniclusters/mc-0:grow",
                args.requests,
                args.concurrency,
                json={"count": 1, "allowPending": False},
            )
            print(_row("POST :grow (denied)", *got))
            keyed = await _load(
                c,
                "POST",
                "/v1/miniclusters/mc-1:grow",
                args.requests,
                args.concurrency,
                json={"count": 1},
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            )
            print(_row("POST :grow (replayed key)", *keyed))
    finally:
        stop_server(server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--miniclusters", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
