// Small line charts drawn as inline SVG, for a run's metrics and resource usage. No chart
// library: a chart here is a few lines over time with labelled axes, and the console has
// no build step to carry a large dependency.
//
//     const figure = lineChart({
//       title: "loss",
//       lines: [{ label: "Run 3", points: [{ x: 0, y: 0.9, at: "2026-…Z" }, …] }],
//     });
//     container.append(figure);
//
// x is seconds since the run started (or, with `clockFrom`, since that moment, and the
// axis reads clock times); y any number. Each line gets a colour class
// (`chart-c0` … `chart-c7`, defined in console.css so the contrast test checks them) and a
// dash pattern, so lines stay apart for people who do not tell the colours apart.
import { duration, el } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";

/** Lines told apart by colour class and dash pattern; the ninth looks like the first. */
export const LINE_STYLES = 8;
const DASHES = ["", "6 3", "2 3", "8 3 2 3", "", "6 3", "2 3", "8 3 2 3"];

/** Points marked with a dot (and a tooltip) at most per line; more are drawn as the line
 * alone, which is all a person can read at that density anyway. */
export const MAX_MARKERS = 400;

// Drawn about as wide as the page shows it, so the axis labels stay readable.
const WIDTH = 320;
const PLOT = { left: 46, right: 10, top: 8, bottom: 24 };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value != null && value !== "") node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A number as a person reads it on an axis: at most four significant digits. */
export function formatNumber(value) {
  if (value == null || Number.isNaN(value)) return "";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6 || magnitude < 1e-3) return value.toExponential(2).replace("e+", "e");
  return String(Number(value.toPrecision(4)));
}

