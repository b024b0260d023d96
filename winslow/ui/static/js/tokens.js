// The tokens page: the signed-in person's API tokens, a form for a new one, revoking.
// A new token's secret is shown here once, from the API's answer to making it; the page
// never has it again (the server keeps only its hash), so a reload shows it no more.
import { api, el, guarded, ApiError } from "./api.js";
import { fieldProblems, markFields, clearFields, markField } from "./forms.js";
import { moment } from "./moments.js";

const $ = (id) => document.getElementById(id);
const data = JSON.parse($("tokens-data").textContent);
let tokens = data.tokens;

function stateOf(token) {
  if (token.revoked) return "revoked";
  if (token.expires_at && Date.parse(token.expires_at) <= Date.now()) return "expired";
  return "active";
}

function projectWords(ids) {
  if (ids == null) return el("span", { className: "muted" }, "all of yours");
  return ids.map((id) => data.projects[id] || id).join(", ") || el("span", { className: "muted" }, "none");
}

function tokenRow(token) {
  const state = stateOf(token);
  const actions = el("td", { className: "actions" });
  if (state !== "revoked") {
    actions.append(el("button", {
      type: "button", className: "danger", "aria-label": `Revoke ${token.name}`,
      onclick: () => confirmRevoke(token.name),
    }, "Revoke"));
  }
  return el("tr", { dataset: { name: token.name, state } },
    el("td", { className: "mono" }, token.name),
    el("td", {}, token.scope),
    el("td", {}, projectWords(token.projects)),
    el("td", {}, moment(token.created_at)),
    el("td", {}, token.expires_at ? moment(token.expires_at) : el("span", { className: "muted" }, "never")),
    el("td", {}, token.last_used_at ? moment(token.last_used_at) : el("span", { className: "muted" }, "not yet")),
    el("td", {}, el("span", { className: `token-state token-${state}` }, state)),
    actions,
  );
}

function draw() {
  const rows = $("token-rows");
  rows.replaceChildren(...tokens.map(tokenRow));
  if (!tokens.length) {
    rows.append(el("tr", { className: "empty" }, el("td", { colSpan: 8 }, "You have no tokens yet. Make one below for the CLI or a script.")));
  }
}

async function reload() {
  tokens = (await api("/tokens")).data;
  draw();
}

// -- a new token -------------------------------------------------------------------------

const form = $("token-form");
const fields = { name: $("token-name"), scope: $("token-scope"), projects: $("token-projects"), expires_in_days: $("token-days") };

/** The request body of the form, or a problem `{field, words}` to show beside a field. */
function tokenBody() {
  const body = { name: fields.name.value.trim(), scope: fields.scope.value };
  if (!body.name) return { problem: { field: fields.name, words: "Give the token a name, such as the machine it is for." } };
  const projects = fields.projects.value.split(",").map((p) => p.trim()).filter(Boolean);
  body.projects = projects.length ? projects : null;
  const days = fields.expires_in_days.value.trim();
  if (days && !/^\d+$/.test(days)) return { problem: { field: fields.expires_in_days, words: "A whole number of days, or empty for no expiry." } };
  body.expires_in_days = days ? Number(days) : null;
  return { body };
}

function showRefusal(error) {
  const problems = fieldProblems(error);
  const locate = (path) => fields[path.split(".")[0]] || null;
  const { marked, left } = markFields(form, problems, locate);
  if (!marked.length && error instanceof ApiError && error.status === 404 && fields.projects.value.trim()) {
    markField(fields.projects, error.message).focus();
    return;
  }
  $("token-problem").textContent = marked.length ? left.join(" ") : error.message;
}

function showSecret(created) {
  $("secret-name").textContent = created.name;
  $("secret-value").value = created.token;
  $("secret-copied").textContent = "";
  $("token-secret").hidden = false;
  $("secret-value").focus();
  $("secret-value").select();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFields(form);
  $("token-problem").textContent = "";
  const { body, problem } = tokenBody();
  if (problem) { markField(problem.field, problem.words).focus(); return; }
  let created;
  try {
    created = await api("/tokens", { method: "POST", body });
  } catch (error) {
    showRefusal(error);
    return;
  }
  form.reset();
  fields.expires_in_days.value = "90";
  showSecret(created);
  await guarded(reload);
});

$("secret-copy").addEventListener("click", async () => {
  const input = $("secret-value");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch (_) { // no clipboard permission (an http page elsewhere than localhost): the old way
    input.select();
    document.execCommand("copy");
  }
  $("secret-copied").textContent = "Copied.";
});

$("secret-done").addEventListener("click", () => {
  $("secret-value").value = "";
  $("token-secret").hidden = true;
  fields.name.focus();
});

// -- revoking ----------------------------------------------------------------------------

const revokeDialog = $("revoke-dialog");

function confirmRevoke(name) {
  $("revoke-text").textContent = `Token ${name} stops working at once, and console sessions signed in with it end. This cannot be undone.`;
  revokeDialog.dataset.name = name;
  revokeDialog.returnValue = "";
  revokeDialog.showModal();
}

revokeDialog.addEventListener("close", () => {
  if (revokeDialog.returnValue !== "revoke") return;
  const name = revokeDialog.dataset.name;
  guarded(async () => {
    await api(`/tokens/${encodeURIComponent(name)}`, { method: "DELETE" });
    await reload();
  });
});

draw();
