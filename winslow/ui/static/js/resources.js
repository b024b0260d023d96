// The resources page: the resource pool by folder, uploads, downloads, deletes and new
// folders. Moving between folders fetches the listing instead of loading a page, so
// uploads go on while the person browses; the URL's ?path= follows, so a reload (or a
// link) opens the same folder. Files upload FILES_AT_ONCE at a time through upload.js.
// Names are shown through escapeName (object storage may hold any name); links, data
// attributes and requests keep the name itself.
import { api, ApiError, guarded, showError, el, escapeName, formatSize, duration } from "./api.js";
import { uploadFile, pendingUploads, discardUpload, forgetUpload, uploadKey } from "./upload.js";

/** Files uploading at once; each sends several parts at once itself. */
const FILES_AT_ONCE = 2;

const root = document.getElementById("resources");
const uploadsPath = root.dataset.uploadsPath;
let folder = root.dataset.folder;

const crumbs = document.getElementById("crumbs");
const entries = document.getElementById("entries");
const notice = document.getElementById("notice");
const dropzone = document.getElementById("dropzone");
const dropFolder = document.getElementById("drop-folder");
const fileInput = document.getElementById("file-input");
const resumeInput = document.getElementById("resume-input");
const uploadsBox = document.getElementById("uploads");
const uploadRows = document.getElementById("upload-rows");
const interrupted = document.getElementById("interrupted");
const interruptedList = document.getElementById("interrupted-list");
const confirmDialog = document.getElementById("confirm-delete");
const folderDialog = document.getElementById("folder-dialog");

const folderHref = (path) => (path ? `/resources?path=${encodeURIComponent(path)}` : "/resources");
const joinPath = (base, name) => (base ? `${base}/${name}` : name);
const parentOf = (path) => path.split("/").slice(0, -1).join("/");
const shown = (path) => `/${escapeName(path)}`;

// -- the listing ------------------------------------------------------------------------

/** `2024-06-03 14:05` in the person's time zone, from an ISO moment or ms since the epoch. */
function localTime(moment) {
  const d = new Date(moment);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function localTimes(scope) {
  for (const time of scope.querySelectorAll("time[datetime]")) {
    time.textContent = localTime(time.getAttribute("datetime"));
    time.title = `${time.getAttribute("datetime")} (your time zone shown)`;
  }
}

function renderCrumbs() {
  const parts = folder ? folder.split("/") : [];
  const steps = [["Resources", ""], ...parts.map((name, i) => [name, parts.slice(0, i + 1).join("/")])];
  crumbs.replaceChildren(...steps.map(([name, path], i) => el("li", {},
    i === steps.length - 1
      ? el("span", { "aria-current": "location", tabIndex: -1 }, escapeName(name))
      : el("a", { href: folderHref(path), dataset: { folder: path } }, escapeName(name)))));
  dropFolder.textContent = shown(folder);
}

function entryRow(entry) {
  const shownName = escapeName(entry.name);
  const name = entry.is_dir
    ? el("a", { className: "folder", href: folderHref(entry.path), dataset: { folder: entry.path } }, `${shownName}/`)
    : el("span", { className: "file" }, shownName);
  const modified = entry.modified
    ? el("time", { dateTime: entry.modified, title: entry.modified }, localTime(entry.modified)) : "";
  const actions = el("td", { className: "actions" });
  if (!entry.is_dir) {
    actions.append(el("a", {
      className: "button",
      href: `/api/v1/resources/download?path=${encodeURIComponent(entry.path)}&redirect=true`,
      "aria-label": `Download ${shownName}`,
    }, "Download"), " ");
  }
  actions.append(el("button", {
    type: "button", className: "danger", dataset: { delete: "" },
    "aria-label": `Delete ${entry.is_dir ? "folder " : ""}${shownName}`,
  }, "Delete"));
  return el("tr", { dataset: { path: entry.path, name: entry.name, dir: String(entry.is_dir), size: String(entry.size) } },
    el("td", {}, name),
    el("td", { className: "num" }, entry.is_dir ? "" : formatSize(entry.size)),
    el("td", {}, modified),
    actions);
}

function renderEntries(listing) {
  const sorted = [...listing.data].sort((a, b) => (b.is_dir - a.is_dir)
    || a.name.localeCompare(b.name, undefined, { sensitivity: "base" }));
  const rows = sorted.map(entryRow);
  if (!rows.length) {
    const words = folder
      ? ["This folder is empty. Object storage keeps no empty folders: it shows in its parent once a file is uploaded into it."]
      : ["The resource pool is empty. Drop files above, or ", el("code", {}, "winslow resources upload FILE"), "."];
    rows.push(el("tr", { className: "empty" }, el("td", { colSpan: 4 }, ...words)));
  }
  entries.replaceChildren(...rows);
}

function setNotice(text) {
  notice.textContent = text || "";
  notice.hidden = !text;
}

/** Show `target`'s listing; `push` adds it to the history (back goes to the last one). */
async function navigate(target, { push = true, note = "" } = {}) {
  const listing = await api(`/resources?path=${encodeURIComponent(target)}`);
  folder = listing.path;
  root.dataset.folder = folder;
  renderCrumbs();
  renderEntries(listing);
  setNotice(note);
  const url = folderHref(folder);
  if (push && location.pathname + location.search !== url) history.pushState({ folder }, "", url);
}

let refreshing = null;
function refreshSoon() {
  if (refreshing) return;
  refreshing = setTimeout(() => {
    refreshing = null;
    guarded(() => navigate(folder, { push: false, note: notice.hidden ? "" : notice.textContent }));
  }, 200);
}

root.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-folder]");
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  guarded(async () => {
    await navigate(link.dataset.folder);
    crumbs.querySelector("[aria-current]").focus();
  });
});

