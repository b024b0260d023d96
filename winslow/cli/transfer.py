"""Moving big files between this machine and the resource pool or a workspace.

Uploads are S3 multipart uploads through presigned part URLs the server hands out:
parts go in parallel, straight to object storage, each with its Content-MD5; the server
checks every part's MD5 and the total size before the file appears. An interrupted upload
resumes when the same command runs again (the upload ID is remembered in the user's
cache, and a part already stored is skipped when it holds this file's bytes).

Downloads stream a presigned URL into a ``.part`` file that a rerun continues with a
``Range`` request; the file gets its real name only when complete, so a half download
never replaces a good file. The ``.part`` file is named after the version of the bytes
the server described, so a file that changed between two attempts starts over instead
of being continued with the new bytes after the old ones.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from winslow import defaults
from winslow.atomic import write_text_atomic
from winslow.cli.client import ApiClient, CommandError, cache_dir

Progress = Callable[[int], None]

UPLOADS_PATH = "/resources/uploads"
"""API path of the resource pool's uploads; a workspace's is
``/projects/<ref>/workspace/uploads``."""

URL_BATCH = 100
"""Part URLs asked for at a time; presigned URLs expire, so they are fetched as needed."""

PUT_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0)
"""Pauses before the 2nd, 3rd, ... attempt of a part that failed; its length bounds them."""

HASH_CHUNK_BYTES = 1024 * 1024
"""Read size when hashing a part, before sending it or to check a stored one is this file's."""

SEND_CHUNK_BYTES = 1024 * 1024
"""Read size of a part's body as it is sent, bytes: what one part in flight holds in memory."""

PARTIAL_TAG_CHARS = 12
"""Hex characters of a version's hash in a partial download's name."""

_PUT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=300.0, pool=10.0)


