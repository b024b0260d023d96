"""Workspaces in object storage: manifest versions, content blobs, in-flight records.

Each run's workspace prefix holds ``manifests/<n>.json``, versions 1, 2, ...; the highest
is the workspace as it stands. A version is written with ``If-None-Match: *``, so it
appears whole or not at all and two writers never replace each other's version: the
loser takes the next number. Contents live once, by hash, under ``blobs/``; before a
stage-out relies on a blob it records the blobs it is about to reference under
``pending/``, so garbage collection keeps them until the manifest that names them is
written.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from winslow.errors import ConflictError, NotFoundError
from winslow.storage import keys
from winslow.storage.manifest import Manifest, from_json, iso_time, parse_time, to_json
from winslow.storage.objects import ObjectStore

log = logging.getLogger(__name__)

PUBLISH_ATTEMPTS = 20
"""Versions tried before giving up when others keep taking the next number."""


@dataclass(frozen=True)
class Version:
    """One stored version of a workspace."""

    number: int
    manifest: Manifest


def now_iso() -> str:
    """The time now as manifests record it (UTC, ISO 8601, milliseconds)."""
    return iso_time(time.time())


def version_numbers(store: ObjectStore, workspace: str) -> list[int]:
    """Return the versions stored for the workspace at prefix ``workspace``, ascending."""
    numbers = []
    for entry in store.list(keys.manifests_prefix(workspace)):
        if not entry.is_dir:
            number = keys.manifest_version(entry.path)
            if number is not None:
                numbers.append(number)
    return sorted(numbers)


def read_version(store: ObjectStore, workspace: str, number: int | None = None) -> Version | None:
    """Return version ``number`` (default: the latest) of a workspace, or None if it has none.

    Raises ``NotFoundError`` for a ``number`` that does not exist.
    """
    if number is None:
        numbers = version_numbers(store, workspace)
        if not numbers:
            return None
        number = numbers[-1]
    key = keys.manifest_key(workspace, number)
    data = store.get_bytes(key)
    return Version(number, from_json(data, keys.describe_key(key)))


def publish(store: ObjectStore, workspace: str, manifest: Manifest) -> int:
    """Write ``manifest`` as the next version of ``workspace``; return its number.

    The write is conditional: a version someone else wrote meanwhile is never replaced;
    this one then takes the number after it.
    """
    numbers = version_numbers(store, workspace)
    number = (numbers[-1] if numbers else 0) + 1
    data = to_json(manifest)
    for _ in range(PUBLISH_ATTEMPTS):
        key = keys.manifest_key(workspace, number)
        try:
            store.put_bytes(key, data, if_none_match=True)
        except ConflictError:
            number += 1
            continue
        log.info(
            "workspace %s: version %d published (%d files)", workspace, number, len(manifest.files)
        )
        return number
    raise ConflictError(
        f"Could not publish a new version of {keys.describe_key(workspace)}: "
        f"{PUBLISH_ATTEMPTS} others were published at the same time. Try again."
    )


def has_blob(store: ObjectStore, key: str) -> bool:
    """Return True when the blob at ``key`` is stored."""
    return store.exists(key)


def record_pending(store: ObjectStore, workspace: str, blobs: Iterable[str]) -> str:
    """Record that a stage-out of ``workspace`` is about to reference ``blobs``; return the key."""
    key = keys.pending_key(workspace, secrets.token_hex(8))
    body = {"workspace": workspace, "created": now_iso(), "blobs": sorted(set(blobs))}
    store.put_bytes(key, json.dumps(body).encode("utf-8"))
    return key


def clear_pending(store: ObjectStore, key: str) -> None:
    """Drop a record written by ``record_pending`` (its manifest is published now)."""
    store.delete(key)


def read_pending(store: ObjectStore, key: str) -> tuple[datetime | None, set[str]]:
    """Return when a pending record was written and the blobs it names (empty if gone)."""
    try:
        body = json.loads(store.get_bytes(key))
    except NotFoundError:
        return None, set()
    except ValueError:
        return None, set()
    created = parse_time(str(body.get("created", "")))
    return created, {str(blob) for blob in body.get("blobs", [])}
