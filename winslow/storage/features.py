"""Ask an S3 server, once at start, for the one feature whose absence would go unnoticed.

Winslow relies on conditional writes (``PutObject`` with ``If-None-Match: *``): each
version of a workspace's manifest is written only where none is yet
(``workspaces.publish``), so two stage-outs publishing at once each get their own number.
A server that ignores the header answers 200 and overwrites, and nothing fails until a
version is lost; so ``check_features`` writes one probe key twice and refuses a server
that lets the second write through. What else Winslow needs (multipart uploads, ranged
GETs, presigned SigV4 URLs) fails loudly on first use; bucket CORS is ``ensure_bucket``'s.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import TYPE_CHECKING

from winslow.errors import ConflictError, StorageError, WinslowError

if TYPE_CHECKING:
    from winslow.storage.objects import ObjectStore

log = logging.getLogger(__name__)

PROBE_PREFIX = "probe/"
"""Folder of the short-lived keys ``check_features`` writes and deletes again."""

CONDITIONAL_WRITES = "conditional writes (PutObject with If-None-Match: *)"

_WHY_AND_WAY_OUT = (
    "Winslow needs them so that two stage-outs never overwrite each other's workspace "
    "versions; upgrade the S3 server (MinIO releases from mid-2024 on, SeaweedFS 4.x and "
    "AWS S3 have them), or point WINSLOW_S3_ENDPOINT at one that does."
)


class MissingS3FeatureError(StorageError):
    """The S3 server lacks a feature Winslow needs; ``feature`` names it."""

    def __init__(self, message: str, *, feature: str) -> None:
        super().__init__(message)
        self.feature = feature


def check_features(store: ObjectStore) -> None:
    """Write a probe key with ``If-None-Match: *`` twice; the second must be refused.

    Raises ``MissingS3FeatureError`` when the server overwrites the key or refuses the
    header itself (501 NotImplemented, 400), and what ``ObjectStore`` raises when storage
    does not answer. The probe key is deleted either way.
    """
    key = f"{PROBE_PREFIX}conditional-write-{secrets.token_hex(8)}"
    feature = CONDITIONAL_WRITES
    endpoint = store.cfg.endpoint_url
    try:
        try:
            store.put_bytes(key, b"first", if_none_match=True)
            store.put_bytes(key, b"second", if_none_match=True)
        except ConflictError:
            log.debug("object storage at %s: conditional writes work", endpoint)
            return
        except WinslowError as exc:
            if getattr(exc, "status_code", None) in (400, 501):
                raise MissingS3FeatureError(
                    f"Object storage at {endpoint} refuses {feature} ({exc}). " + _WHY_AND_WAY_OUT,
                    feature=feature,
                ) from exc
            raise
        raise MissingS3FeatureError(
            f"Object storage at {endpoint} ignores {feature}: a second write to "
            f"'{key}' overwrote the first instead of answering 412. " + _WHY_AND_WAY_OUT,
            feature=feature,
        )
    finally:
        with contextlib.suppress(WinslowError):
            store.delete(key)