def _upload_state_file(
    local: Path, dest: str, addr: str, uploads_path: str, extra: dict[str, Any]
) -> Path:
    stat = local.stat()
    key = "|".join(
        [
            addr,
            uploads_path,
            json.dumps(extra, sort_keys=True, default=str),
            str(local.resolve()),
            str(stat.st_size),
            str(stat.st_mtime_ns),
            dest,
        ]
    )
    return cache_dir() / "uploads" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def upload_file(
    api: ApiClient,
    local: Path,
    dest: str,
    progress: Progress | None = None,
    threads: int = defaults.TRANSFER_THREADS,
    uploads_path: str = UPLOADS_PATH,
    extra: dict[str, Any] | None = None,
    complete_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Upload ``local`` to ``dest`` through the API's presigned multipart path; return the
    file entry the server answers with completion.

    ``uploads_path`` is the API's uploads endpoint (the resource pool by default; a
    workspace's for workspace uploads), ``extra`` is merged into the body that creates
    the upload and ``complete_extra`` into the one that completes it. Parts go ``threads``
    at a time, each streamed from the file (never held whole) with its Content-MD5, so
    object storage refuses bytes damaged on the way; completion sends every part's MD5
    and the size, which the server checks before the file appears.

    Run again with the same arguments after an interruption, it continues the same upload
    (its ID is kept in the user's cache): a part already stored is kept only if its size
    is right and its ETag equals the MD5 of this file's bytes for that part (hashed here,
    not sent); every other part is sent again. ``progress`` gets the bytes kept first,
    then each part's length as it is stored, possibly from several threads.
    """
    size = local.stat().st_size
    uploads_path = uploads_path.rstrip("/")
    extra = dict(extra or {})
    state_file = _upload_state_file(local, dest, api.settings.addr, uploads_path, extra)
    upload, stored = _resumable_upload(api, state_file, uploads_path, size)
    done: dict[int, str] = {}
    if upload is not None:
        done = _kept_parts(local, upload, stored, threads)
    else:
        upload = api.post(uploads_path, {**extra, "path": dest, "size": size})
        state_file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(state_file, json.dumps(upload), mode=0o600)
    part_size = int(upload["part_size"])
    count = int(upload["part_count"])
    kept = sum(_part_length(n, part_size, size) for n in done)
    if progress and kept:
        progress(kept)
    base = f"{uploads_path}/{upload['upload_id']}"
    missing = [n for n in range(1, count + 1) if n not in done]
    done.update(_send_parts(api, local, upload, base, missing, progress, threads))
    # Completing is idempotent on the server (a repeat answers with the finished file), so
    # a server restarting right now costs a wait, not the upload.
    result: dict[str, Any] = api.post(
        f"{base}/complete",
        {
            **(complete_extra or {}),
            "path": upload["path"],
            "size": size,
            "parts": [{"part_number": n, "md5": done[n]} for n in sorted(done)],
        },
        idempotent=True,
    )
    state_file.unlink(missing_ok=True)
    if int(result["size"]) != size:
        raise CommandError(
            f"Uploaded '{dest}' is {result['size']} bytes, but '{local}' has {size}; upload again."
        )
    return result


def _resumable_upload(
    api: ApiClient, state_file: Path, uploads_path: str, size: int
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The upload an earlier run of the same command began and the parts it has stored,
    if the server still has it; ``(None, [])`` otherwise."""
    if not state_file.is_file():
        return None, []
    try:
        upload: dict[str, Any] = json.loads(state_file.read_text())
        if int(upload["size"]) != size:
            return None, []
        stored: list[dict[str, Any]] = api.get(
            f"{uploads_path}/{upload['upload_id']}/parts", params={"path": upload["path"]}
        )["parts"]
    except (ValueError, KeyError, TypeError):
        return None, []  # a damaged state file: begin again
    except CommandError as exc:
        if exc.status_code is None or exc.status_code >= 500:
            raise
        return None, []  # completed, aborted or expired: begin again
    return upload, stored


def _kept_parts(
    local: Path, upload: dict[str, Any], stored: list[dict[str, Any]], threads: int
) -> dict[int, str]:
    """Part number → MD5 of the stored parts that hold exactly this file's bytes."""
    size = int(upload["size"])
    part_size = int(upload["part_size"])
    etags: dict[int, set[str]] = {}
    for part in stored:
        number = int(part["part_number"])
        if 1 <= number <= int(upload["part_count"]) and int(part["size"]) == _part_length(
            number, part_size, size
        ):
            etags.setdefault(number, set()).add(str(part["etag"]).strip('"').lower())

    def check(number: int) -> tuple[int, str | None]:
        md5 = _md5_of_part(local, number, part_size, size).hex()
        return number, md5 if md5 in etags[number] else None

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return {n: md5 for n, md5 in pool.map(check, sorted(etags)) if md5 is not None}


def _send_parts(
    api: ApiClient,
    local: Path,
    upload: dict[str, Any],
    base: str,
    numbers: list[int],
    progress: Progress | None,
    threads: int,
) -> dict[int, str]:
    """PUT ``numbers`` to presigned URLs, ``threads`` at a time; return number → MD5.

    At most ``threads`` parts are in flight at once, each read from the file in
    ``SEND_CHUNK_BYTES`` pieces as it is sent, so memory stays at a few MiB whatever the
    part size. A part's MD5 (its Content-MD5) is hashed from the file while the parts
    before it are sent, at most ``threads`` parts ahead, so a sender rarely waits for it.
    A failure stops the upload after the parts already on the way.
    """
    size = int(upload["size"])
    part_size = int(upload["part_size"])
    width = max(1, threads)
    urls = _PartUrls(api, base, str(upload["path"]))

    def send(http: httpx.Client, number: int, digest: Future[bytes]) -> tuple[int, str]:
        length = _part_length(number, part_size, size)
        body = _PartBody(local, (number - 1) * part_size, length)
        md5 = _send_part(http, number, body, digest.result(), urls)
        if progress:
            progress(length)
        return number, md5

    done: dict[int, str] = {}
    queue = deque(numbers)
    hashed: dict[int, Future[bytes]] = {}
    running: set[Future[tuple[int, str]]] = set()
    with ThreadPoolExecutor(max_workers=width) as hashers:

        def hash_ahead(count: int) -> None:
            for number in itertools.islice(queue, count):
                if number not in hashed:
                    hashed[number] = hashers.submit(_md5_of_part, local, number, part_size, size)

        # The first parts are hashed while the HTTP client (its TLS context takes tens of
        # milliseconds) and the first URLs are made ready.
        hash_ahead(2 * width)
        try:
            with (
                httpx.Client(timeout=_PUT_TIMEOUT) as http,
                ThreadPoolExecutor(max_workers=width) as senders,
            ):
                try:
                    while queue or running:
                        while queue and len(running) < width:
                            hash_ahead(1)
                            number = queue.popleft()
                            urls.ensure(number, queue)
                            running.add(senders.submit(send, http, number, hashed.pop(number)))
                        hash_ahead(width)
                        finished, running = wait(running, return_when=FIRST_COMPLETED)
                        for future in finished:
                            number, md5 = future.result()
                            done[number] = md5
                finally:
                    for future in running:
                        future.cancel()
        finally:
            for digest in hashed.values():
                digest.cancel()
    return done


def _send_part(
    http: httpx.Client, number: int, body: _PartBody, digest: bytes, urls: _PartUrls
) -> str:
    """PUT one part with its Content-MD5 and check what object storage stored; return
    the part's MD5."""
    md5 = digest.hex()
    # SeaweedFS and S3 check a Content-MD5 sent with a presigned PUT even though the
    # URL is not signed with it (400 BadDigest when the bytes do not match).
    headers = {
        "Content-MD5": base64.b64encode(digest).decode(),
        "Content-Length": str(len(body)),
    }
    etag = _put_part(http, number, body.local, body, headers, lambda: urls.fresh(number))
    if etag and etag != md5:
        raise CommandError(
            f"Object storage stored part {number} of '{body.local}' with checksum {etag}, but "
            f"the bytes sent have {md5}; run the same command again to resend it."
        )
    return md5


class _PartUrls:
    """Presigned PUT URLs of an upload's parts, asked for ``URL_BATCH`` at a time; each is
    used once (a retried PUT asks again: the one before may have expired)."""

    def __init__(self, api: ApiClient, base: str, path: str) -> None:
        self.api = api
        self.base = base
        self.path = path
        self.urls: dict[int, str] = {}

    def ensure(self, number: int, following: Iterable[int]) -> None:
        """Have a URL for ``number``, asking for the next parts' with it if need be."""
        if number not in self.urls:
            self._fetch([number, *itertools.islice(following, URL_BATCH - 1)])

    def fresh(self, number: int) -> str:
        if number not in self.urls:
            self._fetch([number])
        return self.urls.pop(number)

    def _fetch(self, wanted: list[int]) -> None:
        answer = self.api.post(
            f"{self.base}/urls", {"path": self.path, "part_numbers": wanted}, idempotent=True
        )
        self.urls.update({int(n): url for n, url in answer["urls"].items()})


def _put_part(
    http: httpx.Client,
    number: int,
    local: Path,
    body: _PartBody,
    headers: dict[str, str],
    next_url: Callable[[], str],
) -> str:
    """PUT one part, with retries on lost connections, 5xx, a damaged body and an expired
    URL; return the ETag object storage answered (no quotes, lower case)."""
    attempts = len(PUT_BACKOFF_SECONDS) + 1
    url = next_url()
    for attempt in range(attempts):
        if attempt:
            time.sleep(PUT_BACKOFF_SECONDS[attempt - 1])
        last = attempt == attempts - 1
        try:
            response = http.put(url, content=body, headers=headers)
        except httpx.TransportError:
            if last:
                raise CommandError(
                    f"Lost the connection to object storage while sending part {number} of "
                    f"'{local}'; run the same command again to resume."
                ) from None
            continue
        if response.status_code < 300:
            return str(response.headers.get("ETag", "")).strip('"').lower()
        if response.status_code == 403:
            url = next_url()  # the presigned URL expired: ask for a new one
        elif response.status_code >= 500 or b"BadDigest" in response.content:
            pass  # object storage hiccup, or bytes damaged on the way: send again
        else:
            last = True
        if last:
            raise CommandError(
                f"Object storage refused part {number} of '{local}' ({response.status_code}: "
                f"{_s3_error(response)}); run the same command again to resume."
            )
    raise AssertionError("unreachable")


def _s3_error(response: httpx.Response) -> str:
    text = response.text
    start, end = text.find("<Message>"), text.find("</Message>")
    return text[start + len("<Message>") : end] if 0 <= start < end else text[:200]


class _PartBody:
    """A part of a file as a PUT body: read in ``SEND_CHUNK_BYTES`` pieces while it is
    sent, from the start again on every iteration (a retried PUT sends it anew).

    Each piece is a fresh ``bytes`` that h11 passes to the socket uncopied; ``len`` is the
    part's length (the PUT's Content-Length). A whole part as one ``bytes`` cost a part of
    memory per thread and more: h11 copies the body once more, and httpcore slices the
    rest off after every partial ``send``, copying what is left each time."""

    def __init__(self, local: Path, offset: int, length: int) -> None:
        self.local = local
        self.offset = offset
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        left = self.length
        with self.local.open("rb", buffering=0) as handle:
            handle.seek(self.offset)
            while left > 0:
                chunk = handle.read(min(SEND_CHUNK_BYTES, left))
                if not chunk:
                    raise _changed(self.local)
                left -= len(chunk)
                yield chunk


def _changed(local: Path) -> CommandError:
    return CommandError(f"'{local}' changed while it was uploaded; run the command again.")


def _md5_of_part(local: Path, number: int, part_size: int, size: int) -> bytes:
    digest = hashlib.md5()
    left = _part_length(number, part_size, size)
    with local.open("rb", buffering=0) as handle:
        handle.seek((number - 1) * part_size)
        while left > 0:
            chunk = handle.read(min(HASH_CHUNK_BYTES, left))
            if not chunk:
                raise _changed(local)
            digest.update(chunk)
            left -= len(chunk)
    return digest.digest()


def _part_length(number: int, part_size: int, size: int) -> int:
    return max(0, min(part_size, size - (number - 1) * part_size))


def download(info: dict[str, Any], target: Path, progress: Progress | None = None) -> Path:
    """Download the file the API described in ``info`` (a ``DownloadPublic``) into
    ``target``, which gets the file's modification time where the server knows it."""
    download_url(info["url"], info["size"], target, progress, info.get("version") or "")
    if written := _parsed_time(info.get("modified")):
        os.utime(target, (time.time(), written))
    return target


def _parsed_time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def download_url(
    url: str, size: int, target: Path, progress: Progress | None = None, version: str = ""
) -> Path:
    """Download ``url`` into ``target`` through a partial file that a rerun continues when
    ``version`` (the server's name for these bytes) is the same; other partials of
    ``target`` hold other bytes and are removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_file(target, version)
    for stale in _partial_files(target):
        if stale != partial:
            stale.unlink(missing_ok=True)
    have = partial.stat().st_size if partial.exists() else 0
    if have > size:
        partial.unlink()
        have = 0
    if progress and have:
        progress(have)
    headers = {"Range": f"bytes={have}-"} if have else {}
    if have < size or size == 0:
        with httpx.stream(
            "GET",
            url,
            headers=headers,
            timeout=httpx.Timeout(connect=10.0, read=300.0, write=60.0, pool=10.0),
        ) as response:
            if response.status_code not in (200, 206):
                raise CommandError(
                    f"Object storage answered {response.status_code} for the download."
                )
            mode = "ab" if response.status_code == 206 else "wb"
            if mode == "wb" and progress and have:
                progress(-have)
            with partial.open(mode) as handle:
                for chunk in response.iter_bytes(1024 * 1024):
                    handle.write(chunk)
                    if progress:
                        progress(len(chunk))
    if partial.stat().st_size != size:
        raise CommandError(
            f"Downloaded {partial.stat().st_size} of {size} bytes of '{target.name}'; "
            "run the same command again to continue."
        )
    os.replace(partial, target)
    return target


def _partial_file(target: Path, version: str) -> Path:
    """Where the bytes of ``version`` of ``target`` gather until complete."""
    if not version:  # a server before versions: a partial is continued as it is
        return target.with_name(target.name + ".part")
    tag = hashlib.sha256(version.encode()).hexdigest()[:PARTIAL_TAG_CHARS]
    return target.with_name(f"{target.name}.{tag}.part")


def _partial_files(target: Path) -> list[Path]:
    """Partial downloads of ``target``, whatever version they hold."""
    if not target.parent.is_dir():
        return []
    pattern = re.compile(re.escape(target.name) + rf"(\.[0-9a-f]{{{PARTIAL_TAG_CHARS}}})?\.part")
    return [p for p in target.parent.iterdir() if pattern.fullmatch(p.name) and p.is_file()]
