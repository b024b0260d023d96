// "Redo with changes": the project page's dialog that resumes from a stage with changes
// for that stage's next run only (variables, image, resources, a comment), optionally as
// an earlier run was, and optionally pausing once that stage has run. It sends
//
//     POST /projects/{p}/resume
//     {"from_stage": "train", "only": false, "like_run": 12,
//      "overrides": {"variables": {"LR": "0.5"}, "image": "…", "resources": {…}, "comment": "…"}}
//
// and shows the API's refusal in the dialog, which stays open so nothing typed is lost: a
// problem with one field (its own check, or the API's `fields`) is marked on that field.
//
//     const redo = mountRedo($("redo-dialog"), { projectPath, project, stages, stageInfo, declared, done });
//     redo.open({ stage: "train" });          // from a stage
//     redo.open({ stage: "train", likeRun: 12 });  // "redo as run 12 was"
import { api, el, formatMegabytes } from "./api.js";
import { clearFields, fieldName, fieldProblems, markFields } from "./forms.js";
import { combinationText } from "./insights.js";

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/; // VARIABLE_PATTERN of pipeline/model.py
const MEMORY = /^\s*\d+(\.\d+)?\s*([kmgt]i?b?|b)?\s*$/i;

/** The words of an API refusal; a validation error's list becomes "field: problem; …". */
export function refusalWords(error) {
  const detail = error && error.body && error.body.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      const where = (d.loc || []).filter((part) => part !== "body").join(".");
      return where ? `${where}: ${d.msg}` : d.msg;
    }).join("; ");
  }
  return error instanceof Error ? error.message : String(error);
}

/** Overrides as a person reads them: `as run 3 was`, `LR=0.5`, `image …`, `2 CPUs`.
 * `like` is the run they redo as it was, when known: the variables it had already are not
 * worth repeating (a redo as run N was carries all of them). */
export function overrideWords(overrides, like = null) {
  if (!overrides) return [];
  const words = [];
  if (overrides.like_run != null) words.push(`as run ${overrides.like_run} was`);
  const had = (like && like.variables) || {};
  for (const [k, v] of Object.entries(overrides.variables || {})) {
    if (had[k] !== v) words.push(`${k}=${v}`);
  }
  if (overrides.image) words.push(`image ${overrides.image}`);
  const res = overrides.resources || {};
  if (res.cpus != null) words.push(`${res.cpus} CPUs`);
  const memory = res.memory_mb ?? res.memory;
  if (memory != null) words.push(`${typeof memory === "number" ? formatMegabytes(memory) : memory} memory`);
  if (res.gpus != null) words.push(`${res.gpus} GPUs`);
  return words;
}