window.addEventListener("popstate", () => {
  const target = new URLSearchParams(location.search).get("path") || "";
  guarded(() => navigate(target, { push: false }));
});

document.getElementById("refresh").addEventListener("click", () => guarded(() => navigate(folder, { push: false })));

// -- delete -------------------------------------------------------------------------------

/** Open `dialog` (modal) and resolve to the value of the button that closed it ("" for Esc). */
function ask(dialog) {
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
}

for (const button of document.querySelectorAll("dialog [data-close]")) {
  button.addEventListener("click", () => button.closest("dialog").close("cancel"));
}

entries.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-delete]");
  if (!button) return;
  const row = button.closest("tr");
  guarded(async () => {
    const path = row.dataset.path;
    const isDir = row.dataset.dir === "true";
    let text = `Delete '${shown(path)}' (${formatSize(Number(row.dataset.size))})? This cannot be undone.`;
    if (isDir) {
      const below = (await api(`/resources?path=${encodeURIComponent(path)}&recursive=true`)).data.filter((e) => !e.is_dir);
      const bytes = below.reduce((sum, e) => sum + e.size, 0);
      text = `Delete the folder '${shown(path)}' and the ${below.length} file${below.length === 1 ? "" : "s"} in it (${formatSize(bytes)})? This cannot be undone.`;
    }
    document.getElementById("confirm-title").textContent = isDir ? "Delete folder?" : "Delete file?";
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-yes").textContent = isDir ? "Delete folder" : "Delete file";
    if (await ask(confirmDialog) !== "delete") { button.focus(); return; }
    const next = row.nextElementSibling || row.previousElementSibling;
    const nextPath = next?.dataset.path;
    try {
      await api(`/resources?path=${encodeURIComponent(path)}&recursive=${isDir}`, { method: "DELETE" });
    } finally {
      await navigate(folder, { push: false });
    }
    const focusRow = nextPath && [...entries.querySelectorAll("tr[data-path]")].find((r) => r.dataset.path === nextPath);
    (focusRow?.querySelector("a, button") || document.getElementById("new-folder")).focus();
  });
});

// -- new folder ---------------------------------------------------------------------------

