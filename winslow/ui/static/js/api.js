// The console's one way to talk to the API: same-origin fetch with the session cookie,
// the console's header on changes (the server refuses cookie-authorised changes without
// it), and every error turned into words for the person via showError.

const CONSOLE_HEADER = "X-Winslow-Console";

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

/** Call the API at `path` (below /api/v1); return parsed JSON (or text, or null). */
export async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...headers }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") init.headers[CONSOLE_HEADER] = "1";
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch (err) {
    throw new ApiError(0, `The Winslow server cannot be reached (${err.message}). Check your connection; nothing was changed.`);
  }
  if (response.status === 401 && !path.startsWith("/session")) {
    window.location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, "Your session ended; sign in again.");
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    let parsed = null;
    try {
      parsed = await response.json();
      if (parsed && parsed.detail) detail = typeof parsed.detail === "string" ? parsed.detail : JSON.stringify(parsed.detail);
    } catch (_) { /* not JSON: keep the status line */ }
    throw new ApiError(response.status, detail, parsed);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** Show an error to the person (not only in the browser's console). */
export function showError(error) {
  const box = document.getElementById("errors");
  const message = error instanceof Error ? error.message : String(error);
  if (!box) { alert(message); return; }
  const line = document.createElement("div");
  line.className = "error";
  const text = document.createElement("span");
  text.textContent = message;
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "Dismiss";
  close.addEventListener("click", () => line.remove());
  line.append(text, close);
  box.append(line);
}

/** Run `action`; show whatever it throws. Returns its result, or undefined on error. */
export async function guarded(action) {
  try {
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  }
}

window.addEventListener("unhandledrejection", (event) => showError(event.reason));

/** `1.2 GiB`-style size. */
export function formatSize(n) {
  if (n == null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** `3 h 12 min`-style time since an ISO moment. */
export function since(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** `1 h 03 min`-style duration in seconds. */
export function duration(seconds) {
  if (seconds == null) return "";
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** Create an element: el("td", {className: "x"}, "text", child). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("aria-") || key === "role" || key === "for") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
