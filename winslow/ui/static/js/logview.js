// The live log of a run, for the project page: the end of the log first, then new lines
// as the stage writes them (Server-Sent Events), earlier parts page by page on request.
//
// The page holds a window of the log, [first, last) in bytes, never more than MAX_LINES
// lines, so a chatty stage cannot freeze the tab. While the view follows the end, new
// lines push the oldest out; once the person scrolls up, the view stays where it is and
// new lines that would not fit are counted, not shown, until they jump back to the end.
//
// The search box searches the whole log on the server (GET …/logs/search, NDJSON): hits
// appear with their line numbers as they are found; choosing one shows the log around
// it, numbered from that line, loading it first when it is not on the page.
//
//     const viewer = mountLogViewer(container, { project: "ulm-0603" });
//     viewer.show(run);   // a run object of the API; again with another run to switch
//     viewer.destroy();
import { api, el, formatSize, showError } from "./api.js";

/** Bytes of the log's end fetched first. */
export const TAIL_BYTES = 256 * 1024;
/** Bytes fetched per "Load earlier". */
export const PAGE_BYTES = 128 * 1024;
/** Most lines kept on the page. */
export const MAX_LINES = 5000;
/** Bytes "Load earlier" reads at most looking for the start of one (very long) line. */
const MAX_PAGE_BYTES = 8 * 1024 * 1024;
/** Hits asked for per page of a search. */
export const SEARCH_PAGE = 200;
/** Milliseconds of quiet typing before the search starts by itself. */
const SEARCH_DELAY = 400;
/** Pixels from the bottom that still count as "at the end". */
const AT_END_SLACK = 24;

const STREAMS = ["stdout", "stderr", "winslow"];
const ACTIVE_RUN_STATES = new Set(["pending", "running"]);
const RECORD = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (stdout|stderr|winslow) \| ?([\s\S]*)$/;
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
const stamp = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** Bytes `text` takes as UTF-8 (offsets in the API are bytes). */
function utf8Length(text) {
  let n = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x80) n += 1;
    else if (code < 0x800) n += 2;
    else if (code >= 0xd800 && code <= 0xdbff) { n += 4; i += 1; }
    else n += 3;
  }
  return n;
}

/** Split a chunk of the log into its whole lines and what follows the last newline. */
function splitLines(text) {
  if (!text) return { lines: [], partial: "" };
  const lines = text.split("\n");
  const partial = lines.pop();
  return { lines, partial };
}

/** One parsed line: what it shows, what the filter matches, and its size in bytes. */
function parseLine(raw) {
  const match = RECORD.exec(raw);
  const entry = { raw, bytes: utf8Length(raw) + 1, time: null, stream: "", text: raw, node: null, number: null };
  if (match) {
    entry.time = match[1];
    entry.stream = match[2];
    entry.text = match[3];
  }
  entry.search = entry.text.toLowerCase();
  return entry;
}

function lineNumber(entry) {
  return el("span", { className: "logview-num" }, entry.number.toLocaleString());
}

function renderLine(entry) {
  const row = el("div", { className: `logview-line${entry.stream ? ` logview-${entry.stream}` : ""}` });
  if (entry.number != null) row.append(lineNumber(entry));
  if (entry.time) {
    const when = new Date(entry.time);
    const time = el("time", { className: "logview-time", dateTime: entry.time, title: stamp.format(when) }, clock.format(when));
    row.append(time, el("span", { className: "logview-stream" }, entry.stream));
  } else {
    row.append(el("span", { className: "logview-time" }), el("span", { className: "logview-stream" }));
  }
  row.append(el("span", { className: "logview-text" }, entry.text));
  entry.node = row;
  return row;
}

