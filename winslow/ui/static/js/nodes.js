// The nodes page's telemetry: each node's CPU, memory, disk, network and GPUs over a chosen
// range (live, 6 h, 24 h, 7 d, 31 d), drawn with the console's own SVG line charts
// (charts.js). The server keeps the history and picks its resolution; this only draws the
// points it gets. The live range is fetched again every few seconds; the others change
// slowly, so they are fetched when chosen.
//
// Above the charts, each node's live figures (what its stages hold, what is free, what it
// uses now, each GPU, the runs on it) are fetched again from /api/v1/nodes/live every few
// seconds and drawn the way the server drew them at first paint.
import { api, el, formatSize, since, showError } from "./api.js";
import { formatNumber, lineChart } from "./charts.js";

/** How often the live range is fetched again, milliseconds. */
export const LIVE_REFRESH_MS = 5000;

/** Cores drawn one line each up to this many; more are drawn as their mean and the busiest. */
const MAX_CORE_LINES = 8;

const percent = (v) => `${formatNumber(v)} %`;
const rate = (v) => `${formatSize(v)}/s`;
const mib = (v) => (v == null ? null : v * 1048576);

/** The charts of one response: [{ title, lines, format, floor, ceiling }]. Figures the
 * backend does not measure (null in every point) get no chart, but a note says so. */
function chartsOf(samples, start) {
  const x = (s) => (Date.parse(s.at) - Date.parse(start)) / 1000;
  const line = (label, pick) => ({
    label,
    points: samples.filter((s) => pick(s) != null).map((s) => ({ x: x(s), y: Number(pick(s)), at: s.at })),
  });
  const cores = Math.max(0, ...samples.map((s) => s.cpu_percent.length));
  const cpuLines = cores <= MAX_CORE_LINES
    ? Array.from({ length: cores }, (_, i) => line(`core ${i}`, (s) => s.cpu_percent[i]))
    : [line("mean of all cores", (s) => s.cpu_mean),
      line("busiest core", (s) => (s.cpu_percent.length ? Math.max(...s.cpu_percent) : null))];
  const gpus = [...new Set(samples.flatMap((s) => s.gpus.map((g) => g.index)))].sort((a, b) => a - b);
  const perGpu = (field) => gpus.map((index) => line(`GPU ${index}`, (s) => s.gpus.find((g) => g.index === index)?.[field]));
  const charts = [
    { title: "CPU", lines: cpuLines, format: percent, floor: 0, ceiling: 100 },
    { title: "Memory used", lines: [line("used", (s) => mib(s.memory_used_mb)), line("total", (s) => mib(s.memory_total_mb))], format: formatSize, floor: 0 },
    { title: "Disk used", lines: [line("used", (s) => s.disk_used_bytes), line("size", (s) => s.disk_total_bytes)], format: formatSize, floor: 0 },
    { title: "Disk I/O", lines: [line("read", (s) => s.disk_read_bps), line("write", (s) => s.disk_write_bps)], format: rate, floor: 0 },
    { title: "Network", lines: [line("received", (s) => s.net_rx_bps), line("sent", (s) => s.net_tx_bps)], format: rate, floor: 0 },
  ];
  if (gpus.length) {
    charts.push(
      { title: "GPU utilisation", lines: perGpu("utilization_percent"), format: percent, floor: 0, ceiling: 100 },
      { title: "GPU memory used", lines: perGpu("memory_used_mb").map((l) => ({ ...l, points: l.points.map((p) => ({ ...p, y: mib(p.y) })) })), format: formatSize, floor: 0 },
      { title: "GPU temperature", lines: perGpu("temperature_c"), format: (v) => `${formatNumber(v)} °C`, floor: 0 },
      { title: "GPU power", lines: perGpu("power_w"), format: (v) => `${formatNumber(v)} W`, floor: 0 },
    );
  }
  return charts;
}

