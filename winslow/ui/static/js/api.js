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

// Sizes and durations read the same as the server's and the CLI's (winslow/units.py):
// binary units (1 GiB = 1024³ bytes; every `*_mb` field is MiB), and durations of at most
// two parts, `45 s`, `3 min 05 s`, `1 h 03 min`, `2 d 04 h`. Keep the two in step.

const SIZE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `512 B`, `1.0 KiB` … `3.5 TiB`: one decimal from a KiB on; 1 MiB less a byte is `1.0 MiB`. */
export function formatSize(n) {
  if (n == null) return "";
  if (n < 0) return `-${formatSize(-n)}`;
  if (n < 1024 - 0.5) return `${Math.round(n)} B`;
  let value = n;
  for (let unit = 1; unit < SIZE_UNITS.length; unit += 1) {
    value /= 1024;
    if (Number(value.toFixed(1)) < 1024 || unit === SIZE_UNITS.length - 1) {
      return `${value.toFixed(1)} ${SIZE_UNITS[unit]}`;
    }
  }
  return "";
}

/** `formatSize` of a number of MiB (a `memory_mb` field): 8192 → `8.0 GiB`. */
export function formatMegabytes(mb) {
  return mb == null ? "" : formatSize(mb * 1024 * 1024);
}

/** `45 s`, `3 min 05 s`, `1 h 03 min`, `2 d 04 h` (from 48 h on); `coarse` drops the
 * seconds from a minute on (`3 min`), for times that tick only now and then. */
export function duration(seconds, coarse = false) {
  if (seconds == null) return "";
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  const pad = (n) => String(n).padStart(2, "0");
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return coarse ? `${minutes} min` : `${minutes} min ${pad(total % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${pad(minutes % 60)} min`;
  return `${Math.floor(hours / 24)} d ${pad(hours % 24)} h`;
}

/** `3 h 12 min`-style time since an ISO moment (the overview's Python `since` says the same). */
export function since(iso, now = Date.now()) {
  if (!iso) return "";
  return duration((now - Date.parse(iso)) / 1000, true);
}

/** `about 12 min left`, from a number of seconds; `under a minute left` below one. */
export function timeLeft(seconds) {
  if (seconds == null) return "";
  if (seconds < 60) return "under a minute left";
  return `about ${duration(Math.round(seconds / 60) * 60, true)} left`;
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

// Names a stage wrote are shown with their invisible characters escaped, by the rules of
// winslow/core/logformat.py `escape_name` (the CLI's): control characters as `\t`, `\n`,
// `\r` or `\xHH`, other format characters, surrogates and line or paragraph separators as
// `\uHHHH` (`\UHHHHHHHH` beyond U+FFFF). Keep the two in step.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/gu;
const SHORT_ESCAPES = { "\t": "\\t", "\n": "\\n", "\r": "\\r" };

/** A file or folder name (or a path) as a person is shown it: "evil" U+202E "gpj.sh" shows
 * as `evil\u202egpj.sh`, not as `evilhs.jpg`. Only for showing: links and downloads keep
 * the name itself. */
export function escapeName(name) {
  return String(name).replace(INVISIBLE, (char) => {
    if (SHORT_ESCAPES[char]) return SHORT_ESCAPES[char];
    const code = char.codePointAt(0);
    const hex = (width) => code.toString(16).padStart(width, "0");
    if (code < 0xa0) return `\\x${hex(2)}`;
    return code > 0xffff ? `\\U${hex(8)}` : `\\u${hex(4)}`;
  });
}
