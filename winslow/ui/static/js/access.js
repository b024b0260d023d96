// The project page's Access tab: who has which role on the project, and whether every
// signed-in user may read it. Owners change it; each change sends the whole list
// (`PUT /projects/{ref}/access`) and then shows what the server holds. Others see it
// read-only. Read when the tab is first opened, not with every project page.
import { api, el } from "./api.js";
import { clearFields, markField } from "./forms.js";

const $ = (id) => document.getElementById(id);
const panel = $("tabpanel-access");
const card = $("access-panel");
const project = card ? card.dataset.project : null;
const ROLES = ["member", "maintainer", "owner"];
const EVERYONE = "*";

let access = null;
let groupNames = null;

/** `group vision`, `user ada`: a principal as a person reads it. */
export function principalWords(principal) {
  const [kind, ...rest] = principal.split(":");
  return `${kind} ${rest.join(":")}`;
}

function problem(words) {
  $("access-problem").textContent = words;
}

async function load() {
  try {
    access = await api(`/projects/${encodeURIComponent(project)}/access`);
  } catch (error) {
    $("access-view").replaceChildren(el("p", { className: "form-problem", role: "alert" }, error.message));
    return;
  }
  draw();
}

/** Send `grants` (the whole list); refused, the list stays as it was and the reason shows
 * under it (or beside `field`). */
async function save(grants, field = null) {
  problem("");
  $("access-status").textContent = "Saving…";
  // One change at a time: each sends the whole list, so a second one sent before the
  // first is back would undo it.
  $("access-view").inert = true;
  let saved;
  try {
    saved = await api(`/projects/${encodeURIComponent(project)}/access`, { method: "PUT", body: { grants } });
  } catch (error) {
    $("access-view").inert = false;
    $("access-status").textContent = "";
    draw();
    if (field && field.isConnected) markField(field, error.message).focus();
    else problem(error.message);
    return false;
  }
  await load();
  $("access-view").inert = false;
  const roles = saved.grants.filter((g) => g.principal !== EVERYONE).map((g) => `${principalWords(g.principal)} ${g.role}`);
  $("access-status").textContent = `Saved: ${roles.join(", ")}${saved.public ? "; public" : ""}.`;
  return true;
}

const named = () => access.grants.filter((g) => g.principal !== EVERYONE);
const withPublic = (grants) => (access.public ? [...grants, { principal: EVERYONE, role: "public" }] : grants);

function grantRow(grant, owner) {
  const who = principalWords(grant.principal);
  if (!owner) return el("tr", { dataset: { principal: grant.principal } }, el("td", {}, who), el("td", {}, grant.role));
  const select = el("select", { "aria-label": `Role of ${who}` },
    ...ROLES.map((r) => el("option", { value: r, selected: r === grant.role }, r)));
  select.addEventListener("change", () => save(withPublic(named().map((g) =>
    g.principal === grant.principal ? { ...g, role: select.value } : g))));
  const remove = el("button", {
    type: "button", className: "danger", "aria-label": `Remove ${who}`,
    onclick: () => save(withPublic(named().filter((g) => g.principal !== grant.principal))),
  }, "Remove");
  return el("tr", { dataset: { principal: grant.principal } },
    el("td", {}, who), el("td", {}, select), el("td", { className: "actions" }, remove));
}

function publicControl(owner) {
  if (!owner) {
    return el("p", { id: "access-public" }, access.public
      ? "Public: every signed-in user may read this project."
      : "Not public: only those listed may see this project.");
  }
  const box = el("input", { type: "checkbox", id: "access-public", checked: access.public });
  box.addEventListener("change", () => {
    const grants = named();
    save(box.checked ? [...grants, { principal: EVERYONE, role: "public" }] : grants);
  });
  return el("label", { className: "check" }, box, "Public: every signed-in user may read this project");
}

function grantForm() {
  const kind = el("select", { id: "grant-kind", name: "kind" },
    el("option", { value: "group" }, "group"), el("option", { value: "user" }, "user"));
  const name = el("input", { id: "grant-name", name: "name", autocomplete: "off", spellcheck: false, required: true });
  name.setAttribute("list", "grant-groups");
  const role = el("select", { id: "grant-role", name: "role" },
    ...ROLES.map((r) => el("option", { value: r, selected: r === "member" }, r)));
  kind.addEventListener("change", () => name.setAttribute("list", kind.value === "group" ? "grant-groups" : ""));
  const form = el("form", { id: "grant-form", className: "inline-form", noValidate: true },
    el("label", {}, "Kind", kind), el("label", {}, "Name", name), el("label", {}, "Role", role),
    el("button", { type: "submit", className: "primary" }, "Grant"),
    el("datalist", { id: "grant-groups" }, ...(groupNames || []).map((g) => el("option", { value: g }))));
  form.setAttribute("aria-label", "Give a user or group a role");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFields(form);
    problem("");
    const who = name.value.trim();
    if (!who) { markField(name, `Name the ${kind.value}.`).focus(); return; }
    if (kind.value === "group" && groupNames && !groupNames.includes(who)) {
      markField(name, `There is no group '${who}'; admins make groups on the People page.`).focus();
      return;
    }
    const principal = `${kind.value}:${who}`;
    const grants = [...named().filter((g) => g.principal !== principal), { principal, role: role.value }];
    if (await save(withPublic(grants), name)) $("grant-name")?.focus();
  });
  return form;
}

function draw() {
  const owner = access.your_role === "owner";
  $("access-role").textContent = `Your role: ${access.your_role}`;
  const table = el("table", { className: "grid access-grants", id: "access-grants" },
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Who"), el("th", { scope: "col" }, "Role"),
      owner ? el("th", { scope: "col" }, el("span", { className: "visually-hidden" }, "Actions")) : null)),
    el("tbody", {}, ...named().map((g) => grantRow(g, owner))));
  table.setAttribute("aria-label", "Who has which role");
  $("access-view").replaceChildren(
    table,
    el("p", { className: "form-problem", id: "access-problem", role: "alert" }),
    publicControl(owner),
    owner ? grantForm() : el("p", { className: "muted", id: "access-readonly" }, "Only the project's owners change who has access."),
    el("p", { className: "muted" }, "A member reads the project, its logs and files; a maintainer also steers it and edits its variables; an owner also changes its access and deletes it."),
  );
}

let started = false;
async function start() {
  if (started || !project) return;
  started = true;
  // Group names to pick from, and to say so when one is mistyped (every signed-in user sees them).
  try { groupNames = (await api("/groups")).data.map((g) => g.name); } catch (_) { groupNames = null; }
  await load();
}

if (panel) {
  if (!panel.hidden) start();
  new MutationObserver(() => { if (!panel.hidden) start(); }).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
}
