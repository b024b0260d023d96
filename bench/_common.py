"""What the storage benchmarks share: sizes, test data, a SeaweedFS, and a byte meter.

``seaweed_store`` starts a real SeaweedFS (``weed mini``) on 127.0.0.1 in a folder and
yields an ``ObjectStore`` on it; it is stopped in ``finally``. ``ByteMeter`` hooks the
boto3 client of that store and counts, per key, the bytes every request sent (PutObject,
UploadPart bodies) and every GetObject answered with, so a benchmark reports what went
over the wire rather than what Winslow says it sent.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from winslow.storage.objects import ObjectStore
from winslow.storage.seaweed import SeaweedServer
from winslow.units import MIB, parse_bytes

BLOCK = 64 * MIB
"""Random bytes drawn once per file and repeated, bytes."""
STAMP_EVERY = MIB
"""Every MiB of a written file starts with its own counter, so no two MiB are alike."""
BUCKET = "winslow"

UPLOAD_OPERATIONS = frozenset({"PutObject", "UploadPart"})
COPY_OPERATIONS = frozenset({"CopyObject", "UploadPartCopy"})


def parse_size(text: str) -> int:
    """``512M``, ``4G``, ``1.5GiB``, ``1000`` -> bytes, by ``winslow.units.parse_bytes``
    (binary units; a bare number is bytes). A bad ``--size`` ends the run with its message."""
    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise SystemExit(f"--size: {exc}") from None


def write_file(path: Path, size: int, first_stamp: int = 0) -> int:
    """Write ``size`` bytes of a fresh random block, each MiB stamped; return the next stamp.

    Pass the returned stamp to the next file so that no two files share a MiB either.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    block = bytearray(os.urandom(BLOCK))
    written = 0
    counter = first_stamp
    with path.open("wb") as handle:
        while written < size:
            for offset in range(0, BLOCK, STAMP_EVERY):
                block[offset : offset + 8] = counter.to_bytes(8, "little")
                counter += 1
            chunk = memoryview(block)[: min(BLOCK, size - written)]
            handle.write(chunk)
            written += len(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    return counter


def drop_page_cache_hint(path: Path) -> None:
    """Ask the kernel to forget ``path``'s cached pages (best effort, no root needed)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@contextmanager
def seaweed_store(data_dir: Path) -> Iterator[ObjectStore]:
    """A SeaweedFS on 127.0.0.1 with its data in ``data_dir``; yields a store on its bucket."""
    server = SeaweedServer(data_dir, bucket=BUCKET)
    cfg = server.start()
    try:
        store = ObjectStore(cfg)
        store.ensure_bucket()
        yield store
    finally:
        server.stop()


class ByteMeter:
    """Counts bytes sent and received by one boto3 client, per operation and key.

    ``sent`` sums the Content-Length of request bodies (what a PutObject or UploadPart
    writes to storage); ``received`` sums the Content-Length of GetObject answers (what a
    download fetches). ``requests`` counts every request by operation. Thread-safe: the
    transfer manager calls from several threads.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.bucket = store.bucket
        self._lock = threading.Lock()
        self.sent: dict[tuple[str, str], int] = defaultdict(int)
        self.received: dict[tuple[str, str], int] = defaultdict(int)
        self.requests: dict[str, int] = defaultdict(int)
        events = store.client.meta.events
        events.register("before-send.s3.*", self._on_send)
        events.register("after-call.s3.GetObject", self._on_get)

    def reset(self) -> None:
        with self._lock:
            self.sent.clear()
            self.received.clear()
            self.requests.clear()

    def _key(self, url: str) -> str:
        path = unquote(urlsplit(url).path).lstrip("/")
        prefix = self.bucket + "/"
        return path[len(prefix) :] if path.startswith(prefix) else path

    def _on_send(self, request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        length = request.headers.get("Content-Length")
        if length is None:
            body = request.body
            length = len(body) if isinstance(body, bytes | bytearray) else 0
        with self._lock:
            self.requests[operation] += 1
            self.sent[(operation, self._key(request.url))] += int(length)
        return None

    def _on_get(self, http_response: Any, parsed: Any, **_: Any) -> None:
        key = self._key(http_response.url) if hasattr(http_response, "url") else "?"
        with self._lock:
            self.received[("GetObject", key)] += int(parsed.get("ContentLength", 0) or 0)

    def sent_bytes(
        self, operations: frozenset[str] = UPLOAD_OPERATIONS, where: Callable[[str], bool] = bool
    ) -> int:
        """Bytes sent by ``operations`` to keys for which ``where`` holds."""
        with self._lock:
            return sum(n for (op, key), n in self.sent.items() if op in operations and where(key))

    def received_bytes(self, where: Callable[[str], bool] = bool) -> int:
        """Bytes GetObject answered with for keys for which ``where`` holds."""
        with self._lock:
            return sum(n for (_, key), n in self.received.items() if where(key))


class EventClock:
    """An ``event`` callback for stage-in and stage-out that keeps each message's time."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.seen: list[tuple[float, str]] = []

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        self.seen.append((now, message))
        if self.echo:
            print(f"  event: {message}", file=sys.stderr)

    def first(self, starts_with: str) -> float:
        """When the first message starting with ``starts_with`` came; KeyError if none did."""
        for when, message in self.seen:
            if message.startswith(starts_with):
                return when
        raise KeyError(starts_with)


def bucket_bytes(store: ObjectStore, prefix: str) -> int:
    """Total size of the objects below ``prefix``."""
    return sum(e.size for e in store.list(prefix, recursive=True) if not e.is_dir)
