// The gate card on the project page: while the project waits at a gate, what the gate
// says (its Markdown description, rendered on the server with raw HTML off), the files it
// asks a person to look at (previews), and its questions as a form whose answers go with
// the resume. The API checks the answers; what it refuses is shown on the field it names
// (`fields: {"answers.NAME": "..."}`). The card follows the page's `winslow:project` events
// and draws itself once per stop at a gate, so live updates never wipe what is typed.

import { api, ApiError, el, escapeName, showError } from "./api.js";
import { renderPreview } from "./previews.js";

const card = document.getElementById("gate-card");
let shownFor = null;
let loading = null;

function gateKey(project) {
  const gate = project.waiting_for && project.waiting_for.gate;
  if (project.state !== "awaiting_input" || !gate) return null;
  return `${project.id || project.name}|${gate}|${project.state_changed_at || ""}`;
}

function hide() {
  shownFor = null;
  if (!card) return;
  card.hidden = true;
  card.replaceChildren();
}

async function follow(detail) {
  if (!card || !detail || !detail.project) return;
  const { project } = detail;
  const key = gateKey(project);
  if (key === null) { hide(); return; }
  if (key === shownFor || key === loading) return;
  loading = key;
  try {
    const gate = await api(`/projects/${encodeURIComponent(project.name)}/gate`);
    if (loading !== key) return;
    shownFor = key;
    render(project, gate);
  } catch (error) {
    // The project moved on between the event and the question: nothing to show.
    if (error instanceof ApiError && error.status === 404) hide();
    else showError(error);
  } finally {
    if (loading === key) loading = null;
  }
}

// -- the card ----------------------------------------------------------------------------

function render(project, gate) {
  const title = el("h2", { id: "gate-title" }, `Gate '${gate.stage}' waits for you`);
  const description = el("div", { className: "gate-description" });
  // Rendered on the server by markdown-it with raw HTML off: pipeline text and quoted
  // results arrive escaped.
  description.innerHTML = gate.description_html;
  const fields = gate.inputs.map(field);
  const status = el("p", { className: "gate-status", role: "status", id: "gate-status" });
  const approve = el("button", { type: "submit", className: "primary" }, "Approve and continue");
  const form = el("form", { className: "gate-form", noValidate: true, "aria-labelledby": "gate-title" },
    ...fields.map((f) => f.row),
    el("div", { className: "gate-actions" }, approve, status));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(project, gate, fields, approve, status);
  });
  const parts = [el("div", { className: "card-head" }, title)];
  if (gate.description_html) parts.push(description);
  if (!gate.inputs.length) {
    parts.push(el("p", { className: "muted" }, "This gate asks nothing: approve to let stage "
      + `'${gate.stage}' start.`));
  }
  const body = el("div", { className: "gate-body" }, form);
  if (gate.review.length) body.append(reviews(project, gate));
  parts.push(body);
  card.setAttribute("aria-labelledby", "gate-title");
  card.replaceChildren(...parts);
  card.hidden = false;
}

function field(input) {
  const id = `gate-input-${input.name}`;
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  const described = input.help ? `${helpId} ${errorId}` : errorId;
  const common = { id, name: input.name, "aria-describedby": described };
  let control;
  if (input.type === "boolean") {
    control = el("input", { ...common, type: "checkbox", checked: input.value === "true" });
  } else if (input.type === "choice") {
    control = el("select", common, ...input.choices.map((choice) => el("option", { value: choice }, choice)));
    if (input.value != null) control.value = input.value;
  } else if (input.type === "number") {
    control = el("input", { ...common, type: "number", step: "any", inputMode: "decimal" });
    if (input.min != null) control.min = String(input.min);
    if (input.max != null) control.max = String(input.max);
    if (input.value != null) control.value = input.value;
  } else {
    control = el("input", { ...common, type: "text" });
    if (input.value != null) control.value = input.value;
  }
  if (input.required) control.setAttribute("aria-required", "true");
  const range = input.type === "number" ? rangeText(input) : "";
  const label = el("label", { for: id }, input.label,
    input.required ? el("span", { className: "gate-required" }, " (required)") : null);
  const help = input.help || range
    ? el("p", { className: "gate-help muted", id: helpId }, [input.help, range].filter(Boolean).join(" "))
    : null;
  const error = el("p", { className: "gate-error", id: errorId, hidden: true });
  const row = el("div", { className: `gate-field gate-${input.type}`, dataset: { name: input.name } },
    ...(input.type === "boolean" ? [control, label] : [label, control]), help, error);
  return { input, control, error, row };
}

function rangeText(input) {
  if (input.min != null && input.max != null) return `From ${input.min} to ${input.max}.`;
  if (input.min != null) return `At least ${input.min}.`;
  if (input.max != null) return `At most ${input.max}.`;
  return "";
}

function answersOf(fields) {
  const answers = {};
  for (const { input, control } of fields) {
    if (input.type === "boolean") answers[input.name] = control.checked;
    else if (input.type === "number") {
      const text = control.value.trim();
      // A number field holds "" for text that is no number; say so as typed.
      if (text !== "") answers[input.name] = Number(text);
      else if (control.validity && control.validity.badInput) answers[input.name] = "not a number";
    } else if (input.type === "choice" || control.value !== "" || !input.required) {
      answers[input.name] = control.value;
    }
  }
  return answers;
}

function showFieldErrors(fields, problems) {
  let first = null;
  for (const { input, control, error } of fields) {
    const problem = problems[`answers.${input.name}`];
    error.hidden = !problem;
    error.textContent = problem ? `${input.label}: ${problem}` : "";
    if (problem) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
    if (problem && !first) first = control;
  }
  return first;
}

async function submit(project, gate, fields, approve, status) {
  approve.disabled = true;
  status.textContent = "Sending the answers…";
  showFieldErrors(fields, {});
  try {
    await api(`/projects/${encodeURIComponent(project.name)}/resume`, {
      method: "POST", body: { answers: answersOf(fields) },
    });
    status.textContent = `Approved: stage '${gate.stage}' starts.`;
    for (const { control } of fields) control.disabled = true;
  } catch (error) {
    approve.disabled = false;
    const problems = error instanceof ApiError && error.body && error.body.fields;
    if (problems && Object.keys(problems).some((key) => key.startsWith("answers."))) {
      const first = showFieldErrors(fields, problems);
      status.textContent = "Some answers need another look; each says why.";
      if (first) first.focus();
      const unplaced = Object.keys(problems).filter((key) => !fields.some((f) => `answers.${f.input.name}` === key));
      if (unplaced.length) showError(error);
    } else {
      status.textContent = "";
      showError(error);
    }
  }
}

// -- what to look at ---------------------------------------------------------------------

function reviews(project, gate) {
  const list = el("div", { className: "gate-review", role: "group", "aria-labelledby": "gate-review-title" },
    el("h3", { id: "gate-review-title" }, "To review"));
  for (const file of gate.review) {
    const holder = el("div", { className: "gate-preview" });
    list.append(el("figure", { className: "gate-file" },
      el("figcaption", {}, el("code", {}, escapeName(file.path)), el("span", { className: "muted" }, file.source === "pool"
        ? ` from the resource pool, with the detections of ${file.stage} (run ${file.run})`
        : ` from ${file.stage} (run ${file.run})`)),
      holder));
    const options = { project: project.name, run: file.run, path: file.path };
    if (file.source === "pool") options.source = "pool";
    renderPreview(holder, options);
  }
  return list;
}

document.addEventListener("winslow:project", (event) => follow(event.detail));
if (window.winslowProject) follow(window.winslowProject);
