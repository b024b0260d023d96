// Resumable uploads of big files from the browser straight to object storage.
//
// The algorithm is the CLI's (winslow/cli/transfer.py): the server begins an S3 multipart
// upload and hands out presigned PUT URLs; parts go to object storage in parallel, each
// with its Content-MD5 (object storage refuses bytes damaged on the way); completion sends
// every part's MD5 and the size, which the server checks before the file appears.
//
// Resuming: the upload's ID is remembered in localStorage under the uploads path, the
// destination and the file's name, size and modification time. Browsers cannot reopen a
// file after a reload, so the person picks it again; the same file to the same place
// then continues the same upload: the stored parts are listed, a part is kept only if its
// size is right and its ETag equals the MD5 of this file's bytes for it, and only the
// other parts are sent. A network drop is retried with pauses (waiting while the browser
// is offline); if it lasts, the upload fails but stays resumable.
//
// Parts are read as slices (never the whole file): a Web Worker hashes each slice, and
// the PUT sends the slice itself, so a 100 GiB file costs a few parts of memory.
import { api, ApiError } from "./api.js";

/** Parts of one file in flight at once. */
export const PARTS_AT_ONCE = 4;

/** Pauses before the 2nd, 3rd, ... attempt of a part (or an API call) that failed, ms. */
const RETRY_PAUSES_MS = [1000, 2000, 5000, 10000, 20000, 30000];

/** Presigned part URLs asked for at a time; they expire (1 h), so they come as needed. */
const URL_BATCH = 20;

/** How often onProgress is called at most, ms. */
const PROGRESS_EVERY_MS = 150;

/** The speed is bytes sent over this last stretch of time, ms. */
const SPEED_WINDOW_MS = 6000;

const STORE_PREFIX = "winslow.upload:";
const SPARK_MD5_URL = "/vendor/spark-md5.js";

/** The localStorage key remembering the upload of `file` to `dest` through `uploadsPath`. */
export function uploadKey(uploadsPath, dest, file) {
  return STORE_PREFIX + JSON.stringify([trimSlash(uploadsPath), dest, file.name, file.size, file.lastModified]);
}

/**
 * Unfinished uploads remembered in this browser whose uploads path starts with
 * `uploadsPathPrefix`, oldest first: `{key, uploadsPath, dest, name, size, lastModified,
 * upload_id, path, part_size, part_count, sent, started, updated}` (`sent`: bytes stored
 * when last heard of; times in ms since the epoch).
 */
export function pendingUploads(uploadsPathPrefix = "") {
  const found = [];
  for (const key of storageKeys()) {
    const record = readRecord(key);
    if (record && record.uploadsPath.startsWith(uploadsPathPrefix)) found.push({ key, ...record });
  }
  return found.sort((a, b) => a.started - b.started);
}

/** Forget a remembered upload (object storage keeps its parts; see discardUpload). */
export function forgetUpload(key) {
  try { localStorage.removeItem(key); } catch (_) { /* storage disabled: nothing kept */ }
}

/** Abort a remembered upload on the server (its stored parts are dropped) and forget it. */
export async function discardUpload(key) {
  const record = readRecord(key);
  if (record) {
    try {
      await api(`${record.uploadsPath}/${encodeURIComponent(record.upload_id)}?path=${encodeURIComponent(record.path)}`, { method: "DELETE" });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 0 || error.status >= 500) throw error;
      // 4xx: completed, aborted or expired already; nothing left to drop.
    }
  }
  forgetUpload(key);
}

/**
 * Upload `file` to `dest` through the API's uploads endpoint `uploadsPath` (below /api/v1,
 * e.g. `/resources/uploads`); resolve to the completion's JSON (the new file's entry).
 *
 * `onProgress({sent, total, bytesPerSecond, secondsLeft, phase, kept})` is called as bytes
 * move: `sent` counts bytes stored or on their way, from the bytes kept from an earlier
 * attempt (`kept`) on; `bytesPerSecond` and `secondsLeft` are null until measured;
 * `phase` is "checking" (hashing parts stored earlier), "sending", "offline" (waiting
 * for the network to come back) or "completing".
 * `completeExtra` is merged into the completion's body (a workspace upload's `note`).
 *
 * The same file to the same `dest` after an interruption (even a reload) continues the
 * upload. Aborting `signal` cancels: parts in flight stop, the upload is aborted on the
 * server, and the promise rejects with an AbortError. Other failures reject with an
 * Error whose message says what to do; the upload then stays resumable.
 */