/** A hit of the search as a button: its line number, then the line with the matches marked. */
function renderHit(hit, choose) {
  let text = hit.text;
  let spans = hit.spans;
  let time = "";
  const record = hit.start === 0 ? RECORD.exec(text) : null;
  if (record) {
    // Shown as the viewer shows the line: its time, then the text without the prefix.
    const prefix = text.length - record[3].length;
    time = clock.format(new Date(record[1]));
    text = record[3];
    spans = spans.map(([a, b]) => [Math.max(0, a - prefix), Math.max(0, b - prefix)]).filter(([a, b]) => b > a);
  }
  const body = el("span", { className: "logview-hit-text" });
  if (hit.start > 0) body.append("…");
  let at = 0;
  for (const [a, b] of spans) {
    if (a < at) continue;
    body.append(text.slice(at, a), el("mark", {}, text.slice(a, b)));
    at = b;
  }
  body.append(text.slice(at));
  if (hit.cut) body.append("…");
  const button = el("button", { type: "button", className: "logview-hit", dataset: { line: hit.line, offset: hit.offset } },
    el("span", { className: "logview-hit-num" }, el("span", { className: "visually-hidden" }, "line "), hit.line.toLocaleString()),
    el("span", { className: "logview-hit-time" }, time), body);
  button.addEventListener("click", () => choose(hit));
  return el("li", {}, button);
}

/**
 * Mount the log viewer into `container`; returns `{ show(run), destroy() }`.
 *
 * `show(run)` shows a run's log (fetch the tail, then follow it live while the run is
 * active); calling it with another run closes the previous stream first, with the same
 * run it only takes the run's new state. Errors of the API reach the person (showError).
 */
