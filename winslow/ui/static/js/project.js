// The project page: header, controls, the stage timeline with every run, the selected
// run's details, the variables editor and the history, drawn from the JSON the server put
// in the page and kept live through the project's event stream. The log and files panels
// are other modules (logview.js, files.js), loaded on their own so the page works without
// either; so are the run's charts (insights.js) and the redo dialog (redo.js). This module
// only tells them which run to show.
import { api, guarded, el, formatMegabytes, since, duration, showError, timeLeft } from "./api.js";
import { combinationText, mountInsights } from "./insights.js";
import { mountRedo, overrideWords } from "./redo.js";
import { fieldProblems, markFields } from "./forms.js";
import { mountTabs } from "./tabs.js";
import { addShortcut } from "./keys.js";

const data = JSON.parse(document.getElementById("project-data").textContent);
let stages = data.stages;
const declared = data.variables;
const declaredNames = new Set(declared.map((v) => v.name));
const nomad = data.nomad;
const stageSettings = data.stage_settings || {};
const stageInfo = (name) => stageSettings[name];
let project = data.project;
let gone = false;

const ACTIVE = new Set(["pending", "running"]);
const RESUMABLE = new Set(["paused", "failed", "failing", "awaiting_input", "pausing"]);
const ENDED_BADLY = new Set(["failed", "lost", "cancelled"]);
const ADVANCING = new Set(["running", "pausing", "failing"]);
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/; // VARIABLE_PATTERN of pipeline/model.py

const $ = (id) => document.getElementById(id);
const projectPath = () => `/projects/${encodeURIComponent(project.id)}`;
const runs = () => project.runs || [];

// -- tabs --------------------------------------------------------------------------------

/** A log shown while its tab was hidden could not scroll: it goes to the end when shown,
 * unless the person scrolled away from the end (the viewer then offers its jump button). */
function logShown() {
  const view = $("log-view");
  const lines = view.querySelector(".logview-lines");
  const jump = view.querySelector(".logview-follow");
  if (lines && (!jump || jump.hidden)) lines.scrollTop = lines.scrollHeight;
}

const tabs = mountTabs($("project-tabs"), { onChange: (name) => { if (name === "log") logShown(); } });
const activeRuns = () => runs().filter((r) => ACTIVE.has(r.state));

function badge(state) {
  return el("span", { className: `state state-${state}` }, state.replaceAll("_", " "));
}

function quoted(names) {
  return names.map((n) => `'${n}'`).join(", ");
}

