"""Copying a finished job's log from the node to storage, where the console reads it.

The runner calls ``archive_log`` once the job's end is recorded, so the next stage never
waits for this upload; until it lands the log is read from the node, where it stays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from winslow.errors import StorageError
from winslow.node.jobfiles import JobPaths

if TYPE_CHECKING:
    from winslow.storage.objects import ObjectStore
    from winslow.storage.s3 import S3Config

log = logging.getLogger(__name__)

SMALL_LOG_BYTES = 8 * 1024 * 1024
"""Logs up to this size are archived with one PUT; the transfer manager's threads would
cost more than the upload itself."""


def archive_log(
    paths: JobPaths,
    log_key: str,
    store: Callable[[], ObjectStore],
    storage: S3Config | None = None,
) -> None:
    """Copy the job's finished log to ``log_key``; never raises.

    A small log goes in one direct PUT to ``storage`` where it can (``storage.direct``: a
    fifth of the CPU of the client's call), else, or when that fails, through ``store``'s
    client with its retries. If that fails too, the log stays on the node (logged).
    """
    try:
        if paths.log.stat().st_size <= SMALL_LOG_BYTES:
            data = paths.log.read_bytes()
            if storage is not None and _put_directly(storage, log_key, data):
                return
            store().put_bytes(log_key, data)
        else:
            store().upload_file(paths.log, log_key)
    except Exception as exc:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        log.warning(
            "job %s: could not archive the log, it stays on the node: %s",
            paths.root.name,
            message,
        )


def _put_directly(storage: S3Config, key: str, data: bytes) -> bool:
    """True when ``data`` was stored at ``key`` by one direct PUT (``storage.direct``)."""
    from winslow.storage import direct

    if not direct.can_put(storage):
        return False
    try:
        direct.put_object(storage, key, data)
    except StorageError as exc:
        log.info("%s; sending it through the client", exc.message)
        return False
    return True