document.getElementById("new-folder").addEventListener("click", () => guarded(async () => {
  const input = document.getElementById("folder-name");
  input.value = "";
  document.getElementById("folder-parent").textContent = shown(folder);
  if (await ask(folderDialog) !== "create") return;
  const raw = input.value.trim();
  const parts = raw.split("/").map((p) => p.trim()).filter((p) => p && p !== ".");
  if (!parts.length) throw new Error("Give the new folder a name.");
  if (parts.includes("..")) throw new Error(`'${raw}' contains '..'; a folder name may not leave its folder.`);
  const name = parts.join("/");
  const target = joinPath(folder, name);
  const exists = [...entries.querySelectorAll("tr[data-path]")].some((r) => r.dataset.path === target);
  await navigate(target, {
    note: exists ? "" : `New folder '${escapeName(name)}': it is empty until you upload a file into it (object storage keeps no empty folders).`,
  });
  document.getElementById("pick-files").focus();
}));

// -- uploads ------------------------------------------------------------------------------

const jobs = [];

function describePhase(job, p) {
  if (p.phase === "checking") return `checking ${formatSize(p.kept)} stored earlier…`;
  if (p.phase === "completing") return "checking and completing…";
  if (p.phase === "offline") return `offline: waiting for the network (${formatSize(p.sent)} of ${formatSize(p.total)})…`;
  const resumed = p.kept ? ` · resumed, ${formatSize(p.kept)} kept` : "";
  return `${formatSize(p.sent)} of ${formatSize(p.total)}${resumed}`;
}

function showProgress(job, p) {
  const { bar, percent, status, speed, left } = job.cells;
  bar.max = Math.max(1, p.total);
  bar.value = p.total ? p.sent : 0;
  percent.textContent = `${p.total ? Math.floor((p.sent / p.total) * 100) : 0}%`;
  status.textContent = describePhase(job, p);
  speed.textContent = p.bytesPerSecond ? `${formatSize(Math.round(p.bytesPerSecond))}/s` : "–";
  left.textContent = p.secondsLeft != null && p.phase === "sending" ? duration(p.secondsLeft) : "–";
  if (p.phase === "offline") speed.textContent = "–";
}

function setActions(job, ...buttons) {
  job.cells.actions.replaceChildren(...buttons);
}

function cancelButton(job) {
  const button = el("button", { type: "button", "aria-label": `Cancel upload of ${escapeName(job.file.name)}` }, "Cancel");
  button.addEventListener("click", () => cancel(job));
  return button;
}

function uploadRow(job) {
  const bar = el("progress", { max: 1 });
  bar.setAttribute("aria-label", `Upload of ${escapeName(job.file.name)}`);
  const cells = {
    bar,
    percent: el("span", { className: "percent" }, ""),
    status: el("span", { className: "muted upload-status" }, "waiting…"),
    speed: el("td", { className: "num" }, "–"),
    left: el("td", { className: "num" }, "–"),
    actions: el("td", { className: "actions" }),
  };
  job.cells = cells;
  job.row = el("tr", { dataset: { dest: job.dest, state: "queued" } },
    el("td", {}, el("span", { className: "file" }, escapeName(job.file.name)), el("div", { className: "muted mono" }, shown(job.dest))),
    el("td", { className: "upload-progress" }, bar, " ", cells.percent, el("div", {}, cells.status)),
    cells.speed, cells.left, cells.actions);
  setActions(job, cancelButton(job));
  return job.row;
}

function setState(job, state, words) {
  job.state = state;
  job.row.dataset.state = state;
  if (words != null) job.cells.status.textContent = words;
}

function addFile(file, dest) {
  const key = uploadKey(uploadsPath, dest, file);
  if (jobs.some((j) => j.key === key && (j.state === "queued" || j.state === "running"))) {
    showError(`'${shown(dest)}' is uploading already.`);
    return;
  }
  const job = { file, dest, key, state: "queued", controller: null };
  jobs.push(job);
  uploadRows.append(uploadRow(job));
  uploadsBox.hidden = false;
  pump();
}

function addFiles(files, target = folder) {
  for (const file of files) addFile(file, joinPath(target, file.name));
  renderInterrupted();
}

function pump() {
  while (jobs.filter((j) => j.state === "running").length < FILES_AT_ONCE) {
    const next = jobs.find((j) => j.state === "queued");
    if (!next) break;
    run(next);
  }
}

