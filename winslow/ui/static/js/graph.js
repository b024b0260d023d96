// The pipeline as a graph: one box per stage, coloured by where it stands, arrows from
// `needs`, laid out by dagre (served at /vendor/dagre.js, the global `dagre`) and drawn
// as SVG. What each box shows (state, a sweep's combinations, a skipped route and its
// condition, a gate and whether the project waits there, stages the definition lost)
// comes from the server's graph model (winslow/core/graph.py) so the picture never
// disagrees with the planner.
//
// Self-mounts on every `[data-winslow-graph]` element:
//   "pipeline" + data-pipeline: GET /pipelines/{name}/graph; a box links to the stage's
//     section (#stage-NAME); redrawn on `winslow:pipeline-changed`.
//   "project" + data-project: GET /projects/{id}/graph, again whenever `winslow:project`
//     brings runs or states the graph has not seen; a box dispatches
//     `winslow:select-stage` ({ stage }) for the page to show that stage's runs.
// Each box is focusable and activated by Enter (or Space); its accessible name says all
// the box shows. Laid out left to right, or top to bottom where that fits the width
// better (a long chain); scaled to the width, never below MIN_FIT, then scrolled.
import { api, el } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
const BOX_W = 200;
const PAD = 12;
const LINE = 17;
const MARK = 10;
const MARK_GAP = 3;
const MIN_FIT = 0.6;
const ZOOM_STEP = 1.25;
const ZOOM_MIN = 0.3;
const ZOOM_MAX = 2;
const REFRESH_DELAY_MS = 150;

const STATE_WORDS = {
  pending: "pending", running: "running", succeeded: "succeeded", failed: "failed",
  lost: "lost", cancelled: "cancelled", skipped: "skipped",
};

let uid = 0;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value != null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// -- text that fits its box -------------------------------------------------------------

const measure = document.createElement("canvas").getContext("2d");

function fitText(words, width, font) {
  measure.font = font;
  if (measure.measureText(words).width <= width) return words;
  let low = 0;
  let high = words.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (measure.measureText(`${words.slice(0, mid)}…`).width <= width) low = mid;
    else high = mid - 1;
  }
  return `${words.slice(0, low)}…`;
}

/** Break `words` at spaces into at most `most` lines of `width`; the last one shortened. */
function wrapText(words, width, font, most) {
  measure.font = font;
  const lines = [];
  let line = "";
  for (const word of words.split(" ")) {
    const longer = line ? `${line} ${word}` : word;
    if (!line || measure.measureText(longer).width <= width) line = longer;
    else {
      lines.push(`${line} `);
      line = word;
    }
  }
  lines.push(line);
  if (lines.length <= most) return lines.map((l) => fitText(l, width, font));
  const kept = lines.slice(0, most);
  kept[most - 1] = fitText(lines.slice(most - 1).join(""), width, font);
  return kept;
}

function fonts(root) {
  const family = getComputedStyle(root).fontFamily || "system-ui, sans-serif";
  return { name: `600 13px ${family}`, small: `11.5px ${family}`, when: `italic 11.5px ${family}`, gate: `600 10.5px ${family}` };
}

// -- what a box says --------------------------------------------------------------------

function isGate(node) {
  return node.confirmation && node.confirmation !== "never";
}

function stateWords(node, { short = false } = {}) {
  if (node.removed) return `${short ? "removed" : "removed from the pipeline"} · ${STATE_WORDS[node.state] || "ended"}`;
  if (node.waiting) return isGate(node) ? "waits for a person" : "waits for variables";
  // Runs it had were superseded (an earlier stage ran again): it has run, and will again.
  if (!node.state) return node.runs_total ? "to run again" : "not run yet";
  return STATE_WORDS[node.state] || node.state;
}

function sweepWords(node) {
  const done = node.counts.succeeded || 0;
  return `${done}/${node.combinations} combinations succeeded`;
}

function subline(node) {
  const parts = [stateWords(node, { short: true })];
  if (node.sweep.length) parts.push(sweepWords(node).replace(" combinations succeeded", " done"));
  else if (node.runs_total > 1) parts.push(plural(node.runs_total, "run"));
  return parts.join(" · ");
}

