// Keyboard shortcuts of the console: every page has `/` (its search box) and `?` (the
// list); a page adds its own with addShortcut. Keys typed into a field, a dialog or with
// Ctrl/Alt/Cmd are the person's, never a shortcut.

const shortcuts = new Map();

/** Run `action(event)` when `key` (an `event.key`, e.g. "j" or "?") is pressed. */
export function addShortcut(key, words, action) {
  shortcuts.set(key, { words, action });
}

function typing(target) {
  if (!(target instanceof Element)) return false;
  return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true'], dialog[open]"));
}

function searchBox() {
  return document.querySelector('#log-search, [data-shortcut="search"], input[type="search"]');
}

function focusSearch() {
  const box = searchBox();
  if (!box) return;
  // The box may be on a tab that is not shown: the tabs open it first.
  document.dispatchEvent(new CustomEvent("winslow:reveal", { detail: { element: box } }));
  box.focus();
  if (typeof box.select === "function") box.select();
}

let dialog = null;

function helpDialog() {
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.id = "shortcuts-dialog";
  dialog.className = "shortcuts-dialog";
  dialog.setAttribute("aria-labelledby", "shortcuts-title");
  const title = document.createElement("h2");
  title.id = "shortcuts-title";
  title.textContent = "Keyboard shortcuts";
  const list = document.createElement("dl");
  list.className = "shortcut-list";
  const note = document.createElement("p");
  note.className = "muted";
  note.textContent = "Shortcuts do nothing while you type in a field.";
  const form = document.createElement("form");
  form.method = "dialog";
  const close = document.createElement("button");
  close.type = "submit";
  close.textContent = "Close";
  form.className = "dialog-buttons";
  form.append(close);
  dialog.append(title, list, note, form);
  document.body.append(dialog);
  return dialog;
}

/** Open the list of this page's shortcuts. */
export function showShortcuts() {
  const box = helpDialog();
  const list = box.querySelector("dl");
  list.replaceChildren();
  for (const [key, { words }] of shortcuts) {
    const kbd = document.createElement("kbd");
    kbd.textContent = key;
    const dt = document.createElement("dt");
    dt.append(kbd);
    const dd = document.createElement("dd");
    dd.textContent = words;
    list.append(dt, dd);
  }
  if (!box.open) box.showModal();
}

addShortcut("/", "Search (the log on a project page)", focusSearch);
addShortcut("?", "This list of shortcuts", showShortcuts);

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
  const shortcut = shortcuts.get(event.key);
  if (!shortcut) return;
  if (event.key === "/" && !searchBox()) return;
  event.preventDefault();
  shortcut.action(event);
});