async function run(job) {
  setState(job, "running", "starting…");
  job.controller = new AbortController();
  job.cells.bar.removeAttribute("value"); // indeterminate until the first report
  setActions(job, cancelButton(job));
  const started = performance.now();
  try {
    const entry = await uploadFile({
      file: job.file,
      uploadsPath,
      dest: job.dest,
      signal: job.controller.signal,
      onProgress: (p) => { job.kept = p.kept; showProgress(job, p); },
    });
    const seconds = (performance.now() - started) / 1000;
    job.cells.bar.max = 1;
    job.cells.bar.value = 1;
    job.cells.percent.textContent = "100%";
    job.cells.speed.textContent = "–";
    job.cells.left.textContent = "–";
    const resumed = job.kept ? ` (resumed: ${formatSize(job.kept)} were stored already)` : "";
    setState(job, "done", `uploaded ${formatSize(entry.size)} in ${duration(seconds)}${resumed}`);
    setActions(job);
    refreshSoon();
  } catch (error) {
    if (error && error.name === "AbortError") {
      setState(job, "cancelled", "cancelled; the parts sent were dropped");
      setActions(job);
    } else {
      const message = error instanceof Error ? error.message : String(error);
      setState(job, "failed", `failed: ${message}`);
      showError(`Upload of '${shown(job.dest)}' failed: ${message}`);
      const retry = el("button", { type: "button", "aria-label": `Retry upload of ${escapeName(job.file.name)}` }, "Retry");
      retry.addEventListener("click", () => { setState(job, "queued", "waiting…"); setActions(job, cancelButton(job)); pump(); });
      setActions(job, retry, " ", cancelButton(job));
    }
    job.cells.speed.textContent = "–";
    job.cells.left.textContent = "–";
  } finally {
    job.controller = null;
    pump();
    renderInterrupted();
  }
}

function cancel(job) {
  if (job.state === "running" && job.controller) {
    setState(job, "running", "cancelling…");
    job.controller.abort();
  } else if (job.state === "queued" || job.state === "failed") {
    setState(job, "cancelled", "cancelled; the parts sent were dropped");
    setActions(job);
    // A failed upload keeps its parts for a retry, a queued one may continue an earlier
    // one: cancelling drops them.
    guarded(() => discardUpload(job.key)).then(renderInterrupted);
  }
}

document.getElementById("clear-finished").addEventListener("click", () => {
  for (const job of jobs.filter((j) => j.state === "done" || j.state === "cancelled")) {
    job.row.remove();
    jobs.splice(jobs.indexOf(job), 1);
  }
  uploadsBox.hidden = !jobs.length;
  if (!jobs.length) document.getElementById("pick-files").focus();
});

window.addEventListener("beforeunload", (event) => {
  if (jobs.some((j) => j.state === "running" || j.state === "queued")) {
    // Leaving stops the uploads; they resume when the same files are picked again.
    event.preventDefault();
    event.returnValue = "";
  }
});

// -- interrupted uploads (from an earlier page) ---------------------------------------------

let resuming = null;
const storedBytes = new Map(); // key → bytes object storage holds, once asked

/** Ask the server what an interrupted upload holds; forget it if the server has none. */
async function checkStored(record) {
  storedBytes.set(record.key, null);
  try {
    const { parts } = await api(`${record.uploadsPath}/${encodeURIComponent(record.upload_id)}/parts?path=${encodeURIComponent(record.path)}`);
    const sizes = new Map(parts.map((p) => [p.part_number, p.size]));
    storedBytes.set(record.key, [...sizes.values()].reduce((sum, n) => sum + n, 0));
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 0 || error.status === 401 || error.status >= 500) {
      storedBytes.delete(record.key); // ask again next time
      return;
    }
    forgetUpload(record.key); // completed, aborted or expired: nothing to resume
  }
  renderInterrupted();
}

