"""The dashboard at ``/`` in headless chromium against a real ``crane serve`` (Docker backend,
then Kubernetes backend with the operator): what a person sees and does in the browser."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.browser.conftest import (
    ADMIN,
    CraneServer,
    Pages,
    shot,
    sign_in,
    state_counts,
    wait_until,
)

pytestmark = pytest.mark.browser
LIVE_BAR_MS = 2000


def _counts_on_page(page: Any) -> dict[str, int]:
    return {
        el.get_attribute("data-count"): int(el.inner_text())
        for el in page.query_selector_all("#map-summary [data-count]")
    }


def _grow(server: CraneServer, token: str, mc: str, count: int = 1, wait: bool = True) -> None:
    with server.api(token) as api:
        body = {"count": count, "wait": wait, "timeoutSeconds": 90, "allowPending": False}
        grown = api.post(f"/v1/miniclusters/{mc}:grow", json=body)
        assert grown.status_code == 200, grown.text
        assert grown.json()["result"] == "granted", grown.text


def _cargos(server: CraneServer, token: str, mc: str) -> int:
    with server.api(token) as api:
        listed = api.get("/v1/cargos", params={"miniCluster": mc})
        assert listed.status_code == 200, listed.text
        return int(listed.json()["count"])


def test_map_shows_the_counts_per_state_and_details_on_hover_and_focus(
    crane_server: CraneServer, pages: Pages
) -> None:
    tenant, token = crane_server.tenant("map")
    used = f"train-{uuid.uuid4().hex[:4]}"
    idle = f"idle-{uuid.uuid4().hex[:4]}"
    crane_server.minicluster(token, used, 2, 8)
    crane_server.minicluster(token, idle, 2, 4)
    _grow(crane_server, token, used)  # 2 GPUs of its reservation in use
    _grow(crane_server, token, used)  # 2 more beyond gpus.min: borrowed

    with crane_server.api() as api:
        expected = lambda: state_counts(api.get("/v1/nodes").json()["items"])  # noqa: E731
        wait_until(
            lambda: expected()["borrowed"] >= 2 and expected()["reserved"] >= 2,
            "the API to show borrowed and reserved GPUs",
        )
        page = pages.open(crane_server.url)
        sign_in(page, ADMIN)
        # the live map converges on what the API says, state by state
        wait_until(lambda: _counts_on_page(page) == expected(), "the map's counts to match")
    counts = _counts_on_page(page)
    assert counts["in-use"] >= 2 and counts["borrowed"] >= 2 and counts["reserved"] >= 2
    assert counts["free"] > 0

    # details on hover (reserved GPU) and on keyboard focus (borrowed GPU), each by name
    page.hover(f'.gpu[data-state="reserved"][data-mc="{tenant}/{idle}"]')
    details = page.inner_text("#details")
    assert "reserved" in details and f"{tenant}/{idle}" in details
    page.focus(f'.gpu[data-state="borrowed"][data-mc="{tenant}/{used}"]')
    details = page.inner_text("#details")
    assert "borrowed" in details and f"{tenant}/{used}" in details and "cargo" in details
    # every state has a letter, so colour is never the only signal
    letters = page.eval_on_selector_all(
        "#map-scroll .gpu", "els => els.map(e => `${e.dataset.state}:${e.textContent}`)"
    )
    assert {"in-use:U", "reserved:R", "borrowed:B", "free:·"} <= set(letters)
    shot(page, f"dashboard-map-{crane_server.backend}.png")


def test_a_grow_shows_on_the_map_within_2_s_of_its_event(
    crane_server: CraneServer, pages: Pages
) -> None:
    tenant, token = crane_server.tenant("live")
    mc = f"live-{uuid.uuid4().hex[:4]}"
    crane_server.minicluster(token, mc, 2, 8)
    page = pages.open(crane_server.url)
    sign_in(page, token)
    page.wait_for_selector("#live:text('live')")
    with crane_server.api(token) as api:
        wait_until(
            lambda: _counts_on_page(page) == state_counts(api.get("/v1/nodes").json()["items"]),
            "the map to settle",
        )
    before = _counts_on_page(page)["in-use"]
    # the browser notes when the map first shows the grown cargo's 2 GPUs in use
    page.evaluate(
        """(want) => {
          window.__shown = null;
          const look = () => {
            const el = document.querySelector('#map-summary [data-count="in-use"]');
            if (window.__shown === null && el && Number(el.textContent) >= want) {
              window.__shown = performance.now();
            }
          };
          new MutationObserver(look).observe(document.querySelector('#page'),
            {subtree: true, childList: true, characterData: true});
          look();
        }""",
        before + 2,
    )
    _grow(crane_server, token, mc, wait=False)
    page.wait_for_function("() => window.__shown !== null", timeout=120_000)
    shown, events = page.evaluate(
        "(mc) => [window.__shown, window.crane.trace.events.filter(e => e.miniCluster === mc)]",
        mc,
    )
    arrived = [e["t"] for e in events if e["t"] <= shown]
    assert arrived, f"no event of {mc} reached the page before the map changed: {events}"
    lag = shown - max(arrived)
    assert lag < LIVE_BAR_MS, f"the map changed {lag:.0f} ms after the last event of {mc}"
    assert tenant  # the stream is the tenant's own


def test_tenant_b_cannot_see_tenant_a_names(crane_server: CraneServer, pages: Pages) -> None:
    tenant_a, token_a = crane_server.tenant("alpha")
    secret = f"secret-{uuid.uuid4().hex[:6]}"
    crane_server.minicluster(token_a, secret, 2, 4)
    _grow(crane_server, token_a, secret)
    tenant_b, token_b = crane_server.tenant("bravo")
    mine = f"mine-{uuid.uuid4().hex[:4]}"
    crane_server.minicluster(token_b, mine, 2, 4)

    page = pages.open(crane_server.url)
    sign_in(page, token_b)
    page.wait_for_selector('.gpu[data-mc="other"]')
    seen = []
    routes = {
        "#/map": "#map-scroll .row",
        "#/queue": "#page table, #queue-empty",
        "#/miniclusters": f"#page a:text('{mine}')",
        "#/tenants": "#others",
        f"#/mc/{tenant_b}/{mine}": "#mc-state",
    }
    for route, ready in routes.items():
        page.evaluate(f"location.hash = {json.dumps(route)}")
        page.wait_for_selector(ready)
        seen.append(page.content())
    page.evaluate("location.hash = '#/map'")
    page.wait_for_selector('.gpu[data-mc="other"]')
    page.focus('.gpu[data-mc="other"]')
    assert "other" in page.inner_text("#details")
    seen.append(page.content())
    seen.append(
        page.evaluate(
            "JSON.stringify([crane.nodes, crane.mcs, crane.events, crane.trace, crane.tenants])"
        )
    )
    everything = "\n".join(seen)
    assert secret not in everything
    assert tenant_a not in everything
    assert mine in everything  # B's own names show


def test_actions_need_confirmation(crane_server: CraneServer, pages: Pages) -> None:
    tenant, token = crane_server.tenant("act")
    mc = f"act-{uuid.uuid4().hex[:4]}"
    crane_server.minicluster(token, mc, 2, 8)
    page = pages.open(f"{crane_server.url}/")
    sign_in(page, token)
    page.evaluate(f"location.hash = '#/mc/{tenant}/{mc}'")
    page.wait_for_selector("#mc-state")

    page.click("#act-grow")
    page.wait_for_selector("#confirm[open]")
    assert f"Grow {mc}?" in page.inner_text("#confirm-title")
    page.click("#confirm-cancel")
    page.wait_for_selector("#toast:text('grow cancelled')")
    assert not page.is_visible("#confirm")
    assert _cargos(crane_server, token, mc) == 0

    page.click("#act-grow")
    page.wait_for_selector("#confirm[open]")
    shot(page, f"dashboard-confirm-{crane_server.backend}.png")
    page.click("#confirm-ok")
    wait_until(lambda: _cargos(crane_server, token, mc) == 1, "the confirmed grow's cargo")
    page.wait_for_selector("tr[data-cargo]")
    page.wait_for_selector("#mc-chart svg")
    shot(page, f"dashboard-minicluster-{crane_server.backend}.png")

    page.click("#act-delete")
    page.wait_for_selector("#confirm[open]")
    page.keyboard.press("Escape")
    page.wait_for_selector("#toast:text('delete cancelled')")
    with crane_server.api(token) as api:
        assert api.get(f"/v1/miniclusters/{mc}").status_code == 200

    page.click("#act-delete")
    page.wait_for_selector("#confirm[open]")
    page.click("#confirm-ok")
    page.wait_for_function("() => location.hash === '#/miniclusters'")
    with crane_server.api(token) as api:
        wait_until(
            lambda: api.get(f"/v1/miniclusters/{mc}").status_code == 404, "the MiniCluster to go"
        )


def test_a_minicluster_deleted_elsewhere_leaves_its_page_without_errors(
    crane_server: CraneServer, pages: Pages
) -> None:
    """Someone else deletes the MiniCluster on view: the page says it is gone, and the browser
    logs no failed request (the CI failure of stop 20 was a 404 of this kind)."""
    tenant, token = crane_server.tenant("gone")
    mc = f"gone-{uuid.uuid4().hex[:4]}"
    crane_server.minicluster(token, mc, 2, 4)
    _grow(crane_server, token, mc)
    page = pages.open(f"{crane_server.url}/")
    sign_in(page, token)
    page.evaluate(f"location.hash = '#/mc/{tenant}/{mc}'")
    page.wait_for_selector("tr[data-cargo]")
    with crane_server.api(token) as api:
        assert api.delete(f"/v1/miniclusters/{mc}").status_code in (200, 202, 204)
        wait_until(
            lambda: api.get(f"/v1/miniclusters/{mc}").status_code == 404, "the MiniCluster to go"
        )
    page.wait_for_selector("#mc-body:has-text('is gone')")


def test_keyboard_and_phone_width(crane_server: CraneServer, pages: Pages) -> None:
    for width, height in ((1280, 720), (390, 844)):
        page = pages.open(crane_server.url, width, height)
        sign_in(page, ADMIN)
        page.wait_for_selector("#map-scroll .row")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page scrolls sideways by {overflow}px at {width}px"
        # Tab reaches the map; arrow keys walk rows and GPUs; Enter folds a domain
        for _ in range(12):
            page.keyboard.press("Tab")
            if page.evaluate("!!document.activeElement.closest('#map-scroll')"):
                break
        assert page.evaluate("!!document.activeElement.closest('#map-scroll')")
        page.keyboard.press("Control+Home")
        first = page.evaluate("document.activeElement.closest('[data-row]').className")
        if "domain" in first:
            page.keyboard.press("Enter")
            page.wait_for_selector('[data-row="0"][aria-expanded="false"]')
            page.keyboard.press("Enter")
            page.wait_for_selector('[data-row="0"][aria-expanded="true"]')
        for _ in range(6):
            page.keyboard.press("ArrowDown")
            if page.evaluate("document.activeElement.closest('.row').classList.contains('node')"):
                break
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.classList.contains('gpu')")
        assert " · GPU " in page.inner_text("#details")
        page.keyboard.press("ArrowRight")
        assert "GPU 1" in page.inner_text("#details h2")
        if width < 500:
            shot(page, f"dashboard-phone-{crane_server.backend}.png")


def test_the_queue_shows_position_and_why(crane_server: CraneServer, pages: Pages) -> None:
    tenant, token = crane_server.tenant("queue")
    with crane_server.api() as api:
        nodes = api.get("/v1/nodes").json()["items"]
    product = {"docker": "H100", "kube": "GB300"}[crane_server.backend]
    whole = sum(n["gpuCount"] for n in nodes if product in n["gpuProduct"])
    # all GPUs of the type at once: possible, but not while another reservation holds some
    blocker = f"hold-{uuid.uuid4().hex[:4]}"
    crane_server.minicluster(token, blocker, 2, 2)
    big = f"big-{uuid.uuid4().hex[:4]}"
    with crane_server.api(token) as api:
        wait_until(
            lambda: api.get(f"/v1/miniclusters/{blocker}").json()["status"]["reservedGpus"] == 2,
            f"{blocker} to reserve its GPUs",
        )
        crane_server.minicluster(token, big, whole, whole)
        wait_until(
            lambda: (
                api.get(f"/v1/miniclusters/{big}").json()["status"].get("queuePosition") is not None
            ),
            f"{big} to be queued",
        )
        page = pages.open(crane_server.url)
        sign_in(page, token)
        page.evaluate("location.hash = '#/queue'")
        row = page.wait_for_selector(f'tr[data-mc="{tenant}/{big}"]')
        wait_until(lambda: row.query_selector(".why").inner_text().strip(), "the reason it waits")
        assert row.query_selector("td.num").inner_text().strip().isdigit()
        shot(page, f"dashboard-queue-{crane_server.backend}.png")
        page.close()  # before the deletes: a queue page may still be asking about them
        for name in (big, blocker):
            assert api.delete(f"/v1/miniclusters/{name}").status_code == 204


def _share(server: CraneServer, request: pytest.FixtureRequest, tenant: str, nominal: int) -> None:
    """Give ``tenant`` a share of the server's GPU type: through the API in Docker mode, as a
    TenantShare selecting its namespace on Kubernetes; ``nominal`` 0 removes it."""
    if server.backend == "docker":
        shares = [{"gpuType": server.gpu_type, "nominal": nominal}] if nominal else []
        with server.api() as api:
            put = api.put(f"/v1/tenants/{tenant}/shares", json={"shares": shares})
            assert put.status_code == 200, put.text
        return
    kube = request.getfixturevalue("kube_cluster")
    if not nominal:
        kube.kubectl("delete", "tenantshare", tenant)
        return
    manifest = (
        f"apiVersion: crane.io/v1alpha1\nkind: TenantShare\nmetadata: {{name: {tenant}}}\n"
        f"spec: {{namespaces: [{tenant}], shares: [{{gpuType: {server.gpu_type}, "
        f"nominal: {nominal}}}]}}\n"
    )
    kube.kubectl("apply", "-f", "-", input=manifest)


def test_the_tenants_page_shows_each_share_with_its_use(
    crane_server: CraneServer, pages: Pages, request: pytest.FixtureRequest
) -> None:
    tenant, token = crane_server.tenant("share")
    mc = f"held-{uuid.uuid4().hex[:4]}"
    _share(crane_server, request, tenant, 4)
    try:
        crane_server.minicluster(token, mc, 2, 2)
        with crane_server.api() as api:

            def used() -> bool:
                listed = api.get("/v1/tenants", params={"limit": 500}).json()["items"]
                mine = next(t for t in listed if t["name"] == tenant)
                return bool(mine["shares"]) and mine["shares"][0]["inUse"] == 2

            wait_until(used, f"{tenant}'s share to count its 2 reserved GPUs")
        page = pages.open(crane_server.url)
        sign_in(page, ADMIN)
        page.evaluate("location.hash = '#/tenants'")
        row = page.wait_for_selector(f'tr[data-share="{tenant}/{crane_server.gpu_type}"]')
        cells = [c.inner_text().strip() for c in row.query_selector_all("td")]
        # tenant, GPU type, guaranteed, in use, borrowing
        assert cells[:5] == [tenant, crane_server.gpu_type, "4", "2", "0"], cells
        page.close()
    finally:
        with crane_server.api(token) as api:
            api.delete(f"/v1/miniclusters/{mc}")
        _share(crane_server, request, tenant, 0)


XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
"""Markup a tenant (a message, a label) or a node's admin (a name, a product) might get into
an answer, with what it would run if the page ever wrote it as HTML."""


def _hostile(route: Any) -> None:
    """Answer the dashboard's reads with markup in every text field it renders."""
    path = route.request.url.split("?")[0].split("/v1/", 1)[1]
    mc = {
        "name": "mc",
        "tenant": "t",
        "createdAt": "2026-01-01T00:00:00Z",
        "spec": {"gpus": {"min": 1, "max": 2}, "gpuType": f"H100{XSS}", "priority": 0},
        "status": {
            "message": f"waits {XSS}",
            "queuePosition": 1,
            "reservation": {f"node{XSS}": [0]},
            "conditions": [{"type": "Admitted", "status": "False", "reason": XSS, "message": XSS}],
            "reservedGpus": 0,
            "inUseGpus": 0,
            "borrowedGpus": 0,
            "cargos": 1,
            "readyCargos": 0,
            "waitsBehind": [XSS],
        },
    }
    cargo = {
        "name": "c0",
        "spec": {"replicas": 1, "gpusPerReplica": 1},
        "status": {
            "phase": XSS,
            "message": XSS,
            "placement": [{"replica": 0, "node": XSS, "gpuIds": [0], "borrowed": False}],
        },
    }
    node = {
        "name": f"n{XSS}",
        "gpuProduct": XSS,
        "gpuCount": 1,
        "labels": {"topology.kubernetes.io/zone": XSS},
        "gpus": [{"id": 0, "miniCluster": f"t/mc{XSS}", "reservedFor": f"t/mc{XSS}"}],
    }
    tenants = [{"name": "t", "shares": [{"gpuType": XSS, "nominal": 1, "inUse": 0}]}]
    body: Any = {
        "nodes": {"items": [node], "count": 1},
        "tenants": {"items": tenants, "count": 1},
        "miniclusters": {"items": [mc], "count": 1},
        "cargos": {"items": [cargo], "count": 1},
        "usage": {"items": [], "count": 0},
        "miniclusters/mc:explain": {"message": XSS, "waitsBehind": [XSS]},
    }.get(path)
    if body is None:
        route.continue_()
    else:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))


def test_markup_in_answers_shows_as_text_and_never_runs(
    crane_server: CraneServer, pages: Pages
) -> None:
    """Every text the dashboard renders from an answer (node names, products and labels,
    MiniCluster and cargo messages, condition reasons, tenants' GPU types) goes through one
    escaping helper: markup in it shows as text on each page, and nothing of it runs."""
    page = pages.open(crane_server.url)
    page.route("**/v1/**", _hostile)
    sign_in(page, ADMIN)
    page.hover("#map-scroll .row.node .name")
    page.wait_for_function("document.querySelector('#details').textContent.includes('<img')")
    for where, selector in [
        ("queue", "table[aria-label='Waiting MiniClusters']"),
        ("miniclusters", "table[aria-label='MiniClusters']"),
        ("mc/t/mc", "table[aria-label='Conditions']"),
        ("tenants", "#shares"),
    ]:
        page.evaluate(f"location.hash = '#/{where}'")
        page.wait_for_selector(selector)
        assert "<script>window.__pwned=1</script>" in page.inner_text("#page"), where
        assert page.locator("#page img, #page script").count() == 0, where
    assert page.evaluate("window.__pwned") is None
