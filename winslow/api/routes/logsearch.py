"""Search a run's whole log on the server, streaming hits as they are found.

The console's filter sees only the lines it has loaded; a log of several days is
searched here instead, through the same reader as the log routes (``read_log``: the
archived object in ranges once the run ended, the live log from its node while it runs),
one ``SEARCH_CHUNK_BYTES`` piece at a time, so the server never holds more than a piece
and one line. The matching itself is ``core/logsearch.py``.

The answer is NDJSON, one object a line, flushed as found: ``hit`` (line number, byte
offset of the line, the text and its matches), ``progress`` after each piece (where the
search is), and one ``end`` (why it stopped, and ``next`` to ask for the following page).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse

from winslow.api.access import ProjectReader
from winslow.api.context import AppContext
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.models import RunIdPath
from winslow.api.routes import API_V1
from winslow.api.routes.projects import read_log
from winslow.core.logsearch import LogSearch, PatternError, compile_pattern
from winslow.core.models import Run
from winslow.errors import WinslowError
from winslow.units import format_bytes

router = APIRouter(prefix=f"{API_V1}/projects", tags=["projects"])

SEARCH_CHUNK_BYTES = 1024 * 1024
"""Bytes of the log read and searched at a time: the most one search holds, bytes."""

SEARCH_SECONDS = 20.0
"""Time one page of a search may take, seconds; then it stops and says where to go on."""

SEARCH_DEFAULT_HITS = 200
"""Hits on one page unless the caller asks for another number."""

SEARCH_MAX_HITS = 1000
"""Most hits one page may ask for."""

NDJSON = "application/x-ndjson"

SEARCH_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "NDJSON: `hit`, `progress` and one final `end` object, one a line.",
        "content": {NDJSON: {}},
    },
    400: {"description": "`invalid_pattern`: the regular expression does not compile."},
}


@router.get(
    "/{ref}/runs/{run_id}/logs/search",
    response_class=StreamingResponse,
    responses=SEARCH_ANSWER,
)
def search_log(
    _access: ProjectReader,
    ref: str,
    run_id: RunIdPath,
    context: ContextDep,
    _user: CurrentUser,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="Text or pattern")],
    regex: Annotated[bool, Query(description="`q` is a regular expression")] = False,
    case: Annotated[bool, Query(description="Match upper and lower case exactly")] = False,
    limit: Annotated[int, Query(ge=1, le=SEARCH_MAX_HITS, description="Most hits")] = (
        SEARCH_DEFAULT_HITS
    ),
    line: Annotated[int, Query(ge=1, description="Number of the line at `offset`")] = 1,
    offset: Annotated[int, Query(ge=0, description="Byte offset to start at")] = 0,
) -> Response:
    """Search the run's whole log for ``q``, a text or (``regex=true``) a regular
    expression in Python's syntax, case-insensitive unless ``case=true``.

    Hits stream as they are found: ``{"type": "hit", "line", "offset", "text", "spans",
    "start", "cut"}`` (``spans`` are the matches in ``text``; a long line is shown as a
    window beginning at character ``start``, ``cut`` true). ``progress`` objects say how
    far the search got. The last object is ``{"type": "end", "reason", "hits", "next",
    "detail"}``: ``reason`` ``end`` (the whole log was searched), ``limit`` (``limit``
    hits found) or ``timeout`` (the page took its time); ``next`` holds the ``line`` and
    ``offset`` to ask for the next page with, null at the end. A running run's log is
    searched as far as it is written. A line is searched in its first 64 KiB.
    """
    project = context.store.get_project(ref)
    run = context.store.get_run(project.id, run_id)
    try:
        pattern = compile_pattern(q, is_regex=regex, case=case)
    except PatternError as exc:
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=400)
    clock = time.monotonic
    search = LogSearch(
        pattern,
        limit=limit,
        clock=clock,
        deadline=clock() + SEARCH_SECONDS,
        line=line,
        offset=offset,
    )
    return StreamingResponse(
        _records(context, run, search),
        media_type=NDJSON,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _records(context: AppContext, run: Run, search: LogSearch) -> Iterator[bytes]:
    """The search's NDJSON lines; Starlette runs this in a worker thread (blocking reads)."""
    position = search.offset
    detail: str | None = None
    try:
        while not search.done:
            chunk = read_log(context, run, position, SEARCH_CHUNK_BYTES)
            if not chunk:
                hits = search.finish()
            else:
                position += len(chunk)
                hits = search.feed(chunk)
            for hit in hits:
                yield _line(hit.as_json())
            if not search.done:
                line, at = search.position
                yield _line({"type": "progress", "line": line, "offset": at})
    except WinslowError as exc:
        detail = f"The log could not be read on: {exc.message}"
    yield _line(_end(search, detail))


def _end(search: LogSearch, detail: str | None) -> dict[str, Any]:
    reason = search.reason or "error"
    following = None
    if search.next_line is not None:
        following = {"line": search.next_line, "offset": search.next_offset}
    if detail is None and reason == "timeout":
        line, at = (search.next_line or 1), (search.next_offset or 0)
        if search.skipped_line is not None:
            detail = (
                f"Matching line {search.skipped_line:,} took longer than "
                f"{SEARCH_SECONDS:g} s; it was skipped. A simpler pattern avoids that."
            )
        else:
            detail = (
                f"The search took {SEARCH_SECONDS:g} s and stopped before line {line:,} "
                f"({format_bytes(at)} into the log); go on from there."
            )
    return {
        "type": "end",
        "reason": reason,
        "hits": search.hits,
        "next": following,
        "detail": detail,
    }


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"