/** Local clock time of an ISO moment (with the day when it is not today). */
function clock(iso) {
  const at = new Date(iso);
  const today = at.toDateString() === new Date().toDateString();
  return today
    ? at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" })
    : at.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

function timeEl(iso) {
  if (!iso) return "";
  return el("time", { dateTime: iso, title: new Date(iso).toLocaleString() }, clock(iso));
}

function runDuration(run, now = Date.now()) {
  if (!run.started_at) return "";
  const end = run.ended_at ? Date.parse(run.ended_at) : now;
  return duration((end - Date.parse(run.started_at)) / 1000);
}

// -- header ------------------------------------------------------------------------------

function renderHeader() {
  $("project-name").textContent = project.name;
  $("project-state").replaceChildren(badge(project.state));
  $("project-reason").textContent = project.state_reason || "";
  const sinceEl = $("project-since");
  sinceEl.dataset.since = project.state_changed_at || "";
  sinceEl.textContent = project.state_changed_at ? `for ${since(project.state_changed_at)}` : "";
  $("project-pipeline").replaceChildren(el("a", { href: `/pipelines/${encodeURIComponent(project.pipeline)}` }, project.pipeline));
  const labels = project.labels.map((l) => el("span", { className: "label" }, l));
  $("project-labels").replaceChildren(...(labels.length ? labels : [el("span", { className: "muted" }, "none")]));
  document.title = `${project.name} · ${project.state.replaceAll("_", " ")} · Winslow`;

  const waiting = $("project-waiting");
  const wait = project.state === "awaiting_input" ? project.waiting_for || {} : {};
  if (wait.variables && wait.variables.length) {
    const open = el("button", { type: "button", className: "link" }, "Variables");
    open.addEventListener("click", () => tabs.show("variables", { focus: true }));
    waiting.replaceChildren(`Stage '${wait.stage}' needs the variable${wait.variables.length > 1 ? "s" : ""} `
      + `${wait.variables.join(", ")}: set ${wait.variables.length > 1 ? "them" : "it"} under `, open, ", save, then Resume.");
    waiting.hidden = false;
  } else if (wait.gate) {
    waiting.textContent = `Stage '${wait.gate}' waits for a person: Resume lets it start.`;
    waiting.hidden = false;
  } else {
    waiting.hidden = true;
    waiting.textContent = "";
  }
}

// -- controls ----------------------------------------------------------------------------

const buttons = {
  start: $("start"),
  pause: $("pause"),
  resume: $("resume"),
  resumeFrom: $("resume-from"),
  kill: $("kill"),
};
const resumeStage = $("resume-stage");
let busy = false;

function renderControls() {
  const state = project.state;
  const active = activeRuns();
  const running = [...new Set(active.map((r) => r.stage))];
  const off = gone || busy;
  buttons.start.disabled = off || state !== "idle";
  buttons.pause.disabled = off || (state !== "running" && state !== "failing");
  buttons.resume.disabled = off || !RESUMABLE.has(state);
  buttons.kill.disabled = off || running.length === 0;

  let why = "";
  if (gone) why = "This project was deleted.";
  else if (state === "idle") why = "Resume from a stage once the project has started.";
  else if (running.length) {
    why = `Resume from a stage is possible once stage ${quoted(running)} has ended (or is killed).`;
  } else if (state === "running") why = "The project is running: pause it first to resume from another stage.";
  buttons.resumeFrom.disabled = off || Boolean(why);
  resumeStage.disabled = Boolean(why);
  $("resume-from-why").textContent = why;

  const known = [...resumeStage.options].map((o) => o.value);
  const wanted = stages.map((s) => s.name);
  if (known.join("\n") !== wanted.join("\n")) {
    const chosen = resumeStage.value;
    resumeStage.replaceChildren(...wanted.map((n) => el("option", { value: n }, n)));
    if (wanted.includes(chosen)) resumeStage.value = chosen;
  }
}

/** POST a command; draw the project it answers with, or say why it was refused. */
async function command(verb, body) {
  busy = true;
  renderControls();
  try {
    apply(await api(`${projectPath()}/${verb}`, { method: "POST", body }));
  } catch (error) {
    showError(error);
  } finally {
    busy = false;
    renderControls();
  }
}

buttons.start.addEventListener("click", () => command("start"));
buttons.pause.addEventListener("click", () => command("pause"));
buttons.resume.addEventListener("click", () => command("resume"));
buttons.resumeFrom.addEventListener("click", () => command("resume", { from_stage: resumeStage.value }));

const killDialog = $("kill-dialog");
buttons.kill.addEventListener("click", () => {
  const running = [...new Set(activeRuns().map((r) => r.stage))];
  $("kill-text").textContent = `Stage ${quoted(running)} of '${project.name}' will be stopped now; `
    + "what it has not finished is lost. The project pauses once the stage has stopped, "
    + "and Resume runs the stage again.";
  killDialog.returnValue = "";
  killDialog.showModal();
});
killDialog.addEventListener("close", () => {
  if (killDialog.returnValue === "kill") command("kill");
  else buttons.kill.focus();
});

// -- timeline ----------------------------------------------------------------------------

let selectedId = null;
let picked = false;
const openTails = new Map();

function nomadLink(run) {
  if (!nomad || !run.job_id) return null;
  const href = `${nomad.base}/jobs/${encodeURIComponent(run.job_id)}@${encodeURIComponent(nomad.namespace)}`;
  return el("a", {
    href, target: "_blank", rel: "noopener", className: "nomad",
    dataset: { key: `nomad-${run.id}` }, "aria-label": `Run ${run.id} in the Nomad UI (job ${run.job_id})`,
  }, "Nomad job");
}

function stageNote(stage) {
  const wait = project.waiting_for || {};
  if (project.state === "awaiting_input" && wait.stage === stage.name) {
    if (wait.variables && wait.variables.length) return `waits for the variables ${wait.variables.join(", ")}`;
    if (wait.gate) return "waits for a person: Resume lets it start";
  }
  return "not run yet";
}

const LOG_RECORD = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (stdout|stderr|winslow) \| ?(.*)$/;

/** A log record as the log viewer shows it: local time, stream, text. */
function tailLine(line) {
  const record = LOG_RECORD.exec(line);
  if (!record) return line;
  const at = new Date(record[1]).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  return `${at} ${record[2].padEnd(7)} ${record[3]}`;
}

/** The earlier run ``run`` redoes as it was, if it is one and that run is listed. */
function likeOf(run) {
  const id = run.overrides && run.overrides.like_run;
  return id == null ? null : runs().find((r) => r.id === id) || null;
}

function runRows(run, columns, newest = true) {
  const selected = run.id === selectedId;
  const pick = el("button", {
    type: "button", className: "run-pick", dataset: { key: `run-${run.id}`, run: run.id },
    "aria-pressed": String(selected), title: `Show the log and files of run ${run.id}`,
  }, `Run ${run.id}`);
  pick.addEventListener("click", () => select(run.id, true));
  const state = el("td", {}, badge(run.state));
  if (run.superseded) state.append(" ", el("span", { className: "superseded-tag" }, "superseded"));
  if (run.state === "running") state.append(progressEl(run.id, progressOf.get(run.id)));
  const dur = el("td", { className: "duration" }, runDuration(run));
  if (run.started_at && !run.ended_at) dur.dataset.started = run.started_at;
  const runCell = el("td", { className: "run-cell" }, pick);
  const combo = combinationText(run.combination);
  if (combo) runCell.append(" ", el("span", { className: "combination", title: "The sweep values of this run" }, combo));
  const changed = overrideWords(run.overrides, likeOf(run));
  if (changed.length || (run.overrides && run.overrides.comment)) {
    const words = [...changed, run.overrides.comment ? `“${run.overrides.comment}”` : ""].filter(Boolean).join(" · ");
    runCell.append(" ", el("span", {
      className: "changed-tag", title: `Changed for this run only: ${words}`, "aria-label": `changed for this run only: ${words}`,
    }, "changed"));
  }
  const nomadJob = nomadLink(run);
  if (nomadJob) runCell.append(" ", nomadJob);
  const row = el("tr", {
    id: `run-${run.id}`,
    className: ["run", run.superseded ? "superseded" : "", selected ? "selected" : ""].join(" ").trim(),
    dataset: { run: run.id, state: run.state, combination: combo },
  },
    runCell,
    el("td", { className: "col-attempt" }, run.attempt),
    el("td", { className: "col-node" }, run.node || el("span", { className: "muted" }, "—")),
    el("td", { className: "col-started" }, timeEl(run.started_at) || el("span", { className: "muted" }, run.state === "pending" ? "waiting" : "—")),
    dur,
    state,
    el("td", { className: "exit col-exit" }, run.exit_code ?? ""),
    el("td", { className: "reason" }, run.reason || ""),
  );
  if (selected) row.setAttribute("aria-current", "true");
  const rows = [row];
  if (ENDED_BADLY.has(run.state) && run.log_tail && run.log_tail.length) {
    // Open while it is the stage's newest run, unless the person closed or opened it: a
    // retry's lines are mostly the same again, and are shown once.
    const open = openTails.has(run.id) ? openTails.get(run.id) : !run.superseded && newest;
    const summary = el("summary", { dataset: { key: `tail-${run.id}` } }, `Last log lines of run ${run.id}`);
    const details = el("details", { className: "tail", open }, summary,
      el("pre", {}, run.log_tail.map(tailLine).join("\n")));
    summary.addEventListener("click", () => openTails.set(run.id, !details.open));
    rows.push(el("tr", { className: `tail-row${run.superseded ? " superseded" : ""}`, dataset: { tailOf: run.id } },
      el("td", { colSpan: columns }, details)));
  }
  return rows;
}

function sameCombination(a, b) {
  return combinationText(a.combination) === combinationText(b.combination);
}

function renderTimeline() {
  const table = $("timeline");
  const focused = document.activeElement && table.contains(document.activeElement)
    ? document.activeElement.dataset.key : null;
  const byStage = new Map(stages.map((s) => [s.name, []]));
  const extra = [];
  for (const run of runs()) {
    if (!byStage.has(run.stage)) {
      byStage.set(run.stage, []);
      extra.push({ name: run.stage, needs: [], gate: false, description: "", removed: true });
    }
    byStage.get(run.stage).push(run);
  }
  const current = new Set(project.current_stages);
  const bodies = [...stages, ...extra].map((stage) => {
    const stageRuns = byStage.get(stage.name);
    const head = el("th", { scope: "rowgroup", className: "stage" },
      el("span", { className: "stage-name" }, stage.name));
    if (stage.gate) {
      const once = stage.confirmation === "once";
      head.append(" ", el("span", {
        className: "gate",
        title: once
          ? "A person lets this stage start the first time (Resume); later runs start on their own"
          : "A person lets this stage start, every time (Resume)",
      }, once ? "confirm once" : "gate"));
    }
    if (stage.needs.length) head.append(el("div", { className: "needs" }, `after ${stage.needs.join(", ")}`));
    const info = stageInfo(stage.name) || {};
    if (info.when) head.append(el("div", { className: "needs when" }, "runs when ", el("code", {}, info.when)));
    if (info.sweep && info.sweep.length) head.append(el("div", { className: "needs" }, `sweeps ${info.sweep.join(" × ")}`));
    // Kept until the next resume, so only worth saying while the project goes on.
    if (ADVANCING.has(project.state) && (project.hold_after || []).includes(stage.name)) {
      head.append(el("div", { className: "hold" }, "the project pauses after this stage"));
    }
    const next = overrideWords((project.run_overrides || {})[stage.name]);
    if (next.length) head.append(el("div", { className: "hold" }, `next run: ${next.join(", ")}`));
    if (stage.removed) head.append(el("div", { className: "needs" }, "no longer in the pipeline"));
    else {
      const redoButton = el("button", {
        type: "button", className: "link redo-stage", disabled: gone,
        dataset: { key: `redo-${stage.name}` }, "aria-label": `Redo stage ${stage.name} with changes`,
      }, "Redo…");
      redoButton.addEventListener("click", () => openRedo({ stage: stage.name, from: redoButton }));
      head.append(el("div", {}, redoButton));
    }
    if (stage.description) head.title = stage.description;
    const rows = stageRuns.length
      ? stageRuns.flatMap((run, i) => runRows(run, 8, !stageRuns.slice(i + 1).some((later) => sameCombination(later, run))))
      : [el("tr", { className: "no-run" }, el("td", { colSpan: 8, className: "muted" }, stageNote(stage)))];
    head.rowSpan = rows.length;
    rows[0].prepend(head);
    const body = el("tbody", { className: `stage-group${current.has(stage.name) ? " current" : ""}`, dataset: { stage: stage.name } }, ...rows);
    return body;
  });
  for (const old of table.querySelectorAll("tbody")) old.remove();
  table.append(...bodies);
  if (focused) {
    const again = table.querySelector(`[data-key="${focused}"]`);
    if (again) again.focus();
  }
}

// Running runs' durations tick on their own; so does the time in state.
setInterval(() => {
  const now = Date.now();
  for (const cell of document.querySelectorAll("#timeline td[data-started]")) {
    cell.textContent = duration((now - Date.parse(cell.dataset.started)) / 1000);
  }
  const sinceEl = $("project-since");
  if (sinceEl.dataset.since) sinceEl.textContent = `for ${since(sinceEl.dataset.since, now)}`;
}, 1000);

// -- progress of running runs ------------------------------------------------------------
// A stage that prints `NN %` (tqdm does) reports progress; the server reads it from the end
// of the log (GET .../runs/{id}/progress). Polled while a run runs; kept across re-renders.

const PROGRESS_POLL_MS = 5000;
const progressOf = new Map();
let progressPolling = false;

/** The progress bar of a running run; empty (and hidden) until its stage reports any. */
function progressEl(runId, seen) {
  const box = el("div", { className: "run-progress", dataset: { progressOf: runId } });
  if (!seen || seen.percent == null) {
    box.hidden = true;
    return box;
  }
  const percent = Math.round(seen.percent * 10) / 10;
  const left = timeLeft(seen.seconds_left);
  box.append(
    el("progress", {
      max: 100, value: seen.percent,
      "aria-label": left ? `${percent} % done, ${left}` : `${percent} % done`,
    }),
    el("span", { className: "progress-text", "aria-hidden": "true" }, left ? `${percent} % · ${left}` : `${percent} %`),
  );
  return box;
}

async function pollProgress() {
  if (progressPolling || gone || document.hidden) return;
  progressPolling = true;
  try {
    for (const run of runs().filter((r) => r.state === "running")) {
      let seen;
      try {
        seen = await api(`${projectPath()}/runs/${run.id}/progress`);
      } catch (_) {
        continue; // Progress is extra: the next poll tries again.
      }
      progressOf.set(run.id, seen);
      const old = document.querySelector(`#timeline [data-progress-of="${run.id}"]`);
      if (old) old.replaceWith(progressEl(run.id, seen));
    }
  } finally {
    progressPolling = false;
  }
}

setInterval(pollProgress, PROGRESS_POLL_MS);

// -- which run the log and files panels show ---------------------------------------------

let logs = null;
let files = null;
let shownLog = null;
let shownFiles = null;

/** The run shown unless the person picked one: the newest running one, else the newest. */
function defaultRun() {
  const active = activeRuns();
  if (active.length) return active[active.length - 1];
  const all = runs();
  return all.length ? all[all.length - 1] : null;
}

function selectedRun() {
  return runs().find((r) => r.id === selectedId) || null;
}

function select(runId, byPerson) {
  if (byPerson) picked = true;
  selectedId = runId;
  for (const row of document.querySelectorAll("#timeline tr.run")) {
    const on = Number(row.dataset.run) === runId;
    row.classList.toggle("selected", on);
    if (on) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
    row.querySelector(".run-pick").setAttribute("aria-pressed", String(on));
  }
  $("follow").hidden = !picked;
  showPanels();
}

function followCurrent() {
  picked = false;
  const run = defaultRun();
  select(run ? run.id : null, false);
}
$("follow").addEventListener("click", followCurrent);

/** Select the run `step` rows below (or above) the selected one, in the timeline's order. */
function stepRun(step) {
  const order = [...document.querySelectorAll("#timeline tr.run")].map((row) => Number(row.dataset.run));
  if (!order.length) return;
  const at = order.indexOf(selectedId);
  const next = order[at < 0 ? 0 : Math.min(order.length - 1, Math.max(0, at + step))];
  select(next, true);
  if (tabs.current() === "overview") {
    const pick = document.querySelector(`#run-${next} .run-pick`);
    pick?.focus({ preventScroll: true });
    pick?.scrollIntoView({ block: "nearest" });
  }
}

addShortcut("j", "Next run (its log, files and details)", () => stepRun(1));
addShortcut("k", "Previous run", () => stepRun(-1));
addShortcut("g", "The graph (Overview tab)", () => {
  tabs.show("overview", { focus: true });
  $("project-graph").scrollIntoView({ block: "nearest" });
});

// A stage clicked in the graph (graph.js): its newest run, with its details.
document.addEventListener("winslow:select-stage", (event) => {
  const stage = event.detail && event.detail.stage;
  const latest = runs().filter((r) => r.stage === stage).at(-1);
  if (!latest) {
    tabs.show("overview");
    document.querySelector(`#timeline tbody[data-stage="${CSS.escape(stage)}"]`)?.scrollIntoView({ block: "nearest" });
    return;
  }
  select(latest.id, true);
  tabs.show("details");
  $("run-title").scrollIntoView({ block: "nearest" });
});

function showPanels() {
  const run = selectedRun();
  const combo = run ? combinationText(run.combination) : "";
  const words = run
    ? `run ${run.id} · ${run.stage}${combo ? ` (${combo})` : ""} · attempt ${run.attempt} · ${run.state}${run.superseded ? " · superseded" : ""}`
    : "";
  renderRunCard(run);
  $("log-run").textContent = words;
  $("files-run").textContent = words;
  if (logs) {
    if (!run) {
      $("log-note").textContent = "No run yet: the log of the first stage appears here when it starts.";
      $("log-note").hidden = false;
    } else if (shownLog !== `${run.id}/${run.state}`) {
      // Again for the same run when its state changed: the viewer takes the new state.
      $("log-note").hidden = true;
      shownLog = `${run.id}/${run.state}`;
      guarded(() => logs.show(run));
    }
  }
  if (files) {
    const key = run ? `${run.id}/${run.state}/${project.state}` : null;
    if (!run) {
      $("files-note").textContent = "No run yet: each run's workspace can be browsed here.";
      $("files-note").hidden = false;
    } else if (shownFiles !== key) {
      $("files-note").hidden = true;
      shownFiles = key;
      guarded(() => files.show(run, project.state));
    }
  }
}

async function mountPanels() {
  const [logModule, fileModule] = await Promise.allSettled([import("./logview.js"), import("./files.js")]);
  if (logModule.status === "fulfilled") {
    try {
      logs = logModule.value.mountLogViewer($("log-view"), { project: project.name });
    } catch (error) {
      $("log-note").textContent = `The log viewer failed to start (${error.message}).`;
    }
  } else {
    $("log-note").textContent = "The log viewer is not available in this console "
      + `(${logModule.reason.message}). The stage table shows a failed run's last lines; `
      + `\`winslow logs ${project.name} --run ID\` prints a whole log.`;
  }
  if (fileModule.status === "fulfilled") {
    try {
      files = fileModule.value.mountFileBrowser($("files-view"), { project: project.name });
    } catch (error) {
      $("files-note").textContent = `The file browser failed to start (${error.message}).`;
    }
  } else {
    $("files-note").textContent = "The file browser is not available in this console "
      + `(${fileModule.reason.message}).`;
  }
  showPanels();
}

// -- the selected run: details, results, metrics, usage ---------------------------------

const runCard = {
  title: $("run-title"),
  words: $("run-words"),
  note: $("run-note"),
  details: $("run-details"),
  metrics: $("run-metrics"),
  usage: $("run-usage"),
};
let insights = null;
let drawnRun = null;

/** A value a stage reported, as text: numbers as they came, booleans as words. */
function resultText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** A `name = value` list; `marked` names get a note (e.g. changed for this run). */
function keyValues(entries, { kind, marked = new Set(), note = "" }) {
  return el("dl", { className: `kv ${kind}` }, ...entries.map(([k, v]) => el("div", {
    className: marked.has(k) ? "marked" : "", dataset: { [kind === "results" ? "result" : "variable"]: k },
  }, el("dt", {}, k), el("dd", {}, resultText(v), marked.has(k) ? el("span", { className: "mark-note" }, note) : null))));
}

/** `2 CPUs · 8.0 GiB · 1 GPU`: what a run asked its node for. */
function resourceWords(run) {
  const words = [`${run.cpus} CPU${run.cpus === 1 ? "" : "s"}`];
  if (run.memory_mb) words.push(`${formatMegabytes(run.memory_mb)} memory`);
  if (run.gpus) words.push(`${run.gpus} GPU${run.gpus === 1 ? "" : "s"}`);
  return words.join(" · ");
}

const allocationLinks = new Map();

/** The run's job and allocation in the Nomad UI; the allocation only Nomad knows, so the
 * server asks it (once per run and state) and the link appears when it answers. */
function nomadFacts(run) {
  const where = el("dd", { className: "nomad-links", id: "run-nomad" }, nomadLink(run));
  const key = `${run.id}/${run.state}`;
  const add = (href) => {
    if (href) where.append(" · ", el("a", { href, target: "_blank", rel: "noopener", className: "nomad-allocation" }, "allocation"));
  };
  if (allocationLinks.has(key)) {
    add(allocationLinks.get(key));
  } else {
    api(`${projectPath()}/runs/${run.id}/nomad`).then((links) => {
      allocationLinks.set(key, links.allocation);
      add(links.allocation);
    }, () => { /* the job link is there; the allocation is extra */ });
  }
  return where;
}

function runDetails(run) {
  const parts = [];
  const facts = el("dl", { className: "facts run-facts" });
  const state = el("dd", {}, badge(run.state));
  if (run.superseded) state.append(" ", el("span", { className: "superseded-tag" }, "superseded"));
  facts.append(el("dt", {}, "Stage"), el("dd", {}, run.stage), el("dt", {}, "State"), state);
  const combo = combinationText(run.combination);
  if (combo) facts.append(el("dt", {}, "Sweep values"), el("dd", { className: "combination-values" }, combo));
  const stageImage = (stageInfo(run.stage) || {}).image;
  if (run.image || stageImage) {
    facts.append(el("dt", {}, "Image"), el("dd", {}, el("code", {}, run.image || stageImage),
      run.image && run.image !== stageImage ? el("span", { className: "mark-note" }, "changed for this run") : null));
  }
  if (run.cpus != null) facts.append(el("dt", {}, "Resources"), el("dd", { className: "resources" }, resourceWords(run)));
  if (run.started_at) facts.append(el("dt", {}, "Ran"), el("dd", {}, timeEl(run.started_at), run.ended_at ? ` for ${runDuration(run)}` : ""));
  if (nomad && run.job_id) facts.append(el("dt", {}, "Nomad"), nomadFacts(run));
  parts.push(facts);
  if (run.state === "skipped") {
    parts.push(el("p", { className: "skip-reason" }, el("strong", {}, "Skipped: "), run.reason || "its condition was false."));
  } else if (run.reason) {
    parts.push(el("p", { className: "run-reason" }, run.reason));
  }

  const overrides = run.overrides || {};
  const changed = overrideWords(overrides, likeOf(run));
  if (changed.length || overrides.comment) {
    const box = el("div", { className: "overrides", id: "run-overrides" }, el("h3", {}, "Changed for this run only"));
    if (changed.length) box.append(el("ul", { className: "plain changes" }, ...changed.map((w) => el("li", {}, w))));
    if (overrides.comment) box.append(el("blockquote", { className: "comment" }, overrides.comment));
    parts.push(box);
  }

  const results = Object.entries(run.results || {});
  parts.push(el("h3", {}, "Results"));
  parts.push(results.length
    ? keyValues(results, { kind: "results" })
    : el("p", { className: "muted" }, run.state === "running" || run.state === "pending"
      ? "None yet: a stage reports results with WINSLOW_RESULT: lines or a results.json."
      : "None reported."));

  const variables = Object.entries(run.variables || {}).sort(([a], [b]) => a.localeCompare(b));
  if (variables.length) {
    parts.push(el("h3", {}, "Variables"));
    const like = likeOf(run);
    const marked = Object.entries(overrides.variables || {})
      .filter(([k, v]) => !like || like.variables[k] !== v).map(([k]) => k);
    parts.push(keyValues(variables, { kind: "variables", marked: new Set(marked), note: "changed for this run" }));
  }

  if (stages.some((s) => s.name === run.stage)) {
    const again = el("button", { type: "button", dataset: { key: "redo-run" }, disabled: gone }, "Redo with changes…");
    again.addEventListener("click", () => openRedo({ stage: run.stage, from: again }));
    const like = el("button", { type: "button", dataset: { key: "redo-like" }, disabled: gone || run.state === "skipped" }, `Redo as run ${run.id} was…`);
    like.addEventListener("click", () => openRedo({ stage: run.stage, likeRun: run.id, from: like }));
    parts.push(el("div", { className: "run-actions" }, again, " ", like));
  }
  return parts;
}

function renderRunCard(run) {
  if (!run) {
    runCard.title.textContent = "Run";
    runCard.words.textContent = "";
    runCard.note.hidden = false;
    runCard.details.hidden = true;
    drawnRun = null;
    if (insights) insights.show(null, []);
    return;
  }
  const combo = combinationText(run.combination);
  runCard.title.textContent = `Run ${run.id} · ${run.stage}`;
  runCard.words.textContent = [combo, `attempt ${run.attempt}`].filter(Boolean).join(" · ");
  runCard.note.hidden = true;
  runCard.details.hidden = false;
  // Redraw only when the run changed, so a focused button keeps its focus.
  const drawn = JSON.stringify([run, gone, stageInfo(run.stage)]);
  if (drawn !== drawnRun) {
    drawnRun = drawn;
    const focused = document.activeElement && runCard.details.contains(document.activeElement)
      ? document.activeElement.dataset.key : null;
    runCard.details.replaceChildren(...runDetails(run));
    if (focused) runCard.details.querySelector(`[data-key="${focused}"]`)?.focus();
  }
  if (insights) insights.show(run, runs().filter((r) => r.stage === run.stage));
}

try {
  insights = mountInsights({ metrics: runCard.metrics, usage: runCard.usage }, { projectPath, stageInfo });
} catch (error) {
  runCard.metrics.hidden = false;
  runCard.metrics.textContent = `The charts failed to start (${error.message}).`;
}

// -- redo with changes -------------------------------------------------------------------

const redo = mountRedo($("redo-dialog"), {
  projectPath,
  project: () => project,
  stages: () => stages,
  stageInfo,
  declared,
  done: (fresh) => apply(fresh),
});

function openRedo(how) {
  if (gone) return;
  redo.open(how);
}

// -- variables ---------------------------------------------------------------------------

const variableRows = $("variable-rows");
const saveButton = $("save-variables");
const variablesStatus = $("variables-status");
let added = [];
let removed = new Set();

function variableList() {
  const list = declared.map((v) => ({ ...v, declared: true }));
  const extra = Object.keys(project.variables).filter((n) => !declaredNames.has(n)).sort();
  for (const name of extra) list.push({ name, declared: false, required: false, default: null, description: "" });
  for (const name of added) {
    if (!list.some((v) => v.name === name)) list.push({ name, declared: false, required: false, default: null, description: "", added: true });
  }
  return list;
}

function waitedFor() {
  const wait = project.state === "awaiting_input" ? project.waiting_for || {} : {};
  return new Set(wait.variables || []);
}

let drawnVariables = null;
// A phone shows the project, it does not change it (project.css hides the controls).
const phone = window.matchMedia("(max-width: 600px)");
phone.addEventListener("change", () => renderVariables({ keepValues: true }));

function renderVariables({ keepValues = false, force = false } = {}) {
  // Redraw only when what the table shows changed, so typing is never interrupted.
  const drawn = JSON.stringify([variableList().map((v) => v.name), [...removed], [...waitedFor()], project.variables, phone.matches]);
  if (drawn === drawnVariables && !force) return;
  drawnVariables = drawn;
  // Values the person typed (they differ from what was drawn) survive a redraw.
  const values = {};
  if (keepValues) {
    for (const input of variableRows.querySelectorAll("input[data-name]")) {
      if (input.value !== input.dataset.drawn) values[input.dataset.name] = input.value;
    }
  }
  const focused = document.activeElement && variableRows.contains(document.activeElement)
    ? document.activeElement.dataset.key : null;
  const waited = waitedFor();
  const rows = variableList().map((v) => {
    const id = `var-${v.name}`;
    const input = el("input", {
      id, value: v.name in values ? values[v.name] : project.variables[v.name] ?? "",
      placeholder: v.default ?? "", autocomplete: "off", spellcheck: false,
      dataset: { name: v.name, key: `value-${v.name}`, drawn: project.variables[v.name] ?? "" },
      "aria-label": `Value of ${v.name}`, "aria-describedby": `${id}-about`,
    });
    input.required = v.required;
    input.readOnly = phone.matches;
    input.addEventListener("input", () => { flag(row, v); dirtyChanged(); });
    const name = el("th", { scope: "row" }, el("code", {}, v.name));
    if (v.required) name.append(" ", el("span", { className: "required" }, "required"));
    const about = el("td", { id: `${id}-about`, className: "about" });
    if (v.description) about.append(el("span", {}, v.description));
    if (v.default != null && v.default !== "") about.append(el("span", { className: "muted" }, `default: ${v.default}`));
    if (!v.declared) about.append(el("span", { className: "muted" }, v.added ? "new; not saved yet" : "set on this project; the pipeline does not declare it"));
    if (waited.has(v.name)) about.append(el("span", { className: "waited-note" }, "the project waits for this"));
    const actions = el("td", { className: "actions" });
    if (!v.declared) {
      const isRemoved = removed.has(v.name);
      const remove = el("button", {
        type: "button", className: "link", dataset: { key: `remove-${v.name}` },
        "aria-label": `${isRemoved ? "Keep" : "Remove"} ${v.name}`,
      }, isRemoved ? "Keep" : "Remove");
      remove.addEventListener("click", () => {
        if (v.added) added = added.filter((n) => n !== v.name);
        else if (removed.has(v.name)) removed.delete(v.name);
        else removed.add(v.name);
        renderVariables({ keepValues: true, force: true });
        dirtyChanged();
      });
      actions.append(remove);
      input.disabled = isRemoved;
    }
    const row = el("tr", { className: removed.has(v.name) ? "removed" : "", dataset: { variable: v.name } },
      name, el("td", {}, input), about, actions);
    if (waited.has(v.name)) row.classList.add("waited");
    flag(row, v);
    return row;
  });
  if (!rows.length) {
    rows.push(el("tr", {}, el("td", { colSpan: 4, className: "muted" }, "The pipeline declares no variables; add one below.")));
  }
  variableRows.replaceChildren(...rows);
  if (focused) {
    const again = variableRows.querySelector(`[data-key="${focused}"]`);
    if (again) again.focus();
  }
}

/** Mark a required variable that has no value (and no default) as missing. */
function flag(row, v) {
  const input = row.querySelector("input");
  const missing = v.required && !input.value.trim() && !(v.default != null && v.default !== "");
  row.classList.toggle("missing", missing);
  input.setAttribute("aria-invalid", String(missing));
  const tag = row.querySelector(".required");
  if (tag) tag.textContent = missing ? "required: no value" : "required";
}

/** What saving would send: values changed or new, and those cleared or removed. */
function variableChanges() {
  const set = {};
  const unset = [];
  for (const input of variableRows.querySelectorAll("input[data-name]")) {
    const name = input.dataset.name;
    const had = Object.prototype.hasOwnProperty.call(project.variables, name);
    if (removed.has(name) || input.value === "") {
      if (had) unset.push(name);
    } else if (!had || project.variables[name] !== input.value) {
      set[name] = input.value;
    }
  }
  return { set, unset };
}

function isDirty() {
  const { set, unset } = variableChanges();
  return Object.keys(set).length > 0 || unset.length > 0;
}

function dirtyChanged() {
  const dirty = isDirty();
  saveButton.disabled = gone || !dirty;
  if (dirty) variablesStatus.textContent = "Unsaved changes.";
  else if (variablesStatus.textContent === "Unsaved changes.") variablesStatus.textContent = "";
}

function addVariable() {
  const nameInput = $("new-variable-name");
  const valueInput = $("new-variable-value");
  const problem = $("new-variable-problem");
  const name = nameInput.value.trim();
  let message = "";
  if (!name) message = "Give the variable a name.";
  else if (!VARIABLE_NAME.test(name)) {
    message = `“${name}” is not a valid name: use at most 128 letters, digits and _, not starting with a digit.`;
  } else if (variableRows.querySelector(`input[data-name="${name}"]`)) {
    message = `${name} is listed already; change its value in the table.`;
  } else if (valueInput.value === "") {
    message = `Give ${name} a value (a variable without one is the same as none).`;
  }
  problem.textContent = message;
  nameInput.setAttribute("aria-invalid", String(Boolean(message)));
  if (message) { nameInput.focus(); return; }
  added.push(name);
  removed.delete(name);
  const value = valueInput.value;
  renderVariables({ keepValues: true, force: true });
  $(`var-${name}`).value = value;
  nameInput.value = "";
  valueInput.value = "";
  dirtyChanged();
  nameInput.focus();
}

$("add-variable").addEventListener("click", addVariable);
$("new-variable-name").addEventListener("input", () => {
  $("new-variable-problem").textContent = "";
  $("new-variable-name").removeAttribute("aria-invalid");
});
for (const id of ["new-variable-name", "new-variable-value"]) {
  $(id).addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); addVariable(); }
  });
}

