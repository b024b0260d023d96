// The overview: filters and search in the page, live rows through Server-Sent Events,
// and the tab title counting the projects that need a person. The server sends one page
// of projects; when not every project is on it, a search or filter asks the server too,
// so a person with ten thousand projects still finds the one they look for.
import { api, guarded, el, since, showError } from "./api.js";

const rows = document.getElementById("project-rows");
const search = document.getElementById("search");
const stateFilter = document.getElementById("state-filter");
const labelFilter = document.getElementById("label-filter");
const summary = document.getElementById("needs-summary");
const pager = document.getElementById("pager");

// What the server was asked for: the rows on the page and how many match in all.
let shown = { skip: Number(rows.dataset.skip || 0), limit: Number(rows.dataset.limit || 100), count: Number(rows.dataset.count || 0) };
// Whether the rows in the page are every project (no filter on the server, one page).
const filtering = () => Boolean(search.value.trim() || stateFilter.value || labelFilter.value);
shown.whole = !filtering() && !shown.skip && shown.count <= rows.querySelectorAll("tr[data-name]").length;

function overviewQuery(skip = shown.skip) {
  const params = new URLSearchParams();
  const text = search.value.trim();
  if (text) params.set("q", text);
  if (stateFilter.value) params.set("state", stateFilter.value);
  if (labelFilter.value) params.set("label", labelFilter.value);
  if (skip) params.set("skip", String(skip));
  if (shown.limit !== 100) params.set("limit", String(shown.limit));
  return params.toString();
}

function renderPager(loaded) {
  const link = (text, id, skip) => el("a", { id, href: `/?${overviewQuery(skip)}` }, text);
  const parts = [el("span", { id: "pager-text" }, loaded
    ? `${shown.skip + 1}–${shown.skip + loaded} of ${shown.count}` : `none of ${shown.count}`)];
  if (shown.skip) parts.push(link("Previous", "pager-prev", Math.max(shown.skip - shown.limit, 0)));
  if (shown.skip + loaded < shown.count) parts.push(link("Next", "pager-next", shown.skip + shown.limit));
  pager.replaceChildren(...parts);
  pager.hidden = !shown.skip && loaded >= shown.count;
}

function applyFilters() {
  const text = search.value.trim().toLowerCase();
  const state = stateFilter.value;
  const label = labelFilter.value;
  for (const row of rows.querySelectorAll("tr[data-name]")) {
    const labels = (row.dataset.labels || "").split(" ");
    const show = (!text || row.dataset.name.toLowerCase().includes(text))
      && (!state || row.dataset.state === state)
      && (!label || labels.includes(label));
    row.hidden = !show;
  }
}

function badge(state) {
  return el("span", { className: `state state-${state}` }, state.replace("_", " "));
}

function render(data) {
  const fresh = data.data.map((r) => {
    const name = el("td", {}, el("a", { href: `/projects/${encodeURIComponent(r.name)}` }, r.name));
    if (r.needs_person && r.state_reason) name.append(el("div", { className: "reason" }, r.state_reason));
    const progress = el("progress", { max: r.stages_total, value: r.stages_done });
    progress.setAttribute("aria-label", `${r.stages_done} of ${r.stages_total} stages done`);
    const tr = el("tr", { className: r.needs_person ? "needs" : "", dataset: { name: r.name, state: r.state, labels: r.labels.join(" ") } },
      name,
      el("td", {}, badge(r.state)),
      el("td", {}, r.current_stages.join(", ")),
      el("td", { dataset: { since: r.state_since || "" } }, since(r.state_since)),
      el("td", {}, progress, " ", el("span", { className: "muted" }, `${r.stages_done}/${r.stages_total}`)),
      el("td", {}, r.pipeline),
      el("td", {}, ...r.labels.map((l) => el("span", { className: "label" }, l))),
    );
    return tr;
  });
  if (!fresh.length) {
    fresh.push(el("tr", { className: "empty" }, el("td", { colSpan: 7 }, filtering() ? "No project matches." : "No projects yet.")));
  }
  shown = { ...shown, count: data.count };
  renderPager(data.data.length);
  rows.replaceChildren(...fresh);
  const known = new Set([...labelFilter.options].map((o) => o.value));
  for (const label of new Set(data.data.flatMap((r) => r.labels))) {
    if (!known.has(label)) labelFilter.append(el("option", { value: label }, label));
  }
  const n = data.needs_person;
  summary.textContent = n ? `${n} need${n === 1 ? "s" : ""} a person` : "Nothing needs you right now";
  document.title = `${n ? `(${n}) ` : ""}Projects · Winslow`;
  applyFilters();
}

// Only the answer to the latest question is shown: an older one may come back later.
let asked = 0;
async function load() {
  const query = overviewQuery();
  const mine = ++asked;
  const filtered = filtering();
  const data = await api(`/overview?${query}`);
  if (mine !== asked) return;
  render(data);
  shown.whole = !filtered && !shown.skip && data.count <= data.data.length;
  history.replaceState(null, "", query ? `/?${query}` : "/");
}

let pending = null;
function refreshSoon() {
  if (pending) return;
  pending = setTimeout(async () => {
    pending = null;
    await guarded(load);
  }, 250);
}

// Rows on the page are filtered at once; the server is asked only when some projects
// are not on the page (another page, or more than one page in all).
let searching = null;
function filtersChanged() {
  applyFilters();
  if (shown.whole) return;
  shown = { ...shown, skip: 0 };
  clearTimeout(searching);
  searching = setTimeout(() => guarded(load), 200);
}

for (const input of [search, stateFilter, labelFilter]) input.addEventListener("input", filtersChanged);

// Times in state tick on their own.
setInterval(() => {
  for (const cell of rows.querySelectorAll("td[data-since]")) {
    if (cell.dataset.since) cell.textContent = since(cell.dataset.since);
  }
}, 15000);

const events = new EventSource("/api/v1/events");
events.addEventListener("project", refreshSoon);
events.addEventListener("deleted", refreshSoon);
let warned = false;
events.addEventListener("error", () => {
  if (events.readyState === EventSource.CLOSED && !warned) {
    warned = true;
    showError("Live updates stopped (the server closed the stream); reload the page.");
  }
});

document.getElementById("create-project").addEventListener("click", () => guarded(async () => {
  const name = document.getElementById("new-name").value.trim();
  const pipeline = document.getElementById("new-pipeline").value;
  const variables = {};
  for (const line of document.getElementById("new-vars").value.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`"${line}" is not NAME=value.`);
    variables[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  const start = document.getElementById("new-start").checked;
  const project = await api("/projects", { method: "POST", body: { name, pipeline, variables, start } });
  window.location.assign(`/projects/${encodeURIComponent(project.name)}`);
}));
applyFilters();
