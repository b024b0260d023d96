// What a run measured, for the project page: the series its log parsers found (one chart
// per field, optionally overlaid with other runs of the same stage) and what it used of
// its node (CPU, memory, GPU). Both come from the API, are polled while a shown run is
// live, and link to their CSV downloads.
//
//     const insights = mountInsights({ metrics: box1, usage: box2 }, { projectPath, stageInfo });
//     insights.show(run, runsOfItsStage);   // again whenever the project changes
//
// `projectPath()` is `/projects/<id>` (it follows renames); `stageInfo(name)` is what the
// page knows of a stage's definition (its log parsers' names), or undefined.
import { api, el, formatMegabytes } from "./api.js";
import { LINE_STYLES, formatNumber, lineChart, swatch } from "./charts.js";

/** How often a live run's series and usage are fetched again, milliseconds. */
export const INSIGHTS_POLL_MS = 5000;

/** Wait after a change of the shown runs' states before fetching, milliseconds. */
const REFRESH_DELAY_MS = 300;

/** Most runs one comparison asks for (the API's limit). */
export const MAX_COMPARED_RUNS = 50;

const ACTIVE = new Set(["pending", "running"]);

/** `LR=0.1, BATCH=8`, or "" for a run that is no sweep's. */
export function combinationText(combination) {
  return Object.entries(combination || {}).map(([k, v]) => `${k}=${v}`).join(", ");
}

/** `Run 3 · LR=0.1` */
export function runLabel(run) {
  const combo = combinationText(run.combination);
  return combo ? `Run ${run.run ?? run.id} · ${combo}` : `Run ${run.run ?? run.id}`;
}

/** Seconds since `origin` (ms) of an ISO moment. */
function secondsSince(origin, iso) {
  return (Date.parse(iso) - origin) / 1000;
}

/** The moment a run's x axis starts: when it started, else its first point. */
function originOf(run, series) {
  if (run && run.started_at) return Date.parse(run.started_at);
  const first = series.flatMap((s) => s.points.slice(0, 1).map((p) => Date.parse(p.at)));
  return first.length ? Math.min(...first) : Date.now();
}

function csvLink(href, what) {
  return el("a", { className: "csv", href, download: "", "aria-label": what }, "CSV");
}

function problemWords(error) {
  return error.status === 404
    ? "this server does not offer them (404)"
    : error.message;
}