$("variables-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = variableChanges();
  if (!Object.keys(body.set).length && !body.unset.length) return;
  saveButton.disabled = true;
  variablesStatus.textContent = "Saving…";
  try {
    const fresh = await api(`${projectPath()}/variables`, { method: "PATCH", body });
    added = [];
    removed = new Set();
    const words = [...Object.entries(body.set).map(([k, v]) => `${k}=${v}`), ...body.unset.map((n) => `unset ${n}`)];
    apply(fresh, { resetVariables: true });
    const hint = fresh.state === "awaiting_input" ? " Resume to go on." : " Stages started from now on see them.";
    variablesStatus.textContent = `Saved: ${words.join(", ")}.${hint}`;
  } catch (error) {
    // A refusal about one variable goes beside its field; anything else to the page.
    const variable = (path) => document.getElementById(`var-${path.replace(/^(variables|set|unset)\./, "")}`);
    const problems = fieldProblems(error);
    const { marked, left } = markFields($("variables-form"), problems, variable);
    if (left.length || !Object.keys(problems).length) showError(error);
    dirtyChanged();
    variablesStatus.textContent = marked.length ? "Not saved: see the marked field." : "Not saved.";
  }
});

// -- history -----------------------------------------------------------------------------

const history = new Map(data.history.map((e) => [e.id, e]));