export async function uploadFile({ file, uploadsPath, dest, onProgress, completeExtra = {}, signal }) {
  uploadsPath = trimSlash(uploadsPath);
  const key = uploadKey(uploadsPath, dest, file);
  const size = file.size;
  throwIfAborted(signal);

  let upload = null;
  let stored = [];
  const earlier = readRecord(key);
  if (earlier && earlier.size === size) {
    try {
      stored = (await withRetries(() => api(`${uploadsPath}/${encodeURIComponent(earlier.upload_id)}/parts?path=${encodeURIComponent(earlier.path)}`), signal)).parts;
      upload = earlier;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 0 || error.status >= 500) throw error;
      forgetUpload(key); // completed, aborted or expired: begin again
    }
  }
  if (!upload) {
    // A retry after a lost answer may begin a second upload; the first then holds no parts.
    const begun = await withRetries(() => api(uploadsPath, { method: "POST", body: { path: dest, size } }), signal);
    upload = {
      uploadsPath, dest, name: file.name, size, lastModified: file.lastModified,
      upload_id: begun.upload_id, path: begun.path, part_size: begun.part_size,
      part_count: begun.part_count, sent: 0, started: Date.now(), updated: Date.now(),
    };
    writeRecord(key, upload);
  }

  const progress = new Progress(size, onProgress);
  const base = `${uploadsPath}/${encodeURIComponent(upload.upload_id)}`;
  const partSize = upload.part_size;
  const count = upload.part_count;
  const length = (n) => Math.max(0, Math.min(partSize, size - (n - 1) * partSize));
  const slice = (n) => file.slice((n - 1) * partSize, (n - 1) * partSize + length(n));

  try {
    const done = new Map(); // part number → hex MD5
    if (stored.length) {
      const candidates = new Map();
      for (const part of stored) {
        const n = Number(part.part_number);
        if (n >= 1 && n <= count && Number(part.size) === length(n)) {
          if (!candidates.has(n)) candidates.set(n, new Set());
          candidates.get(n).add(String(part.etag).replace(/"/g, "").toLowerCase());
        }
      }
      let claimed = 0;
      for (const n of candidates.keys()) claimed += length(n);
      progress.phase = "checking";
      progress.kept = claimed;
      progress.report(true);
      await eachAtOnce([...candidates.keys()], PARTS_AT_ONCE, async (n) => {
        const md5 = await md5Hex(slice(n), signal);
        if (candidates.get(n).has(md5)) done.set(n, md5);
      });
      progress.kept = [...done.keys()].reduce((sum, n) => sum + length(n), 0);
    }
    progress.phase = "sending";
    progress.report(true);

    const missing = [];
    for (let n = 1; n <= count; n += 1) if (!done.has(n)) missing.push(n);
    const urls = new PartUrls(base, upload.path, signal);
    await eachAtOnce(missing, PARTS_AT_ONCE, async (n, upcoming) => {
      const md5 = await sendPart({
        number: n, body: slice(n), name: file.name, urls, upcoming, signal,
        onSent: (bytes) => progress.inFlight(n, bytes),
        onOffline: (waiting) => progress.offline(waiting),
      });
      done.set(n, md5);
      progress.partDone(n, length(n));
      writeRecord(key, { ...upload, sent: progress.stored(), updated: Date.now() });
    });

    progress.phase = "completing";
    progress.report(true);
    throwIfAborted(signal);
    const result = await complete(base, {
      ...completeExtra,
      path: upload.path,
      size,
      parts: [...done.keys()].sort((a, b) => a - b).map((n) => ({ part_number: n, md5: done.get(n) })),
    }, signal, (waiting) => progress.offline(waiting));
    forgetUpload(key);
    if (result && result.size != null && Number(result.size) !== size) {
      throw new Error(`Uploaded '${upload.path}' is ${result.size} bytes, but '${file.name}' has ${size}; upload it again.`);
    }
    return result;
  } catch (error) {
    if (signal && signal.aborted) {
      // Where the abort does not reach the server, the upload stays listed as interrupted,
      // with a Discard button; the cancel itself stands either way.
      await discardUpload(key).catch(() => {});
      throw abortError();
    }
    throw error;
  }
}

// -- sending parts ----------------------------------------------------------------------

/** Presigned URLs, asked for in batches as parts come up, and again when one expired. */
class PartUrls {
  constructor(base, path, signal) {
    this.base = base;
    this.path = path;
    this.signal = signal;
    this.urls = new Map();
    this.asked = new Map(); // part number → promise of the batch that brings its URL
  }

  async get(number, upcoming = []) {
    if (!this.urls.has(number)) {
      if (!this.asked.has(number)) {
        const wanted = [number, ...upcoming.filter((n) => !this.urls.has(n) && !this.asked.has(n))].slice(0, URL_BATCH);
        const batch = withRetries(() => api(`${this.base}/urls`, {
          method: "POST", body: { path: this.path, part_numbers: wanted },
        }), this.signal).then((answer) => {
          for (const [n, url] of Object.entries(answer.urls)) this.urls.set(Number(n), url);
        }).finally(() => { for (const n of wanted) this.asked.delete(n); });
        for (const n of wanted) this.asked.set(n, batch);
      }
      await this.asked.get(number);
    }
    const url = this.urls.get(number);
    this.urls.delete(number); // one use: a retry after a refusal asks for a fresh one
    if (!url) throw new Error(`The server sent no upload URL for part ${number}; upload the file again.`);
    return url;
  }
}

/** PUT one part, retrying lost connections, 5xx, damaged bodies and expired URLs; return its MD5. */
async function sendPart({ number, body, name, urls, upcoming, signal, onSent, onOffline }) {
  const md5 = await md5Hex(body, signal);
  const contentMd5 = hexToBase64(md5);
  let refreshed = false;
  for (let failures = 0; ;) {
    const url = await urls.get(number, upcoming);
    const answer = await put(url, body, contentMd5, onSent, signal);
    if (answer.status >= 200 && answer.status < 300) {
      const etag = (answer.etag || "").replace(/"/g, "").toLowerCase();
      if (etag && etag !== md5) {
        throw new Error(`Object storage stored part ${number} of '${name}' with checksum ${etag}, but the bytes sent have ${md5}; upload the file again to resend it.`);
      }
      return md5;
    }
    onSent(0);
    if (answer.status === 0 && !navigator.onLine) {
      onOffline(true);
      try {
        await untilOnline(signal); // offline: wait for the network; that is no failed try
      } finally {
        onOffline(false);
      }
      continue;
    }
    const problem = s3Message(answer.text);
    const said = `${answer.status}${problem ? `: ${problem}` : ""}`;
    // 0: connection lost; 5xx: object storage hiccup; a first 403: the URL expired (the
    // next try gets a fresh one); BadDigest: bytes damaged on the way. Anything else stays.
    const expired = answer.status === 403 && !refreshed;
    refreshed ||= expired;
    const transient = answer.status === 0 || answer.status >= 500 || expired
      || /BadDigest|RequestTimeout/.test(answer.text);
    if (!transient) {
      throw new Error(`Object storage refused part ${number} of '${name}' (${said}); upload the file again to resume.`);
    }
    failures += 1;
    if (failures > RETRY_PAUSES_MS.length) {
      const what = answer.status === 0 ? "the connection to object storage was lost" : `object storage answered ${said}`;
      throw new Error(`Part ${number} of '${name}' could not be sent (${what}; ${failures} tries). The parts stored so far are kept: upload the same file again to resume.`);
    }
    await pause(RETRY_PAUSES_MS[failures - 1], signal);
  }
}

/** POST .../complete, again once the network is back if the connection dropped. */
async function complete(base, body, signal, onOffline) {
  let dropped = false;
  for (let failures = 0; ; failures += 1) {
    try {
      return await api(`${base}/complete`, { method: "POST", body });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (dropped && error.status === 404) {
        throw new Error(`The connection dropped while '${body.path}' was being completed, and now the upload is gone: most likely it was completed. Refresh the listing to check, and upload the file again if it is missing.`);
      }
      if (error.status !== 0 || failures >= RETRY_PAUSES_MS.length) throw error;
      dropped = true;
      onOffline(true);
      try {
        await untilOnline(signal);
        await pause(RETRY_PAUSES_MS[failures], signal);
      } finally {
        onOffline(false);
      }
    }
  }
}

/** One PUT with upload progress (fetch has none); resolves to {status, etag, text}. */
function put(url, body, contentMd5, onSent, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const stop = () => xhr.abort();
    xhr.open("PUT", url);
    xhr.setRequestHeader("Content-MD5", contentMd5);
    xhr.upload.onprogress = (event) => onSent(event.loaded);
    xhr.onload = () => {
      signal?.removeEventListener("abort", stop);
      resolve({ status: xhr.status, etag: xhr.getResponseHeader("ETag"), text: xhr.responseText || "" });
    };
    xhr.onerror = xhr.ontimeout = () => {
      signal?.removeEventListener("abort", stop);
      resolve({ status: 0, etag: null, text: "" });
    };
    xhr.onabort = () => reject(abortError());
    signal?.addEventListener("abort", stop, { once: true });
    xhr.send(body);
  });
}

