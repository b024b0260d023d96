// Previews of a run's workspace files, so a person judges a stage's output without
// downloading it: an image's thumbnail, a table's first rows with per-column statistics, a
// JSON document bounded and summarised, frames of a video with its detections drawn.
//
// Everything is made on the server (GET /projects/{ref}/workspace/preview), which reads only
// what a preview needs; this module asks and draws. The workspace browser (files.js) and the
// gate card (gate.js) use it:
//
//     import { previewKind, renderPreview } from "./previews.js";
//     if (previewKind(path)) renderPreview(box, { project: "ulm-0603", run: 4, path });
//     // a video in the resource pool, with boxes from the run's workspace:
//     renderPreview(box, { project, run, path: "videos/road.mp4", source: "pool", detections: "detections.csv" });
import { api, el, escapeName, formatSize } from "./api.js";

const KINDS = {
  image: [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"],
  table: [".csv", ".tsv"],
  json: [".json", ".jsonl", ".ndjson"],
  video: [".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg"],
};
const KIND_OF = new Map(Object.entries(KINDS).flatMap(([kind, suffixes]) => suffixes.map((s) => [s, kind])));
const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });

/** The preview a file at `path` gets from its suffix: "image" | "table" | "json" | "video" | null. */
export function previewKind(path) {
  const name = String(path || "").split("/").pop().toLowerCase();
  const dot = name.lastIndexOf(".");
  return dot > 0 ? KIND_OF.get(name.slice(dot)) || null : null;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  return search.toString();
}

function formatNumber(value) {
  return value === null || value === undefined ? "" : number.format(value);
}

// -- tables -------------------------------------------------------------------------------

function dataTable(table, label) {
  const head = el("tr", {}, ...table.columns.map((name) => el("th", { scope: "col" }, name)));
  const body = table.rows.map((row) => el("tr", {}, ...row.map((cell) => el("td", {}, cell))));
  return el("div", { className: "preview-scroll", tabIndex: 0, role: "region", "aria-label": label },
    el("table", { className: "grid preview-rows" }, el("thead", {}, head), el("tbody", {}, ...body)));
}

function statsTable(table, label) {
  const rows = table.stats.map((s) => el("tr", {},
    el("th", { scope: "row" }, s.name),
    el("td", { className: "num" }, formatNumber(s.count)),
    el("td", { className: "num" }, formatNumber(s.empty)),
    el("td", { className: "num" }, s.numeric ? formatNumber(s.min) : ""),
    el("td", { className: "num" }, s.numeric ? formatNumber(s.max) : ""),
    el("td", { className: "num" }, s.numeric ? formatNumber(s.mean) : ""),
    el("td", { className: "num" }, s.numeric ? "" : `${formatNumber(s.distinct)}${s.distinct_capped ? "+" : ""}`)));
  const heads = ["Column", "Values", "Empty", "Min", "Max", "Mean", "Distinct"];
  return el("div", { className: "preview-scroll", tabIndex: 0, role: "region", "aria-label": label },
    el("table", { className: "grid preview-stats" },
      el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows)));
}

function tableNote(table, size) {
  const read = table.truncated
    ? `${formatNumber(table.rows_read)} rows in the first ${formatSize(table.bytes_read)} of ${formatSize(size)}`
    : `${formatNumber(table.rows_read)} rows`;
  return `First ${formatNumber(table.rows.length)} of ${read}; statistics over those ${formatNumber(table.rows_read)}.`;
}

function renderTable(answer) {
  const { table } = answer;
  return [
    el("p", { className: "preview-note muted" }, tableNote(table, answer.size)),
    el("h4", {}, "Columns"),
    statsTable(table, `Column statistics of ${escapeName(answer.path)}`),
    el("h4", {}, "First rows"),
    dataTable(table, `First rows of ${escapeName(answer.path)}`),
  ];
}

function renderDocument(answer) {
  const doc = answer.document;
  const what = doc.format === "jsonl"
    ? `${formatNumber(doc.items_read)} lines${doc.truncated ? ` in the first ${formatSize(doc.bytes_read)} of ${formatSize(answer.size)}` : ""}`
    : `${doc.type}${doc.length !== null ? ` of ${formatNumber(doc.length)} ${doc.type === "object" ? "keys" : "items"}` : ""}`;
  const parts = [el("p", { className: "preview-note muted" }, `JSON ${what}.`)];
  if (doc.keys.length) {
    parts.push(el("ul", { className: "preview-keys", "aria-label": "Keys" }, ...doc.keys.map((k) =>
      el("li", {}, el("code", {}, k.name), ` ${k.types.join(" | ")}`, doc.items_read > 1 ? ` · ${formatNumber(k.count)}×` : ""))));
  }
  if (doc.table) {
    // The table stops at the rows asked for (50 by default): say so, as a CSV's preview does.
    parts.push(el("h4", {}, "As a table"), el("p", { className: "preview-note muted" }, tableNote(doc.table, answer.size)),
      statsTable(doc.table, `Column statistics of ${escapeName(answer.path)}`),
      dataTable(doc.table, `First items of ${escapeName(answer.path)}`));
  }
  parts.push(el("details", { className: "preview-json", open: !doc.table },
    el("summary", {}, "JSON"),
    el("pre", { tabIndex: 0, "aria-label": `Contents of ${escapeName(answer.path)}` }, doc.text)));
  return parts;
}

