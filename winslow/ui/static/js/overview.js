// The overview: filters, sorting and paging asked of the server, live rows through
// Server-Sent Events, row selection with bulk pause / resume / kill, and the count of
// projects that wait for a person, which follows the filters. The server sends one page
// of projects; when every project is on it, filters act on the rows at once (and the
// count is of the rows left), else the server is asked, so a person with ten thousand
// projects still finds the one they look for.
import { api, guarded, el, since, showError } from "./api.js";

const rows = document.getElementById("project-rows");
const table = document.getElementById("projects-table");
const search = document.getElementById("search");
const stateFilter = document.getElementById("state-filter");
const labelFilter = document.getElementById("label-filter");
const pageSize = document.getElementById("page-size");
const summary = document.getElementById("needs-summary");
const pager = document.getElementById("pager");
const selectAll = document.getElementById("select-all");
const bulkCount = document.getElementById("bulk-count");
const bulkButtons = [...document.querySelectorAll("#bulk-bar button[data-action]")];
const bulkClear = document.getElementById("bulk-clear");
const results = document.getElementById("bulk-results");
const killDialog = document.getElementById("bulk-kill-dialog");

const DEFAULT_LIMIT = 100;
const SORT_WORDS = { name: "Project", state: "State", in_state: "In state for", progress: "Progress", updated: "Updated" };

// What the server was asked for: the rows on the page and how many match in all.
let shown = {
  skip: Number(rows.dataset.skip || 0),
  limit: Number(rows.dataset.limit || DEFAULT_LIMIT),
  count: Number(rows.dataset.count || 0),
  sort: table.dataset.sort || "",
  order: table.dataset.order || "asc",
};
// Whether the rows in the page are every project (no filter on the server, one page).
const filtering = () => Boolean(search.value.trim() || stateFilter.value || labelFilter.value);
shown.whole = !filtering() && !shown.skip && shown.count <= rows.querySelectorAll("tr[data-name]").length;

/** Names of the selected projects; kept across refreshes of the rows. */
const selected = new Set();

function overviewQuery(skip = shown.skip, sort = shown.sort, order = shown.order) {
  const params = new URLSearchParams();
  const text = search.value.trim();
  if (text) params.set("q", text);
  if (stateFilter.value) params.set("state", stateFilter.value);
  if (labelFilter.value) params.set("label", labelFilter.value);
  if (skip) params.set("skip", String(skip));
  if (shown.limit !== DEFAULT_LIMIT) params.set("limit", String(shown.limit));
  if (sort) params.set("sort", sort);
  if (sort && order !== "asc") params.set("order", order);
  return params.toString();
}

// -- paging and sorting ------------------------------------------------------------------

function renderPager(loaded) {
  const link = (text, id, skip) => el("a", { id, href: `/?${overviewQuery(skip)}`, dataset: { skip: String(skip) } }, text);
  const parts = [el("span", { id: "pager-text" }, loaded
    ? `${shown.skip + 1}–${shown.skip + loaded} of ${shown.count}` : `none of ${shown.count}`)];
  if (shown.skip) {
    parts.push(link("First", "pager-first", 0), link("Previous", "pager-prev", Math.max(shown.skip - shown.limit, 0)));
  }
  if (shown.skip + loaded < shown.count) {
    const last = Math.floor((shown.count - 1) / shown.limit) * shown.limit;
    parts.push(link("Next", "pager-next", shown.skip + shown.limit), link("Last", "pager-last", last));
  }
  pager.replaceChildren(...parts);
  pager.hidden = !shown.skip && loaded >= shown.count;
}

function renderSortHeaders() {
  for (const th of table.querySelectorAll("th[data-column]")) {
    const column = th.dataset.column;
    const on = shown.sort === column;
    if (on) th.setAttribute("aria-sort", shown.order === "asc" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
    const next = on && shown.order === "asc" ? "desc" : "asc";
    const link = th.querySelector("a.sort");
    link.href = `/?${overviewQuery(0, column, next)}`;
    link.querySelector(".sort-mark").textContent = on ? (shown.order === "asc" ? " ▲" : " ▼") : "";
    link.title = `Sort by ${SORT_WORDS[column].toLowerCase()}, ${next === "asc" ? "ascending" : "descending"}`;
  }
  table.dataset.sort = shown.sort;
  table.dataset.order = shown.order;
}

pager.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-skip], a[href]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  const skip = link.dataset.skip != null ? Number(link.dataset.skip)
    : Number(new URL(link.href).searchParams.get("skip") || 0);
  shown = { ...shown, skip };
  guarded(() => load({ push: true }));
});

