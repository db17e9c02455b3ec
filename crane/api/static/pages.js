// The queue, the MiniCluster list and page, and tenants.
import { all, call, esc, get, q } from "./api.js";

const cache = new Map(); // key -> {t, value}

/** ``fetcher()`` at most every ``ms`` for ``key``; the last value meanwhile. */
async function cached(key, ms, fetcher) {
  const hit = cache.get(key);
  if (hit && performance.now() - hit.t < ms) return hit.value;
  const value = await fetcher();
  cache.set(key, { t: performance.now(), value });
  return value;
}

function cond(mc, type) {
  const c = (mc.status.conditions || []).find((x) => x.type === type);
  return c ? String(c.status) === "True" : false;
}

export function mcState(mc) {
  if (mc.spec.suspend) return "Held";
  for (const kind of ["Failed", "Resizing", "Ready", "Admitted"]) if (cond(mc, kind)) return kind;
  if (mc.status.queuePosition !== null && mc.status.queuePosition !== undefined) {
    return `Queued #${mc.status.queuePosition}`;
  }
  return "Pending";
}

const link = (mc) => `#/mc/${q(mc.tenant)}/${q(mc.name)}`;
const qs = (mc) => `tenant=${q(mc.tenant)}`;

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

function ago(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// --- queue -----------------------------------------------------------------------------------

/** Waiting MiniClusters in queue order: why, behind whom, when they may start. */
export function queue({ app, root }) {
  const waiting = app.mcs
    .filter((mc) => !cond(mc, "Admitted"))
    .sort((a, b) => (a.status.queuePosition ?? 1e9) - (b.status.queuePosition ?? 1e9)
      || a.createdAt.localeCompare(b.createdAt));
  const rows = waiting.map((mc) => {
    const key = `${mc.tenant}/${mc.name}`;
    const ex = (cache.get(`explain:${key}`) || {}).value;
    const why = (ex && (ex.message || (ex.explanation && ex.explanation.sentence))) || mc.status.message || "";
    // queue insight, where the API gives it (names as the API redacts them for this viewer)
    const pick = (k) => (ex && (ex[k] ?? (ex.explanation && ex.explanation[k]))) ?? mc.status[k];
    const behind = pick("waitsBehind") || pick("behind");
    const etaRaw = pick("estimatedStart");
    const eta = typeof etaRaw === "number" ? new Date(etaRaw * 1000).toISOString() : etaRaw;
    return `<tr data-mc="${esc(key)}"><td class="num">${mc.status.queuePosition ?? "–"}</td>`
      + `<td><a href="${link(mc)}">${esc(mc.name)}</a></td><td>${esc(mc.tenant)}</td>`
      + `<td>${mc.spec.gpus.min}–${mc.spec.gpus.max} × ${esc(mc.spec.gpuType)}</td>`
      + `<td class="num">${mc.spec.priority}</td><td>${esc(ago(mc.createdAt))}</td>`
      + `<td class="why">${esc(why)}</td>`
      + `<td>${esc(Array.isArray(behind) ? behind.join(", ") : behind || "–")}</td>`
      + `<td>${esc(eta ? fmtTime(eta) : "–")}</td></tr>`;
  }).join("");
  root.innerHTML = `<h1>Queue</h1>`
    + (waiting.length
      ? `<div class="table-wrap"><table aria-label="Waiting MiniClusters"><thead><tr>`
        + `<th class="num">#</th><th>MiniCluster</th><th>tenant</th><th>GPUs</th>`
        + `<th class="num">priority</th><th>waiting</th><th>why</th><th>behind</th>`
        + `<th>estimated start</th></tr></thead><tbody>${rows}</tbody></table></div>`
      : `<p id="queue-empty">Nothing waits: every MiniCluster is admitted.</p>`);
  // explanations for the first 20, at most every 5 s each
  const missing = waiting.slice(0, 20).filter((mc) => {
    const hit = cache.get(`explain:${mc.tenant}/${mc.name}`);
    return !hit || performance.now() - hit.t > 5000;
  });
  if (missing.length && !queue.loading) {
    queue.loading = true;
    Promise.all(missing.map((mc) => cached(`explain:${mc.tenant}/${mc.name}`, 5000,
      () => get(`/v1/miniclusters/${q(mc.name)}:explain?${qs(mc)}`).catch(() => null))))
      .then(() => {
        queue.loading = false;
        if (location.hash.startsWith("#/queue")) queue({ app, root });
      });
  }
}

// --- MiniCluster list ------------------------------------------------------------------------

export function miniclusters({ app, root }) {
  const rows = app.mcs.slice().sort((a, b) => `${a.tenant}/${a.name}`.localeCompare(`${b.tenant}/${b.name}`))
    .map((mc) => `<tr><td><a href="${link(mc)}">${esc(mc.name)}</a></td><td>${esc(mc.tenant)}</td>`
      + `<td>${esc(mcState(mc))}</td><td>${esc(mc.spec.gpuType)}</td>`
      + `<td class="num">${mc.spec.gpus.min}</td><td class="num">${mc.spec.gpus.max}</td>`
      + `<td class="num">${mc.status.reservedGpus}</td><td class="num">${mc.status.inUseGpus}</td>`
      + `<td class="num">${mc.status.borrowedGpus}</td><td class="num">${mc.status.cargos}</td></tr>`)
    .join("");
  root.innerHTML = `<h1>MiniClusters</h1>`
    + (rows ? `<div class="table-wrap"><table aria-label="MiniClusters"><thead><tr><th>name</th>`
      + `<th>tenant</th><th>state</th><th>GPU</th><th class="num">min</th><th class="num">max</th>`
      + `<th class="num">reserved</th><th class="num">in use</th><th class="num">borrowed</th>`
      + `<th class="num">cargos</th></tr></thead><tbody>${rows}</tbody></table></div>`
      : `<p>No MiniClusters yet: <code>crane mc create NAME --gpu-type H100 --min 2 --max 8</code>.</p>`);
}

// --- one MiniCluster -------------------------------------------------------------------------

function chart(buckets) {
  const w = 600;
  const h = 120;
  const max = Math.max(1, ...buckets.map((b) => b.gpus));
  const bw = w / buckets.length;
  const bars = buckets.map((b, i) => {
    const bh = (b.gpus / max) * (h - 20);
    return `<rect class="bar-rect" x="${i * bw + 1}" y="${h - 12 - bh}" width="${bw - 2}" height="${bh}">`
      + `<title>${esc(b.label)}: ${b.gpus.toFixed(2)} GPUs on average</title></rect>`;
  }).join("");
  return `<svg class="chart" viewBox="0 0 ${w} ${h}" role="img" aria-label="GPUs in use per 5 minutes,`
    + ` last hour; peak ${max.toFixed(1)}">${bars}<text x="2" y="10">${max.toFixed(1)} GPUs</text>`
    + `<text x="2" y="${h - 1}">−60 min</text><text x="${w - 30}" y="${h - 1}">now</text></svg>`;
}

async function usageBuckets(mc) {
  const now = Date.now();
  const step = 5 * 60 * 1000;
  const starts = Array.from({ length: 12 }, (_, i) => now - (12 - i) * step);
  return Promise.all(starts.map(async (s) => {
    const since = new Date(s).toISOString();
    const until = new Date(s + step).toISOString();
    const rep = await get(`/v1/usage?${qs(mc)}&miniCluster=${q(mc.name)}&since=${q(since)}&until=${q(until)}`);
    const secs = rep.items.reduce((n, r) => n + r.gpuSeconds, 0);
    return { label: new Date(s).toLocaleTimeString(), gpus: secs / (step / 1000) };
  }));
}

export function minicluster(ctx) {
  const { app, root, rest } = ctx;
  const [tenant, name] = rest;
  const key = `${tenant}/${name}`;
  if (app.pageKey !== key) {
    app.pageKey = key;
    root.innerHTML = `<h1>MiniCluster ${esc(name)} <span class="muted">(${esc(tenant)})</span></h1>
      <div class="actions" role="group" aria-label="Actions">
        <label>cargos <input id="act-count" type="number" min="1" max="256" value="1"></label>
        <button type="button" id="act-grow" class="primary">Grow…</button>
        <button type="button" id="act-shrink">Shrink…</button>
        <button type="button" id="act-delete" class="danger">Delete…</button>
      </div>
      <div id="mc-body"><p class="muted">Loading…</p></div>`;
    const mc = { tenant, name };
    const count = () => Math.max(1, Math.min(256, Number(root.querySelector("#act-count").value) || 1));
    root.querySelector("#act-grow").addEventListener("click", () => act(ctx, mc, "grow", count()));
    root.querySelector("#act-shrink").addEventListener("click", () => act(ctx, mc, "shrink", count()));
    root.querySelector("#act-delete").addEventListener("click", () => act(ctx, mc, "delete", 0));
  }
  loadMc(ctx, tenant, name);
}

async function loadMc({ app, root }, tenant, name) {
  const body = root.querySelector("#mc-body");
  const mcq = `tenant=${q(tenant)}`;
  let mc;
  let cargos;
  try {
    // Lists, never GET /v1/miniclusters/NAME: a MiniCluster deleted while its page is open
    // (by this page's own Delete, or by anyone) is simply absent, not a 404 in the console.
    const [mcs, items] = await Promise.all([
      all(`/v1/miniclusters?${mcq}`),
      all(`/v1/cargos?${mcq}&miniCluster=${q(name)}`),
    ]);
    mc = mcs.find((m) => m.name === name);
    cargos = items;
  } catch (err) {
    body.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    return;
  }
  if (app.pageKey !== `${tenant}/${name}`) return;
  if (!mc) {
    body.innerHTML = `<p>MiniCluster ${esc(name)} is gone (or not yours).</p><p><a href="#/miniclusters">All MiniClusters</a></p>`;
    return;
  }
  const st = mc.status;
  const reservation = Object.entries(st.reservation || {}).sort()
    .map(([node, ids]) => `<tr><td>${esc(node)}</td><td>${esc(ids.join(", "))}</td></tr>`).join("");
  const cargoRows = cargos.map((c) => {
    const where = (c.status.placement || []).map((p) => `${p.replica}: ${p.node} [${p.gpuIds.join(",")}]`
      + `${p.borrowed ? " borrowed" : ""}`).join("; ");
    return `<tr data-cargo="${esc(c.name)}"><td>${esc(c.name)}</td><td>${esc(c.status.phase)}</td>`
      + `<td class="num">${c.spec.replicas}</td><td class="num">${c.spec.gpusPerReplica}</td>`
      + `<td>${esc(where || "–")}</td><td>${esc(c.status.message || "")}</td></tr>`;
  }).join("");
  const conditions = (st.conditions || []).map((c) => `<tr><td>${esc(c.type)}</td>`
    + `<td><span class="pill ${String(c.status) === "True"}">${esc(c.status)}</span></td>`
    + `<td>${esc(c.reason || "")}</td><td>${esc(c.message || "")}</td>`
    + `<td>${esc(fmtTime(c.lastTransitionTime))}</td></tr>`).join("");
  const events = app.events.filter((e) => e.tenant === tenant && e.miniCluster === name).slice(0, 50)
    .map((e) => `<tr><td>${esc(fmtTime(e.time))}</td><td>${esc(e.type)}</td><td>${esc(e.cargo || "")}</td>`
      + `<td>${esc(e.message)}</td></tr>`).join("");
  const card = (label, value, id) => `<div class="card"><div class="muted">${label}</div>`
    + `<div class="v" id="${id}">${esc(value)}</div></div>`;
  const chartHtml = (cache.get(`usage:${tenant}/${name}`) || {}).value || "";
  body.innerHTML = `<div class="cards">${card("state", mcState(mc), "mc-state")}`
    + card("GPUs min–max", `${mc.spec.gpus.min}–${mc.spec.gpus.max} × ${mc.spec.gpuType}`, "mc-range")
    + card("reserved", st.reservedGpus, "mc-reserved") + card("in use", st.inUseGpus, "mc-in-use")
    + card("borrowed", st.borrowedGpus, "mc-borrowed") + card("cargos", `${st.readyCargos}/${st.cargos} ready`, "mc-cargos")
    + `</div>${st.message ? `<p>${esc(st.message)}</p>` : ""}`
    + `<h2>Usage, last hour</h2><div id="mc-chart">${chartHtml || '<p class="muted">Loading…</p>'}</div>`
    + `<h2>Reservation</h2>${reservation ? `<div class="table-wrap"><table aria-label="Reservation"><thead><tr><th>node</th><th>GPU ids</th></tr></thead><tbody>${reservation}</tbody></table></div>` : "<p class=\"muted\">No GPUs reserved.</p>"}`
    + `<h2>Cargos</h2>${cargoRows ? `<div class="table-wrap"><table aria-label="Cargos"><thead><tr><th>name</th><th>phase</th><th class="num">replicas</th><th class="num">GPUs each</th><th>replicas on nodes</th><th>message</th></tr></thead><tbody>${cargoRows}</tbody></table></div>` : "<p class=\"muted\">No cargos.</p>"}`
    + `<h2>Conditions</h2>${conditions ? `<div class="table-wrap"><table aria-label="Conditions"><thead><tr><th>type</th><th>status</th><th>reason</th><th>message</th><th>since</th></tr></thead><tbody>${conditions}</tbody></table></div>` : "<p class=\"muted\">None yet.</p>"}`
    + `<h2>Events</h2>${events ? `<div class="table-wrap"><table aria-label="Events"><thead><tr><th>time</th><th>type</th><th>cargo</th><th>message</th></tr></thead><tbody>${events}</tbody></table></div>` : "<p class=\"muted\">None since this page was opened.</p>"}`;
  cached(`usage:${tenant}/${name}`, 30000, async () => chart(await usageBuckets(mc)))
    .then((html) => {
      const el = root.querySelector("#mc-chart");
      if (el && app.pageKey === `${tenant}/${name}`) el.innerHTML = html;
    })
    .catch((err) => {
      const el = root.querySelector("#mc-chart");
      if (el) el.innerHTML = `<p class="muted">No usage: ${esc(err.message)}</p>`;
    });
}

async function act(ctx, mc, verb, count) {
  const { toast, confirmDialog, refresh } = ctx;
  const texts = {
    grow: [`Grow ${mc.name}?`, `Add ${count} cargo(s) shaped like its template.`, "Grow"],
    shrink: [`Shrink ${mc.name}?`, `Remove the ${count} newest cargo(s) after their grace period.`, "Shrink"],
    delete: [`Delete ${mc.name}?`, `Delete MiniCluster ${mc.name} of tenant ${mc.tenant} and all its cargos.`
      + " This cannot be undone.", "Delete"],
  };
  const [title, text, label] = texts[verb];
  if (!(await confirmDialog(title, text, label))) {
    toast(`${verb} cancelled`);
    return;
  }
  const base = `/v1/miniclusters/${q(mc.name)}`;
  const tq = `tenant=${q(mc.tenant)}`;
  try {
    if (verb === "grow") {
      const res = await call("POST", `${base}:grow?${tq}`, { count });
      toast(`grow ${res.result}: ${res.added}/${res.requested} added${res.reasons.length ? ` (${res.reasons.join("; ")})` : ""}`);
    } else if (verb === "shrink") {
      const res = await call("POST", `${base}:shrink?${tq}`, { count });
      toast(`removed ${res.removed.join(", ") || "nothing"}`);
    } else {
      await call("DELETE", `${base}?${tq}`);
      toast(`${mc.name} deleted`);
      location.hash = "#/miniclusters";
    }
  } catch (err) {
    toast(`${verb} failed: ${err.message}`);
  }
  refresh();
}

// --- tenants ---------------------------------------------------------------------------------

export function tenants({ app, root }) {
  const by = new Map();
  const names = app.who.scope === "admin" ? app.tenants : [app.who.tenant];
  for (const t of names) by.set(t, { mcs: 0, guarantee: 0, reserved: 0, inUse: 0, borrowed: 0, max: 0 });
  for (const mc of app.mcs) {
    const t = by.get(mc.tenant) || { mcs: 0, guarantee: 0, reserved: 0, inUse: 0, borrowed: 0, max: 0 };
    t.mcs += 1;
    if (cond(mc, "Admitted")) t.guarantee += mc.spec.gpus.min;
    t.max += mc.spec.gpus.max;
    t.reserved += mc.status.reservedGpus;
    t.inUse += mc.status.inUseGpus;
    t.borrowed += mc.status.borrowedGpus;
    by.set(mc.tenant, t);
  }
  const rows = [...by.entries()].sort().map(([name, t]) => `<tr data-tenant="${esc(name)}"><td>${esc(name)}</td>`
    + `<td class="num">${t.mcs}</td><td class="num">${t.guarantee}</td><td class="num">${t.reserved}</td>`
    + `<td class="num">${t.inUse}</td><td class="num">${t.borrowed}</td><td class="num">${t.max}</td></tr>`)
    .join("");
  let others = "";
  if (app.who.scope !== "admin") {
    let held = 0;
    for (const n of app.nodes) for (const g of n.gpus) if ((g.miniCluster || g.reservedFor) === "other") held += 1;
    others = `<p id="others">Other tenants hold <strong>${held}</strong> GPUs (their names are not shown).</p>`;
  }
  const limit = (n) => (n === null || n === undefined ? "-" : n);
  const shareRows = app.shares.map((s) => `<tr data-share="${esc(s.tenant)}/${esc(s.gpuType)}">`
    + `<td>${esc(s.tenant)}</td><td>${esc(s.gpuType)}</td><td class="num">${s.nominal}</td>`
    + `<td class="num">${s.inUse}</td><td class="num">${s.borrowing}</td>`
    + `<td class="num">${limit(s.borrowingLimit)}</td><td class="num">${limit(s.lendingLimit)}</td>`
    + `<td class="num">${s.weight}</td></tr>`).join("");
  const shares = app.who.scope !== "admin" || !app.shares.length ? ""
    : `<h2>Shares</h2><div class="table-wrap"><table aria-label="Tenant shares" id="shares"><thead><tr>`
      + `<th>tenant</th><th>GPU type</th><th class="num">guaranteed</th><th class="num">in use</th>`
      + `<th class="num">borrowing</th><th class="num">borrowing limit</th>`
      + `<th class="num">lending limit</th><th class="num">weight</th></tr></thead>`
      + `<tbody>${shareRows}</tbody></table></div>`
      + `<p class="hint">Idle GPUs go first to the tenant with the lowest max(0, in use - guaranteed)`
      + ` / weight; a tenant below its guarantee reclaims it from borrowers (docs/tenants.md).</p>`;
  root.innerHTML = `<h1>Tenants</h1><div class="table-wrap"><table aria-label="Tenants"><thead><tr>`
    + `<th>tenant</th><th class="num">MiniClusters</th><th class="num">guaranteed (admitted min)</th>`
    + `<th class="num">reserved</th><th class="num">in use</th><th class="num">borrowing</th>`
    + `<th class="num">max</th></tr></thead><tbody>${rows}</tbody></table></div>${others}`
    + `<p class="hint">Guaranteed GPUs are the admitted MiniClusters' minimum; borrowing is use beyond it`
    + ` (preemptible).</p>${shares}`;
}
