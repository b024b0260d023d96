// The pipeline editor: a plain textarea with a line-number gutter, checked as you type
// through POST /pipelines/validate, with every problem shown at its line (gutter marker,
// a band behind the line, and a list that moves the cursor there). Apply is PUT; a refused
// definition leaves the stored one as it was and shows why.
//
// Keyboard: Tab indents by two spaces (YAML), Shift+Tab outdents; Escape then Tab leaves the
// textarea, as in CodeMirror, so the editor is never a keyboard trap. Ctrl/Cmd+S applies.
import { api, ApiError, el, guarded, showError } from "./api.js";

const CHECK_DELAY_MS = 600;
const INDENT = "  ";

const root = document.getElementById("pipeline-editor");
const text = document.getElementById("pipeline-text");
const gutter = document.getElementById("gutter-lines");
const marks = document.getElementById("line-marks");
const list = document.getElementById("problem-list");
const empty = document.getElementById("problems-empty");
const status = document.getElementById("check-status");
const notice = document.getElementById("notice");
const refusal = document.getElementById("refusal");
const stageList = document.getElementById("stage-list");
const stagesEmpty = document.getElementById("stages-empty");
const applyButton = document.getElementById("apply");

/** The pipeline being edited; empty while creating a new one. */
const name = root.dataset.name;
let savedText = text.value;
let problems = JSON.parse(document.getElementById("initial-problems").textContent);
let lineCount = 0;
let checkTimer = null;
let checkSeq = 0;
let escapeArmed = false;

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// -- gutter and line marks ------------------------------------------------------------

function metrics() {
  const style = getComputedStyle(text);
  return { lineHeight: parseFloat(style.lineHeight), padTop: parseFloat(style.paddingTop) };
}

function problemsByLine() {
  const byLine = new Map();
  for (const p of problems) {
    if (p.line == null) continue;
    if (!byLine.has(p.line)) byLine.set(p.line, []);
    byLine.get(p.line).push(p);
  }
  return byLine;
}

function describe(p) {
  return `${p.field ? `${p.field}: ` : ""}${p.message}`;
}

function renderGutter() {
  const count = text.value.split("\n").length;
  if (count !== lineCount) {
    const rows = [];
    for (let n = 1; n <= count; n += 1) rows.push(el("div", { className: "ln", "aria-hidden": "true" }, n));
    gutter.replaceChildren(...rows);
    lineCount = count;
  }
  for (const row of gutter.querySelectorAll(".ln.bad")) {
    row.classList.remove("bad");
    row.removeAttribute("title");
    row.removeAttribute("role");
    row.removeAttribute("aria-label");
    row.setAttribute("aria-hidden", "true");
  }
  const { lineHeight, padTop } = metrics();
  const bands = [];
  for (const [line, here] of problemsByLine()) {
    const row = gutter.children[Math.min(line, count) - 1];
    if (!row) continue;
    const words = here.map(describe).join("\n");
    row.classList.add("bad");
    row.title = words;
    // The number alone says nothing to a screen reader; the marker says what is wrong.
    row.removeAttribute("aria-hidden");
    row.setAttribute("role", "img");
    row.setAttribute("aria-label", `Line ${line}: ${plural(here.length, "problem")}: ${here.map(describe).join("; ")}`);
    bands.push(el("div", { className: "band", style: `top:${padTop + (Math.min(line, count) - 1) * lineHeight}px;height:${lineHeight}px` }));
  }
  marks.replaceChildren(...bands);
  syncScroll();
}

function syncScroll() {
  const shift = `translateY(${-text.scrollTop}px)`;
  gutter.style.transform = shift;
  marks.style.transform = shift;
}

// -- problems ---------------------------------------------------------------------------

function problemItem(p) {
  const field = p.field ? [el("span", { className: "field" }, p.field), ": "] : [];
  if (p.line == null) return el("li", {}, el("span", { className: "problem" }, ...field, p.message));
  const where = `line ${p.line}${p.column ? `, column ${p.column}` : ""}: `;
  return el("li", {},
    el("button", { type: "button", className: "problem", dataset: { line: p.line, column: p.column || 1 } }, where, ...field, p.message));
}

