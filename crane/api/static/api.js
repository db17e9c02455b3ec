// Calls to the Crane API with the dashboard's session cookie. Every request carries the
// X-Crane-CSRF header: the server refuses cookie-authenticated changes without it.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** fetch, retrying a GET once when the network itself failed (for example a network change). */
async function fetchOnce(path, init) {
  try {
    return await fetch(path, init);
  } catch (err) {
    if (init.method !== "GET") throw err;
    return fetch(path, init);
  }
}

/** fetch JSON from the API; problem+json answers become ApiError with the detail. */
export async function call(method, path, body) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { "X-Crane-CSRF": "1", Accept: "application/json" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetchOnce(path, init);
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!res.ok) throw new ApiError(res.status, (data && data.detail) || res.statusText);
  return data;
}

export const get = (path) => call("GET", path);

/** Every item of a paged list (limit 1000 per page). */
export async function all(path) {
  const sep = path.includes("?") ? "&" : "?";
  const items = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await get(`${path}${sep}limit=1000&offset=${offset}`);
    items.push(...page.items);
    if (items.length >= page.count || page.items.length === 0) return items;
  }
}

/** Text safe to put in HTML. */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

export const q = (name) => encodeURIComponent(name);