function s3Message(text) {
  const match = /<Message>([^<]*)<\/Message>/.exec(text || "");
  return match ? match[1] : (text || "").slice(0, 200);
}

// -- progress ---------------------------------------------------------------------------

class Progress {
  constructor(total, callback) {
    this.total = total;
    this.callback = callback;
    this.kept = 0;
    this.done = 0;
    this.flying = new Map();
    this.phase = "sending";
    this.waiting = 0;
    this.samples = [];
    this.lastReport = 0;
  }

  stored() { return this.kept + this.done; }

  inFlight(number, bytes) {
    this.flying.set(number, bytes);
    this.report(false);
  }

  offline(waiting) {
    this.waiting += waiting ? 1 : -1;
    this.report(true);
  }

  partDone(number, bytes) {
    this.flying.delete(number);
    this.done += bytes;
    this.report(this.stored() >= this.total);
  }

  report(force) {
    if (!this.callback) return;
    const now = performance.now();
    let moving = 0;
    for (const bytes of this.flying.values()) moving += bytes;
    const sessionSent = this.done + moving;
    this.samples.push([now, sessionSent]);
    while (this.samples.length > 2 && now - this.samples[1][0] > SPEED_WINDOW_MS) this.samples.shift();
    if (!force && now - this.lastReport < PROGRESS_EVERY_MS) return;
    this.lastReport = now;
    const [t0, s0] = this.samples[0];
    const seconds = (now - t0) / 1000;
    const bytesPerSecond = seconds >= 0.5 && sessionSent > s0 ? (sessionSent - s0) / seconds : null;
    const sent = Math.min(this.total, this.kept + sessionSent);
    this.callback({
      sent,
      total: this.total,
      bytesPerSecond,
      secondsLeft: bytesPerSecond ? (this.total - sent) / bytesPerSecond : null,
      phase: this.waiting ? "offline" : this.phase,
      kept: this.kept,
    });
  }
}

