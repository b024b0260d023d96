// The people and groups page (admins): users with what they may do, groups with their
// members, new users and groups, membership, quotas. Every change goes through the API
// (`/users`, `/groups`), and the lists are read again after it, so the page shows what
// the server holds, not what it asked for.
import { api, el, guarded, formatMegabytes } from "./api.js";
import { fieldProblems, markFields, clearFields, markField } from "./forms.js";
import { moment } from "./moments.js";

const $ = (id) => document.getElementById(id);
const data = JSON.parse($("people-data").textContent);
let users = data.users;
let groups = data.groups;
const path = (...parts) => parts.map((p) => `/${encodeURIComponent(p)}`).join("");

/** `8 GPUs · 16 CPUs · 64.0 GiB memory`, or `no limit`. */
export function quotaWords(quota) {
  if (!quota) return "no limit";
  const words = [];
  if (quota.gpus != null) words.push(`${quota.gpus} GPU${quota.gpus === 1 ? "" : "s"}`);
  if (quota.cpus != null) words.push(`${quota.cpus} CPU${quota.cpus === 1 ? "" : "s"}`);
  if (quota.memory_mb != null) words.push(`${formatMegabytes(quota.memory_mb)} memory`);
  return words.length ? words.join(" · ") : "no limit";
}

const roleList = (byName) => Object.entries(byName).sort(([a], [b]) => a.localeCompare(b));

// -- users -------------------------------------------------------------------------------

function userRow(user) {
  const self = user.name === data.me;
  const change = (body, words) => guarded(async () => {
    await api(path("users", user.name), { method: "PATCH", body });
    await reload(words);
  });
  const adminButton = el("button", {
    type: "button", disabled: self, title: self ? "You cannot take away your own admin." : "",
    onclick: () => change({ admin: !user.admin }, `${user.name} ${user.admin ? "is no longer an admin" : "is an admin now"}.`),
  }, user.admin ? "Remove admin" : "Make admin");
  const disableButton = el("button", {
    type: "button", className: user.disabled ? "" : "danger", disabled: self,
    title: self ? "You cannot disable yourself." : "",
    onclick: () => change({ disabled: !user.disabled }, `${user.name} is ${user.disabled ? "enabled" : "disabled"}.`),
  }, user.disabled ? "Enable" : "Disable");
  for (const b of [adminButton, disableButton]) b.setAttribute("aria-label", `${b.textContent} ${user.name}`);
  const groupsCell = el("td", {}, ...roleList(user.groups).map(([g, role]) => el("span", { className: "label" }, `${g} (${role})`)));
  if (!Object.keys(user.groups).length) groupsCell.append(el("span", { className: "muted" }, "none"));
  return el("tr", { dataset: { name: user.name, admin: String(user.admin), disabled: String(user.disabled) } },
    el("th", { scope: "row" }, el("span", { className: "mono" }, user.name),
      user.display_name ? el("span", { className: "muted" }, ` ${user.display_name}`) : null),
    el("td", {}, user.source),
    el("td", {}, user.admin ? "admin" : el("span", { className: "muted" }, "no")),
    el("td", {}, user.disabled ? el("span", { className: "token-state token-revoked" }, "disabled") : "active"),
    groupsCell,
    el("td", {}, user.last_sign_in_at ? moment(user.last_sign_in_at) : el("span", { className: "muted" }, "never")),
    el("td", { className: "quota" }, quotaWords(user.quota)),
    el("td", { className: "actions" }, adminButton, disableButton, quotaButton("user", user)),
  );
}

// -- groups ------------------------------------------------------------------------------

function memberChip(group, name, role) {
  return el("li", { dataset: { user: name, role } },
    el("span", { className: "mono" }, name), ` ${role} `,
    el("button", {
      type: "button", className: "link", "aria-label": `Remove ${name} from ${group.name}`,
      onclick: () => guarded(async () => {
        await api(path("groups", group.name, "members", name), { method: "DELETE" });
        await reload(`${name} left ${group.name}.`);
      }),
    }, "Remove"));
}

