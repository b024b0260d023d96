"""Search a run's whole log for a text or a regular expression, in bounded memory.

The log arrives in chunks of bytes (ranges of the archived object, or reads of the live
log); ``LineScanner`` cuts them into numbered lines, carrying a line that a chunk border
splits into the next chunk, and ``LogSearch`` matches each line and collects hits until
its page is full or its time is up. Nothing here reads or waits: the caller feeds chunks
and says what time it is (``clock``), so a day-long log and a pathological pattern are
both tested without a server.

Two bounds keep one search from taking the server with it:

- memory: a line is searched in its first ``MAX_LINE_BYTES`` only; the rest of a longer
  line is counted (line numbers and offsets stay right) but neither kept nor searched;
- time: regular expressions run on the ``regex`` module, whose matching takes a
  ``timeout`` (Python's ``re`` cannot be stopped: ``(a|aa)+$`` on 40 letters backtracks
  for minutes). A search has ``budget`` seconds in all; every line gets what is left. A
  search that runs out stops where it is and says where to go on; a line that alone
  exhausted the budget is skipped and named, so going on never meets it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from winslow.errors import WinslowError

MAX_LINE_BYTES = 64 * 1024
"""Bytes of one line searched and kept; the rest of a longer line is skipped."""

SHOWN_CHARS = 400
"""Characters of a hit's line returned at most: a window around its first match."""

MAX_SPANS = 20
"""Matches marked in one hit's line at most."""

StopReason = Literal["end", "limit", "timeout"]


class PatternError(WinslowError):
    """The regular expression does not compile; the message says where and why."""

    code = "invalid_pattern"


@dataclass(frozen=True)
class Line:
    """One line of the log: its number (from 1), the byte offset where it starts, its
    bytes up to ``MAX_LINE_BYTES`` without the newline, and its whole length in bytes."""

    number: int
    offset: int
    data: bytes
    length: int


@dataclass(frozen=True)
class Hit:
    """A line that matches: ``text`` is the line, or a window of it (``start`` is the
    character of the line it begins at), and ``spans`` the matches in ``text``."""

    line: int
    offset: int
    text: str
    spans: list[tuple[int, int]]
    start: int = 0
    cut: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "type": "hit",
            "line": self.line,
            "offset": self.offset,
            "text": self.text,
            "spans": [list(span) for span in self.spans],
            "start": self.start,
            "cut": self.cut,
        }


def compile_pattern(query: str, *, is_regex: bool = False, case: bool = False) -> Any:
    """Return the compiled pattern for ``query``: the text itself, or a regular expression
    (Python's syntax); ``case`` makes it case-sensitive. Raises ``PatternError``."""
    import regex  # on the first search: a server that never searches a log never loads it

    flags = regex.VERSION0 | (0 if case else regex.IGNORECASE)
    try:
        return regex.compile(query if is_regex else regex.escape(query), flags)
    except regex.error as exc:
        position = f" at position {exc.pos}" if getattr(exc, "pos", None) is not None else ""
        raise PatternError(
            f"{query!r} is not a regular expression: {exc.msg}{position}. "
            "Fix it, or search for the plain text (regex off)."
        ) from None


class LineScanner:
    """Cuts chunks of a log into ``Line``s; a line split by a chunk border comes out whole
    once its newline arrives (``finish`` gives a last line without one)."""

    def __init__(self, line: int = 1, offset: int = 0, max_line_bytes: int = MAX_LINE_BYTES):
        self.line = line
        """Number of the next line to come out."""
        self.offset = offset
        """Byte offset where that line starts."""
        self._max = max_line_bytes
        self._kept = bytearray()
        self._length = 0

    def _take(self, piece: bytes) -> None:
        room = self._max - len(self._kept)
        if room > 0:
            self._kept += piece[:room]
        self._length += len(piece)

    def _emit(self) -> Line:
        line = Line(self.line, self.offset, bytes(self._kept), self._length)
        self.line += 1
        self.offset += self._length + 1
        self._kept.clear()
        self._length = 0
        return line

    def feed(self, chunk: bytes) -> Iterator[Line]:
        """Yield every line that ``chunk`` completes."""
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            self._take(chunk[start:newline])
            yield self._emit()
            start = newline + 1
        self._take(chunk[start:])

    def finish(self) -> Line | None:
        """The last line, when the log does not end with a newline."""
        return self._emit() if self._length else None