function draw(section, body) {
  const charts = chartsOf(body.samples, body.start);
  const drawn = charts.filter((c) => !body.samples.length || c.lines.some((l) => l.points.length));
  const missing = charts.filter((c) => !drawn.includes(c)).map((c) => c.title.toLowerCase());
  const figures = drawn.map((c) => {
    // The range's whole window, read as clock times: a node that started sampling a
    // minute ago shows a minute of points at the right, not a minute stretched wide.
    const figure = lineChart({
      title: c.title, lines: c.lines, format: c.format, yFloor: c.floor, yCeiling: c.ceiling, height: 120,
      clockFrom: body.start, xSpan: (Date.parse(body.end) - Date.parse(body.start)) / 1000,
    });
    figure.dataset.chart = c.title;
    return figure;
  });
  section.querySelector(".telemetry-charts").replaceChildren(...figures);
  const step = body.step_seconds >= 60 ? `${body.step_seconds / 60} min` : `${body.step_seconds} s`;
  const count = body.samples.length;
  // Since the first point, not the window's start: a node may have been sampled for less.
  const first = count ? `, since ${new Date(body.samples[0].at).toLocaleString()}` : "";
  const words = [`${count} point${count === 1 ? "" : "s"}, one per ${step}${first}.`];
  // A rate needs two samples: the first alone says nothing of what is measured.
  if (missing.length && count > 1) words.push(`Not measured on this node: ${missing.join(", ")}.`);
  section.querySelector(".telemetry-note").textContent = words.join(" ");
  section.dataset.shownRange = body.range;
}

