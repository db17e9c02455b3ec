// The GPU map: nodes grouped zone -> block -> rack -> node -> island, virtualised (only the
// rows in view are in the DOM), keyboard-navigable as an ARIA grid, collapsible domains.
import { esc } from "./api.js";

export const STATES = ["in-use", "reserved", "borrowed", "busy", "free"];
export const LETTER = { "in-use": "U", reserved: "R", borrowed: "B", busy: "X", free: "·" };
export const LABEL = {
  "in-use": "in use", reserved: "reserved", borrowed: "borrowed", busy: "busy (outside Crane)",
  free: "free",
};
const LEVELS = [
  ["zone", ["topology.kubernetes.io/zone", "zone"]],
  ["block", ["crane.io/block", "block"]],
  ["rack", ["crane.io/rack", "rack"]],
];
const NONE = "(none)";

/** busy, borrowed (used by a MiniCluster that does not reserve it), in use, reserved, free. */
export function gpuState(gpu) {
  if (gpu.busy) return "busy";
  if (gpu.cargo) return gpu.reservedFor === gpu.miniCluster ? "in-use" : "borrowed";
  return gpu.reservedFor ? "reserved" : "free";
}

export function owner(gpu) {
  return gpu.miniCluster || gpu.reservedFor || null;
}

function zero() {
  return { "in-use": 0, reserved: 0, borrowed: 0, busy: 0, free: 0, total: 0 };
}

function add(into, from) {
  for (const k in into) into[k] += from[k];
}

/** Counts per state, per MiniCluster, and the domain tree of ``nodes``. */
export function model(nodes) {
  const levels = LEVELS.filter(([, keys]) => nodes.some((n) => keys.some((k) => k in n.labels)));
  const totals = zero();
  const byMc = new Map();
  const root = { name: "", level: "", path: "", children: new Map(), nodes: [], counts: zero() };
  for (const node of nodes) {
    const counts = zero();
    node.states = node.gpus.map((g) => {
      const s = gpuState(g);
      counts[s] += 1;
      counts.total += 1;
      const who = owner(g);
      if (who) {
        const m = byMc.get(who) || { reserved: 0, "in-use": 0, borrowed: 0 };
        if (g.reservedFor === who) m.reserved += 1;
        if (s === "in-use" || s === "borrowed") m[s] += 1;
        byMc.set(who, m);
        if (g.reservedFor && g.reservedFor !== who) {
          const r = byMc.get(g.reservedFor) || { reserved: 0, "in-use": 0, borrowed: 0 };
          r.reserved += 1;
          byMc.set(g.reservedFor, r);
        }
      }
      return s;
    });
    node.counts = counts;
    add(totals, counts);
    let at = root;
    add(at.counts, counts);
    for (const [alias, keys] of levels) {
      const key = keys.find((k) => k in node.labels);
      const name = key ? node.labels[key] : NONE;
      let child = at.children.get(name);
      if (!child) {
        const path = `${at.path}/${alias}=${name}`;
        child = { name, level: alias, path, children: new Map(), nodes: [], counts: zero() };
        at.children.set(name, child);
      }
      at = child;
      add(at.counts, counts);
    }
    at.nodes.push(node);
  }
  return { totals, byMc, root, levels: levels.map(([a]) => a) };
}

function islandsOf(node) {
  const ids = node.gpus.map((g) => g.id);
  if (!node.islands || node.islands.length === 0) return [ids];
  const known = new Set(ids);
  return node.islands.map((isl) => isl.filter((i) => known.has(i))).filter((isl) => isl.length);
}

function islandIndex(node, id) {
  const islands = islandsOf(node);
  const at = islands.findIndex((isl) => isl.includes(id));
  return at < 0 ? 0 : at;
}

/** The rows to show: domain headers and, under expanded domains, their nodes. */
export function flatten(root, collapsed) {
  const rows = [];
  const walk = (domain, depth) => {
    const names = [...domain.children.keys()].sort();
    for (const name of names) {
      const child = domain.children.get(name);
      const open = !collapsed.has(child.path);
      rows.push({ kind: "domain", domain: child, depth, open });
      if (open) walk(child, depth + 1);
    }
    for (const node of domain.nodes.slice().sort((a, b) => (a.name < b.name ? -1 : 1))) {
      rows.push({ kind: "node", node, depth });
    }
  };
  walk(root, 0);
  return rows;
}

export function describeGpu(node, gpu) {
  const state = gpuState(gpu);
  const parts = [`${node.name} GPU ${gpu.id}`, LABEL[state]];
  if (gpu.miniCluster) parts.push(`by ${gpu.miniCluster}`);
  if (gpu.cargo) parts.push(`cargo ${gpu.cargo}`);
  if (gpu.reservedFor && gpu.reservedFor !== gpu.miniCluster) {
    parts.push(`reserved for ${gpu.reservedFor}`);
  }
  return parts.join(", ");
}

