"""Moving big files between this machine and the resource pool or a workspace.

Uploads are S3 multipart uploads through presigned part URLs the server hands out:
parts go in parallel, straight to object storage, and an interrupted upload resumes
when the same command runs again (the upload ID is remembered in the user's cache and
the parts already stored are skipped). Downloads stream a presigned URL into a
``.part`` file that a rerun continues with a ``Range`` request; the file gets its real
name only when complete, so a half download never replaces a good file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from winslow import defaults
from winslow.cli.client import ApiClient, CommandError, cache_dir

Progress = Callable[[int], None]


def _upload_state_file(local: Path, dest: str, addr: str) -> Path:
    stat = local.stat()
    key = f"{addr}|{local.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{dest}"
    return cache_dir() / "uploads" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def upload_file(
    api: ApiClient,
    local: Path,
    dest: str,
    progress: Progress | None = None,
    threads: int = defaults.TRANSFER_THREADS,
) -> dict[str, Any]:
    """Upload ``local`` to resource pool path ``dest``; resume an earlier attempt."""
    size = local.stat().st_size
    state_file = _upload_state_file(local, dest, api.settings.addr)
    upload: dict[str, Any] | None = None
    stored: dict[int, str] = {}
    if state_file.is_file():
        upload = json.loads(state_file.read_text())
        try:
            parts = api.get(
                f"/resources/uploads/{upload['upload_id']}/parts", params={"path": upload["path"]}
            )["parts"]
            stored = {
                p["part_number"]: p["etag"]
                for p in parts
                if p["size"] == _part_length(p["part_number"], upload["part_size"], size)
            }
        except CommandError:
            upload, stored = None, {}
    if upload is None:
        upload = api.post("/resources/uploads", {"path": dest, "size": size})
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(upload))
    part_size = int(upload["part_size"])
    count = int(upload["part_count"])
    if progress:
        progress(sum(_part_length(n, part_size, size) for n in stored))
    missing = [n for n in range(1, count + 1) if n not in stored]
    etags = dict(stored)
    with httpx.Client(
        timeout=httpx.Timeout(connect=10.0, read=300.0, write=300.0, pool=10.0)
    ) as http:

        def send(number: int, url: str) -> tuple[int, str]:
            offset = (number - 1) * part_size
            length = _part_length(number, part_size, size)
            with local.open("rb") as handle:
                handle.seek(offset)
                data = handle.read(length)
            for attempt in range(5):
                try:
                    response = http.put(url, content=data)
                    if response.status_code < 300:
                        break
                    if response.status_code < 500 or attempt == 4:
                        raise CommandError(
                            f"Object storage refused part {number} of '{local}' "
                            f"({response.status_code}); run the same command again to resume."
                        )
                except httpx.TransportError:
                    if attempt == 4:
                        raise CommandError(
                            f"Lost the connection to object storage while sending '{local}'; "
                            "run the same command again to resume."
                        ) from None
            if progress:
                progress(length)
            return number, response.headers["ETag"].strip('"')

        for batch_start in range(0, len(missing), 100):
            batch = missing[batch_start : batch_start + 100]
            urls = api.post(
                f"/resources/uploads/{upload['upload_id']}/urls",
                {"path": upload["path"], "part_numbers": batch},
            )["urls"]
            with ThreadPoolExecutor(max_workers=threads) as pool:
                futures = [pool.submit(send, n, urls[str(n)]) for n in batch]
                for future in futures:
                    number, etag = future.result()
                    etags[number] = etag
    result: dict[str, Any] = api.post(
        f"/resources/uploads/{upload['upload_id']}/complete",
        {
            "path": upload["path"],
            "parts": [{"part_number": n, "etag": etags[n]} for n in sorted(etags)],
        },
    )
    state_file.unlink(missing_ok=True)
    if int(result["size"]) != size:
        raise CommandError(
            f"Uploaded '{dest}' is {result['size']} bytes, but '{local}' has {size}; upload again."
        )
    return result


def _part_length(number: int, part_size: int, size: int) -> int:
    return max(0, min(part_size, size - (number - 1) * part_size))


def download_url(url: str, size: int, target: Path, progress: Progress | None = None) -> Path:
    """Download ``url`` into ``target`` via ``target.part``; continue a partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
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