function renderImage(answer) {
  const { image } = answer;
  const name = escapeName(answer.path.split("/").pop());
  return [
    el("img", {
      className: "preview-thumbnail", src: image.url, width: image.width, height: image.height,
      alt: `Thumbnail of ${name} (${image.original_width}×${image.original_height})`,
    }),
    el("p", { className: "preview-note muted" }, `${image.original_width}×${image.original_height} px, ${formatSize(answer.size)}.`),
  ];
}

// -- video --------------------------------------------------------------------------------

function frameFigure(frame, name) {
  const boxes = frame.boxes === 1 ? "1 detection" : `${frame.boxes} detections`;
  return el("figure", { className: "preview-frame" },
    el("img", { src: frame.url, width: frame.width, height: frame.height, alt: `${name} at ${frame.time} s (frame ${frame.index}), ${boxes} drawn` }),
    el("figcaption", {}, `${formatNumber(frame.time)} s · frame ${frame.index} · ${boxes}`));
}

function renderVideo(answer, ask, options) {
  const { video } = answer;
  const uid = `preview-${Math.random().toString(36).slice(2, 8)}`;
  const timesInput = el("input", {
    type: "text", id: `${uid}-times`, value: options.times || "", spellcheck: false,
    placeholder: `e.g. 0, ${formatNumber(video.duration / 2)}`, inputMode: "decimal",
  });
  const form = el("form", { className: "preview-times" },
    el("label", { for: `${uid}-times` }, "Frames at (seconds, comma-separated)", timesInput),
    el("button", { type: "submit" }, "Show frames"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ask({ ...options, times: timesInput.value.trim() }).then(() => {
      const again = options.container.querySelector(".preview-times input");
      if (again) again.focus();
    });
  });
  const about = `${video.width}×${video.height}, ${formatNumber(video.fps)} fps, ${formatNumber(video.frame_count)} frames (${formatNumber(video.duration)} s)`;
  const boxes = video.detections ? ` Boxes from ${escapeName(video.detections)}.` : "";
  const name = escapeName(answer.path.split("/").pop());
  return [
    el("p", { className: "preview-note muted" }, `${about}.${boxes} ${video.note}`.trim()),
    form,
    el("div", { className: "preview-frames" }, ...video.frames.map((f) => frameFigure(f, name))),
  ];
}

// -- the preview --------------------------------------------------------------------------

/**
 * Fill `container` with the preview of the file at `path` of `run`'s workspace in `project`.
 *
 * Options: `kind` (default: from the suffix), `version`, `source` ("pool": a video of the
 * resource pool), `detections` (workspace path of the boxes; "none": no boxes), `times`
 * (seconds, "1, 2.5"), `frames` (how many evenly spaced), `rows`. Returns a promise that
 * settles once the preview (or the reason there is none) is shown; it never rejects.
 */
export function renderPreview(container, options) {
  const { project, path } = options;
  const kind = options.kind || previewKind(path);
  const name = escapeName(String(path).split("/").pop());
  const status = el("p", { className: "preview-status muted", role: "status" });
  const body = el("div", { className: "preview-body" });
  const root = el("div", { className: `preview preview-${kind || "none"}`, dataset: { path } }, status, body);
  container.replaceChildren(root);
  const state = { ...options, container };
  let generation = 0;

  async function ask(next) {
    const gen = ++generation;
    Object.assign(state, next);
    root.setAttribute("aria-busy", "true");
    status.classList.remove("preview-error");
    status.textContent = kind === "video" ? `Extracting frames of ${name}…` : `Loading the preview of ${name}…`;
    const params = {
      run: state.run, path, kind, version: state.version, source: state.source,
      detections: state.detections, times: state.times, frames: state.frames, rows: state.rows,
    };
    try {
      const answer = await api(`/projects/${encodeURIComponent(project)}/workspace/preview?${query(params)}`);
      if (gen !== generation) return;
      const parts = kind === "image" ? renderImage(answer)
        : kind === "table" ? renderTable(answer)
        : kind === "json" ? renderDocument(answer)
        : renderVideo(answer, ask, state);
      body.replaceChildren(...parts);
      status.textContent = "";
    } catch (error) {
      if (gen !== generation) return;
      body.replaceChildren();
      status.textContent = `No preview of ${name}: ${error.message}`;
      status.classList.add("preview-error");
    } finally {
      if (gen === generation) root.removeAttribute("aria-busy");
    }
  }

  if (!kind) {
    status.textContent = `${name} has no preview (images, CSV, JSON and videos have); download it instead.`;
    return Promise.resolve();
  }
  return ask({});
}