function renderHistory() {
  const items = [...history.values()].sort((a, b) => b.id - a.id).map((e) => el("li", { dataset: { kind: e.kind } },
    timeEl(e.at), el("span", { className: "actor" }, e.actor), el("span", { className: "message" }, e.message)));
  if (!items.length) items.push(el("li", { className: "muted" }, "Nothing yet."));
  $("history-rows").replaceChildren(...items);
}

// -- live --------------------------------------------------------------------------------

/** Follow a new pipeline definition's stage list (the page knows needs and gates only of
 * the stages it was drawn with; a reload shows those of new ones). */
function syncStages() {
  if (project.stages.join("\n") === stages.map((s) => s.name).join("\n")) return;
  const known = new Map(stages.map((s) => [s.name, s]));
  stages = project.stages.map((name) => known.get(name) || { name, description: "", needs: [], gate: false });
}

/** Draw ``fresh`` (a project from the API) everywhere, keeping what the person is doing. */
function apply(fresh, { resetVariables = false } = {}) {
  project = fresh;
  syncStages();
  renderHeader();
  renderControls();
  renderTimeline();
  // A person's unsaved edits stay; the flags follow what the project waits for.
  renderVariables({ keepValues: !resetVariables, force: resetVariables });
  dirtyChanged();
  if (picked && selectedRun()) {
    select(selectedId, false);
  } else {
    picked = false;
    const run = defaultRun();
    select(run ? run.id : null, false);
  }
  announce();
}