export function mountLogViewer(container, { project }) {
  const base = (run) => `/projects/${encodeURIComponent(project)}/runs/${run.id}/logs`;
  const uid = `logview-${Math.random().toString(36).slice(2, 8)}`;

  // -- the parts ------------------------------------------------------------------------
  const title = el("span", { className: "logview-title" });
  const badge = el("span", { className: "state" });
  const liveNote = el("span", { className: "logview-live muted" });
  const filter = el("input", { type: "search", id: `${uid}-filter`, placeholder: "text in the line", autocomplete: "off", spellcheck: false });
  const streamBoxes = Object.fromEntries(STREAMS.map((s) => [s, el("input", { type: "checkbox", checked: true, value: s })]));
  const streamSet = el("fieldset", { className: "logview-streams" },
    el("legend", {}, "Streams"),
    ...STREAMS.map((s) => el("label", { className: `check logview-pick-${s}` }, streamBoxes[s], s)));
  const matchCount = el("span", { className: "logview-count muted", "aria-live": "polite" });
  // The page's one `#log-search` (the `/` shortcut focuses it); a second viewer gets its own id.
  const searchId = document.getElementById("log-search") ? `${uid}-search` : "log-search";
  const searchInput = el("input", {
    type: "search", id: searchId, placeholder: "text or pattern", autocomplete: "off", spellcheck: false,
    dataset: { shortcut: "search" }, "aria-describedby": `${uid}-search-status`,
  });
  const regexBox = el("input", { type: "checkbox" });
  const caseBox = el("input", { type: "checkbox" });
  const searchForm = el("form", { className: "logview-search", role: "search", "aria-label": "Search the whole log" },
    el("label", { for: searchId }, "Search the whole log", searchInput),
    el("label", { className: "check" }, regexBox, "regex"),
    el("label", { className: "check" }, caseBox, "match case"),
    el("button", { type: "submit" }, "Search"));
  const searchStatus = el("span", { className: "logview-search-status", id: `${uid}-search-status`, "aria-live": "polite" });
  const moreButton = el("button", { type: "button", hidden: true }, "More hits");
  const closeButton = el("button", { type: "button", className: "link" }, "Close the hits");
  const hitList = el("ol", { className: "logview-hits", "aria-label": "Hits in the whole log" });
  const results = el("div", { className: "logview-results", hidden: true },
    el("div", { className: "logview-results-head" }, searchStatus, moreButton, closeButton), hitList);
  const download = el("a", { className: "button", download: "" }, "Download whole log");
  const bar = el("div", { className: "logview-bar" },
    el("div", { className: "logview-which" }, title, badge, liveNote),
    el("div", { className: "logview-tools" },
      searchForm,
      el("label", { for: `${uid}-filter` }, "Filter", filter),
      streamSet, matchCount, download));

  const earlierNote = el("span", { className: "muted" });
  const earlierButton = el("button", { type: "button" }, "Load earlier");
  const head = el("div", { className: "logview-head" }, earlierNote, earlierButton);
  const lines = el("div", {
    className: "logview-lines", id: `${uid}-lines`, tabIndex: 0, role: "log",
    "aria-live": "off", "aria-label": "Log lines",
  });
  const followButton = el("button", { type: "button", className: "logview-follow primary", hidden: true }, "Jump to the end and follow");
  const laterNote = el("span", { className: "muted" });
  const laterButton = el("button", { type: "button" }, "Load later");
  const foot = el("div", { className: "logview-foot", hidden: true }, laterNote, laterButton);
  const body = el("div", { className: "logview-body" }, head, lines, foot, followButton);
  const root = el("section", { className: "logview", "aria-label": "Run log" }, bar, results, body);
  container.replaceChildren(root);

  // -- the state ------------------------------------------------------------------------
  let run = null;
  let generation = 0; // bumped on every switch: late answers for an earlier run are dropped
  let entries = []; // the lines on the page, oldest first
  let first = 0; // byte offset of the first line on the page
  let last = 0; // byte offset after the last line on the page
  let end = 0; // byte offset after the last complete line known (what the stream reached)
  let dropped = false; // lines went off the top because of MAX_LINES
  let unseen = 0; // lines that arrived while the window did not reach the end
  let following = true;
  let source = null;
  let ended = false;
  let endNote = "";
  let interrupted = false;
  let loadingEarlier = false;
  let loadingLater = false;
  let loading = false;
  let search = null; // the search shown: its parameters, hits so far, where the next page starts
  let searchGeneration = 0; // bumped on every search: a late answer of an earlier one is dropped
  let searchTimer = 0;
  let jumpGeneration = 0;

  const atEnd = () => last >= end;

  function matches(entry) {
    if (entry.stream && !streamBoxes[entry.stream].checked) return false;
    const query = filter.value.trim().toLowerCase();
    return !query || entry.search.includes(query);
  }

  function updateCount() {
    const filtered = filter.value.trim() || STREAMS.some((s) => !streamBoxes[s].checked);
    if (!filtered) { matchCount.textContent = `${entries.length.toLocaleString()} lines`; return; }
    const shown = entries.reduce((n, e) => n + (e.node.hidden ? 0 : 1), 0);
    matchCount.textContent = `${shown.toLocaleString()} of ${entries.length.toLocaleString()} loaded lines match`;
  }

  function updateHead() {
    if (!run) { head.hidden = true; return; }
    head.hidden = false;
    earlierButton.hidden = first <= 0;
    if (first <= 0) earlierNote.textContent = entries.length ? "Start of the log." : "";
    else if (dropped) earlierNote.textContent = `At most ${MAX_LINES.toLocaleString()} lines stay on the page; older lines were dropped (${formatSize(first)} before these).`;
    else earlierNote.textContent = `${formatSize(first)} of earlier log not loaded.`;
    // Below a window opened at a hit, the rest of the log is a page away too.
    foot.hidden = last >= end || !entries.length;
    laterNote.textContent = `${formatSize(end - last)} of later log not loaded.`;
  }

  function updateFollow() {
    const show = !following || !atEnd();
    followButton.hidden = !show;
    followButton.textContent = unseen ? `${unseen.toLocaleString()} new lines: jump to the end and follow` : "Jump to the end and follow";
    if (!run) liveNote.textContent = "";
    else if (ended) liveNote.textContent = endNote;
    else if (interrupted) liveNote.textContent = "live log interrupted; reconnecting…";
    else liveNote.textContent = following && atEnd() ? "live, following" : "live, paused";
  }

  function updateRun() {
    const state = run.state;
    title.textContent = `Run ${run.id} · ${run.stage}${run.attempt > 1 ? ` · attempt ${run.attempt}` : ""}`;
    badge.className = `state state-${state}`;
    badge.textContent = state.replace("_", " ");
    download.href = `/api/v1${base(run)}?download=true`;
    download.setAttribute("aria-label", `Download whole log of run ${run.id}`);
  }

  function showPlaceholder() {
    if (entries.length || !run) return;
    const text = loading ? "Loading the log…"
      : run.state === "pending" ? "The run has not started; its log appears when it does."
        : ended ? "This run wrote no log." : "No output yet.";
    lines.replaceChildren(el("div", { className: "logview-empty muted" }, text));
  }

  function nearBottom() {
    return lines.scrollHeight - lines.scrollTop - lines.clientHeight <= AT_END_SLACK;
  }

  function toBottom() {
    lines.scrollTop = lines.scrollHeight;
  }

  function removeOldest(n) {
    if (n <= 0) return;
    const gone = entries.splice(0, n);
    for (const e of gone) { first += e.bytes; e.node.remove(); }
    dropped = true;
  }

  function removeNewest(n) {
    if (n <= 0) return;
    const gone = entries.splice(entries.length - n, n);
    for (const e of gone) { last -= e.bytes; e.node.remove(); }
  }

  /** Number `parsed` on from the window's last line (or back from its first) when the window
   * is numbered, that is when it was opened at a hit, whose line number the search told. */
  function continueNumbers(parsed, { before = false } = {}) {
    const edge = before ? entries[0] : entries[entries.length - 1];
    if (!edge || edge.number == null) return;
    parsed.forEach((e, i) => { e.number = before ? edge.number - parsed.length + i : edge.number + 1 + i; });
  }

  /** Number every line on the page, knowing that `entries[index]` is line `line`. */
  function setNumbers(index, line) {
    entries.forEach((e, i) => {
      const known = e.number != null;
      e.number = line - index + i;
      if (known) e.node.querySelector(".logview-num").textContent = e.number.toLocaleString();
      else e.node.prepend(lineNumber(e));
    });
    lines.classList.add("numbered");
  }

  function rows(parsed) {
    const fragment = document.createDocumentFragment();
    for (const entry of parsed) {
      const row = renderLine(entry);
      row.hidden = !matches(entry);
      fragment.append(row);
    }
    return fragment;
  }

  /** Add lines at the end of the window (the tail, or live ones); returns how many. */
  function append(rawLines) {
    let parsed = rawLines.map(parseLine);
    if (!following && entries.length + parsed.length > MAX_LINES) {
      // The person reads something: pull no line from under them; count the rest.
      const kept = parsed.slice(0, Math.max(0, MAX_LINES - entries.length));
      unseen += parsed.length - kept.length;
      parsed = kept;
    }
    if (!parsed.length) return 0;
    if (!entries.length) lines.replaceChildren();
    continueNumbers(parsed);
    lines.append(rows(parsed));
    entries.push(...parsed);
    for (const e of parsed) last += e.bytes;
    // Only while following can the window be full here: the view goes to the end anyway.
    removeOldest(entries.length - MAX_LINES);
    if (following) toBottom();
    return parsed.length;
  }

  function render() {
    updateHead();
    updateFollow();
    updateCount();
    showPlaceholder();
  }

  // -- the stream -----------------------------------------------------------------------
  function closeStream() {
    if (source) { source.close(); source = null; }
  }

  // A broken stream is opened again by EventSource itself, which sends the id of the last
  // `log` event (the byte offset after its lines) as Last-Event-ID: it goes on from there.
  function openStream(gen) {
    closeStream();
    if (gen !== generation || ended) return;
    const opened = new EventSource(`/api/v1${base(run)}/stream?offset=${end}`);
    source = opened;
    opened.addEventListener("open", () => {
      if (gen !== generation || !interrupted) return;
      interrupted = false;
      updateFollow();
    });
    opened.addEventListener("log", (event) => {
      if (gen !== generation) return;
      interrupted = false;
      const data = JSON.parse(event.data);
      // A window opened at a hit may hold lines the stream sends only now: skip those.
      let start = data.offset - data.lines.reduce((n, l) => n + utf8Length(l) + 1, 0);
      while (data.lines.length && start < last) start += utf8Length(data.lines.shift()) + 1;
      if (atEnd()) {
        // All shown: the window takes the lines (or counts those that do not fit).
        if (append(data.lines) === data.lines.length) last = Math.max(last, data.offset);
      } else {
        unseen += data.lines.length;
      }
      end = data.offset;
      render();
    });
    opened.addEventListener("end", (event) => {
      if (gen !== generation) return;
      const data = JSON.parse(event.data);
      ended = true;
      endNote = data.exit_code == null ? "ended" : `ended, exit code ${data.exit_code}`;
      closeStream();
      run = { ...run, state: data.state, exit_code: data.exit_code };
      updateRun();
      render();
    });
    opened.addEventListener("refused", (event) => {
      // The server cannot read this log at all (say, its Nomad token lacks read-fs):
      // retrying would not help, so say why and stop.
      if (gen !== generation) return;
      closeStream();
      showError(new Error(JSON.parse(event.data).detail));
      ended = true;
      endNote = "live log stopped";
      updateFollow();
    });
    opened.addEventListener("error", () => {
      if (gen !== generation || source !== opened) return;
      if (opened.readyState !== EventSource.CLOSED) {
        interrupted = true; // EventSource reconnects by itself
        updateFollow();
        return;
      }
      // Refused outright (signed out, run gone): ask plainly, so the words reach the person.
      closeStream();
      stopped(gen);
    });
  }

  async function stopped(gen) {
    try {
      await api(`${base(run)}?offset=${end}&limit=1`, { raw: true });
      if (gen !== generation) return;
      showError(new Error(`The live log of run ${run.id} stopped; reload the page to follow it again.`));
    } catch (error) {
      if (gen !== generation) return;
      showError(error);
    }
    if (gen !== generation) return;
    interrupted = false;
    ended = true;
    endNote = "live log stopped";
    updateFollow();
  }

  // -- loading --------------------------------------------------------------------------
  /** Fetch the log's end, show it, and follow it live while the run is active. */
  async function loadTail(gen) {
    closeStream();
    loading = true;
    let response, text;
    try {
      response = await api(`${base(run)}?tail=${TAIL_BYTES}`, { raw: true });
      text = await response.text();
    } catch (error) {
      if (gen === generation) {
        showError(error);
        loading = false;
        ended = true;
        endNote = "the log could not be read";
        render();
      }
      return;
    }
    if (gen !== generation) return;
    loading = false;
    const start = Number(response.headers.get("X-Log-Start") || 0);
    const stop = Number(response.headers.get("X-Log-Offset") || start + utf8Length(text));
    const state = response.headers.get("X-Run-State") || run.state;
    const active = ACTIVE_RUN_STATES.has(state);
    const { lines: complete, partial } = splitLines(text);
    if (partial && !active) complete.push(partial); // an ended run's last line is whole
    entries.forEach((e) => e.node.remove());
    entries = [];
    lines.replaceChildren();
    lines.classList.remove("numbered");
    first = start;
    last = start;
    end = active ? stop - (partial ? utf8Length(partial) : 0) : stop;
    dropped = false;
    unseen = 0;
    following = true;
    ended = !active;
    endNote = active ? "" : run.exit_code == null ? "ended" : `ended, exit code ${run.exit_code}`;
    interrupted = false;
    if (state !== run.state) { run = { ...run, state }; updateRun(); }
    append(complete);
    last = end;
    if (!entries.length) first = end;
    render();
    toBottom();
    if (active) openStream(gen);
  }

  /** Fetch the part of the log before the window and put it on top. */
  async function loadEarlier() {
    if (loadingEarlier || first <= 0 || !run) return;
    const gen = generation;
    loadingEarlier = true;
    earlierButton.disabled = true;
    try {
      let size = PAGE_BYTES;
      let from, text;
      for (;;) {
        from = Math.max(0, first - size);
        text = await api(`${base(run)}?offset=${from}&limit=${first - from}`);
        if (gen !== generation) return;
        if (from === 0 || text.indexOf("\n") < text.length - 1 || size >= MAX_PAGE_BYTES) break;
        size *= 4; // one line longer than the page: read further back for its start
      }
      let cut = 0;
      if (from > 0) {
        // The chunk starts inside a line; that line begins in what stays unloaded.
        const newline = text.indexOf("\n");
        cut = newline + 1;
        from += utf8Length(text.slice(0, cut));
      }
      const { lines: earlier, partial } = splitLines(text.slice(cut));
      if (partial) earlier.push(partial);
      const parsed = earlier.map(parseLine);
      // Keep what the person looks at in place: the new lines go above it.
      const height = lines.scrollHeight;
      const top = lines.scrollTop;
      if (!entries.length) lines.replaceChildren();
      continueNumbers(parsed, { before: true });
      lines.prepend(rows(parsed));
      entries.unshift(...parsed);
      first = from;
      lines.scrollTop = top + (lines.scrollHeight - height);
      const over = entries.length - MAX_LINES;
      if (over > 0) {
        removeNewest(over);
        following = false; // the end is no longer on the page
      }
      render();
    } catch (error) {
      if (gen === generation) showError(error);
    } finally {
      loadingEarlier = false;
      earlierButton.disabled = false;
    }
  }

  /** Fetch the part of the log after the window (opened at a hit) and put it below. */
  async function loadLater() {
    if (loadingLater || last >= end || !run) return;
    const gen = generation;
    loadingLater = true;
    laterButton.disabled = true;
    try {
      let size = PAGE_BYTES;
      let text;
      for (;;) {
        text = await api(`${base(run)}?offset=${last}&limit=${Math.min(size, end - last)}`);
        if (gen !== generation) return;
        if (text.includes("\n") || last + size >= end || size >= MAX_PAGE_BYTES) break;
        size *= 4; // one line longer than the page: read on to its end
      }
      const { lines: later, partial } = splitLines(text);
      if (partial && ended && last + utf8Length(text) >= end) later.push(partial);
      const parsed = later.map(parseLine);
      continueNumbers(parsed);
      lines.append(rows(parsed));
      entries.push(...parsed);
      for (const e of parsed) last += e.bytes;
      const over = entries.length - MAX_LINES;
      if (over > 0) {
        // Keep what the person looks at in place: the lines go from above it.
        const height = lines.scrollHeight;
        const top = lines.scrollTop;
        removeOldest(over);
        lines.scrollTop = top - (height - lines.scrollHeight);
      }
      render();
    } catch (error) {
      if (gen === generation) showError(error);
    } finally {
      loadingLater = false;
      laterButton.disabled = false;
    }
  }

  /** The entry that starts at byte `offset`, with its index, if it is on the page. */
  function entryAt(offset) {
    if (offset < first || offset >= last) return null;
    let at = first;
    for (let i = 0; i < entries.length; i += 1) {
      if (at === offset) return { entry: entries[i], index: i };
      if (at > offset) return null;
      at += entries[i].bytes;
    }
    return null;
  }

  /** Show `entry` (line `line` of the log) in the middle of the box, marked and focused. */
  function showTarget(entry) {
    for (const old of lines.querySelectorAll(".logview-target")) old.classList.remove("logview-target");
    entry.node.hidden = false; // a hit the filter hides is still what the person asked for
    entry.node.classList.add("logview-target");
    entry.node.tabIndex = -1;
    following = false;
    entry.node.scrollIntoView({ block: "center" });
    entry.node.focus({ preventScroll: true });
    render();
  }

  /** Show the log around a hit: on the page already, or a page of the log read around it. */
  async function jumpTo(hit) {
    if (!run) return;
    const here = entryAt(hit.offset);
    if (here) {
      setNumbers(here.index, hit.line);
      showTarget(here.entry);
      return;
    }
    const gen = generation;
    const jump = ++jumpGeneration; // a later jump wins over this one
    let from = Math.max(0, hit.offset - PAGE_BYTES / 2);
    let response, text;
    try {
      response = await api(`${base(run)}?offset=${from}&limit=${PAGE_BYTES}`, { raw: true });
      text = await response.text();
    } catch (error) {
      if (gen === generation && jump === jumpGeneration) showError(error);
      return;
    }
    if (gen !== generation || jump !== jumpGeneration) return;
    const stop = Number(response.headers.get("X-Log-Offset") || from + utf8Length(text));
    let cut = 0;
    if (from < hit.offset) {
      // The page starts inside a line; the first whole line follows the first newline.
      cut = text.indexOf("\n") + 1;
      from += utf8Length(text.slice(0, cut));
    }
    const { lines: complete, partial } = splitLines(text.slice(cut));
    if (partial && ended && stop >= end) complete.push(partial); // an ended run's last line
    let parsed = complete.map(parseLine);
    let at = from;
    let index = -1;
    parsed.forEach((e, i) => { if (at === hit.offset) index = i; at += e.bytes; });
    if (index < 0) {
      showError(new Error(`Line ${hit.line.toLocaleString()} is not where the search found it; search again.`));
      loadTail(gen);
      return;
    }
    // At most MAX_LINES, the hit in their middle, and nothing past what the stream reached.
    const low = Math.max(0, Math.min(index - MAX_LINES / 2, parsed.length - MAX_LINES));
    for (const e of parsed.slice(0, low)) from += e.bytes;
    parsed = parsed.slice(low, low + MAX_LINES);
    index -= low;
    let size = from;
    let keep = 0;
    while (keep < parsed.length && (ended || size + parsed[keep].bytes <= end || keep <= index)) size += parsed[keep++].bytes;
    parsed = parsed.slice(0, keep);
    entries.forEach((e) => e.node.remove());
    entries = [];
    lines.replaceChildren(rows(parsed));
    entries = parsed;
    first = from;
    last = size;
    dropped = false;
    unseen = 0;
    setNumbers(index, hit.line);
    showTarget(entries[index]);
  }

  // -- search ---------------------------------------------------------------------------
  function searchSays(words) {
    searchStatus.textContent = words;
  }

  function clearSearch() {
    searchGeneration += 1;
    if (search && search.reader) search.reader.cancel().catch(() => {});
    search = null;
    hitList.replaceChildren();
    results.hidden = true;
    searchInput.removeAttribute("aria-invalid");
  }

  function plural(n, one, many) {
    return `${n.toLocaleString()} ${n === 1 ? one : many}`;
  }

  function searchEnded(end) {
    const count = search.count;
    search.next = end.next;
    moreButton.hidden = !end.next;
    moreButton.textContent = end.reason === "timeout" ? "Go on searching" : "More hits";
    if (end.reason === "end") {
      searchSays(count ? `${plural(count, "line matches", "lines match")} in the whole log.` : "No line of the log matches.");
    } else if (end.reason === "limit") {
      searchSays(`The first ${plural(count, "matching line", "matching lines")}; more may follow line ${(end.next.line - 1).toLocaleString()}.`);
    } else {
      searchSays(`${plural(count, "matching line", "matching lines")} so far. ${end.detail || ""}`);
    }
  }

  /** Search the whole log for what the box holds; `more` goes on where the last page ended. */
  async function runSearch({ more = false } = {}) {
    clearTimeout(searchTimer);
    if (!run) return;
    if (!more && !searchInput.value.trim()) { clearSearch(); return; }
    if (more && !(search && search.next)) return;
    const previous = search;
    clearSearch();
    const sg = searchGeneration;
    const params = more ? previous.params : { q: searchInput.value, regex: regexBox.checked, case: caseBox.checked };
    search = { params, count: more ? previous.count : 0, next: null, reader: null, items: [] };
    if (more) hitList.replaceChildren(...previous.items);
    results.hidden = false;
    moreButton.hidden = true;
    searchSays("Searching the whole log…");
    const query = new URLSearchParams({ q: params.q, regex: params.regex, case: params.case, limit: SEARCH_PAGE });
    if (more) { query.set("line", previous.next.line); query.set("offset", previous.next.offset); }
    const shown = run;
    let response;
    try {
      response = await api(`${base(run)}/search?${query}`, { raw: true });
    } catch (error) {
      if (sg !== searchGeneration) return;
      // A pattern that does not compile is the box's problem: say so beside it.
      if (error.status === 400 || error.status === 422) searchInput.setAttribute("aria-invalid", "true");
      searchSays(error.message);
      return;
    }
    if (sg !== searchGeneration || shown !== run) return;
    await readHits(response, sg);
  }

  /** Read the NDJSON answer, showing each hit the moment its line arrives. */
  async function readHits(response, sg) {
    const reader = response.body.getReader();
    search.reader = reader;
    const decoder = new TextDecoder();
    let buffer = "";
    let finished = false;
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (sg === searchGeneration) searchSays(`The search was interrupted (${error.message}); search again.`);
        return;
      }
      if (sg !== searchGeneration) return;
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      const fragment = document.createDocumentFragment();
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const record = JSON.parse(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
        if (record.type === "hit") {
          search.count += 1;
          fragment.append(renderHit(record, jumpTo));
        } else if (record.type === "progress") {
          searchSays(`Searching… ${plural(search.count, "matching line", "matching lines")} so far, at line ${record.line.toLocaleString()}.`);
        } else if (record.type === "end") {
          finished = true;
          searchEnded(record);
        }
      }
      hitList.append(fragment);
      search.items = [...hitList.children];
      if (!finished) searchSays(`Searching… ${plural(search.count, "matching line", "matching lines")} so far.`);
    }
    if (!finished) searchSays("The search ended early; search again.");
  }

  function follow() {
    following = true;
    if (atEnd()) {
      unseen = 0;
      toBottom();
      render();
      lines.focus({ preventScroll: true });
      return;
    }
    // The window left the end (earlier pages, or more new lines than fit): read it again.
    const gen = ++generation;
    lines.focus({ preventScroll: true });
    loadTail(gen);
  }

  function applyFilter() {
    for (const e of entries) e.node.hidden = !matches(e);
    if (following && atEnd()) toBottom();
    updateCount();
  }

  // -- events ---------------------------------------------------------------------------
  const onScroll = () => {
    const now = nearBottom() && atEnd();
    if (now !== following) {
      following = now;
      if (now) unseen = 0;
      updateFollow();
    }
  };
  const onKey = (event) => {
    if (event.key === "End" && (event.ctrlKey || event.metaKey || event.target === lines)) { event.preventDefault(); follow(); }
  };
  lines.addEventListener("scroll", onScroll, { passive: true });
  lines.addEventListener("keydown", onKey);
  followButton.addEventListener("click", follow);
  earlierButton.addEventListener("click", loadEarlier);
  filter.addEventListener("input", applyFilter);
  laterButton.addEventListener("click", loadLater);
  searchForm.addEventListener("submit", (event) => { event.preventDefault(); runSearch(); });
  searchInput.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchInput.removeAttribute("aria-invalid");
    searchTimer = setTimeout(() => runSearch(), SEARCH_DELAY);
  });
  searchInput.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !results.hidden) { event.preventDefault(); clearSearch(); }
    if (event.key === "ArrowDown" && hitList.firstElementChild) { event.preventDefault(); hitList.querySelector("button").focus(); }
  });
  for (const box of [regexBox, caseBox]) box.addEventListener("change", () => { if (searchInput.value.trim()) runSearch(); });
  moreButton.addEventListener("click", () => runSearch({ more: true }));
  closeButton.addEventListener("click", () => { clearSearch(); searchInput.focus(); });
  // Up and down walk the hits; Enter (the button's own) shows one.
  hitList.addEventListener("keydown", (event) => {
    const item = event.target.closest("li");
    if (!item || (event.key !== "ArrowDown" && event.key !== "ArrowUp")) return;
    event.preventDefault();
    const next = event.key === "ArrowDown" ? item.nextElementSibling : item.previousElementSibling;
    (next ? next.querySelector("button") : searchInput).focus();
  });
  for (const box of Object.values(streamBoxes)) box.addEventListener("change", applyFilter);
  render();

  return {
    /** Show `run`'s log (a run object of the API). */
    show(next) {
      if (run && next && next.id === run.id) {
        // The same run again: take its new state; the stream goes on (or reports the end).
        run = { ...run, ...next };
        updateRun();
        return;
      }
      closeStream();
      clearSearch();
      const gen = ++generation;
      run = next;
      entries.forEach((e) => e.node.remove());
      entries = [];
      lines.classList.remove("numbered");
      first = last = end = 0;
      dropped = false;
      unseen = 0;
      following = true;
      ended = false;
      endNote = "";
      interrupted = false;
      lines.replaceChildren();
      if (!run) { render(); return; }
      updateRun();
      render();
      loadTail(gen);
    },
    /** Close the stream and empty the container. */
    destroy() {
      generation += 1;
      clearSearch();
      closeStream();
      entries = [];
      container.replaceChildren();
    },
  };
}