function showProblems(found) {
  problems = found;
  list.replaceChildren(...found.map(problemItem));
  list.classList.remove("stale");
  empty.hidden = found.length > 0;
  if (found.length) text.setAttribute("aria-invalid", "true");
  else text.removeAttribute("aria-invalid");
  status.textContent = found.length ? plural(found.length, "problem") : "No problems";
  status.classList.toggle("bad", found.length > 0);
  renderGutter();
}

/** Put the cursor on `line` (selecting it) and scroll it into view. */
function goToLine(line) {
  const lines = text.value.split("\n");
  const n = Math.min(Math.max(1, line), lines.length);
  let start = 0;
  for (let i = 0; i < n - 1; i += 1) start += lines[i].length + 1;
  text.focus({ preventScroll: true });
  text.setSelectionRange(start, start + lines[n - 1].length);
  const { lineHeight, padTop } = metrics();
  const top = padTop + (n - 1) * lineHeight;
  if (top < text.scrollTop || top + lineHeight > text.scrollTop + text.clientHeight) {
    text.scrollTop = Math.max(0, top - text.clientHeight / 3);
  }
  text.scrollLeft = 0;
  syncScroll();
}

list.addEventListener("click", (event) => {
  const button = event.target.closest("button.problem");
  if (button) goToLine(Number(button.dataset.line));
});

async function check({ loud = false } = {}) {
  clearTimeout(checkTimer);
  checkTimer = null;
  const seq = ++checkSeq;
  status.textContent = "Checking…";
  status.classList.remove("bad");
  try {
    const result = await api("/pipelines/validate", { method: "POST", body: { text: text.value } });
    if (seq === checkSeq) showProblems(result.problems);
  } catch (error) {
    if (seq !== checkSeq) return;
    status.textContent = `Not checked: ${error.message}`;
    status.classList.add("bad");
    if (loud) showError(error);
  }
}

function checkSoon() {
  clearTimeout(checkTimer);
  list.classList.add("stale");
  checkTimer = setTimeout(() => check(), CHECK_DELAY_MS);
}

// -- stages summary ---------------------------------------------------------------------