/** Tell the page's other parts (graph, gate card) what the page now shows; the latest
 * stays on `window.winslowProject` for those that load later. */
function announce() {
  const detail = { project, runs: runs(), stages };
  window.winslowProject = detail;
  document.dispatchEvent(new CustomEvent("winslow:project", { detail }));
}

let pending = null;
function refreshSoon() {
  if (pending || gone) return;
  pending = setTimeout(async () => {
    pending = null;
    await guarded(async () => apply(await api(projectPath())));
  }, 300);
}

function listen() {
  const after = Math.max(0, ...history.keys());
  const events = new EventSource(`/api/v1${projectPath()}/events?after=${after}`);
  events.addEventListener("project", (event) => apply(JSON.parse(event.data)));
  events.addEventListener("history", (event) => {
    const line = JSON.parse(event.data);
    if (history.has(line.id)) return;
    history.set(line.id, line);
    renderHistory();
    refreshSoon();
  });
  events.addEventListener("deleted", () => {
    gone = true;
    events.close();
    showError(`Project '${project.name}' was deleted; its page shows what it was. Back to all projects: /`);
    renderControls();
    dirtyChanged();
  });
  let warned = false;
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED && !warned && !gone) {
      warned = true;
      showError("Live updates stopped (the server closed the stream); reload the page.");
    }
  });
}

// -- start -------------------------------------------------------------------------------

/** The run a `#run-<id>` link names (the nodes page links runs so), or null. */
function linkedRun() {
  const wanted = /^#run-(\d+)$/.exec(location.hash);
  return wanted ? runs().find((r) => r.id === Number(wanted[1])) || null : null;
}

const linked = linkedRun();
if (linked) {
  picked = true;
  selectedId = linked.id;
}
renderHistory();
apply(project);
if (linked) $(`run-${linked.id}`)?.scrollIntoView({ block: "center" });
window.addEventListener("hashchange", () => {
  const run = linkedRun();
  if (!run) return;
  tabs.show("overview", { remember: false });
  select(run.id, true);
  $(`run-${run.id}`)?.scrollIntoView({ block: "center" });
});
mountPanels();
listen();
pollProgress();
