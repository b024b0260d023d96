"""The boto3 client factory and the translation of S3 failures into Winslow's error tree.

Every S3 client Winslow uses comes from ``make_client``, so timeouts, retries, the
signature version and path-style addressing are decided once, and every call is timed
and its failures counted for ``GET /metrics``. botocore's exceptions stop
at ``map_client_error``: a missing key becomes ``NotFoundError``, a failed precondition
``ConflictError``, an unreachable endpoint a ``StorageError`` that says what to check, and
anything else an ``S3RequestError`` (a ``StorageError``) carrying S3's code and status.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from winslow import metrics
from winslow.errors import ConflictError, NotFoundError, StorageError, WinslowError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
"""Seconds to wait for a TCP connection to object storage."""

READ_TIMEOUT_SECONDS = 60
"""Seconds to wait for object storage to send the next bytes of an answer."""

MAX_ATTEMPTS = 5
"""Attempts per S3 request, the first included (botocore's ``standard`` retry mode)."""

BODY_EXCERPT_CHARS = 300
"""Characters of a remote error message kept in our own messages."""

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket", "NoSuchUpload"})
_CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


@dataclass(frozen=True)
class S3Config:
    """Where the bucket lives and how to sign requests to it.

    ``secret_key`` is left out of ``repr`` so that logging a config never leaks it.
    """

    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    bucket: str
    region: str = "us-east-1"
    public_endpoint_url: str | None = None
    """The endpoint as browsers and CLIs on other machines reach it (a name, a TLS proxy);
    presigned URLs carry it, because SigV4 signs the host. ``None``: ``endpoint_url``."""


class S3RequestError(StorageError):
    """Object storage answered a request with an error we have no better name for.

    ``s3_code`` is S3's error code (``"AccessDenied"``, ``"SlowDown"``), ``status_code``
    the HTTP status, or ``None`` when no answer came.
    """

    def __init__(self, message: str, *, s3_code: str, status_code: int | None) -> None:
        super().__init__(message)
        self.s3_code = s3_code
        self.status_code = status_code


def make_client(cfg: S3Config, *, overrides: Config | None = None) -> S3Client:
    """Return a boto3 S3 client for ``cfg``: SigV4, path-style, bounded timeouts and retries.

    ``overrides`` is merged over the defaults; the readiness probe of a starting server
    uses it for a short timeout and a single attempt. Building a client is slow
    (tens of milliseconds): build one per store and keep it.
    """
    config = Config(
        signature_version="s3v4",
        region_name=cfg.region,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        s3={"addressing_style": "path"},
    )
    if overrides is not None:
        config = config.merge(overrides)
    with _SESSION_LOCK:
        client: S3Client = _session().client(
            "s3",
            endpoint_url=cfg.endpoint_url,
            aws_access_key_id=cfg.access_key,
            aws_secret_access_key=cfg.secret_key,
            region_name=cfg.region,
            config=config,
        )
    _instrument(client)
    return client


_SESSION: boto3.session.Session | None = None
_SESSION_LOCK = threading.Lock()
"""boto3 sessions are not thread-safe; clients made from one are, once made."""


def _session() -> boto3.session.Session:
    """The process's one boto3 session, made on first use; the caller holds the lock.

    A session caches the S3 service model it loads from JSON: the first client costs
    about 70 ms, every later one about 4 ms. The warm runner makes one client before it
    forks, so each runner it forks starts with the model loaded.
    """
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION


_TIMING = "winslow_timing"
"""Where ``_instrument``'s hooks keep an S3 call's operation and start, in botocore's
per-call context dict."""


def _instrument(client: S3Client) -> None:
    """Time every call of ``client`` and count those that failed, botocore's retries
    included (``winslow_s3_*`` in ``winslow/metrics.py``): hooks on its events, so no
    method of ``ObjectStore`` needs to remember it."""
    events = client.meta.events
    events.register("before-call.s3", _call_starts)
    events.register("after-call.s3", _call_answered)
    events.register("after-call-error.s3", _call_unanswered)


def _call_starts(model: Any, context: dict[str, Any], **_: Any) -> None:
    context[_TIMING] = (str(model.name), time.monotonic())


def _call_answered(http_response: Any, parsed: Any, context: dict[str, Any], **_: Any) -> None:
    if _TIMING not in context:
        return
    operation, started = context.pop(_TIMING)
    error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
    code = str(error.get("Code", "") or "")
    status = getattr(http_response, "status_code", None)
    metrics.observe_s3(operation, time.monotonic() - started, status, code)


def _call_unanswered(exception: Exception, context: dict[str, Any], **_: Any) -> None:
    if _TIMING not in context:
        return
    operation, started = context.pop(_TIMING)
    metrics.observe_s3(operation, time.monotonic() - started, None, type(exception).__name__)


def client_error_code(exc: ClientError) -> tuple[str, int | None]:
    """Return S3's error code and the HTTP status of a ``ClientError``."""
    response: dict[str, Any] = exc.response
    code = str(response.get("Error", {}).get("Code", "") or "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    status_code = int(status) if status is not None else None
    if not code and status_code is not None:
        code = str(status_code)
    return code, status_code


def map_client_error(exc: Exception, what: str) -> WinslowError:
    """Return the Winslow error for a boto3/botocore failure; the caller raises it ``from exc``.

    ``what`` names the thing the request was about, in words a person knows:
    ``"file 'a/b.mp4' in the resource pool"``. Usage::

        try:
            client.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise map_client_error(exc, "file 'a.mp4' in the resource pool") from exc
    """
    if isinstance(exc, ClientError):
        code, status = client_error_code(exc)
        if code in _NOT_FOUND_CODES or (status == 404 and code not in _CONFLICT_CODES):
            if code == "NoSuchBucket":
                return NotFoundError(
                    f"No bucket for {what}; the object storage has no such bucket. "
                    "Run `winslow up`, or check WINSLOW_S3_BUCKET."
                )
            if code == "NoSuchUpload":
                return NotFoundError(
                    f"No upload in progress for {what}; it was completed or aborted. "
                    "Start the upload again."
                )
            return NotFoundError(f"No {what}.")
        if code in _CONFLICT_CODES or status == 412:
            return ConflictError(
                f"{_capitalise(what)} already exists or changed meanwhile; it was not "
                "overwritten. Delete it first, or choose another name."
            )
        remote = str(exc.response.get("Error", {}).get("Message", "") or "")
        detail = f": {remote[:BODY_EXCERPT_CHARS]}" if remote else ""
        return S3RequestError(
            f"Object storage refused a request for {what}: {code} "
            f"(HTTP {status if status is not None else '?'}){detail}",
            s3_code=code,
            status_code=status,
        )
    if isinstance(exc, BotoConnectionError):
        endpoint = _endpoint_of(exc)
        return S3RequestError(
            f"Object storage at {endpoint} does not answer; is `winslow up` running, "
            "and is WINSLOW_S3_ENDPOINT right?",
            s3_code="EndpointConnectionError",
            status_code=None,
        )
    if isinstance(exc, ReadTimeoutError):
        endpoint = _endpoint_of(exc)
        return S3RequestError(
            f"Object storage at {endpoint} did not answer within {READ_TIMEOUT_SECONDS} s "
            f"while handling {what}; try again, and check the storage server's load.",
            s3_code="ReadTimeout",
            status_code=None,
        )
    if isinstance(exc, BotoCoreError):
        return S3RequestError(
            f"Object storage request for {what} failed: {type(exc).__name__}: "
            f"{str(exc)[:BODY_EXCERPT_CHARS]}",
            s3_code=type(exc).__name__,
            status_code=None,
        )
    return StorageError(f"Object storage request for {what} failed: {exc}")


def _endpoint_of(exc: BotoCoreError) -> str:
    """The scheme and host of the URL a botocore error names, without path or query."""
    url = str(getattr(exc, "kwargs", {}).get("endpoint_url", "") or "")
    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return url or "the configured endpoint"


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]