function groupRow(group) {
  const members = roleList(group.members);
  return el("tr", { dataset: { name: group.name } },
    el("th", { scope: "row" }, el("span", { className: "mono" }, group.name),
      group.description ? el("div", { className: "muted" }, group.description) : null),
    el("td", {}, group.source),
    el("td", {}, members.length
      ? el("ul", { className: "plain members" }, ...members.map(([name, role]) => memberChip(group, name, role)))
      : el("span", { className: "muted" }, "nobody yet")),
    el("td", { className: "quota" }, quotaWords(group.quota)),
    el("td", { className: "actions" }, quotaButton("group", group)),
  );
}

function options(select, names) {
  const kept = select.value;
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  if (names.includes(kept)) select.value = kept;
}

function draw() {
  $("user-rows").replaceChildren(...users.map(userRow));
  $("group-rows").replaceChildren(...groups.map(groupRow));
  if (!groups.length) $("group-rows").append(el("tr", { className: "empty" }, el("td", { colSpan: 5 }, "No groups yet. Make one below, then add people to it.")));
  $("user-count").textContent = `${users.length} user${users.length === 1 ? "" : "s"}`;
  $("group-count").textContent = `${groups.length} group${groups.length === 1 ? "" : "s"}`;
  options($("member-group"), groups.map((g) => g.name));
  options($("member-user"), users.map((u) => u.name));
}

async function reload(announce) {
  const [u, g] = await Promise.all([api("/users"), api("/groups")]);
  users = u.data;
  groups = g.data;
  draw();
  if (announce) $("people-status").textContent = announce;
}

// -- forms -------------------------------------------------------------------------------

/** Send `form`'s request; a refusal goes beside the field it names, or under the form. */
async function submit(form, problemLine, fields, send, announce) {
  clearFields(form);
  problemLine.textContent = "";
  try {
    await send();
  } catch (error) {
    const { marked, left } = markFields(form, fieldProblems(error), (p) => fields[p.split(".")[0]] || fields[p.split(".").pop()] || null);
    problemLine.textContent = marked.length ? left.join(" ") : error.message;
    return false;
  }
  await guarded(() => reload(announce));
  return true;
}

function required(field, words) {
  if (field.value.trim()) return false;
  markField(field, words).focus();
  return true;
}

$("user-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const fields = { name: $("new-user-name"), password: $("new-user-password"), admin: $("new-user-admin") };
  clearFields(form);
  if (required(fields.name, "Give the user a name to sign in with.")) return;
  const body = { name: fields.name.value.trim(), password: fields.password.value || null, admin: fields.admin.checked };
  const done = await submit(form, $("user-problem"), fields, () => api("/users", { method: "POST", body }), `User ${body.name} made.`);
  if (done) form.reset();
});

$("group-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const fields = { name: $("new-group-name"), description: $("new-group-description") };
  clearFields(form);
  if (required(fields.name, "Give the group a name.")) return;
  const body = { name: fields.name.value.trim(), description: fields.description.value.trim() };
  const done = await submit(form, $("group-problem"), fields, () => api("/groups", { method: "POST", body }), `Group ${body.name} made.`);
  if (done) {
    form.reset();
    $("member-group").value = body.name;
  }
});

$("member-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const fields = { group: $("member-group"), user: $("member-user"), role: $("member-role") };
  const [group, user, role] = [fields.group.value, fields.user.value, fields.role.value];
  clearFields(form);
  if (required(fields.group, "Make a group first.")) return;
  await submit(form, $("member-problem"), fields,
    () => api(path("groups", group, "members", user), { method: "PUT", body: { role } }),
    `${user} is ${role === "owner" ? "an" : "a"} ${role} of ${group}.`);
});

// -- quotas ------------------------------------------------------------------------------

