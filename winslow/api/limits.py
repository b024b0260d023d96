"""Bounded request bodies: a body over its route's limit is answered 413 and never read whole.

FastAPI reads a whole body into memory, then parses it (holding it several times over),
before a route sees it; a 50 MB body would cost the server hundreds of megabytes and
seconds of parsing. ``BodyLimit`` is an ASGI middleware in front of everything: a request
whose ``Content-Length`` passes its route's limit gets 413 at once, its body unread; a
body without a length (chunked) is counted as it arrives and refused the moment it passes
the limit, so no more than the limit (and the chunk that crossed it) is ever held.

Limits come from the settings: ``WINSLOW_MAX_BODY_BYTES`` (1 MiB) for every body, except
the routes that take pipeline text, which take ``WINSLOW_MAX_PIPELINE_BYTES`` (2 MiB), and
the completion of an upload, whose list of part checksums may be 1 MiB for 10,000 parts.
File contents never pass through the server (uploads go to presigned URLs), so nothing
legitimate is larger. The 413 body is Winslow's error shape, naming the limit and the
setting that raises it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from winslow import defaults
from winslow.units import format_bytes

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from winslow.settings import Settings

log = logging.getLogger(__name__)

PIPELINE_TEXT_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("PUT", re.compile(r"/api/v1/pipelines/[^/]+")),
    ("POST", re.compile(r"/api/v1/pipelines/validate")),
)
"""Method and path of the routes whose body is pipeline text."""

UPLOAD_COMPLETE_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"/api/v1/resources/uploads/[^/]+/complete")),
    ("POST", re.compile(r"/api/v1/projects/[^/]+/runs/[^/]+/workspace/uploads/[^/]+/complete")),
)
"""Method and path of the routes that complete an upload with every part's checksum."""

TOO_LARGE_CODE = "too_large"
"""The ``code`` of a 413 answer."""


@dataclass(frozen=True)
class BodyLimits:
    """The largest body each kind of route takes, bytes."""

    default: int = defaults.MAX_BODY_BYTES
    pipeline: int = defaults.MAX_PIPELINE_BYTES

    @classmethod
    def of(cls, settings: Settings) -> BodyLimits:
        """The limits ``settings`` set (``WINSLOW_MAX_BODY_BYTES``, ``..._PIPELINE_BYTES``)."""
        return cls(default=settings.max_body_bytes, pipeline=settings.max_pipeline_bytes)

    def for_request(self, method: str, path: str) -> tuple[int, str]:
        """The limit of a request to ``method path``, and the setting that raises it."""
        if any(method == m and route.fullmatch(path) for m, route in PIPELINE_TEXT_ROUTES):
            return self.pipeline, "WINSLOW_MAX_PIPELINE_BYTES"
        if any(method == m and route.fullmatch(path) for m, route in UPLOAD_COMPLETE_ROUTES):
            return max(self.default, defaults.UPLOAD_COMPLETE_BODY_BYTES), "WINSLOW_MAX_BODY_BYTES"
        return self.default, "WINSLOW_MAX_BODY_BYTES"


class BodyTooLargeError(HTTPException):
    """The body passed its route's limit while it was read.

    An ``HTTPException``, so FastAPI passes it on as it is rather than as "There was an
    error parsing the body"; the app's handler (or ``BodyLimit``) answers it.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail, headers={"Connection": "close"})


def too_large_message(method: str, path: str, limit: int, setting: str, size: int | None) -> str:
    """Words for a person: how large, what the limit is, and which setting raises it."""
    got = f"is {format_bytes(size)}" if size is not None else "grew past that"
    return (
        f"The body of {method} {path} {got}; the server takes at most {format_bytes(limit)} "
        f"({limit} bytes) there. The operator can raise {setting}."
    )


class BodyLimit:
    """ASGI middleware: refuse request bodies over their route's limit (see the module)."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        limit, setting = self.limits.for_request(method, path)
        length = _content_length(scope)
        if length is not None and length > limit:
            log.info("request %s %s: refused, its body is %d bytes", method, path, length)
            message = too_large_message(method, path, limit, setting, length)
            await _answer_too_large(message, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    log.info(
                        "request %s %s: refused, its body passed %d bytes", method, path, limit
                    )
                    raise BodyTooLargeError(too_large_message(method, path, limit, setting, None))
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLargeError as exc:
            if started:
                raise
            await _answer_too_large(exc.detail, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None or not value.strip().isdigit():
        return None  # the server refuses a malformed length before we see it
    return int(value)


async def _answer_too_large(message: str, send: Send) -> None:
    body = json.dumps({"detail": message, "code": TOO_LARGE_CODE}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