function bar(counts) {
  if (!counts.total) return "";
  const part = (s) => `<span class="b-${s}" data-w="${(100 * counts[s]) / counts.total}"></span>`;
  return `<span class="bar" aria-hidden="true">${["in-use", "borrowed", "reserved", "busy"]
    .map(part).join("")}</span>`;
}

/** The virtualised, keyboard-navigable map inside ``scroller``. */
export class GpuMap {
  constructor(scroller, onDetails) {
    this.scroller = scroller;
    this.onDetails = onDetails;
    this.spacer = document.createElement("div");
    this.spacer.className = "map-spacer";
    this.rowsEl = document.createElement("div");
    this.rowsEl.className = "map-rows";
    this.rowsEl.setAttribute("role", "rowgroup");
    this.spacer.append(this.rowsEl);
    scroller.append(this.spacer);
    scroller.setAttribute("role", "grid");
    scroller.setAttribute("aria-label", "GPU map");
    this.rowH = 28;
    this.collapsed = new Set();
    this.rows = [];
    this.active = { row: 0, col: 0 };
    this.highlight = null;
    this.frame = 0;
    scroller.addEventListener("scroll", () => this.schedule());
    scroller.addEventListener("keydown", (e) => this.key(e));
    scroller.addEventListener("click", (e) => this.click(e));
    scroller.addEventListener("mouseover", (e) => this.hover(e));
    scroller.addEventListener("focusin", (e) => this.focused(e));
    window.addEventListener("resize", () => this.schedule());
  }