export function mountRedo(dialog, { projectPath, project, stages, stageInfo, declared, done }) {
  const $ = (id) => dialog.querySelector(`#${id}`);
  const form = $("redo-form");
  const stageSelect = $("redo-stage");
  const likeSelect = $("redo-like");
  const likeNote = $("redo-like-note");
  const rows = $("redo-variable-rows");
  const names = $("redo-variable-names");
  const image = $("redo-image");
  const cpus = $("redo-cpus");
  const memory = $("redo-memory");
  const gpus = $("redo-gpus");
  const comment = $("redo-comment");
  const only = $("redo-only");
  const problem = $("redo-problem");
  const submit = $("redo-submit");
  let opener = null;
  let rowCount = 0;

  const runsOf = (stage) => (project().runs || []).filter((r) => r.stage === stage && r.state !== "skipped");
  const likeRun = () => (project().runs || []).find((r) => r.id === Number(likeSelect.value)) || null;

  /** What a variable would be in the run unless changed here. */
  function currentValue(name) {
    const like = likeRun();
    if (like && like.variables && name in like.variables) return like.variables[name];
    const p = project();
    if (name in p.variables) return p.variables[name];
    const spec = declared.find((v) => v.name === name);
    return spec && spec.default != null ? spec.default : "";
  }

  function fillLikeChoices(wanted) {
    const choices = runsOf(stageSelect.value).slice().reverse().map((r) => {
      const words = [`Run ${r.id}`];
      const combo = combinationText(r.combination);
      if (combo) words.push(combo);
      words.push(r.state.replaceAll("_", " "));
      return el("option", { value: String(r.id) }, words.join(" · "));
    });
    likeSelect.replaceChildren(el("option", { value: "" }, "no: the stage as it is defined now"), ...choices);
    likeSelect.value = wanted != null && choices.some((o) => o.value === String(wanted)) ? String(wanted) : "";
    likeChanged();
  }

  function likeChanged() {
    const like = likeRun();
    likeNote.textContent = like
      ? `Run ${like.id}'s variables, image and resources are used again; what you set below changes them further.`
      : "";
    for (const row of rows.querySelectorAll(".redo-variable")) placeholder(row);
    fillStageDefaults();
  }

  /** Placeholders: what the run gets unless changed (the earlier run's, else the stage's). */
  function fillStageDefaults() {
    const info = stageInfo(stageSelect.value) || {};
    const like = likeRun();
    const pick = (mine, theirs) => (mine != null ? mine : theirs);
    const shown = (value, unit = "") => (value != null ? `${value}${unit}` : "");
    image.placeholder = pick(like && like.image, info.image) || "the stage's image";
    cpus.placeholder = shown(pick(like && like.cpus, info.cpus));
    memory.placeholder = formatMegabytes(pick(like && like.memory_mb, info.memory_mb));
    gpus.placeholder = shown(pick(like && like.gpus, info.gpus));
    const p = project();
    const known = new Set([...declared.map((v) => v.name), ...Object.keys(p.variables), ...(info.sweep || [])]);
    names.replaceChildren(...[...known].sort().map((n) => el("option", { value: n })));
  }

  function placeholder(row) {
    const name = row.querySelector("[data-part=name]").value.trim();
    const value = row.querySelector("[data-part=value]");
    const now = name ? currentValue(name) : "";
    value.placeholder = now ? `now: ${now}` : "";
  }

  function addRow(name = "", value = "") {
    rowCount += 1;
    const n = rowCount;
    const nameInput = el("input", {
      value: name, autocomplete: "off", spellcheck: false,
      dataset: { part: "name" }, "aria-label": `Name of variable ${n}`,
    });
    nameInput.setAttribute("list", "redo-variable-names");
    const valueInput = el("input", {
      value, autocomplete: "off", spellcheck: false,
      dataset: { part: "value" }, "aria-label": `Value of variable ${n}`,
    });
    const remove = el("button", { type: "button", className: "link", "aria-label": `Remove variable ${n}` }, "Remove");
    const row = el("div", { className: "redo-variable", dataset: { row: n } }, nameInput, valueInput, remove);
    nameInput.addEventListener("input", () => placeholder(row));
    remove.addEventListener("click", () => {
      row.remove();
      if (!rows.querySelector(".redo-variable")) addRow();
      rows.querySelector("input")?.focus();
    });
    rows.append(row);
    placeholder(row);
    return nameInput;
  }

  /** The input a problem's path in the request (or in Winslow's words) is about. */
  function fieldFor(path, words) {
    const where = path.replace(/^overrides\./, "");
    const fixed = { "resources.memory": memory, "resources.cpus": cpus, "resources.gpus": gpus, image, comment, from_stage: stageSelect, like_run: likeSelect, only };
    if (where in fixed) return fixed[where];
    const variable = /^variables\.(.+)$/.exec(where);
    if (!variable) return null;
    for (const row of rows.querySelectorAll(".redo-variable")) {
      const nameInput = row.querySelector("[data-part=name]");
      if (nameInput.value.trim() !== variable[1]) continue;
      // A name refused (reserved, malformed) is the name's problem; anything else the value's.
      return /name|reserved/i.test(words) ? nameInput : row.querySelector("[data-part=value]");
    }
    return null;
  }

  function reset() {
    clearFields(form);
    rows.replaceChildren();
    rowCount = 0;
    addRow();
    for (const input of [image, cpus, memory, gpus, comment]) {
      input.value = "";
      input.removeAttribute("aria-invalid");
    }
    only.checked = false;
    problem.textContent = "";
  }

  /** The request body, or a problem (and the field to fix) before asking the server. */
  function body() {
    const variables = {};
    for (const row of rows.querySelectorAll(".redo-variable")) {
      const nameInput = row.querySelector("[data-part=name]");
      const valueInput = row.querySelector("[data-part=value]");
      const name = nameInput.value.trim();
      if (!name && !valueInput.value) continue;
      if (!VARIABLE_NAME.test(name)) {
        return { problem: name ? `“${name}” is not a valid variable name: use at most 128 letters, digits and _, not starting with a digit.`
          : "Give the variable a name, or remove the row.", field: nameInput };
      }
      if (name in variables) return { problem: `${name} is listed twice; keep one.`, field: nameInput };
      if (valueInput.value === "") return { problem: `Give ${name} a value for this run, or remove the row.`, field: valueInput };
      variables[name] = valueInput.value;
    }
    const overrides = {};
    if (Object.keys(variables).length) overrides.variables = variables;
    if (image.value.trim()) overrides.image = image.value.trim();
    const resources = {};
    if (cpus.value.trim()) {
      const value = Number(cpus.value.trim());
      if (!(value > 0)) return { problem: "CPUs is a number above 0, such as 2 or 0.5.", field: cpus };
      resources.cpus = value;
    }
    if (memory.value.trim()) {
      const text = memory.value.trim();
      if (!MEMORY.test(text)) return { problem: "Memory is a size such as 8G, 512M or 1.5GiB (G is GiB), or a number of MiB.", field: memory };
      resources.memory = /^\d+$/.test(text) ? Number(text) : text;
    }
    if (gpus.value.trim()) {
      const value = Number(gpus.value.trim());
      if (!Number.isInteger(value) || value < 0) return { problem: "GPUs is a whole number, 0 or more.", field: gpus };
      resources.gpus = value;
    }
    if (Object.keys(resources).length) overrides.resources = resources;
    if (comment.value.trim()) overrides.comment = comment.value.trim();
    const request = {
      from_stage: stageSelect.value,
      only: only.checked,
      like_run: likeSelect.value ? Number(likeSelect.value) : null,
    };
    if (Object.keys(overrides).length) request.overrides = overrides;
    return { request };
  }

  function retitle() {
    $("redo-title").textContent = likeSelect.value
      ? `Redo as run ${likeSelect.value} was`
      : `Redo stage ${stageSelect.value} with changes`;
  }

  stageSelect.addEventListener("change", () => { fillStageDefaults(); fillLikeChoices(null); retitle(); });
  likeSelect.addEventListener("change", () => { likeChanged(); retitle(); });
  $("redo-add-variable").addEventListener("click", () => addRow().focus());
  $("redo-cancel").addEventListener("click", () => dialog.close("cancel"));
  dialog.addEventListener("close", () => { if (opener && opener.isConnected) opener.focus(); });
  for (const input of [image, cpus, memory, gpus]) input.addEventListener("input", () => input.removeAttribute("aria-invalid"));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFields(form);
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    const { request, problem: words, field } = body();
    if (words) {
      problem.textContent = "";
      markFields(form, { field: words }, () => field);
      return;
    }
    problem.textContent = "";
    submit.disabled = true;
    submit.textContent = "Sending…";
    try {
      const fresh = await api(`${projectPath()}/resume`, { method: "POST", body: request });
      dialog.close("redo");
      done(fresh);
    } catch (error) {
      const problems = fieldProblems(error);
      const { marked, left } = markFields(form, problems, (path) => fieldFor(path, problems[path]));
      problem.textContent = marked.length && !left.length
        ? `Not redone: change ${marked.map(fieldName).join(", ")} as marked.`
        : `Not redone: ${refusalWords(error)}`;
    } finally {
      submit.disabled = false;
      submit.textContent = "Redo";
    }
  });

  return {
    /** Open for `stage`, or as run `likeRun` was; `from` gets the focus back afterwards. */
    open({ stage, likeRun: like = null, from = null }) {
      opener = from || document.activeElement;
      const names = stages().map((s) => s.name);
      stageSelect.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
      stageSelect.value = names.includes(stage) ? stage : names[0];
      reset();
      fillStageDefaults();
      fillLikeChoices(like);
      retitle();
      dialog.showModal();
      (like != null ? rows.querySelector("input") : stageSelect).focus();
    },
  };
}
