// The file browser of a run's workspace, for the project page: browse any version, download
// a file (a presigned link with the file's name) or a folder as a zip, and upload a fix
// while nothing of the project runs, which publishes the workspace's next version.
//
// Listing reads the API's workspace listing one folder at a time; the bytes of a download
// never pass through this page (links go to the API, which redirects to object storage).
// Images, tables, JSON and videos get a Preview button that shows, below the table, what
// the server makes of them (previews.js): nothing to download to judge a result.
// A stage may write any name, so every name shown goes through escapeName (`\u202e` for a
// right-to-left override); links and downloads use the name itself.
//
//     const files = mountFileBrowser(container, { project: "ulm-0603" });
//     files.show(run, project.state);   // again on every change: keeps the folder shown
import { api, el, escapeName, formatSize, showError } from "./api.js";
import { previewKind, renderPreview } from "./previews.js";

/** Project states in which a workspace may take a fix (nothing of the project runs). */
export const UPLOAD_PROJECT_STATES = new Set(["paused", "failed", "awaiting_input", "succeeded", "idle"]);
const ACTIVE_RUN_STATES = new Set(["pending", "running"]);
const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  return search.toString();
}

function parentOf(path) {
  const cut = path.lastIndexOf("/");
  return cut < 0 ? "" : path.slice(0, cut);
}

/** Why `run`'s workspace cannot take a file now, or "" when it can. */
export function uploadRefusal(run, projectState) {
  if (!run) return "Choose a run first.";
  if (ACTIVE_RUN_STATES.has(run.state)) {
    return `Run ${run.id} has not ended; its workspace can take a fix once it has and nothing of the project runs.`;
  }
  if (!UPLOAD_PROJECT_STATES.has(projectState)) {
    const what = (projectState || "unknown").replace("_", " ");
    return `The project is ${what}: a workspace may change only while nothing of the project runs. Pause the project and wait for its stage to stop, then upload.`;
  }
  if (run.workspace === "") return `Run ${run.id} has no workspace (it never started).`;
  return "";
}

/**
 * Mount the file browser into `container`; returns `{ show(run, projectState) }`.
 *
 * `show` lists `run`'s workspace (its latest version, from the top); called again with the
 * same run it keeps the folder and version shown and only updates whether an upload is
 * possible (and lists again once the run has ended). API errors reach the person.
 */
