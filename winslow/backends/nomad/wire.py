"""What every answer from Nomad is read with: its index, its error text, a path segment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import quote

import httpx

LogType = Literal["stdout", "stderr"]
ParamValue = str | int | bool | None
Params = Mapping[str, ParamValue] | Sequence[tuple[str, ParamValue]]
"""Query parameters; a sequence of pairs where a name repeats (``topic``)."""

BLOCKING_MARGIN_SECONDS = 5.0
"""Read timeout of a blocking query beyond its ``wait`` and Nomad's jitter, seconds."""

BODY_MAX_CHARS = 300
"""Characters of a remote error body quoted in our messages and logs."""


def index_of(response: httpx.Response) -> int:
    """The ``X-Nomad-Index`` of an answer; 0 when absent or unreadable."""
    try:
        return int(response.headers.get("X-Nomad-Index", "0"))
    except ValueError:
        return 0


def cut(text: str, limit: int = BODY_MAX_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def segment(value: str) -> str:
    """``value`` as one segment of a URL path: a slash in an ID must not start another."""
    return quote(value, safe="")