export function mountInsights({ metrics, usage }, { projectPath, stageInfo }) {
  let run = null;
  let stageRuns = [];
  let choicesKey = null;
  let dataKey = null;
  let soon = null;
  let compare = new Set();
  let lastLive = false;
  let generation = 0;
  let inflight = 0;

  const runsById = () => new Map(stageRuns.map((r) => [r.id, r]));
  const runPath = (id) => `${projectPath()}/runs/${id}`;
  const comparable = () => stageRuns.filter((r) => r.id !== run.id && r.state !== "skipped");

  // -- metrics ---------------------------------------------------------------------------

  const metricsHead = el("div", { className: "insight-head" }, el("h3", { id: "metrics-title" }, "Metrics"));
  const liveTag = el("span", { className: "live-tag", hidden: true }, "live");
  const metricsCsv = el("span", { className: "csv-links" });
  metricsHead.append(liveTag, metricsCsv);
  const compareBox = el("fieldset", { className: "compare", id: "compare" });
  const compareLegend = el("ul", { className: "chart-legend compare-legend", id: "compare-legend", hidden: true });
  const metricCharts = el("div", { className: "charts", id: "metric-charts" });
  const metricsNote = el("p", { className: "muted note", id: "metrics-note", role: "status" });
  metrics.replaceChildren(metricsHead, compareBox, compareLegend, metricCharts, metricsNote);

  function renderCompare() {
    const others = comparable();
    compare = new Set([...compare].filter((id) => others.some((r) => r.id === id)));
    const focused = document.activeElement && compareBox.contains(document.activeElement)
      ? document.activeElement.dataset.key : null;
    if (!others.length) {
      compareBox.hidden = true;
      compareBox.replaceChildren();
      return;
    }
    compareBox.hidden = false;
    const boxes = others.map((other) => {
      const input = el("input", {
        type: "checkbox", checked: compare.has(other.id), value: other.id,
        dataset: { key: `compare-${other.id}` },
      });
      input.addEventListener("change", () => {
        if (input.checked) compare.add(other.id);
        else compare.delete(other.id);
        compareChanged();
      });
      const words = [runLabel(other), other.state.replaceAll("_", " ")];
      if (other.superseded) words.push("superseded");
      return el("label", { className: "check" }, input, words.join(" · "));
    });
    const current = stageRuns.filter((r) => !r.superseded && r.state !== "skipped");
    const extra = [];
    if (current.length > 1 && current.some((r) => r.id === run.id)) {
      const all = el("button", { type: "button", className: "link", dataset: { key: "compare-current" } },
        current.length > MAX_COMPARED_RUNS ? `The first ${MAX_COMPARED_RUNS} current runs` : `All ${current.length} current runs`);
      all.addEventListener("click", () => {
        compare = new Set(others.filter((r) => !r.superseded).slice(0, MAX_COMPARED_RUNS - 1).map((r) => r.id));
        compareChanged();
      });
      extra.push(all);
    }
    if (compare.size) {
      const none = el("button", { type: "button", className: "link", dataset: { key: "compare-none" } }, "This run alone");
      none.addEventListener("click", () => { compare.clear(); compareChanged(); });
      extra.push(none);
    }
    compareBox.replaceChildren(
      el("legend", {}, `Compare with other runs of ${run.stage}`),
      el("div", { className: "compare-choices" }, ...boxes, ...extra),
    );
    if (focused) compareBox.querySelector(`[data-key="${focused}"]`)?.focus();
  }

  /** Charts of one run, or of several overlaid (one line per run, the shown run first). */
  function drawMetrics(perRun) {
    const known = runsById();
    const fields = [];
    const seen = new Set();
    for (const r of perRun) {
      for (const s of r.series || []) {
        for (const f of s.fields) {
          const id = `${s.name}/${f}`;
          if (!seen.has(id)) { seen.add(id); fields.push({ series: s.name, field: f }); }
        }
      }
    }
    const many = perRun.length > 1;
    const origins = new Map(perRun.map((r) => [r.run, originOf(known.get(r.run), r.series || [])]));
    const singleSeries = new Set(fields.map((f) => f.series)).size === 1;
    const figures = fields.map(({ series, field }) => {
      let truncated = false;
      const lines = perRun.map((r, index) => {
        const s = (r.series || []).find((x) => x.name === series);
        truncated ||= Boolean(s && s.truncated);
        const points = s && s.fields.includes(field)
          ? s.points.filter((p) => p.values[field] != null).map((p) => ({
            x: secondsSince(origins.get(r.run), p.at), y: Number(p.values[field]), at: p.at,
          }))
          : [];
        return { label: many ? runLabel(r) : "", run: r.run, style: index, points };
      });
      const title = singleSeries ? field : `${series}: ${field}`;
      const figure = lineChart({
        title, lines, withLegend: false,
        caption: truncated ? "thinned evenly: the log has more points than are kept" : null,
      });
      figure.dataset.chart = `${series}/${field}`;
      return figure;
    });
    metricCharts.replaceChildren(...figures);

    compareLegend.hidden = !many;
    compareLegend.replaceChildren(...(many ? perRun.map((r, index) => el("li", { dataset: { run: r.run } },
      swatch(index % LINE_STYLES), " ", runLabel(r), " ",
      el("span", { className: "muted" }, r.state ? r.state.replaceAll("_", " ") : ""), " ",
      csvLink(`/api/v1${runPath(r.run)}/series.csv`, `Series of run ${r.run} as CSV`))) : []));
    if (many && perRun.length > LINE_STYLES) {
      compareLegend.append(el("li", { className: "muted" }, `Runs after the ${LINE_STYLES}th repeat the styles of the first.`));
    }

    const info = stageInfo(run.stage);
    if (fields.length) metricsNote.textContent = "";
    else if (info && !(info.parsers || []).length) {
      metricsNote.textContent = `Stage '${run.stage}' has no log parsers. Add \`log_parsers\` to the stage `
        + "(a name and a pattern with named groups) to chart numbers its log prints.";
    } else if (ACTIVE.has(run.state)) {
      metricsNote.textContent = "No points yet: they appear as the stage prints lines its log parsers match.";
    } else {
      metricsNote.textContent = `Run ${run.id} printed no line its stage's log parsers match.`;
    }
  }

  async function loadMetrics(token) {
    const ids = [run.id, ...[...compare].sort((a, b) => a - b)];
    let perRun;
    if (ids.length > 1) {
      const answer = await api(`${projectPath()}/stages/${encodeURIComponent(run.stage)}/series?runs=${ids.join(",")}`);
      const byId = new Map(answer.runs.map((r) => [r.run, r]));
      perRun = ids.map((id) => byId.get(id)).filter(Boolean);
    } else {
      perRun = [await api(`${runPath(run.id)}/series`)];
    }
    if (token !== generation) return false;
    drawMetrics(perRun);
    return perRun.some((r) => r.live);
  }

  // -- usage -----------------------------------------------------------------------------

  const usageHead = el("div", { className: "insight-head" }, el("h3", { id: "usage-title" }, "Resources used"));
  const usageCsv = el("span", { className: "csv-links" });
  usageHead.append(usageCsv);
  const peaks = el("p", { className: "peaks", id: "usage-peaks" });
  const usageCharts = el("div", { className: "charts", id: "usage-charts" });
  const usageNote = el("p", { className: "muted note", id: "usage-note", role: "status" });
  usage.replaceChildren(usageHead, peaks, usageCharts, usageNote);

  const percent = (p) => (p == null ? "" : `${formatNumber(Math.round(p * 10) / 10)} %`);
  const METERS = [
    { field: "cpu_percent", title: "CPU", format: percent, floor: 0, ceiling: 100 },
    { field: "memory_mb", title: "Memory", format: formatMegabytes, floor: 0 },
    { field: "gpu_percent", title: "GPU", format: percent, floor: 0, ceiling: 100 },
    { field: "gpu_memory_mb", title: "GPU memory", format: formatMegabytes, floor: 0 },
  ];

  function drawUsage(answer) {
    const samples = answer.samples || [];
    const origin = originOf(run, [{ points: samples }]);
    const present = METERS.filter((m) => samples.some((s) => s[m.field] != null));
    const peak = answer.peak || {};
    peaks.replaceChildren(...present.filter((m) => peak[m.field] != null).map((m) =>
      el("span", { className: "peak", dataset: { meter: m.field } }, `${m.title} peak `, el("strong", {}, m.format(peak[m.field])))));
    usageCharts.replaceChildren(...present.map((m) => {
      const figure = lineChart({
        title: m.title, format: m.format, yFloor: m.floor, yCeiling: m.ceiling, height: 110,
        lines: [{
          label: "", points: samples.filter((s) => s[m.field] != null)
            .map((s) => ({ x: secondsSince(origin, s.at), y: Number(s[m.field]), at: s.at })),
        }],
      });
      figure.dataset.meter = m.field;
      return figure;
    }));
    if (samples.length) {
      usageNote.textContent = answer.interval_seconds ? `A sample every ${formatNumber(answer.interval_seconds)} s.` : "";
    } else if (ACTIVE.has(run.state)) {
      usageNote.textContent = "No samples yet: the first comes a few seconds after the stage starts.";
    } else {
      usageNote.textContent = `Run ${run.id} ended before its first sample.`;
    }
  }

  async function loadUsage(token) {
    const answer = await api(`${runPath(run.id)}/usage`);
    if (token !== generation) return;
    drawUsage(answer);
  }

  // -- showing a run ---------------------------------------------------------------------

  async function refresh() {
    if (!run || run.state === "skipped") return;
    generation += 1;
    const token = generation;
    inflight += 1;
    try {
      const [metricsDone, usageDone] = await Promise.allSettled([loadMetrics(token), loadUsage(token)]);
      if (token !== generation) return;
      if (metricsDone.status === "rejected") {
        metricCharts.replaceChildren();
        compareLegend.hidden = true;
        metricsNote.textContent = `Metrics could not be loaded: ${problemWords(metricsDone.reason)}.`;
      }
      if (usageDone.status === "rejected") {
        usageCharts.replaceChildren();
        peaks.replaceChildren();
        usageNote.textContent = `Resource usage could not be loaded: ${problemWords(usageDone.reason)}.`;
      }
      lastLive = metricsDone.status === "fulfilled" && metricsDone.value;
      liveTag.hidden = !(lastLive || ACTIVE.has(run.state));
    } finally {
      inflight -= 1;
    }
  }

  /** The runs on screen and their states: fetch again when this changes. */
  function shownKey() {
    const known = runsById();
    return [run.id, ...[...compare].sort((a, b) => a - b)]
      .map((id) => `${id}:${(known.get(id) || run).state}`).join(",");
  }

  function compareChanged() {
    renderCompare();
    dataKey = shownKey();
    refresh();
  }

  /** Fetch a little later, once: a busy sweep changes many runs' states at once. */
  function refreshSoon() {
    if (soon) return;
    soon = setTimeout(() => { soon = null; refresh(); }, REFRESH_DELAY_MS);
  }

  function show(next, runsOfStage) {
    const changedRun = !run || !next || next.id !== run.id;
    run = next;
    stageRuns = runsOfStage || [];
    if (changedRun) {
      compare = new Set();
      choicesKey = null;
      dataKey = null;
    }
    if (!run) {
      generation += 1;
      metrics.hidden = true;
      usage.hidden = true;
      return;
    }
    metrics.hidden = false;
    usage.hidden = false;
    const choices = stageRuns.map((r) => `${r.id}:${r.state}:${r.superseded}`).join(",");
    if (run.state !== "skipped" && choices !== choicesKey) {
      choicesKey = choices;
      renderCompare();
    }
    const nextData = shownKey();
    if (nextData === dataKey) return;
    dataKey = nextData;
    if (run.state === "skipped") {
      generation += 1;
      compareBox.hidden = true;
      compareLegend.hidden = true;
      liveTag.hidden = true;
      metricsCsv.replaceChildren();
      usageCsv.replaceChildren();
      metricCharts.replaceChildren();
      usageCharts.replaceChildren();
      peaks.replaceChildren();
      metricsNote.textContent = `Run ${run.id} was skipped: it never ran, so it measured nothing.`;
      usageNote.textContent = "";
      return;
    }
    metricsCsv.replaceChildren(csvLink(`/api/v1${runPath(run.id)}/series.csv`, `Series of run ${run.id} as CSV`));
    usageCsv.replaceChildren(csvLink(`/api/v1${runPath(run.id)}/usage.csv`, `Resource usage of run ${run.id} as CSV`));
    if (changedRun) {
      metricCharts.replaceChildren();
      usageCharts.replaceChildren();
      peaks.replaceChildren();
      metricsNote.textContent = "Loading…";
      usageNote.textContent = "Loading…";
      refresh();
    } else {
      refreshSoon();
    }
  }

  /** Any run on screen still running (or the server says its series still grows). */
  function live() {
    if (!run) return false;
    if (lastLive || ACTIVE.has(run.state)) return true;
    const known = runsById();
    return [...compare].some((id) => ACTIVE.has(known.get(id)?.state));
  }

  const timer = setInterval(() => {
    if (!inflight && !document.hidden && live()) refresh();
  }, INSIGHTS_POLL_MS);

  return {
    show,
    destroy() {
      clearInterval(timer);
      clearTimeout(soon);
      generation += 1;
    },
  };
}
