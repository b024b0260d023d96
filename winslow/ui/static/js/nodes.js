// The nodes page's telemetry: each node's CPU, memory, disk, network and GPUs over a chosen
// range (live, 6 h, 24 h, 7 d, 31 d), drawn with the console's own SVG line charts
// (charts.js). The server keeps the history and picks its resolution; this only draws the
// points it gets. The live range is fetched again every few seconds; the others change
// slowly, so they are fetched when chosen.
import { api, formatSize, showError } from "./api.js";
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
    const figure = lineChart({ title: c.title, lines: c.lines, format: c.format, yFloor: c.floor, yCeiling: c.ceiling, height: 120 });
    figure.dataset.chart = c.title;
    return figure;
  });
  section.querySelector(".telemetry-charts").replaceChildren(...figures);
  const step = body.step_seconds >= 60 ? `${body.step_seconds / 60} min` : `${body.step_seconds} s`;
  const count = body.samples.length;
  const words = [`${count} point${count === 1 ? "" : "s"}, one per ${step}, since ${new Date(body.start).toLocaleString()}.`];
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
