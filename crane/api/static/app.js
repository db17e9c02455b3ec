// The Crane dashboard: sign-in, hash routing, live refresh from /v1/events.
import { ApiError, all, call, esc, get, q } from "./api.js";
import { GpuMap, LABEL, LETTER, STATES, model } from "./map.js";
import * as pages from "./pages.js";

const $ = (sel) => document.querySelector(sel);
const DEBOUNCE_MS = 150;
const MIN_GAP_MS = 400;

export const app = {
  who: null,
  nodes: [],
  mcs: [],
  tenants: [],
  shares: [], // admin: every tenant's shares per GPU type, with use and borrowing
  events: [],
  map: null,
  source: null,
  refreshTimer: 0,
  lastRefresh: 0,
  refreshing: null,
  dirty: false,
  // for tests and benchmarks: when events arrived and when the map last changed (performance.now())
  trace: { events: [], renders: [] },
};
window.crane = app;

// --- sign-in ---------------------------------------------------------------------------------

async function boot() {
  $("#signin-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  const session = await call("GET", "/ui/session");
  if (session.signedIn) start(session);
  else showSignIn();
}

function showSignIn(message = "") {
  app.who = null;
  $("#signin").hidden = false;
  $("#page").replaceChildren();
  $("#nav").hidden = true;
  $("#sign-out").hidden = true;
  $("#who").textContent = "";
  $("#live").textContent = "";
  $("#signin-error").textContent = message;
  $("#token").focus();
}

async function signIn(e) {
  e.preventDefault();
  const input = $("#token");
  const token = input.value.trim();
  input.value = "";
  try {
    const session = await call("POST", "/ui/session", { token });
    start(session);
  } catch (err) {
    showSignIn(err instanceof ApiError ? err.message : String(err));
  }
}

async function signOut() {
  if (app.source) app.source.close();
  app.source = null;
  await call("DELETE", "/ui/session");
  showSignIn();
}

function start(session) {
  app.who = session;
  $("#signin").hidden = true;
  $("#nav").hidden = false;
  $("#sign-out").hidden = false;
  const scope = session.scope === "admin" ? "admin" : `${session.scope} ${session.tenant}`;
  $("#who").textContent = `signed in: ${scope}${session.miniCluster ? `/${session.miniCluster}` : ""}`;
  listen();
  refresh().then(route);
}

// --- data ------------------------------------------------------------------------------------

async function loadMiniClusters() {
  if (app.who.scope !== "admin") return all("/v1/miniclusters");
  const tenants = await all("/v1/tenants");
  app.tenants = tenants.map((t) => t.name);
  app.shares = tenants.flatMap((t) => (t.shares || []).map((s) => ({ tenant: t.name, ...s })));
  const lists = await Promise.all(
    app.tenants.map((t) => all(`/v1/miniclusters?tenant=${q(t)}`).catch(() => [])),
  );
  return lists.flat();
}

/** Re-read the map and the MiniClusters, then redraw the page on view. */
export async function refresh() {
  if (app.refreshing) {
    app.dirty = true;
    return app.refreshing;
  }
  app.refreshing = (async () => {
    try {
      const [nodes, mcs] = await Promise.all([get("/v1/nodes").then((p) => p.items), loadMiniClusters()]);
      if (!app.nodes.length) performance.mark("crane-data");
      app.nodes = nodes;
      app.mcs = mcs;
      app.lastRefresh = performance.now();
      redraw();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) showSignIn(err.message);
      else toast(`refresh failed: ${err.message}`);
    } finally {
      app.refreshing = null;
    }
  })();
  await app.refreshing;
  if (app.dirty) {
    app.dirty = false;
    schedule();
  }
}

/** A refresh soon: events coming in bursts cost one refresh, never a storm. */
function schedule() {
  if (app.refreshTimer) return;
  const wait = Math.max(DEBOUNCE_MS, MIN_GAP_MS - (performance.now() - app.lastRefresh));
  app.refreshTimer = setTimeout(() => {
    app.refreshTimer = 0;
    refresh();
  }, wait);
}