// -- MD5 off the main thread --------------------------------------------------------------

let sparkLoading = null;

/** window.SparkMD5, loading /vendor/spark-md5.js if the page did not. */
function sparkMd5() {
  if (window.SparkMD5) return Promise.resolve(window.SparkMD5);
  if (!sparkLoading) {
    sparkLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = SPARK_MD5_URL;
      script.onload = () => resolve(window.SparkMD5);
      script.onerror = () => {
        sparkLoading = null;
        reject(new Error(`The console's MD5 library (${SPARK_MD5_URL}) did not load, and uploads need it; run \`make\` where the Winslow server runs, then reload.`));
      };
      document.head.append(script);
    });
  }
  return sparkLoading;
}

/** Workers that read a Blob and hash it, one job each at a time; null where none start. */
class HashWorkers {
  constructor(size) {
    const spark = new URL(SPARK_MD5_URL, location.href).href;
    const source = `importScripts(${JSON.stringify(spark)});
self.onmessage = async (event) => {
  const { id, blob } = event.data;
  try {
    self.postMessage({ id, hex: self.SparkMD5.ArrayBuffer.hash(await blob.arrayBuffer()) });
  } catch (error) {
    self.postMessage({ id, error: String((error && error.message) || error) });
  }
};`;
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    this.idle = [];
    this.waiting = [];
    this.jobs = new Map();
    this.nextId = 1;
    this.broken = null;
    for (let i = 0; i < size; i += 1) {
      const worker = new Worker(url);
      worker.onmessage = (event) => this.finished(worker, event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        this.broken = new Error(`Hashing upload parts failed (${event.message || "the MD5 worker did not start"}); reload the page.`);
        for (const job of this.jobs.values()) job.reject(this.broken);
        this.jobs.clear();
      };
      this.idle.push(worker);
    }
  }