const dialog = $("quota-dialog");
const quotaFields = { gpus: $("quota-gpus"), cpus: $("quota-cpus"), memory_mb: $("quota-memory") };
let quotaOf = null;

function quotaButton(kind, holder) {
  return el("button", {
    type: "button", "aria-label": `Quota of ${kind} ${holder.name}`,
    onclick: () => openQuota(kind, holder),
  }, "Quota…");
}

function openQuota(kind, holder) {
  quotaOf = { kind, name: holder.name };
  const quota = holder.quota || {};
  $("quota-title").textContent = `Quota of ${kind} ${holder.name}`;
  quotaFields.gpus.value = quota.gpus ?? "";
  quotaFields.cpus.value = quota.cpus ?? "";
  quotaFields.memory_mb.value = quota.memory_mb ?? "";
  clearFields(dialog);
  $("quota-problem").textContent = "";
  dialog.showModal();
}

// The sizes winslow/units.py `parse_megabytes` reads, so the console stores what the CLI
// would: B is bytes; K, M, G, T alone or with B, i or iB are powers of 1024; any case.
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;
const MIB = 1024 ** 2;
const BYTES_PER = new Map([["", MIB], ["B", 1]]);
for (const [unit, bytes] of [["K", 1024], ["M", MIB], ["G", 1024 ** 3], ["T", 1024 ** 4]]) {
  for (const suffix of [unit, `${unit}B`, `${unit}I`, `${unit}IB`]) BYTES_PER.set(suffix, bytes);
}

/** Whole MiB of `text` (`64G`, `512M`, `1.5GiB`, `8Ki`, `4096B`, a bare number of MiB),
 * a part of a MiB dropped as Python drops it; null if unreadable. */
export function megabytes(text) {
  const found = SIZE.exec(text);
  const bytes = found && BYTES_PER.get(found[2].toUpperCase());
  if (!bytes) return null;
  // In Python's order of operations, so both round alike: bytes first, then MiB.
  const mib = (Number(found[1]) * bytes) / MIB;
  return Number.isFinite(mib) ? Math.trunc(mib) : null;
}

/** The quota the dialog's fields say, or a problem `{field, words}`. */
function quotaBody() {
  const quota = {};
  const gpus = quotaFields.gpus.value.trim();
  if (gpus && !/^\d+$/.test(gpus)) return { problem: { field: quotaFields.gpus, words: "A whole number of GPUs, or empty for no limit." } };
  if (gpus) quota.gpus = Number(gpus);
  const cpus = quotaFields.cpus.value.trim();
  if (cpus && !/^\d+(\.\d+)?$/.test(cpus)) return { problem: { field: quotaFields.cpus, words: "A number of CPUs such as 16 or 7.5, or empty for no limit." } };
  if (cpus) quota.cpus = Number(cpus);
  const memory = quotaFields.memory_mb.value.trim();
  if (memory && megabytes(memory) == null) return { problem: { field: quotaFields.memory_mb, words: "A size such as 64G or 512M (G is GiB), or a number of MiB." } };
  if (memory) quota.memory_mb = megabytes(memory);
  return { quota };
}

async function saveQuota(body) {
  const { kind, name } = quotaOf;
  const done = await submit($("quota-form"), $("quota-problem"), quotaFields,
    () => api(path(`${kind}s`, name), { method: "PATCH", body }),
    `Quota of ${kind} ${name}: ${quotaWords(body.quota)}.`);
  if (done) dialog.close();
}

$("quota-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearFields(dialog);
  const { quota, problem } = quotaBody();
  if (problem) { markField(problem.field, problem.words).focus(); return; }
  saveQuota(Object.keys(quota).length ? { quota } : { clear_quota: true });
});
$("quota-clear").addEventListener("click", () => saveQuota({ clear_quota: true }));
$("quota-cancel").addEventListener("click", () => dialog.close());

draw();
