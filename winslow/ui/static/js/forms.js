// A refusal of the API onto the fields it is about, as a person reads a form: the field
// marked (aria-invalid), the words beside it (and read with it: aria-describedby), the
// first such field focused. The API says where each problem sits in `fields` of its error
// body, a dotted path into the request (`overrides.resources.memory`, `variables.LR`,
// `answers.MIN_FRAMES`); each form says which of its inputs a path means.
//
//     const problems = fieldProblems(error);   // {"overrides.resources.memory": "Input should be greater than 0"}
//     const { marked, left } = markFields(form, problems, (path) => path.endsWith("memory") ? memoryInput : null);
//     clearFields(form);                        // before the next try
import { el } from "./api.js";

/** Each problem of the refusal `error` (an ApiError) by its path in the request: Winslow's
 * `fields`, or FastAPI's own list (`detail: [{loc, msg}]`) from a server that answers so. */
export function fieldProblems(error) {
  const body = error && error.body;
  if (!body) return {};
  if (body.fields && typeof body.fields === "object" && !Array.isArray(body.fields)) return { ...body.fields };
  const problems = {};
  if (Array.isArray(body.detail)) {
    for (const d of body.detail) {
      const path = (d.loc || []).filter((part) => part !== "body").join(".");
      if (path && !(path in problems)) problems[path] = d.msg;
    }
  }
  return problems;
}

// pydantic speaks of "Input"; beside a labelled field the field is what is meant.
const PYDANTIC_WORDS = [
  [/^Input should be /, "Must be "],
  [/^Field required$/, "Required."],
  [/^Extra inputs are not permitted$/, "Not expected here."],
  [/^String should have at most (\d+) characters?$/, "At most $1 characters."],
];

/** What a person reads beside the field for one problem. */
export function fieldWords(words) {
  let text = String(words).trim();
  for (const [pattern, replacement] of PYDANTIC_WORDS) text = text.replace(pattern, replacement);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** Take the mark, and the words beside it, off `field`. */
export function unmarkField(field) {
  if (!("describedBefore" in field.dataset)) return;
  const [noteId] = (field.getAttribute("aria-describedby") || "").split(" ");
  document.getElementById(noteId)?.remove();
  const before = field.dataset.describedBefore;
  if (before) field.setAttribute("aria-describedby", before);
  else field.removeAttribute("aria-describedby");
  delete field.dataset.describedBefore;
  field.removeAttribute("aria-invalid");
}

/** Undo `markFields` in `container`: no field marked, no words beside them. */
export function clearFields(container) {
  for (const field of container.querySelectorAll("[data-described-before]")) unmarkField(field);
  for (const note of container.querySelectorAll(".field-problem")) note.remove();
}

let notes = 0;

/** Mark one field with `words` beside it, until the person changes it; returns the field. */
export function markField(field, words) {
  unmarkField(field);
  field.setAttribute("aria-invalid", "true");
  notes += 1;
  const note = el("span", { className: "field-problem", id: `field-problem-${notes}` }, fieldWords(words));
  // Beside the field: after the label the field sits in (the label's text stays its name).
  (field.closest("label") || field).after(note);
  field.dataset.describedBefore = field.getAttribute("aria-describedby") || "";
  field.setAttribute("aria-describedby", [note.id, field.dataset.describedBefore].filter(Boolean).join(" "));
  const changed = () => { if (note.isConnected) unmarkField(field); };
  field.addEventListener("input", changed, { once: true });
  field.addEventListener("change", changed, { once: true });
  return field;
}

/** The name a person knows `field` by: its label's text, else its aria-label. */
export function fieldName(field) {
  const label = field.labels && field.labels[0];
  const text = label ? [...label.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join(" ").trim() : "";
  return text || field.getAttribute("aria-label") || field.name || field.id;
}

/**
 * Put `problems` ({path: words}) onto the fields `locate(path)` finds in `container`,
 * clearing earlier marks first, and focus the first marked field. Returns the fields
 * marked and the problems no field was found for ("path: words"), for the form to say
 * elsewhere.
 */
export function markFields(container, problems, locate) {
  clearFields(container);
  const left = [];
  const marked = [];
  for (const [path, words] of Object.entries(problems)) {
    const field = locate(path);
    if (!field) { left.push(`${path}: ${words}`); continue; }
    markField(field, words);
    marked.push(field);
  }
  if (marked.length) marked[0].focus();
  return { marked, left };
}