// --- live events -----------------------------------------------------------------------------

function listen() {
  if (app.source) app.source.close();
  const source = new EventSource("/v1/events");
  app.source = source;
  const live = $("#live");
  let lost = false;
  source.onopen = () => {
    live.textContent = "live";
    live.classList.remove("off");
    if (lost) schedule(); // re-read what changed while the stream was down
    lost = false;
  };
  source.onerror = () => {
    lost = true;
    live.textContent = "reconnecting…";
    live.classList.add("off");
  };
  for (const type of ["Admitted", "Placed", "Running", "Preempting", "Preempted", "Succeeded",
    "Failed", "Deleted"]) {
    source.addEventListener(type, (msg) => {
      let event;
      try {
        event = JSON.parse(msg.data);
      } catch {
        return;
      }
      app.trace.events.push({ type, miniCluster: event.miniCluster, cargo: event.cargo, t: performance.now() });
      if (app.trace.events.length > 500) app.trace.events.splice(0, 100);
      app.events.unshift(event);
      if (app.events.length > 300) app.events.length = 300;
      schedule();
    });
  }
}

// --- pages -----------------------------------------------------------------------------------

function current() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [page, ...rest] = hash.split("/").map(decodeURIComponent);
  return { page: page || "map", rest };
}

function route() {
  if (!app.who) return;
  const { page } = current();
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.page === page || (page === "mc" && a.dataset.page === "miniclusters")) {
      a.setAttribute("aria-current", "page");
    } else a.removeAttribute("aria-current");
  }
  app.map = null;
  $("#page").replaceChildren();
  app.pageKey = null;
  redraw();
}

function redraw() {
  if (!app.who) return;
  const { page, rest } = current();
  const root = $("#page");
  const ctx = { app, root, toast, confirmDialog, refresh, rest };
  if (page === "map") drawMap(root);
  else if (page === "queue") pages.queue(ctx);
  else if (page === "miniclusters") pages.miniclusters(ctx);
  else if (page === "mc") pages.minicluster(ctx);
  else if (page === "tenants") pages.tenants(ctx);
  else root.innerHTML = `<h1>Not found</h1><p><a href="#/map">Back to the GPU map</a></p>`;
}

function drawMap(root) {
  if (!app.map) {
    root.innerHTML = `<h1>GPU map</h1>
      <div class="map-head">
        <ul class="summary" id="map-summary" aria-label="GPUs per state"></ul>
        <div class="map-tools">
          <button type="button" id="collapse-all">Collapse all</button>
          <button type="button" id="expand-all">Expand all</button>
        </div>
      </div>
      <div class="map-body">
        <div class="map-scroll" id="map-scroll"></div>
        <aside class="details" id="details" aria-live="polite" aria-label="Details">
          <p class="muted">Point at or focus a GPU (arrow keys move) for its details.</p>
        </aside>
      </div>`;
    app.map = new GpuMap(root.querySelector("#map-scroll"), showDetails);
    root.querySelector("#collapse-all").addEventListener("click", () => app.map.setAll(true));
    root.querySelector("#expand-all").addEventListener("click", () => app.map.setAll(false));
    root.querySelector("#details").addEventListener("click", (e) => {
      const b = e.target.closest("[data-highlight]");
      if (!b) return;
      app.map.highlight = app.map.highlight === b.dataset.highlight ? null : b.dataset.highlight;
      app.map.render();
    });
  }
  const data = model(app.nodes);
  app.mapModel = data;
  const summary = STATES.map((s) => `<li><span class="gpu s-${s}" aria-hidden="true">${LETTER[s]}</span>`
    + `${LABEL[s]} <strong data-count="${s}">${data.totals[s]}</strong></li>`).join("");
  $("#map-summary").innerHTML = `${summary}<li>of <strong data-count="total">${data.totals.total}</strong>`
    + ` GPUs on <strong data-count="nodes">${app.nodes.length}</strong> nodes</li>`;
  app.map.setModel(data);
  if (!app.nodes.length) {
    $("#details").innerHTML = `<p>No GPU nodes yet.</p><p class="muted">Docker mode: <code>crane node add</code>;`
      + ` Kubernetes: label nodes <code>crane.io/managed=true</code>.</p>`;
  } else if (!app.detailsShown) {
    showLegend();
  }
  app.trace.renders.push({ t: performance.now(), totals: { ...data.totals } });
  if (app.trace.renders.length > 200) app.trace.renders.splice(0, 50);
  if (!app.firstPaint) {
    app.firstPaint = true;
    requestAnimationFrame(() => performance.mark("crane-map-painted"));
  }
}

