// The overview: filters and search in the page, live rows through Server-Sent Events,
// and the tab title counting the projects that need a person.
import { api, guarded, el, since, showError } from "./api.js";

const rows = document.getElementById("project-rows");
const search = document.getElementById("search");
const stateFilter = document.getElementById("state-filter");
const labelFilter = document.getElementById("label-filter");
const summary = document.getElementById("needs-summary");

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
    fresh.push(el("tr", { className: "empty" }, el("td", { colSpan: 7 }, "No projects yet.")));
  }
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

let pending = null;
function refreshSoon() {
  if (pending) return;
  pending = setTimeout(async () => {
    pending = null;
    await guarded(async () => render(await api("/overview")));
  }, 250);
}

for (const input of [search, stateFilter, labelFilter]) input.addEventListener("input", applyFilters);

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
