"""First paint of the dashboard's GPU map with 1,000 (and 10,000) nodes, in Debian's chromium.

A real ``crane serve`` (Kubernetes backend, no cluster needed) serves the page and the session;
Playwright answers ``/v1/nodes`` with a synthetic fleet (8 GPUs per node, zones x blocks x
racks, a mix of free, reserved, in-use, borrowed and busy GPUs) and ``/v1/miniclusters`` with an
empty list, so the figure is the browser's: fetch and parse the JSON, build the domain tree,
render the visible rows. Reported: milliseconds from navigation start to the ``crane-map-painted``
mark (set in the first animation frame after the map is in the DOM), median and worst of the
runs. Not a timed test.

    PYTHONPATH=. python benchmarks/dashboard_bench.py [--nodes 1000 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "crane_benchadm_" + "q" * 43
CHROMIUM = os.environ.get("CRANE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


PAINTED = "() => performance.getEntriesByName('crane-map-painted')[0].startTime"
DETAIL = """() => performance.getEntriesByType('mark').map(m => [m.name, Math.round(m.startTime)])
  .concat(performance.getEntriesByType('resource')
    .map(r => [r.name, Math.round(r.startTime), Math.round(r.responseEnd)]))"""


def fleet(count: int) -> dict[str, Any]:
    """``count`` nodes of 8 GPUs in 4 zones, 4 blocks per zone, racks of 16 nodes."""
    items = []
    for i in range(count):
        rack = i // 16
        gpus = []
        for g in range(8):
            k = (i * 8 + g) % 10
            mc = f"t{k % 3}/mc-{(i // 4) % 50}"
            slot: dict[str, Any] = {"id": g}
            if k < 4:
                slot.update(reservedFor=mc, miniCluster=mc, cargo=f"{mc}-{g % 2}")
            elif k == 4:
                slot.update(reservedFor=mc)
            elif k == 5:
                slot.update(miniCluster=mc, cargo=f"{mc}-b")
            elif k == 6:
                slot.update(busy=True)
            gpus.append(slot)
        items.append(
            {
                "name": f"node-{i:05d}",
                "gpuProduct": "NVIDIA-H100-80GB-HBM3",
                "gpuCount": 8,
                "ready": True,
                "schedulable": True,
                "labels": {
                    "topology.kubernetes.io/zone": f"z{rack % 4}",
                    "crane.io/block": f"b{(rack // 4) % 4}",
                    "crane.io/rack": f"r{rack}",
                },
                "islands": [[0, 1, 2, 3], [4, 5, 6, 7]],
                "gpus": gpus,
            }
        )
    return {"items": items, "count": count}


def serve(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``crane serve`` on a free port with the benchmark's admin token."""
    sys.path.insert(0, str(ROOT))
    from tests.support import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "crane", "serve", "--port", str(port),
            "--database-url", f"sqlite:///{tmp / 'crane.db'}", "--bootstrap-token", TOKEN,
            "--kubeconfig", "/nonexistent", "--log-level", "warning",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=(tmp / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"crane serve did not start: {(tmp / 'serve.log').read_text()}")


def measure(url: str, nodes: int, runs: int) -> list[float]:
    """Milliseconds to the first paint of the map, one figure per fresh page load."""
    from playwright.sync_api import Route, sync_playwright

    body = json.dumps(fleet(nodes))
    empty = json.dumps({"items": [], "count": 0})
    out = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 720})

        def nodes_route(route: Route) -> None:
            route.fulfill(status=200, content_type="application/json", body=body)

        def empty_route(route: Route) -> None:
            route.fulfill(status=200, content_type="application/json", body=empty)

        context.route("**/v1/nodes*", nodes_route)
        context.route("**/v1/miniclusters*", empty_route)
        context.route("**/v1/tenants*", empty_route)
        page = context.new_page()
        page.goto(url)
        page.fill("#token", TOKEN)
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("#map-scroll .row")
        for _ in range(runs):
            page.reload()
            page.wait_for_function(
                "() => performance.getEntriesByName('crane-map-painted').length > 0",
                timeout=120_000,
            )
            out.append(page.evaluate(PAINTED))
            if os.environ.get("CRANE_BENCH_DETAIL"):
                print(page.evaluate(DETAIL))
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crane-dash-bench-") as tmp:
        proc, url = serve(Path(tmp))
        try:
            for count in args.nodes:
                times = measure(url, count, args.runs)
                print(
                    f"map first paint, {count} nodes ({count * 8} GPUs): "
                    f"median {statistics.median(times):.0f} ms, worst {max(times):.0f} ms "
                    f"over {len(times)} loads"
                )
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