function gateWords(node) {
  if (!isGate(node)) return "";
  const when = node.confirmation === "once" ? "the first time" : "every time";
  return `gate: a person lets it start ${when}`;
}

/** What the box means beyond what it shows, in words, for a screen reader and the tooltip. */
function describeNode(node, kind) {
  const parts = [`stage ${node.name}`];
  if (node.removed) parts.push("removed from the pipeline");
  if (node.sweep.length) {
    const counts = Object.entries(node.counts).map(([state, n]) => `${n} ${state}`).join(", ");
    parts.push(`sweep over ${node.sweep.join(", ")}: ${sweepWords(node)}${counts ? ` (${counts})` : ""}`);
  } else if (node.runs_total > 1) {
    parts.push(plural(node.runs_total, "run"));
  }
  if (isGate(node)) parts.push(node.waiting ? `${gateWords(node)}; the project waits here` : gateWords(node));
  if (node.when) parts.push(`runs only when ${node.when}`);
  if (node.reason && (node.state === "skipped" || node.state === "failed" || node.state === "lost")) parts.push(node.reason);
  if (!node.removed) parts.push(node.needs.length ? `after ${node.needs.join(", ")}` : "first stage");
  if (node.description) parts.push(node.description);
  parts.push(kind === "project" ? "Enter shows its runs" : "Enter goes to its definition");
  return parts.join("; ");
}

/** The accessible name: the box's visible words first, in order (so speech input can
 * name it as it reads: WCAG 2.5.3), then what they mean. */
function nameOf(node, kind, parts) {
  const seen = [];
  const walk = (element) => {
    if (element.localName === "title") return;
    if (element.localName === "text") seen.push(element.textContent.trim());
    else for (const child of element.children) walk(child);
  };
  for (const part of parts) walk(part);
  return `${seen.filter(Boolean).join(" ")}. ${describeNode(node, kind)}`;
}

/** The lines of a box's `when` condition, worked out once its font is known. */
function whenLines(node, font) {
  return node.when ? wrapText(`when ${node.when}`, BOX_W - 2 * PAD, font.when, 2) : [];
}

function boxHeight(node) {
  let height = PAD + LINE * 2 + 6;
  height += LINE * (node.whenLines || []).length;
  if (node.sweep.length) height += MARK + 8;
  return height;
}

// -- layout -----------------------------------------------------------------------------