/** An argv word as a shell would need it written (what Python's shlex.quote does). */
function shellWord(word) {
  if (word === "") return "''";
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

function renderStages(definition) {
  const stages = definition.stages || [];
  stageList.replaceChildren(...stages.map((s, i) => {
    const needs = s.needs ?? (i > 0 ? [stages[i - 1].name] : []);
    const command = (s.command || []).map(shellWord).join(" ");
    return el("li", { id: `stage-${s.name}`, tabIndex: -1 },
      el("div", {}, el("strong", {}, s.name),
        s.gate ? el("span", { className: "label gate", title: "Stops for a person before this stage" }, "gate") : null),
      el("div", { className: "muted" }, `needs ${needs.length ? needs.join(", ") : "nothing"}`),
      s.image ? el("div", { className: "mono clip", title: s.image }, el("span", { className: "muted" }, "image "), s.image) : null,
      command ? el("div", { className: "mono clip", title: command }, command) : null);
  }));
  // A space between the name and the gate badge, as the server renders it.
  for (const badge of stageList.querySelectorAll(".gate")) badge.before(" ");
  stagesEmpty.hidden = stages.length > 0;
}

// -- apply and delete -------------------------------------------------------------------

function say(element, words) {
  element.textContent = words;
  element.hidden = !words;
}

/** The pipeline name a new definition gives itself (`name:` at the top level). */
function nameInText() {
  const match = text.value.match(/^name:[ \t]*(["']?)([^"'\s#]+)\1[ \t]*(#.*)?$/m);
  return match ? match[2] : null;
}

async function apply() {
  say(notice, "");
  say(refusal, "");
  const target = name || nameInText();
  if (!target) {
    say(refusal, "Not created: the definition needs a top-level `name:` line; it becomes the pipeline's name.");
    return;
  }
  if (!name) {
    const exists = await api(`/pipelines/${encodeURIComponent(target)}`).then(() => true, (error) => {
      if (error instanceof ApiError && error.status === 404) return false;
      throw error;
    });
    if (exists) {
      say(refusal, `Not created: a pipeline '${target}' exists already. Open it from the list to change it, or give this one another name.`);
      return;
    }
  }
  applyButton.disabled = true;
  try {
    const sent = text.value;
    const result = await api(`/pipelines/${encodeURIComponent(target)}`, { method: "PUT", body: { text: sent } });
    savedText = sent;
    if (!name) {
      window.location.assign(`/pipelines/${encodeURIComponent(result.name)}#created`);
      return;
    }
    showProblems([]);
    renderStages(result.definition);
    document.dispatchEvent(new CustomEvent("winslow:pipeline-changed", { detail: { name } }));
    say(notice, `Applied at ${new Date().toLocaleTimeString()}. New projects use this definition; existing projects keep theirs until switched to it.`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && error.body && Array.isArray(error.body.problems)) {
      showProblems(error.body.problems);
      say(refusal, `Not ${name ? "applied" : "created"}: ${plural(error.body.problems.length, "problem")}, listed below. ${name ? "The stored pipeline is unchanged." : ""}`.trim());
    } else {
      showError(error);
    }
  } finally {
    applyButton.disabled = false;
  }
}

applyButton.addEventListener("click", () => guarded(apply));
document.getElementById("validate").addEventListener("click", () => check({ loud: true }));

const dialog = document.getElementById("delete-dialog");
if (dialog) {
  document.getElementById("delete").addEventListener("click", () => dialog.showModal());
  document.getElementById("delete-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("delete-confirm").addEventListener("click", () => guarded(async () => {
    try {
      await api(`/pipelines/${encodeURIComponent(name)}`, { method: "DELETE" });
    } finally {
      dialog.close();
    }
    savedText = text.value;
    window.location.assign("/pipelines");
  }));
}

// -- typing -----------------------------------------------------------------------------

/** Replace the selection with `words`, keeping the browser's undo history where it can. */
function insert(words) {
  if (!document.execCommand("insertText", false, words)) {
    text.setRangeText(words, text.selectionStart, text.selectionEnd, "end");
    text.dispatchEvent(new Event("input"));
  }
}

function indent(outdent) {
  const { selectionStart: start, selectionEnd: end, value } = text;
  const block = value.slice(start, end);
  if (!outdent && !block.includes("\n")) {
    insert(INDENT);
    return;
  }
  const from = value.lastIndexOf("\n", start - 1) + 1;
  const last = end > start && value[end - 1] === "\n" ? end - 1 : end;
  let to = value.indexOf("\n", last);
  if (to < 0) to = value.length;
  const lines = value.slice(from, to).split("\n");
  const changed = lines.map((l) => (outdent ? l.replace(/^ {1,2}/, "") : INDENT + l)).join("\n");
  if (changed === value.slice(from, to)) return;
  text.setSelectionRange(from, to);
  insert(changed);
  text.setSelectionRange(from, from + changed.length);
}

text.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
    event.preventDefault();
    guarded(apply);
    return;
  }
  if (event.key === "Escape") {
    escapeArmed = true;
    return;
  }
  if (event.key === "Tab" && !event.ctrlKey && !event.altKey && !event.metaKey) {
    if (escapeArmed) {
      escapeArmed = false;
      return; // the browser moves focus on
    }
    event.preventDefault();
    indent(event.shiftKey);
    return;
  }
  if (!["Shift", "Control", "Alt", "Meta"].includes(event.key)) escapeArmed = false;
});
text.addEventListener("blur", () => { escapeArmed = false; });

text.addEventListener("input", () => {
  say(notice, "");
  renderGutter();
  checkSoon();
});
text.addEventListener("scroll", syncScroll);
window.addEventListener("resize", renderGutter);
window.addEventListener("beforeunload", (event) => {
  if (text.value !== savedText) event.preventDefault();
});

showProblems(problems);
if (window.location.hash === "#created") {
  say(notice, `Created and applied pipeline '${name}'.`);
  history.replaceState(null, "", window.location.pathname);
}