function renderInterrupted() {
  const known = new Set(jobs.filter((j) => j.state !== "done").map((j) => j.key));
  const records = pendingUploads(uploadsPath).filter((r) => !known.has(r.key));
  interrupted.hidden = !records.length;
  interruptedList.replaceChildren(...records.map((record) => {
    if (!storedBytes.has(record.key)) checkStored(record);
    const stored = storedBytes.get(record.key) ?? record.sent;
    const percent = record.size ? Math.floor((stored / record.size) * 100) : 0;
    const resume = el("button", { type: "button", className: "primary", "aria-label": `Resume ${escapeName(record.name)}: pick the file again` }, "Resume: pick the file again");
    resume.addEventListener("click", () => {
      resuming = record;
      resumeInput.value = "";
      resumeInput.click();
    });
    const discard = el("button", { type: "button", className: "danger", "aria-label": `Discard the interrupted upload of ${escapeName(record.name)}` }, "Discard");
    discard.addEventListener("click", () => guarded(async () => {
      document.getElementById("confirm-title").textContent = "Discard interrupted upload?";
      document.getElementById("confirm-text").textContent = `Discard the interrupted upload of '${escapeName(record.name)}' to '${shown(record.dest)}'? The ${formatSize(stored)} stored so far are dropped.`;
      document.getElementById("confirm-yes").textContent = "Discard";
      if (await ask(confirmDialog) !== "delete") return;
      await discardUpload(record.key);
      renderInterrupted();
    }));
    return el("li", { className: "interrupted", dataset: { key: record.key } },
      el("div", {},
        el("span", { className: "file" }, escapeName(record.name)), " → ", el("span", { className: "mono" }, shown(record.dest)),
        el("div", { className: "muted" },
          `${formatSize(record.size)} · ${percent}% stored · file modified ${localTime(record.lastModified)} · stopped after ${localTime(record.updated)}`)),
      el("div", { className: "interrupted-actions" }, resume, discard));
  }));
}

resumeInput.addEventListener("change", () => {
  const file = resumeInput.files[0];
  const record = resuming;
  resuming = null;
  resumeInput.value = "";
  if (!file || !record) return;
  if (file.name !== record.name || file.size !== record.size || file.lastModified !== record.lastModified) {
    showError(`That is '${escapeName(file.name)}' (${formatSize(file.size)}, modified ${localTime(file.lastModified)}); to resume, pick '${escapeName(record.name)}' (${formatSize(record.size)}, modified ${localTime(record.lastModified)}), unchanged since. Or discard the interrupted upload.`);
    return;
  }
  addFile(file, record.dest);
  renderInterrupted();
});

// -- picking and dropping -------------------------------------------------------------------

document.getElementById("pick-files").addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", () => {
  const files = [...fileInput.files];
  fileInput.value = ""; // the same file can be picked again
  addFiles(files);
});

function carriesFiles(event) {
  return event.dataTransfer && [...event.dataTransfer.types].includes("Files");
}

let dragDepth = 0;
document.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  dragDepth += 1;
  dropzone.classList.add("dragging");
});
document.addEventListener("dragleave", (event) => {
  if (!carriesFiles(event)) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) dropzone.classList.remove("dragging");
});
document.addEventListener("dragover", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault(); // the whole page takes the drop, not only the zone
  event.dataTransfer.dropEffect = "copy";
});
document.addEventListener("drop", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  dropzone.classList.remove("dragging");
  const files = [];
  const folders = [];
  const items = [...(event.dataTransfer.items || [])];
  if (items.length) {
    for (const item of items) {
      if (item.kind !== "file") continue;
      const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
      const file = item.getAsFile();
      if (entry && entry.isDirectory) folders.push(entry.name);
      else if (file) files.push(file);
    }
  } else {
    files.push(...event.dataTransfer.files);
  }
  if (folders.length) {
    showError(`Folders cannot be dropped (${folders.join(", ")}): create the folder here with “New folder”, open it, and drop the files inside.`);
  }
  addFiles(files);
});

// -- first paint ------------------------------------------------------------------------------

localTimes(entries);
renderInterrupted();
const selected = entries.querySelector("tr.selected");
selected?.scrollIntoView({ block: "center" });
// A file's path showed its folder: the URL names the folder, so back and forward agree.
history.replaceState({ folder }, "", selected ? folderHref(folder) : location.href);