function layoutWith(graph, rankdir) {
  const g = new window.dagre.graphlib.Graph();
  g.setGraph({ rankdir, nodesep: 26, ranksep: rankdir === "LR" ? 52 : 40, edgesep: 12, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  const names = new Set();
  for (const node of graph.nodes) {
    names.add(node.name);
    g.setNode(node.name, { width: BOX_W, height: boxHeight(node) });
  }
  for (const edge of graph.edges) {
    if (names.has(edge.source) && names.has(edge.target)) g.setEdge(edge.source, edge.target);
  }
  window.dagre.layout(g);
  return g;
}

/** Left to right unless top to bottom fits the width clearly better (a long chain). */
function layout(graph, width) {
  const across = layoutWith(graph, "LR");
  const fitAcross = width / across.graph().width;
  if (fitAcross >= 1) return across;
  const down = layoutWith(graph, "TB");
  return width / down.graph().width > fitAcross * 1.2 ? down : across;
}

function edgePath(points) {
  let d = `M${points[0].x},${points[0].y}`;
  for (let i = 1; i < points.length - 1; i += 1) {
    const next = points[i + 1];
    const midX = (points[i].x + next.x) / 2;
    const midY = (points[i].y + next.y) / 2;
    d += ` Q${points[i].x},${points[i].y} ${midX},${midY}`;
  }
  const last = points[points.length - 1];
  return `${d} L${last.x},${last.y}`;
}

// -- drawing ----------------------------------------------------------------------------

function drawMarks(node, y) {
  const room = Math.floor((BOX_W - 2 * PAD + MARK_GAP) / (MARK + MARK_GAP));
  const shown = node.combinations > room ? room - 2 : node.combinations;
  const marks = [];
  for (let i = 0; i < shown; i += 1) {
    const run = node.runs[i];
    marks.push(svg("rect", {
      class: "graph-mark", "data-state": run ? run.state : "none",
      x: PAD + i * (MARK + MARK_GAP), y, width: MARK, height: MARK, rx: 2,
    }, svg("title", {}, run ? `${run.combination || "run"}: ${run.state}` : "not run yet")));
  }
  if (shown < node.combinations) {
    marks.push(svg("text", { class: "graph-small", x: PAD + shown * (MARK + MARK_GAP) + 2, y: y + MARK - 1 },
      `+${node.combinations - shown}`));
  }
  return svg("g", { class: "graph-marks", "aria-hidden": "true" }, ...marks);
}

function gateLabel(node) {
  if (node.waiting) return "waits here";
  return node.confirmation === "once" ? "gate · once" : "gate";
}

function gateWidth(node, font) {
  measure.font = font.gate;
  return Math.ceil(measure.measureText(gateLabel(node)).width) + 24;
}

function drawGate(node, font) {
  const words = gateLabel(node);
  const width = gateWidth(node, font);
  return svg("g", { class: "graph-gate", transform: `translate(${BOX_W - width - 6},6)`, "aria-hidden": "true" },
    svg("rect", { width, height: 16, rx: 8 }),
    // A small gate: two posts and a bar.
    svg("path", { d: "M5 4v9M11 4v9M4 6h8", class: "graph-gate-icon" }),
    svg("text", { x: 17, y: 12 }, words));
}

function drawNode(node, at, kind, font) {
  const height = boxHeight(node);
  // Names of our own: the page's `.gate`, `.waiting` and `.state-*` style other things.
  const classes = ["graph-node"];
  if (node.waiting) classes.push("graph-waiting");
  if (node.removed) classes.push("graph-removed");
  if (node.sweep.length) classes.push("graph-sweep");
  if (isGate(node)) classes.push("graph-gated");
  const nameRoom = BOX_W - 2 * PAD - (isGate(node) ? gateWidth(node, font) : 0);
  const parts = [];
  if (node.sweep.length) {
    parts.push(svg("rect", { class: "graph-stack", x: 6, y: 6, width: BOX_W, height, rx: 6 }));
    parts.push(svg("rect", { class: "graph-stack", x: 3, y: 3, width: BOX_W, height, rx: 6 }));
  }
  parts.push(svg("rect", { class: "graph-box", width: BOX_W, height, rx: 6 }));
  parts.push(svg("rect", { class: "graph-stripe", width: 5, height, rx: 2 }));
  parts.push(svg("text", { class: "graph-name", x: PAD, y: PAD + 12 }, fitText(node.name, nameRoom, font.name)));
  parts.push(svg("text", { class: "graph-sub", x: PAD, y: PAD + 12 + LINE }, fitText(subline(node), BOX_W - 2 * PAD, font.small)));
  let y = PAD + 12 + LINE * 2;
  if (node.whenLines.length) {
    const lines = node.whenLines.map((line, i) => svg("tspan", { x: PAD, dy: i ? LINE : 0 }, line));
    parts.push(svg("text", { class: "graph-when", x: PAD, y }, ...lines));
    y += LINE * lines.length;
  }
  if (node.sweep.length) parts.push(drawMarks(node, y - 9));
  if (isGate(node)) parts.push(drawGate(node, font));
  const label = nameOf(node, kind, parts);
  const attrs = {
    class: classes.join(" "),
    transform: `translate(${at.x - BOX_W / 2},${at.y - height / 2})`,
    "data-stage": node.name,
    "data-state": node.state || "none",
  };
  // The <title> child names an SVG element (SVG-AAM) and is its tooltip; an aria-label
  // would have to repeat the drawn words exactly as a checker joins them.
  const title = svg("title", {}, label);
  if (kind === "pipeline") {
    return svg("a", { ...attrs, href: `#stage-${encodeURIComponent(node.name)}` }, title, ...parts);
  }
  return svg("g", { ...attrs, tabindex: "0", role: "button" }, title, ...parts);
}

function drawEdge(edge, points, arrow) {
  const classes = ["graph-edge"];
  if (edge.skipped) classes.push("skipped");
  if (edge.condition) classes.push("conditional");
  return svg("path", { class: classes.join(" "), d: edgePath(points), "marker-end": `url(#${arrow})` });
}

// -- one mounted graph ------------------------------------------------------------------

class GraphView {
  constructor(root) {
    this.root = root;
    this.kind = root.dataset.winslowGraph;
    this.id = `graph-${(uid += 1)}`;
    this.graph = null;
    this.zoom = null; // null: fit to the width
    this.laid = null;
    this.selected = null;
    root.classList.add("graph");
    this.caption = el("p", { className: "graph-caption muted", id: `${this.id}-caption` });
    const button = (words, label, action) => {
      const b = el("button", { type: "button", className: "graph-zoom", title: label, "aria-label": label }, words);
      b.addEventListener("click", action);
      return b;
    };
    this.tools = el("div", { className: "graph-tools", role: "group", "aria-label": "Graph zoom" },
      button("−", "Zoom out", () => this.setZoom(this.scale() / ZOOM_STEP)),
      button("+", "Zoom in", () => this.setZoom(this.scale() * ZOOM_STEP)),
      button("Fit", "Fit to the width", () => this.setZoom(null)));
    this.viewport = el("div", { className: "graph-viewport" });
    this.note = el("p", { className: "graph-note muted", role: "status" });
    root.replaceChildren(el("div", { className: "graph-head" }, this.caption, this.tools), this.note, this.viewport);
    this.viewport.addEventListener("click", (event) => this.activate(event));
    this.viewport.addEventListener("keydown", (event) => {
      if (this.kind === "project" && (event.key === "Enter" || event.key === " ")) this.activate(event);
    });
    let width = 0;
    new ResizeObserver(() => {
      const now = this.viewport.clientWidth;
      // Zero while its tab is hidden: keep the layout made for the last real width.
      if (now && this.graph && Math.abs(now - width) > 24) {
        width = now;
        this.laid = null;
        this.draw();
      }
    }).observe(this.viewport);
  }

  say(words) {
    this.note.textContent = words;
    this.note.hidden = !words;
  }

  show(graph) {
    const shape = (g) => JSON.stringify([g.nodes.map((n) => [n.name, n.needs, boxHeight(n)]), g.edges]);
    const font = fonts(this.root);
    for (const node of graph.nodes) node.whenLines = whenLines(node, font);
    if (!this.graph || shape(this.graph) !== shape(graph)) this.laid = null;
    this.graph = graph;
    this.draw();
  }

  /** The width there is to draw in (the last known one while the graph is hidden). */
  room() {
    if (this.viewport.clientWidth) this.lastWidth = this.viewport.clientWidth;
    return Math.max(200, (this.lastWidth || 1000) - 4);
  }

  scale() {
    if (this.zoom != null) return this.zoom;
    if (!this.laid) return 1;
    const room = this.room();
    return Math.min(1, Math.max(MIN_FIT, room / this.laid.graph().width));
  }

  setZoom(value) {
    this.zoom = value == null ? null : Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, value));
    this.draw();
  }

  draw() {
    if (!this.graph) return;
    if (!window.dagre) {
      this.say("The graph cannot be drawn: the layout library (/vendor/dagre.js) did not load. Run `make` in the checkout.");
      return;
    }
    this.say("");
    const graph = this.graph;
    if (!this.laid) this.laid = layout(graph, this.room());
    const laid = this.laid;
    const { width, height } = laid.graph();
    const scale = this.scale();
    const font = fonts(this.root);
    const arrow = `${this.id}-arrow`;
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest(".graph-node");
    const refocus = focused && this.root.contains(focused) ? focused.dataset.stage : null;
    const edges = graph.edges
      .filter((e) => laid.hasEdge(e.source, e.target))
      .map((e) => drawEdge(e, laid.edge(e.source, e.target).points, arrow));
    const nodes = graph.nodes.map((n) => {
      const box = drawNode(n, laid.node(n.name), this.kind, font);
      if (n.name === this.selected) box.classList.add("graph-selected");
      return box;
    });
    const picture = svg("svg", {
      class: "graph-svg", width: Math.ceil(width * scale), height: Math.ceil(height * scale),
      viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`, role: "group", "aria-labelledby": this.caption.id,
    },
    svg("defs", {}, svg("marker", { id: arrow, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "graph-arrow" }))),
    svg("g", { class: "graph-edges", "aria-hidden": "true" }, ...edges),
    svg("g", { class: "graph-nodes" }, ...nodes));
    this.viewport.replaceChildren(picture);
    this.caption.textContent = this.captionWords(scale);
    if (refocus) {
      const again = picture.querySelector(`[data-stage="${CSS.escape(refocus)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  captionWords(scale) {
    const graph = this.graph;
    const what = this.kind === "project" ? "Stages of the project" : `Graph of pipeline ${graph.pipeline}`;
    const parts = [`${what}: ${plural(graph.nodes.filter((n) => !n.removed).length, "stage")}`];
    const skipped = graph.nodes.filter((n) => n.state === "skipped").length;
    if (skipped) parts.push(`${skipped} skipped`);
    const removed = graph.nodes.filter((n) => n.removed).length;
    if (removed) parts.push(`${removed} removed from the pipeline`);
    if (graph.waiting_at) parts.push(`waits at ${graph.waiting_at}`);
    if (Math.abs(scale - 1) > 0.01) parts.push(`${Math.round(scale * 100)} %`);
    return parts.join(" · ");
  }

  activate(event) {
    const box = event.target.closest(".graph-node");
    if (!box || this.kind !== "project") return;
    event.preventDefault();
    const stage = box.dataset.stage;
    this.selected = stage;
    for (const other of this.viewport.querySelectorAll(".graph-selected")) other.classList.remove("graph-selected");
    box.classList.add("graph-selected");
    document.dispatchEvent(new CustomEvent("winslow:select-stage", { detail: { stage } }));
  }
}

// -- where the graph comes from ---------------------------------------------------------

function mountPipeline(root) {
  const view = new GraphView(root);
  const load = async () => {
    const name = root.dataset.pipeline;
    if (!name) return;
    try {
      view.show(await api(`/pipelines/${encodeURIComponent(name)}/graph`));
    } catch (error) {
      view.say(`The graph cannot be shown: ${error.message}`);
    }
  };
  document.addEventListener("winslow:pipeline-changed", load);
  load();
}

/** What of the page's project the graph depends on; a change means: fetch it again. */
function signature(detail) {
  const { project, runs } = detail;
  const marks = (runs || project.runs || []).map((r) => `${r.id}:${r.state}:${r.superseded ? 1 : 0}`);
  return JSON.stringify([project.id, project.state, project.waiting_for, project.stages, marks]);
}

function mountProject(root) {
  const view = new GraphView(root);
  let ref = root.dataset.project;
  let seen = null;
  let busy = false;
  let again = false;
  const load = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      view.show(await api(`/projects/${encodeURIComponent(ref)}/graph`));
    } catch (error) {
      view.say(`The graph cannot be shown: ${error.message}`);
    } finally {
      busy = false;
    }
    if (again) { again = false; setTimeout(load, REFRESH_DELAY_MS); }
  };
  const heard = (detail) => {
    if (!detail || !detail.project) return;
    ref = detail.project.id || ref;
    const now = signature(detail);
    if (now === seen) return;
    seen = now;
    load();
  };
  document.addEventListener("winslow:project", (event) => heard(event.detail));
  document.addEventListener("winslow:select-stage", (event) => {
    if (event.detail && event.detail.stage !== view.selected) {
      view.selected = event.detail.stage;
      view.draw();
    }
  });
  if (window.winslowProject) heard(window.winslowProject);
  else load();
}

for (const root of document.querySelectorAll("[data-winslow-graph]")) {
  if (root.dataset.winslowGraph === "pipeline") mountPipeline(root);
  else if (root.dataset.winslowGraph === "project") mountProject(root);
}
