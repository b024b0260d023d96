"""Server-Sent Events: sse-starlette's response with keep-alive pings, event framing with
``id:``, and the ``Last-Event-ID`` a reconnecting browser sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from winslow import defaults
from winslow.api.hub import Hub, Message

RETRY_MS = 2000
"""How long a browser waits before it opens a broken stream again, milliseconds."""


def frame(event: str, data: Any, event_id: int | None = None) -> ServerSentEvent:
    """One SSE event; ``data`` is sent as JSON, ``event_id`` as its ``id:``."""
    payload = data if isinstance(data, str) else json.dumps(data, default=str)
    return ServerSentEvent(
        data=payload, event=event, id=None if event_id is None else str(event_id)
    )


def message_frame(message: Message) -> ServerSentEvent:
    return frame(message.event, message.text or message.data, message.id)


def last_event_id(request: Request) -> int | None:
    """The ``Last-Event-ID`` a reconnecting ``EventSource`` sends, if it is a number."""
    value = request.headers.get("last-event-id", "").strip()
    return int(value) if value.isdigit() else None


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


STREAM_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": "Server-Sent Events, until the client leaves. Events that can be "
        "resumed carry an `id:`; a client that sends it back as `Last-Event-ID` goes on "
        "after it.",
    }
}
"""The ``responses`` of a stream route, so its document names the media type it sends."""


async def _with_retry(body: AsyncIterator[ServerSentEvent]) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(retry=RETRY_MS, comment="stream open")
    async for event in body:
        yield event


def stream(body: AsyncIterator[ServerSentEvent]) -> EventSourceResponse:
    """The SSE response of ``body``: a keep-alive comment every
    ``defaults.SSE_HEARTBEAT_SECONDS`` so proxies keep it open, and the generator closed
    (its ``finally`` run) when the client leaves."""
    return EventSourceResponse(
        _with_retry(body),
        ping=defaults.SSE_HEARTBEAT_SECONDS,
        headers={"Cache-Control": "no-cache"},
    )
