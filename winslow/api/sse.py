"""Server-Sent Events: framing, and a keep-alive so proxies keep the stream open."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from winslow import defaults

POLL_SECONDS = 0.25
"""How often a stream looks for news, seconds: well under a person's notice."""


def frame(event: str, data: Any, event_id: int | None = None) -> str:
    """Return one SSE frame; ``data`` is sent as JSON."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    payload = data if isinstance(data, str) else json.dumps(data, default=str)
    lines.extend(f"data: {line}" for line in payload.split("\n"))
    return "\n".join(lines) + "\n\n"


class Heartbeat:
    """Says when a keep-alive comment is due."""

    def __init__(self, every: float = defaults.SSE_HEARTBEAT_SECONDS) -> None:
        self.every = every
        self.last = time.monotonic()

    def due(self) -> bool:
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            return True
        return False


STREAM_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": "Server-Sent Events, until the client leaves.",
    }
}
"""The ``responses`` of a stream route, so its document names the media type it sends."""


def stream(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