function showLegend() {
  const rows = [...app.mapModel.byMc.entries()].sort().map(([name, c]) => `<li>`
    + `<button type="button" data-highlight="${esc(name)}" aria-label="highlight ${esc(name)}">${esc(name)}</button>`
    + ` ${c.reserved} reserved, ${c["in-use"]} in use, ${c.borrowed} borrowed</li>`).join("");
  $("#details").innerHTML = `<p class="muted">Point at or focus a GPU (arrow keys move) for its details.</p>`
    + (rows ? `<h2>MiniClusters</h2><ul class="legend-list" id="legend">${rows}</ul>` : "");
}

function showDetails(d) {
  const el = $("#details");
  if (!el) return;
  app.detailsShown = true;
  const dl = (pairs) => `<dl>${pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>`;
  if (d.kind === "gpu") {
    const g = d.gpu;
    const mc = g.miniCluster || g.reservedFor;
    el.innerHTML = `<h2>${esc(d.node.name)} · GPU ${g.id}</h2>` + dl([
      ["state", LABEL[d.state]], ["MiniCluster", g.miniCluster], ["cargo", g.cargo],
      ["reserved for", g.reservedFor], ["island", d.island], ["product", d.node.gpuProduct],
    ]) + (mc && mc !== "other" ? `<p><a href="${mcLink(mc)}">Open ${esc(mc)}</a></p>` : "");
  } else if (d.kind === "node") {
    const n = d.node;
    const topo = Object.entries(n.labels).filter(([k]) => /zone|block|rack|clique/.test(k));
    el.innerHTML = `<h2>${esc(n.name)}</h2>` + dl([
      ["product", n.gpuProduct], ["GPUs", n.gpus.length], ["free", n.counts.free],
      ["in use", n.counts["in-use"]], ["reserved", n.counts.reserved],
      ["borrowed", n.counts.borrowed], ["busy", n.counts.busy],
      ["ready", n.ready ? "yes" : "no"], ["schedulable", n.schedulable ? "yes" : "no (cordoned or draining)"],
      ["islands", (n.islands || []).map((i) => i.join(",")).join(" | ") || "one"],
      ...topo,
    ]);
  } else {
    const c = d.domain.counts;
    el.innerHTML = `<h2>${esc(d.domain.level)} ${esc(d.domain.name)}</h2>` + dl([
      ["GPUs", c.total], ["free", c.free], ["in use", c["in-use"]], ["reserved", c.reserved],
      ["borrowed", c.borrowed], ["busy", c.busy],
    ]) + `<p class="muted">Enter or click collapses and expands it.</p>`;
  }
}

/** ``#/mc/<tenant>/<name>`` for a map name (``tenant/name`` for admins, ``name`` otherwise). */
export function mcLink(name) {
  const [tenant, mc] = name.includes("/") ? name.split("/", 2) : [app.who.tenant, name];
  return `#/mc/${q(tenant)}/${q(mc)}`;
}

// --- toast and confirmation ------------------------------------------------------------------

let toastTimer = 0;
export function toast(text) {
  const el = $("#toast");
  el.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.textContent = ""; }, 6000);
}

/** Ask before acting: resolves true only when the person confirms. */
export function confirmDialog(title, text, action = "Confirm") {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = action;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("#confirm-cancel").focus();
  });
}

boot().catch((err) => showSignIn(`the dashboard could not start: ${err.message}`));