table.querySelector("thead").addEventListener("click", (event) => {
  const link = event.target.closest("a.sort");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  const column = link.dataset.sort;
  const order = shown.sort === column && shown.order === "asc" ? "desc" : "asc";
  shown = { ...shown, sort: column, order, skip: 0 };
  guarded(() => load({ push: true }));
});

pageSize.addEventListener("change", () => {
  shown = { ...shown, limit: Number(pageSize.value), skip: 0 };
  guarded(() => load({ push: true }));
});

// -- rows --------------------------------------------------------------------------------

function summarise(waiting) {
  const words = waiting ? `${waiting} wait${waiting === 1 ? "s" : ""} for a person` : "Nothing waits for a person";
  summary.textContent = filtering() ? `${words} among the projects shown` : words;
  summary.dataset.count = String(waiting);
  document.title = `${waiting ? `(${waiting}) ` : ""}Projects · Winslow`;
}

// With every project on the page, filters hide rows here, and the count is of the rows left.
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
  if (shown.whole) summarise(rows.querySelectorAll("tr.needs[data-name]:not([hidden])").length);
}

function badge(state) {
  return el("span", { className: `state state-${state}` }, state.replace("_", " "));
}

function placementsCell(r) {
  const cell = el("td", { className: "placements" });
  for (const p of r.placements) {
    const line = el("div");
    if (p.node) {
      line.append(el("a", { href: `/nodes#node-${encodeURIComponent(p.node)}` }, p.node));
      if (p.gpus.length) line.append(` · GPU ${p.gpus.join(", ")}`);
      else if (p.gpu_count) line.append(` · ${p.gpu_count} GPU${p.gpu_count === 1 ? "" : "s"}`);
    } else {
      line.append(el("span", { className: "muted waiting" }, "waiting for a node"));
    }
    if (r.placements.length > 1) line.append(" ", el("span", { className: "muted" }, `(${p.stage})`));
    cell.append(line);
  }
  return cell;
}

function rowOf(r) {
  const name = el("td", {}, el("a", { href: `/projects/${encodeURIComponent(r.name)}` }, r.name));
  if (r.needs_person && r.state_reason) name.append(el("div", { className: "reason" }, r.state_reason));
  const progress = el("progress", { max: r.stages_total, value: r.stages_done });
  progress.setAttribute("aria-label", `${r.stages_done} of ${r.stages_total} stages done`);
  const box = el("input", { type: "checkbox", className: "row-select", value: r.name, checked: selected.has(r.name) });
  box.setAttribute("aria-label", `Select ${r.name}`);
  const classes = [r.needs_person ? "needs" : "", selected.has(r.name) ? "selected" : ""].filter(Boolean);
  return el("tr", { className: classes.join(" "), dataset: { name: r.name, state: r.state, labels: r.labels.join(" ") } },
    el("td", { className: "select" }, box),
    name,
    el("td", {}, badge(r.state)),
    el("td", {}, r.current_stages.join(", ")),
    placementsCell(r),
    el("td", { dataset: { since: r.state_since || "" } }, since(r.state_since)),
    el("td", {}, progress, " ", el("span", { className: "muted" }, `${r.stages_done}/${r.stages_total}`)),
    el("td", { dataset: { since: r.updated_at || "", ago: "1" } }, r.updated_at ? `${since(r.updated_at)} ago` : ""),
    el("td", {}, r.pipeline),
    el("td", {}, ...r.labels.map((l) => el("span", { className: "label" }, l))),
  );
}

function render(data) {
  const fresh = data.data.map(rowOf);
  if (!fresh.length) {
    fresh.push(el("tr", { className: "empty" }, el("td", { colSpan: 10 }, filtering() ? "No project matches." : "No projects yet.")));
  }
  shown = { ...shown, count: data.count };
  renderPager(data.data.length);
  renderSortHeaders();
  rows.replaceChildren(...fresh);
  const known = new Set([...labelFilter.options].map((o) => o.value));
  for (const label of new Set(data.data.flatMap((r) => r.labels))) {
    if (!known.has(label)) labelFilter.append(el("option", { value: label }, label));
  }
  summarise(data.needs_person);
  applyFilters();
  renderSelection();
}

// Only the answer to the latest question is shown: an older one may come back later.
let asked = 0;
async function load({ push = false } = {}) {
  const query = overviewQuery();
  const mine = ++asked;
  const filtered = filtering();
  const data = await api(`/overview?${query}`);
  if (mine !== asked) return;
  render(data);
  shown.whole = !filtered && !shown.skip && data.count <= data.data.length;
  const address = query ? `/?${query}` : "/";
  if (push && address !== location.pathname + location.search) history.pushState(null, "", address);
  else history.replaceState(null, "", address);
}