  /** Show ``data`` (from model()); keeps collapsed domains, scroll position and focus. */
  setModel(data) {
    this.data = data;
    this.rows = flatten(data.root, this.collapsed);
    this.active.row = Math.min(this.active.row, Math.max(this.rows.length - 1, 0));
    this.scroller.setAttribute("aria-rowcount", String(this.rows.length));
    this.spacer.style.height = `${this.rows.length * this.rowH}px`;
    this.render();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  cols(row) {
    const r = this.rows[row];
    return r && r.kind === "node" ? r.node.gpus.length + 1 : 1;
  }

  render() {
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / this.rowH) - 10);
    const last = Math.min(this.rows.length, Math.ceil((top + height) / this.rowH) + 10);
    const html = [];
    for (let i = first; i < last; i++) html.push(this.rowHtml(i));
    const hadFocus = this.scroller.contains(document.activeElement);
    this.rowsEl.innerHTML = html.join("");
    this.rowsEl.style.transform = `translateY(${first * this.rowH}px)`;
    for (const el of this.rowsEl.querySelectorAll(".bar span")) el.style.width = `${el.dataset.w}%`;
    this.first = first;
    if (hadFocus) this.focusActive(false);
  }

  rowHtml(i) {
    const r = this.rows[i];
    const act = this.active;
    const tab = (col) => (act.row === i && act.col === col ? "0" : "-1");
    if (r.kind === "domain") {
      const d = r.domain;
      const c = d.counts;
      const label = `${d.level} ${d.name}: ${c.total} GPUs, ${c.free} free, ${c["in-use"]} in use, `
        + `${c.reserved} reserved, ${c.borrowed} borrowed${r.open ? "" : " (collapsed)"}`;
      return `<div class="row domain d${r.depth}" role="row" aria-rowindex="${i + 1}" data-row="${i}"`
        + ` aria-expanded="${r.open}" data-domain="${esc(d.path)}">`
        + `<span class="name" role="rowheader" tabindex="${tab(0)}" data-col="0" aria-label="${esc(label)}">`
        + `<span class="twisty" aria-hidden="true">${r.open ? "▾" : "▸"}</span>${esc(d.level)} ${esc(d.name)}</span>`
        + `${bar(c)}<span class="counts">${c.total} GPUs · ${c.free} free · ${c["in-use"]} used · `
        + `${c.reserved} reserved · ${c.borrowed} borrowed</span></div>`;
    }
    const n = r.node;
    const byId = new Map(n.gpus.map((g, k) => [g.id, k]));
    const islands = islandsOf(n).map((isl, k) => {
      const cells = isl.map((id) => {
        const idx = byId.get(id);
        const g = n.gpus[idx];
        const s = n.states[idx];
        const hl = this.highlight && owner(g) === this.highlight ? " hl" : "";
        return `<span class="gpu s-${s}${hl}" role="gridcell" tabindex="${tab(idx + 1)}"`
          + ` data-col="${idx + 1}" data-state="${s}" data-mc="${esc(owner(g) || "")}"`
          + ` aria-label="${esc(describeGpu(n, g))}">${LETTER[s]}</span>`;
      });
      return `<span class="island" title="island ${k}">${cells.join("")}</span>`;
    });
    const flags = `${n.ready ? "" : '<span class="flag">NotReady</span>'}`
      + `${n.schedulable ? "" : '<span class="flag">cordoned</span>'}`;
    return `<div class="row node d${r.depth}" role="row" aria-rowindex="${i + 1}" data-row="${i}"`
      + ` data-node="${esc(n.name)}"><span class="name" role="rowheader" tabindex="${tab(0)}"`
      + ` data-col="0">${esc(n.name)}</span><span class="product">${esc(n.gpuProduct || "-")}</span>`
      + `<span class="gpus">${islands.join("")}</span>`
      + `<span class="free">${n.counts.free}/${n.gpus.length} free</span>${flags}</div>`;
  }

  cell(row, col) {
    const rowEl = this.rowsEl.querySelector(`[data-row="${row}"]`);
    return rowEl && rowEl.querySelector(`[data-col="${col}"]`);
  }

  focusActive(scroll = true) {
    const { row } = this.active;
    if (scroll) {
      const top = row * this.rowH;
      const view = this.scroller.clientHeight;
      if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
      else if (top + this.rowH > this.scroller.scrollTop + view) {
        this.scroller.scrollTop = top + this.rowH - view;
      }
      this.render();
      return;
    }
    const el = this.cell(row, this.active.col);
    if (el && document.activeElement !== el) el.focus({ preventScroll: true });
  }

  move(row, col) {
    row = Math.max(0, Math.min(this.rows.length - 1, row));
    col = Math.max(0, Math.min(this.cols(row) - 1, col));
    for (const el of this.rowsEl.querySelectorAll('[tabindex="0"]')) el.tabIndex = -1;
    this.active = { row, col };
    const el = this.cell(row, col);
    if (el) el.tabIndex = 0;
    this.focusActive(true);
    const now = this.cell(row, col);
    if (now) {
      now.tabIndex = 0;
      now.focus({ preventScroll: true });
    }
  }

  key(e) {
    if (!this.rows.length) return;
    const { row, col } = this.active;
    const page = Math.max(1, Math.floor(this.scroller.clientHeight / this.rowH) - 1);
    const moves = {
      ArrowDown: [row + 1, col], ArrowUp: [row - 1, col], ArrowRight: [row, col + 1],
      ArrowLeft: [row, col - 1], PageDown: [row + page, col], PageUp: [row - page, col],
      Home: e.ctrlKey ? [0, 0] : [row, 0], End: e.ctrlKey ? [this.rows.length - 1, 0]
        : [row, this.cols(row) - 1],
    };
    if (moves[e.key]) {
      e.preventDefault();
      this.move(...moves[e.key]);
      return;
    }
    const r = this.rows[row];
    if ((e.key === "Enter" || e.key === " ") && r.kind === "domain") {
      e.preventDefault();
      this.toggle(r.domain.path);
    }
  }

  toggle(path) {
    if (this.collapsed.has(path)) this.collapsed.delete(path);
    else this.collapsed.add(path);
    this.setModel(this.data);
    this.focusActive(false);
  }

  /** Collapse (true) or expand (false) every domain. */
  setAll(collapse) {
    this.collapsed.clear();
    if (collapse) {
      const walk = (d) => d.children.forEach((c) => { this.collapsed.add(c.path); walk(c); });
      walk(this.data.root);
    }
    this.active = { row: 0, col: 0 };
    this.scroller.scrollTop = 0;
    this.setModel(this.data);
  }

  click(e) {
    const rowEl = e.target.closest("[data-row]");
    if (!rowEl) return;
    const row = Number(rowEl.dataset.row);
    const colEl = e.target.closest("[data-col]");
    const col = colEl ? Number(colEl.dataset.col) : 0;
    this.move(row, col);
    if (this.rows[row].kind === "domain") this.toggle(this.rows[row].domain.path);
  }

  details(target) {
    const rowEl = target.closest && target.closest("[data-row]");
    if (!rowEl) return;
    const r = this.rows[Number(rowEl.dataset.row)];
    if (!r) return;
    const colEl = target.closest("[data-col]");
    const col = colEl ? Number(colEl.dataset.col) : 0;
    if (r.kind === "node" && col > 0) {
      const g = r.node.gpus[col - 1];
      this.onDetails({ kind: "gpu", node: r.node, gpu: g, state: r.node.states[col - 1],
        island: islandIndex(r.node, g.id) });
    } else if (r.kind === "node") {
      this.onDetails({ kind: "node", node: r.node });
    } else {
      this.onDetails({ kind: "domain", domain: r.domain });
    }
  }

  hover(e) {
    this.details(e.target);
  }

  focused(e) {
    const colEl = e.target.closest("[data-col]");
    const rowEl = e.target.closest("[data-row]");
    if (colEl && rowEl) this.active = { row: Number(rowEl.dataset.row), col: Number(colEl.dataset.col) };
    this.details(e.target);
  }
}
