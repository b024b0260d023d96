// The live log of a run, for the project page: the end of the log first, then new lines
// as the stage writes them (Server-Sent Events), earlier parts page by page on request.
//
// The page holds a window of the log, [first, last) in bytes, never more than MAX_LINES
// lines, so a chatty stage cannot freeze the tab. While the view follows the end, new
// lines push the oldest out; once the person scrolls up, the view stays where it is and
// new lines that would not fit are counted, not shown, until they jump back to the end.
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
  const entry = { raw, bytes: utf8Length(raw) + 1, time: null, stream: "", text: raw, node: null };
  if (match) {
    entry.time = match[1];
    entry.stream = match[2];
    entry.text = match[3];
  }
  entry.search = entry.text.toLowerCase();
  return entry;
}

function renderLine(entry) {
  const row = el("div", { className: `logview-line${entry.stream ? ` logview-${entry.stream}` : ""}` });
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
  const download = el("a", { className: "button", download: "" }, "Download whole log");
  const bar = el("div", { className: "logview-bar" },
    el("div", { className: "logview-which" }, title, badge, liveNote),
    el("div", { className: "logview-tools" },
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
  const body = el("div", { className: "logview-body" }, head, lines, followButton);
  const root = el("section", { className: "logview", "aria-label": "Run log" }, bar, body);
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
  let loading = false;

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
    download.setAttribute("aria-label", `Download the whole log of run ${run.id}`);
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
      if (atEnd()) {
        // All shown: the window takes the lines (or counts those that do not fit).
        if (append(data.lines) === data.lines.length) last = data.offset;
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
      const gen = ++generation;
      run = next;
      entries.forEach((e) => e.node.remove());
      entries = [];
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
      closeStream();
      entries = [];
      container.replaceChildren();
    },
  };
}