function mount(section) {
  const node = section.dataset.node;
  let range = "live";
  let timer = null;
  let asked = 0;

  async function load() {
    const ticket = ++asked;
    try {
      const body = await api(`/nodes/${encodeURIComponent(node)}/telemetry?range=${range}`);
      if (ticket === asked) draw(section, body);
    } catch (error) {
      showError(error);
    }
    clearTimeout(timer);
    if (range === "live" && ticket === asked) timer = setTimeout(load, LIVE_REFRESH_MS);
  }

  for (const button of section.querySelectorAll("button[data-range]")) {
    button.addEventListener("click", () => {
      range = button.dataset.range;
      for (const other of section.querySelectorAll("button[data-range]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      load();
    });
  }
  load();
}

for (const section of document.querySelectorAll(".node-telemetry[data-node]")) mount(section);

// -- live figures --------------------------------------------------------------------------

const mb = (v) => formatSize(v * 1048576);
const pct = (v) => (v == null ? "–" : `${Math.round(v)} %`);
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function meter(value, max, label) {
  const m = el("meter", { min: 0, max, value: value ?? 0 });
  m.setAttribute("aria-label", label);
  return m;
}

function figure(term, ...parts) {
  return el("div", {}, el("dt", {}, term), el("dd", {}, ...parts));
}

function stateBadge(state) {
  return el("span", { className: `state state-${state}` }, state.replace("_", " "));
}

function table(label, headings, rows) {
  const t = el("table", { className: `grid ${label.kind}`, "aria-label": label.text },
    el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows));
  return el("div", { className: "table-scroll" }, t);
}

function liveOf(n) {
  const total = n.memory_mb; // the capacity the scheduler counts, as the CLI shows it
  const runs = new Map(n.runs.map((r) => [r.id, r]));
  const parts = [
    el("p", { className: "node-accepts" }, `New stages: ${n.eligible && n.status === "ready" ? "accepted" : "not accepted"}`
      + (n.eligible ? "" : " (ineligible for scheduling)") + (n.drain ? ` · ${n.drain}` : "")),
    el("dl", { className: "capacity" },
      figure("CPU", meter(n.cpu_percent, 100, `CPU busy on ${n.name}`), " ",
        el("span", { dataset: { figure: "cpu" } }, `${pct(n.cpu_percent)} busy`),
        el("div", { className: "muted", dataset: { figure: "cpu-held" } },
          `${formatNumber(n.cpus_held)} of ${formatNumber(n.cpus)} cores held by stages, ${formatNumber(n.cpus_free)} free`)),
      figure("Memory", meter(n.memory_used_mb, total, `Memory used on ${n.name}`), " ",
        el("span", { dataset: { figure: "memory" } }, n.memory_used_mb == null ? `– of ${mb(total)}` : `${mb(n.memory_used_mb)} of ${mb(total)} used`),
        el("div", { className: "muted", dataset: { figure: "memory-held" } }, `${mb(n.memory_held_mb)} held by stages, ${mb(n.memory_free_mb)} free`)),
      figure("GPUs", el("span", { dataset: { figure: "gpus" } }, n.gpus_total ? `${n.gpus_free} of ${n.gpus_total} free` : "none on this node"),
        n.gpus_total ? el("div", { className: "muted" }, `${n.gpus_held} held by stages`) : null),
      figure("Disk", el("span", { dataset: { figure: "disk" } }, n.disk_used_bytes != null && n.disk_total_bytes
        ? `${formatSize(n.disk_used_bytes)} of ${formatSize(n.disk_total_bytes)} used` : "not measured"))),
    el("p", { className: "muted measured", dataset: { figure: "measured" } },
      n.measured_at ? `Measured ${since(n.measured_at)} ago` : "No recent measurement of this node"),
  ];
  if (n.gpus.length) {
    parts.push(table({ kind: "gpus", text: `GPUs of ${n.name}` },
      ["GPU", "Model", "Utilisation", "Memory", "Temp.", "Power", "Health", "Held by"],
      n.gpus.map((g) => el("tr", { className: g.runs.length ? "held" : (n.gpus_unnamed ? "unknown" : "free"), dataset: { gpu: String(g.index) } },
        el("td", {}, String(g.index)), el("td", {}, g.name),
        el("td", {}, meter(g.utilization_percent, 100, `GPU ${g.index} utilisation`), ` ${pct(g.utilization_percent)}`),
        el("td", {}, (g.memory_used_mb == null ? "" : `${mb(g.memory_used_mb)} of `) + mb(g.memory_mb)),
        el("td", {}, g.temperature_c == null ? "–" : `${Math.round(g.temperature_c)} °C`),
        el("td", {}, g.power_w == null ? "–" : `${Math.round(g.power_w)} W`),
        el("td", {}, g.healthy ? "healthy" : "unhealthy"),
        el("td", {}, ...(g.runs.length
          ? g.runs.map((id) => runs.get(id)).filter(Boolean).flatMap((r) => [el("a", { href: r.link }, `${r.project} · ${r.stage}`), " "])
          : [el("span", { className: "muted" }, n.gpus_unnamed ? "not known" : "free")]))))));
  }
  parts.push(el("h3", {}, "Runs here"));
  parts.push(n.runs.length
    ? table({ kind: "runs-here", text: `Runs on ${n.name}` },
      ["Project", "Stage", "Run", "State", "GPUs", "CPUs", "Memory", "Running for"],
      n.runs.map((r) => el("tr", { dataset: { run: String(r.id) } },
        el("td", {}, el("a", { href: `/projects/${encodeURIComponent(r.project)}` }, r.project)),
        el("td", {}, r.stage),
        el("td", {}, el("a", { href: r.link }, `run ${r.id}`)),
        el("td", {}, stateBadge(r.state)),
        el("td", {}, r.gpus.length ? r.gpus.join(", ") : (r.gpu_count ? `${r.gpu_count} (picked by the scheduler)` : "–")),
        el("td", {}, formatNumber(r.cpus)),
        el("td", {}, r.memory_mb ? mb(r.memory_mb) : "–"),
        el("td", { dataset: { since: r.started_at || "" } }, since(r.started_at)))))
    : el("p", { className: "muted" }, "No stage runs here."));
  return parts;
}

/** Draw the latest figures; false when the page no longer shows nodes (nothing to keep live). */
async function refreshLive() {
  const sections = document.querySelectorAll(".node-live[data-live]");
  if (!sections.length) return false;
  const body = await api("/nodes/live");
  const shown = new Set([...sections].map((d) => d.dataset.live));
  if (body.data.length !== shown.size || body.data.some((n) => !shown.has(n.name))) {
    location.reload(); // a node came or went: the page's sections follow the server's
    return false;
  }
  for (const n of body.data) {
    const live = [...document.querySelectorAll(".node-live[data-live]")].find((d) => d.dataset.live === n.name);
    live.replaceChildren(...liveOf(n));
    const badge = live.closest("section.node").querySelector("h2 .state");
    badge.className = `state state-${{ ready: "succeeded", down: "failed" }[n.status] || "paused"}`;
    badge.textContent = n.status;
  }
  const count = body.data.length;
  document.getElementById("nodes-summary").textContent = `${plural(count, "node")} · ${body.gpus_total ? `${body.gpus_free} of ${plural(body.gpus_total, "GPU")} free` : "no GPUs"} · ${plural(body.runs, "stage")} running`;
  document.body.dataset.liveAt = new Date().toISOString();
  return true;
}

let failing = false;
async function keepLive() {
  try {
    if (!await refreshLive()) return;
    failing = false;
  } catch (error) {
    if (!failing) showError(error); // once, not every few seconds while the server is away
    failing = true;
  }
  setTimeout(keepLive, LIVE_REFRESH_MS);
}
if (document.querySelector(".node-live[data-live]")) setTimeout(keepLive, LIVE_REFRESH_MS);