@dataclass
class LogSearch:
    """One page of a search: feed it chunks until ``done``, then ``finish()``.

    ``limit`` hits fill the page; ``clock`` and ``deadline`` (seconds, on the clock's
    scale) bound its time. After it, ``reason`` says why it stopped and ``next_line`` /
    ``next_offset`` where the next page starts (None at the end of the log).
    """

    pattern: Any
    limit: int
    clock: Callable[[], float]
    deadline: float
    line: int = 1
    offset: int = 0
    hits: int = 0
    reason: StopReason | None = None
    next_line: int | None = None
    next_offset: int | None = None
    skipped_line: int | None = None
    """A line whose matching alone used up the time, skipped by the next page."""
    _scanner: LineScanner = field(init=False)

    def __post_init__(self) -> None:
        self._scanner = LineScanner(self.line, self.offset)

    @property
    def done(self) -> bool:
        return self.reason is not None

    @property
    def position(self) -> tuple[int, int]:
        """The next line to search and the byte offset it starts at."""
        return self._scanner.line, self._scanner.offset

    def feed(self, chunk: bytes) -> list[Hit]:
        """Search the lines ``chunk`` completes; returns their hits."""
        if self.done:
            return []
        return self._search(self._scanner.feed(chunk))

    def finish(self) -> list[Hit]:
        """The log ended: search its last line (if it has no newline) and stop."""
        if self.done:
            return []
        last = self._scanner.finish()
        hits = self._search(iter([last] if last else []))
        if not self.done:
            self.reason = "end"
        return hits

    def _search(self, lines: Iterator[Line]) -> list[Hit]:
        found: list[Hit] = []
        for line in lines:
            left = self.deadline - self.clock()
            if left <= 0:
                return self._stop(found, "timeout", line.number, line.offset)
            try:
                hit = match_line(self.pattern, line, timeout=left)
            except TimeoutError:
                self.skipped_line = line.number
                return self._stop(found, "timeout", line.number + 1, line.offset + line.length + 1)
            if hit is None:
                continue
            found.append(hit)
            self.hits += 1
            if self.hits >= self.limit:
                return self._stop(found, "limit", line.number + 1, line.offset + line.length + 1)
        return found

    def _stop(self, found: list[Hit], reason: StopReason, line: int, offset: int) -> list[Hit]:
        self.reason, self.next_line, self.next_offset = reason, line, offset
        return found


def match_line(pattern: Any, line: Line, timeout: float | None = None) -> Hit | None:
    """Return ``line`` as a ``Hit`` if ``pattern`` matches it, else None. Raises
    ``TimeoutError`` when matching takes longer than ``timeout`` seconds."""
    text = line.data.decode("utf-8", errors="replace")
    spans: list[tuple[int, int]] = []
    for found in pattern.finditer(text, timeout=timeout):
        spans.append((int(found.start()), int(found.end())))
        if len(spans) >= MAX_SPANS:
            break
    if not spans:
        return None
    cut = line.length > len(line.data)
    start = 0
    if len(text) > SHOWN_CHARS:
        # A window that shows the first match with some of what comes before it.
        start = max(0, min(spans[0][0] - SHOWN_CHARS // 4, len(text) - SHOWN_CHARS))
        text = text[start : start + SHOWN_CHARS]
        cut = True
    shown = [
        (max(a - start, 0), min(b - start, len(text)))
        for a, b in spans
        if b > start and a < start + len(text)
    ]
    return Hit(line.number, line.offset, text, shown, start, cut)