window.addEventListener("popstate", () => {
  const params = new URLSearchParams(location.search);
  search.value = params.get("q") || "";
  stateFilter.value = params.get("state") || "";
  labelFilter.value = params.get("label") || "";
  shown = {
    ...shown,
    skip: Number(params.get("skip") || 0),
    limit: Number(params.get("limit") || DEFAULT_LIMIT),
    sort: params.get("sort") || "",
    order: params.get("order") || "asc",
  };
  pageSize.value = String(shown.limit);
  guarded(load);
});

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

// -- selection and bulk actions ----------------------------------------------------------

function renderSelection() {
  const boxes = [...rows.querySelectorAll("input.row-select")];
  for (const box of boxes) {
    box.checked = selected.has(box.value);
    box.closest("tr").classList.toggle("selected", box.checked);
  }
  const visible = boxes.filter((b) => !b.closest("tr").hidden);
  const on = visible.filter((b) => b.checked).length;
  selectAll.checked = visible.length > 0 && on === visible.length;
  selectAll.indeterminate = on > 0 && on < visible.length;
  const n = selected.size;
  bulkCount.textContent = n ? `${n} project${n === 1 ? "" : "s"} selected` : "No project selected";
  for (const button of [...bulkButtons, bulkClear]) button.disabled = n === 0;
}

rows.addEventListener("change", (event) => {
  const box = event.target.closest("input.row-select");
  if (!box) return;
  if (box.checked) selected.add(box.value);
  else selected.delete(box.value);
  renderSelection();
});

selectAll.addEventListener("change", () => {
  for (const box of rows.querySelectorAll("input.row-select")) {
    if (box.closest("tr").hidden) continue;
    if (selectAll.checked) selected.add(box.value);
    else selected.delete(box.value);
  }
  renderSelection();
});

bulkClear.addEventListener("click", () => {
  selected.clear();
  renderSelection();
});

const PAST = { pause: "Paused", resume: "Resumed", kill: "Killed" };

function showResults(body) {
  const title = results.querySelector("h2");
  const total = body.data.length;
  title.textContent = `${PAST[body.action]} ${body.succeeded} of ${total} project${total === 1 ? "" : "s"}`
    + (body.refused ? `; ${body.refused} refused` : "");
  results.querySelector("ul").replaceChildren(...body.data.map((r) => el("li",
    { className: r.ok ? "done" : "refused", dataset: { project: r.project, status: String(r.status) } },
    el("strong", {}, r.project), " — ",
    r.ok ? `done, now ${r.state.replace("_", " ")}` : `refused: ${r.detail}`)));
  results.hidden = false;
}

async function bulk(action) {
  const projects = [...selected];
  const body = await api("/projects/bulk", { method: "POST", body: { action, projects } });
  showResults(body);
  // What succeeded is done with; what was refused stays selected, to try again.
  for (const r of body.data) if (r.ok) selected.delete(r.project);
  renderSelection();
  await load();
}

for (const button of bulkButtons) {
  button.addEventListener("click", () => {
    const action = button.dataset.action;
    if (action !== "kill") { guarded(() => bulk(action)); return; }
    const names = [...selected];
    const listed = names.length > 5 ? `${names.slice(0, 5).join(", ")} and ${names.length - 5} more` : names.join(", ");
    document.getElementById("bulk-kill-text").textContent = `The running stages of ${names.length} project${names.length === 1 ? "" : "s"} `
      + `(${listed}) will be stopped now; what they have not finished is lost. Each pauses once its stages have stopped.`;
    killDialog.returnValue = "";
    killDialog.showModal();
  });
}
killDialog.addEventListener("close", () => {
  if (killDialog.returnValue === "kill") guarded(() => bulk("kill"));
  else document.getElementById("bulk-kill").focus();
});

// -- live --------------------------------------------------------------------------------

// Times in state and since the last update tick on their own. A stage placed on a node
// changes no project, so rows still waiting for a node are asked for again meanwhile.
setInterval(() => {
  for (const cell of rows.querySelectorAll("td[data-since]")) {
    if (cell.dataset.since) cell.textContent = since(cell.dataset.since) + (cell.dataset.ago ? " ago" : "");
  }
  if (rows.querySelector("td.placements .waiting")) refreshSoon();
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
renderSelection();