  hash(blob) {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.waiting.push({ blob, resolve, reject });
      this.pump();
    });
  }

  pump() {
    while (this.idle.length && this.waiting.length) {
      const worker = this.idle.pop();
      const job = this.waiting.shift();
      const id = this.nextId++;
      this.jobs.set(id, { ...job, worker });
      worker.postMessage({ id, blob: job.blob });
    }
  }

  finished(worker, { id, hex, error }) {
    const job = this.jobs.get(id);
    this.jobs.delete(id);
    this.idle.push(worker);
    if (job) {
      if (error) job.reject(new Error(`Could not read the file to upload (${error}); pick it again.`));
      else job.resolve(hex);
    }
    this.pump();
  }
}

let workers;

/** Hex MD5 of a Blob (a slice of the file), hashed in a worker when workers run. */
async function md5Hex(blob, signal) {
  throwIfAborted(signal);
  if (workers === undefined) {
    try { workers = new HashWorkers(PARTS_AT_ONCE); } catch (_) { workers = null; }
  }
  if (workers && !workers.broken) {
    try {
      const hex = await workers.hash(blob);
      throwIfAborted(signal);
      return hex;
    } catch (error) {
      if (!workers.broken) throw error; // a worker that cannot start: hash here instead
    }
  }
  const SparkMD5 = await sparkMd5();
  const buffer = await blob.arrayBuffer();
  throwIfAborted(signal);
  return SparkMD5.ArrayBuffer.hash(buffer);
}

function hexToBase64(hex) {
  let binary = "";
  for (let i = 0; i < hex.length; i += 2) binary += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return btoa(binary);
}

// -- small helpers ------------------------------------------------------------------------

/** Run `action(item, upcoming)` over `items`, `limit` at a time; the first failure stops new starts. */
async function eachAtOnce(items, limit, action) {
  const queue = [...items];
  let failure = null;
  async function lane() {
    while (queue.length && !failure) {
      const item = queue.shift();
      try {
        await action(item, queue);
      } catch (error) {
        failure = failure || error;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, lane));
  if (failure) throw failure;
}

/** Call `request`, again after pauses while the server cannot be reached (or answers 5xx). */
async function withRetries(request, signal) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      throwIfAborted(signal);
      return await request();
    } catch (error) {
      const transient = error instanceof ApiError && (error.status === 0 || error.status >= 500);
      // A lost connection is waited out; a server that answers 5xx twice more is said so.
      const limit = error.status === 0 ? RETRY_PAUSES_MS.length : 2;
      if (!transient || attempt >= limit) throw error;
      await pause(RETRY_PAUSES_MS[attempt], signal);
      await untilOnline(signal);
    }
  }
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { signal?.removeEventListener("abort", stop); resolve(); }, ms);
    const stop = () => { clearTimeout(timer); reject(abortError()); };
    signal?.addEventListener("abort", stop, { once: true });
  });
}

function untilOnline(signal) {
  if (navigator.onLine) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const online = () => { signal?.removeEventListener("abort", stop); resolve(); };
    const stop = () => { window.removeEventListener("online", online); reject(abortError()); };
    window.addEventListener("online", online, { once: true });
    signal?.addEventListener("abort", stop, { once: true });
  });
}

function abortError() {
  return new DOMException("The upload was cancelled.", "AbortError");
}

function throwIfAborted(signal) {
  if (signal && signal.aborted) throw abortError();
}

function trimSlash(path) {
  return path.replace(/\/+$/, "");
}

function storageKeys() {
  try {
    const keys = [];
    for (let i = 0; i < localStorage.length; i += 1) {
      const key = localStorage.key(i);
      if (key && key.startsWith(STORE_PREFIX)) keys.push(key);
    }
    return keys;
  } catch (_) {
    return [];
  }
}

function readRecord(key) {
  try {
    const record = JSON.parse(localStorage.getItem(key) || "null");
    return record && record.upload_id && record.uploadsPath ? record : null;
  } catch (_) {
    return null;
  }
}

function writeRecord(key, record) {
  try { localStorage.setItem(key, JSON.stringify(record)); } catch (_) { /* full or disabled: not resumable */ }
}