export function mountFileBrowser(container, { project }) {
  const base = `/projects/${encodeURIComponent(project)}/workspace`;
  const uid = `files-${Math.random().toString(36).slice(2, 8)}`;

  // -- the parts ------------------------------------------------------------------------
  const heading = el("strong", { className: "files-which" });
  const crumbs = el("ol", { className: "files-crumbs" });
  const versionSelect = el("select", { id: `${uid}-version` });
  const versionLabel = el("label", { for: `${uid}-version`, className: "files-version" }, "Version", versionSelect);
  const archive = el("a", { className: "button", download: "" }, "Download folder as zip");
  const note = el("span", { className: "files-note muted" });
  const top = el("div", { className: "files-top" }, heading, note);
  const bar = el("div", { className: "files-bar" },
    el("nav", { "aria-label": "Folder" }, crumbs), versionLabel, archive);
  const tbody = el("tbody");
  const table = el("table", { className: "grid files-table" },
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Name"),
      el("th", { scope: "col", className: "files-size" }, "Size"),
      el("th", { scope: "col" }, "Modified"),
      el("th", { scope: "col", className: "files-look" }, "Preview"))),
    tbody);

  const fileInput = el("input", { type: "file", id: `${uid}-file`, required: true });
  const destInput = el("input", { type: "text", id: `${uid}-dest`, required: true, spellcheck: false, placeholder: "folder/name.ext" });
  const noteInput = el("input", { type: "text", id: `${uid}-note`, placeholder: "what changed, for the history" });
  const submit = el("button", { type: "submit", className: "primary" }, "Upload fix");
  const cancel = el("button", { type: "button", hidden: true }, "Cancel upload");
  const progress = el("progress", { max: 1, value: 0, hidden: true });
  progress.setAttribute("aria-label", "Upload progress");
  const uploadStatus = el("span", { className: "files-upload-status muted", role: "status" });
  const reason = el("p", { className: "files-reason", id: `${uid}-reason` });
  const fields = el("fieldset", {},
    el("legend", {}, "Upload a fix into this workspace"),
    el("div", { className: "files-upload-row" },
      el("label", { for: `${uid}-file` }, "File", fileInput),
      el("label", { for: `${uid}-dest` }, "Path in the workspace", destInput),
      el("label", { for: `${uid}-note`, className: "files-note-field" }, "Note", noteInput),
      submit),
    el("div", { className: "files-upload-row" }, progress, uploadStatus));
  const cancelRow = el("div", { className: "files-upload-row" }, cancel);
  // Cancel sits outside the fieldset, which is disabled while an upload runs.
  const form = el("form", { className: "files-upload" }, fields, cancelRow, reason);
  submit.setAttribute("aria-describedby", reason.id);

  const previewTitle = el("h3", { className: "files-preview-title", tabIndex: -1 });
  const previewClose = el("button", { type: "button" }, "Close preview");
  const previewBox = el("div", { className: "files-preview-box" });
  const previewPanel = el("section", { className: "files-preview card", hidden: true, "aria-label": "File preview" },
    el("div", { className: "files-preview-head" }, previewTitle, previewClose), previewBox);
  const root = el("section", { className: "files", "aria-label": "Workspace files" }, top, bar, table, previewPanel, form);
  container.replaceChildren(root);

  // -- the state ------------------------------------------------------------------------
  let run = null;
  let projectState = "";
  let path = "";
  let version = null; // null: the latest
  let listing = null;
  let generation = 0;
  let uploading = null; // the AbortController of the upload in flight
  let destEdited = false;

  function href(endpoint, params) {
    return `/api/v1${base}${endpoint}?${query({ run: run.id, ...params })}`;
  }

  function renderCrumbs() {
    const parts = path ? path.split("/") : [];
    const items = [{ name: "workspace", to: "" }];
    parts.forEach((name, i) => items.push({ name, to: parts.slice(0, i + 1).join("/") }));
    crumbs.replaceChildren(...items.map((item, i) => {
      const name = escapeName(item.name);
      if (i === items.length - 1) return el("li", {}, el("span", { "aria-current": "location" }, name));
      const go = el("button", { type: "button", className: "link" }, name);
      go.addEventListener("click", () => open(item.to));
      return el("li", {}, go);
    }));
  }

  function renderVersions() {
    const versions = listing.versions;
    versionSelect.disabled = versions.length < 2;
    const latest = versions[versions.length - 1];
    versionSelect.replaceChildren(...(versions.length ? versions : [0]).map((n) => {
      const what = n === 0 ? "none yet" : n === 1 ? "what the stage wrote" : "a fix";
      return el("option", { value: String(n), selected: n === listing.version }, `${n} · ${what}${n === latest && versions.length > 1 ? " (latest)" : ""}`);
    }));
  }

  function renderNote() {
    if (!listing.version) {
      note.textContent = ACTIVE_RUN_STATES.has(run.state)
        ? `Run ${run.id} is ${run.state}; its workspace is written when the stage ends.`
        : `Run ${run.id} wrote no workspace.`;
      return;
    }
    const origin = listing.origin === "upload" ? "uploaded by a person" : `written by '${listing.stage}'`;
    note.textContent = `version ${listing.version}, ${origin}${listing.note ? `: ${listing.note}` : ""}`;
  }

  function entryRow(entry) {
    const name = el("td", { className: "files-name" });
    const shownName = escapeName(entry.name);
    if (entry.is_dir) {
      const go = el("button", { type: "button", className: "link files-dir" }, `${shownName}/`);
      go.addEventListener("click", () => open(entry.path));
      name.append(go);
    } else if (entry.link != null) {
      name.append(el("span", { className: "files-link" }, shownName, el("span", { className: "files-arrow", "aria-label": "links to" }, " → "), escapeName(entry.link)));
    } else {
      name.append(el("a", {
        href: href("/download", { path: entry.path, version: listing.version, redirect: "true" }),
        download: entry.name,
        title: `Download ${escapeName(entry.path)}`,
      }, shownName));
    }
    const look = el("td", { className: "files-look" });
    if (!entry.is_dir && entry.link == null && previewKind(entry.path)) {
      const button = el("button", { type: "button", className: "link files-preview-open", "aria-label": `Preview ${shownName}` }, "Preview");
      button.addEventListener("click", () => showPreview(entry.path));
      look.append(button);
    }
    const modified = entry.modified ? new Date(entry.modified) : null;
    return el("tr", { className: entry.is_dir ? "files-folder" : "", dataset: { path: entry.path } },
      name,
      el("td", { className: "files-size" }, entry.link != null ? "" : formatSize(entry.size)),
      el("td", { className: "muted" }, modified ? el("time", { dateTime: entry.modified }, when.format(modified)) : ""),
      look);
  }

  function render() {
    heading.textContent = `Workspace of run ${run.id} · ${run.stage}`;
    table.setAttribute("aria-label", `Files in ${path ? `${escapeName(path)}/` : "the top folder"}`);
    renderCrumbs();
    renderVersions();
    renderNote();
    archive.hidden = !listing.version || !listing.data.length;
    archive.textContent = path ? `Download ${escapeName(path.split("/").pop())}/ as zip` : "Download all as zip";
    archive.href = href("/archive", { path, version: listing.version });
    const rows = listing.data.map(entryRow);
    if (!rows.length) {
      const empty = listing.version ? "This folder is empty." : "No files.";
      rows.push(el("tr", { className: "empty" }, el("td", { colSpan: 4 }, empty)));
    }
    tbody.replaceChildren(...rows);
    if (!destEdited && !fileInput.files.length) destInput.value = path ? `${path}/` : "";
  }

  function renderUpload() {
    const refusal = uploadRefusal(run, projectState);
    const closed = Boolean(refusal) && !uploading;
    fields.disabled = closed || Boolean(uploading);
    form.classList.toggle("files-upload-closed", closed);
    reason.textContent = refusal && !uploading ? refusal : "";
    reason.hidden = !reason.textContent;
  }

  async function load({ fallbackToTop = true } = {}) {
    const gen = ++generation;
    try {
      const data = await api(`${base}?${query({ run: run.id, path, version })}`);
      if (gen !== generation) return;
      listing = data;
      path = data.path;
      render();
    } catch (error) {
      if (gen !== generation) return;
      if (error.status === 404 && path && fallbackToTop) {
        // The folder is not in the version chosen (or went away): show the top instead.
        showError(new Error(`${error.message} Showing the top of the workspace instead.`));
        path = "";
        await load({ fallbackToTop: false });
        return;
      }
      showError(error);
    }
  }

  function open(folder) {
    path = folder;
    load();
  }

  function showPreview(file) {
    previewPanel.hidden = false;
    previewTitle.textContent = `Preview of ${escapeName(file)}`;
    previewTitle.focus();
    renderPreview(previewBox, { project, run: run.id, path: file, version: listing.version });
  }

  function hidePreview() {
    previewPanel.hidden = true;
    previewBox.replaceChildren();
  }

  // -- uploading ------------------------------------------------------------------------
  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (file && !destEdited) destInput.value = path ? `${path}/${file.name}` : file.name;
  });
  destInput.addEventListener("input", () => { destEdited = destInput.value !== ""; });
  cancel.addEventListener("click", () => { if (uploading) uploading.abort(); });
  previewClose.addEventListener("click", hidePreview);
  versionSelect.addEventListener("change", () => {
    version = Number(versionSelect.value) || null;
    hidePreview();
    load();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    const dest = destInput.value.trim().replace(/^\/+/, "");
    if (!file || !dest || dest.endsWith("/")) {
      showError(new Error("Choose a file and the path it takes in the workspace (a file name, not a folder)."));
      return;
    }
    const target = run;
    let uploadFile;
    try {
      ({ uploadFile } = await import("./upload.js"));
    } catch (error) {
      showError(new Error(`The console's uploader could not be loaded (${error.message}); \`winslow workspace upload\` does the same from a shell.`));
      return;
    }
    uploading = new AbortController();
    renderUpload();
    cancel.hidden = false;
    progress.hidden = false;
    progress.value = 0;
    uploadStatus.textContent = `Uploading ${escapeName(file.name)}…`;
    try {
      const done = await uploadFile({
        file,
        uploadsPath: `/projects/${encodeURIComponent(project)}/runs/${target.id}/workspace/uploads`,
        dest,
        signal: uploading.signal,
        onProgress({ sent, total, bytesPerSecond, secondsLeft, phase }) {
          progress.value = total ? sent / total : 0;
          if (phase === "checking") { uploadStatus.textContent = "Checking the parts sent earlier…"; return; }
          if (phase === "completing") { uploadStatus.textContent = "Checking the file and publishing the new version…"; return; }
          const speed = bytesPerSecond ? ` · ${formatSize(Math.round(bytesPerSecond))}/s` : "";
          const left = secondsLeft != null && Number.isFinite(secondsLeft) ? ` · ${Math.ceil(secondsLeft)} s left` : "";
          uploadStatus.textContent = `${formatSize(sent)} of ${formatSize(total)}${speed}${left}`;
        },
        completeExtra: { note: noteInput.value.trim() },
      });
      uploadStatus.textContent = `Uploaded ${escapeName(done.path)} (${formatSize(done.size)}): version ${done.version}.`;
      form.reset();
      destEdited = false;
      if (run && run.id === target.id) {
        version = done.version;
        path = parentOf(done.path);
        await load();
      }
    } catch (error) {
      if (error.name === "AbortError") {
        uploadStatus.textContent = "Upload cancelled; the workspace is unchanged.";
      } else {
        uploadStatus.textContent = `Upload failed: ${error.message}`;
        showError(error);
      }
    } finally {
      uploading = null;
      cancel.hidden = true;
      progress.hidden = true;
      renderUpload();
    }
  });

  return {
    /** Show `run`'s workspace; `projectState` decides whether a fix may be uploaded. */
    show(next, state) {
      projectState = state;
      const switched = !run || next.id !== run.id;
      const justEnded = run && !switched && ACTIVE_RUN_STATES.has(run.state) && !ACTIVE_RUN_STATES.has(next.state);
      run = next;
      if (switched) {
        hidePreview();
        path = "";
        version = null;
        destEdited = false;
        uploadStatus.textContent = "";
      }
      renderUpload();
      if (switched || justEnded) load();
      else if (listing) renderNote(); // pending → running says so
    },
  };
}