/** About `count` round tick values covering [low, high]. */
export function niceTicks(low, high, count = 4) {
  if (!(high > low)) {
    const pad = Math.abs(low) > 0 ? Math.abs(low) * 0.1 : 1;
    return niceTicks(low - pad, high + pad, count);
  }
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const first = Math.floor(low / step) * step;
  const ticks = [];
  for (let v = first; v <= high + step * 0.5; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400];

/** The step, in seconds, between about four ticks over `span` seconds. */
function tickStep(span) {
  return TICK_STEPS.find((s) => span / s <= 4) || Math.ceil(span / 4 / 86400) * 86400;
}

/** Elapsed-time axis ticks: `0 s`, `30 s`, `1 min`, … */
function timeTicks(end) {
  if (end <= 0) return [0];
  if (end < 1) return [0, 1];
  const step = tickStep(end);
  const ticks = [];
  for (let t = 0; t <= end + 1e-9; t += step) ticks.push(t);
  return ticks;
}

/** A tick's elapsed time without the zero parts a round tick has: `10 min`, `1 h 30 min`. */
export function tickDuration(seconds) {
  return duration(seconds).replace(/ 00 (s|min|h)$/, "");
}

/** Ticks at round clock times (local time) over [0, end] seconds after `origin` (ms since
 * the epoch): x values, with their labels (`09:30`; a date too where the span passes days). */
export function clockTicks(origin, end) {
  if (!(end > 0)) return { ticks: [0], label: () => clockLabel(origin, 0, 0) };
  const step = tickStep(end);
  // Local midnight, not UTC's, is where a day tick goes (and a 6 h tick counts from).
  const local = origin / 1000 - new Date(origin).getTimezoneOffset() * 60;
  const ticks = [];
  for (let t = Math.ceil(local / step) * step - local; t <= end + 1e-9; t += step) ticks.push(t);
  return { ticks, label: (x) => clockLabel(origin, x, step) };
}

function clockLabel(origin, x, step) {
  const at = new Date(origin + x * 1000);
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  if (step < 86400) return step >= 21600 && at.getHours() === 0 ? at.toLocaleDateString([], { month: "short", day: "numeric" }) : time;
  return at.toLocaleDateString([], { month: "short", day: "numeric" });
}

/**
 * An SVG line chart in a <figure>.
 *
 * `lines`: [{ label, points: [{ x, y, at }], style? }]; `style` picks the colour and dash
 * (default: the line's index). `format` turns a y value into words (default: numbers).
 * `yFloor` keeps 0 (or another value) on the y axis, as for percentages. Several lines get
 * a legend below unless `withLegend` is false (a caller drawing one legend for many charts).
 * Returns the figure; its SVG carries `data-points` (the points of all lines).
 */
export function lineChart({
  title, lines, format = formatNumber, yFloor = null, yCeiling = null, height = 130, caption = null, withLegend = true,
  clockFrom = null, xSpan = null,
}) {
  const drawn = lines.map((line, index) => ({
    ...line,
    style: (line.style ?? index) % LINE_STYLES,
    points: line.points.filter((p) => Number.isFinite(p.y) && Number.isFinite(p.x)),
  }));
  const all = drawn.flatMap((l) => l.points);
  const count = all.length;
  let low = Math.min(...all.map((p) => p.y));
  let high = Math.max(...all.map((p) => p.y));
  if (!count) { low = 0; high = 1; }
  if (yFloor != null) low = Math.min(low, yFloor);
  if (yCeiling != null) high = Math.max(high, yCeiling);
  const yTicks = niceTicks(low, high);
  const yMin = Math.min(yTicks[0], low);
  const yMax = Math.max(yTicks[yTicks.length - 1], high);
  const xEnd = Math.max(count ? Math.max(...all.map((p) => p.x)) : 0, xSpan ?? 0);
  const clock = clockFrom == null ? null : clockTicks(Date.parse(clockFrom), xEnd);
  const xTicks = clock ? clock.ticks : timeTicks(xEnd);
  const xLabel = clock ? clock.label : tickDuration;
  const xMax = Math.max(clock ? 0 : xTicks[xTicks.length - 1], xEnd, 1e-9);

  const plotW = WIDTH - PLOT.left - PLOT.right;
  const plotH = height - PLOT.top - PLOT.bottom;
  const sx = (x) => PLOT.left + (x / xMax) * plotW;
  const sy = (y) => PLOT.top + plotH - ((y - yMin) / (yMax - yMin || 1)) * plotH;

  const grid = svg("g", { class: "chart-grid" });
  for (const tick of yTicks) {
    const y = sy(tick).toFixed(1);
    grid.append(
      svg("line", { x1: PLOT.left, x2: WIDTH - PLOT.right, y1: y, y2: y }),
      svg("text", { x: PLOT.left - 6, y, class: "chart-y-label", "dominant-baseline": "middle", "text-anchor": "end" }, format(tick)),
    );
  }
  for (const tick of xTicks) {
    // A clock tick may fall just inside either end: its label then leans inwards.
    const x = sx(tick);
    const anchor = x - PLOT.left < 12 ? "start" : WIDTH - PLOT.right - x < 12 && clock ? "end" : "middle";
    grid.append(svg("text", {
      x: x.toFixed(1), y: height - 8, class: "chart-x-label", "text-anchor": anchor,
    }, xLabel(tick)));
  }
  grid.append(svg("line", {
    class: "chart-axis", x1: PLOT.left, x2: WIDTH - PLOT.right, y1: PLOT.top + plotH, y2: PLOT.top + plotH,
  }));

  const series = drawn.map((line) => {
    const group = svg("g", { class: `chart-line chart-c${line.style}`, "data-label": line.label, "data-run": line.run ?? "" });
    if (line.points.length) {
      const d = line.points.map((p, i) => `${i ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join("");
      group.append(svg("path", { class: "series-line", d, "stroke-dasharray": DASHES[line.style] }));
    }
    if (line.points.length <= MAX_MARKERS) {
      for (const p of line.points) {
        const when = p.at ? new Date(p.at).toLocaleTimeString([], { hourCycle: "h23" }) : duration(p.x);
        group.append(svg("circle", { class: "series-point", cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 2.5 },
          svg("title", {}, `${line.label ? `${line.label}, ` : ""}${when}: ${format(p.y)}`)));
      }
    }
    return group;
  });

  const summary = drawn.map((line) => {
    const last = line.points[line.points.length - 1];
    const values = line.points.map((p) => p.y);
    return line.points.length
      ? `${line.label ? `${line.label}: ` : ""}${line.points.length} points, last ${format(last.y)}, `
        + `lowest ${format(Math.min(...values))}, highest ${format(Math.max(...values))}`
      : `${line.label ? `${line.label}: ` : ""}no points yet`;
  }).join("; ");
  const chart = svg("svg", {
    class: "chart", viewBox: `0 0 ${WIDTH} ${height}`, role: "img",
    "aria-label": `${title}. ${summary}.`, "data-points": count,
  }, grid, ...series);

  const figure = el("figure", { className: "chart-figure", dataset: { chart: title } },
    el("figcaption", {}, el("span", { className: "chart-title" }, title), caption ? el("span", { className: "muted chart-caption" }, caption) : null),
    chart);
  if (withLegend && drawn.length > 1) figure.append(legend(drawn));
  if (count === 0) figure.append(el("p", { className: "muted chart-empty" }, "No points yet."));
  return figure;
}

/** A sample of a line's colour and dash, for legends. */
export function swatch(style) {
  return svg("svg", { class: `chart-swatch chart-c${style % LINE_STYLES}`, viewBox: "0 0 24 8", width: 24, height: 8, "aria-hidden": "true" },
    svg("line", { x1: 0, x2: 24, y1: 4, y2: 4, "stroke-dasharray": DASHES[style % LINE_STYLES] }));
}

function legend(lines) {
  return el("ul", { className: "chart-legend" }, ...lines.map((line) =>
    el("li", { dataset: { run: line.run ?? "" } }, swatch(line.style), " ", line.label)));
}
