"""What a run reports besides its workspace: results and log-parser time series.

A stage reports a result by printing a line that begins with ``WINSLOW_RESULT: key=value``,
or by leaving a ``results.json`` object at the top of its workspace; nothing has to be
installed on the node. Values are typed as a person would read them: ``42`` is an int,
``0.93`` a float, ``true``/``false`` a bool, anything else the text. The latest line for a
key wins, and ``results.json`` wins over every line.

A stage's ``log_parsers`` turn matching log lines into time series: each match is a point
at the line's time, one value per named group that holds a number. Logs may be many
gigabytes, so ``OutputScanner`` takes lines one at a time and keeps only the results and a
bounded number of points per parser: past ``MAX_SERIES_POINTS`` it thins what it kept to
every second point, evenly and the same way every time, and keeps the last point too.

Only ``stdout`` and ``stderr`` lines count, what the stage printed; Winslow's own lines
(``winslow``, ``progress``) never do, and they escape their control characters
(``core/logformat.py``), so no value Winslow logs can fake a result or a point. Pure: the
caller reads the log and the file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from winslow.core.logformat import RECORD, STAGE_STREAMS
from winslow.pipeline.model import LogParser

OUTPUT_STREAMS = STAGE_STREAMS
"""Streams whose lines may report results and series points: what the stage printed.
Winslow's own lines (``winslow``, and ``progress``, which it writes from the progress
file) never do."""

MAX_RESULTS = 200
"""Most result keys one run keeps; keys past it are dropped (``results.json``'s first)."""

MAX_RESULT_CHARS = 1000
"""Longest result value kept, characters; a longer one is cut and stays text."""

MAX_SERIES_POINTS = 20_000
"""Most points one log parser keeps for one run; more are thinned evenly."""

MAX_LINE_BYTES = 64 * 1024
"""Longest log line looked at, bytes; the rest of a longer line is skipped."""

RESULTS_FILE = "results.json"
"""The workspace file whose top-level scalars are results."""

SERIES_FORMAT = 1
"""Version of the stored series' JSON layout."""

ResultValue = str | int | float | bool
"""What a result may hold."""

RESULT_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""A result key: a letter or underscore, then up to 63 letters, digits or underscores."""

_RESULT_LINE = re.compile(r"^\s*WINSLOW_RESULT:\s*(?P<key>[^=\s]*)\s*=(?P<value>.*)$")
_INT = re.compile(r"[+-]?\d+")
# float() alone would also take "nan", "inf" and "1_000", which no one means as a number.
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class SeriesPoint:
    """One matching log line: its time and the number each named group held."""

    at: datetime
    values: dict[str, float]


@dataclass(frozen=True)
class Series:
    """The points one log parser found in one run's log, oldest first.

    ``fields`` are the pattern's named groups in pattern order; a point holds those of
    them whose text was a number. ``truncated``: points were thinned to the cap.
    """

    name: str
    fields: tuple[str, ...]
    points: tuple[SeriesPoint, ...]
    truncated: bool = False


def typed_value(text: str) -> ResultValue:
    """Return ``text`` as the value a person means: int, float, bool or the stripped text.

    >>> typed_value(" 42 "), typed_value("0.5"), typed_value("true"), typed_value("ulm")
    (42, 0.5, True, 'ulm')
    """
    text = text.strip()
    if len(text) > MAX_RESULT_CHARS:
        return text[:MAX_RESULT_CHARS]
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text) and math.isfinite(value := float(text)):
        return value
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def number(text: str | None) -> float | None:
    """Return the number ``text`` holds (``0.93``, ``-1e-3``), or None for anything else."""
    if text is None:
        return None
    text = text.strip()
    if not _FLOAT.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None  # 1e999: JSON has no infinity


def result_line(text: str) -> tuple[str, ResultValue] | None:
    """Return the key and value a ``WINSLOW_RESULT: key=value`` line reports, or None.

    None as well for a key that is not a ``RESULT_KEY``.
    """
    match = _RESULT_LINE.match(text)
    if not match or not RESULT_KEY.fullmatch(match.group("key")):
        return None
    return match.group("key"), typed_value(match.group("value"))


def parse_results_file(data: bytes) -> tuple[dict[str, ResultValue], list[str]]:
    """Return the results a ``results.json`` holds, and what was wrong with the rest.

    Its top-level strings, numbers and booleans count; nested values, nulls, keys that are
    not a ``RESULT_KEY`` and keys past ``MAX_RESULTS`` are skipped, each named in a problem.
    A file that is not a JSON object yields no results and one problem.
    """
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return {}, [f"{RESULTS_FILE} is not valid JSON ({exc}); it was ignored"]
    if not isinstance(body, dict):
        return {}, [f"{RESULTS_FILE} holds a {type(body).__name__}, not an object; it was ignored"]
    results: dict[str, ResultValue] = {}
    problems: list[str] = []
    for key, value in body.items():
        if not RESULT_KEY.fullmatch(key):
            problems.append(f"{RESULTS_FILE}: key {key[:80]!r} is not a valid result name")
        elif not isinstance(value, str | int | float | bool):
            problems.append(
                f"{RESULTS_FILE}: {key} holds {_json_kind(value)}; only text, numbers and "
                "true/false are results"
            )
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{RESULTS_FILE}: {key} is {value}, which is not a number")
        elif len(results) >= MAX_RESULTS:
            problems.append(f"{RESULTS_FILE}: {key} is past the first {MAX_RESULTS} results")
        else:
            results[key] = value[:MAX_RESULT_CHARS] if isinstance(value, str) else value
    return results, problems


def merge_results(
    from_log: dict[str, ResultValue], from_file: dict[str, ResultValue]
) -> dict[str, ResultValue]:
    """Return the results of a run: the log's, each replaced by the file's where it has one.

    The file's keys always fit; the log's fill what is left of ``MAX_RESULTS``, in the
    order they were first printed.
    """
    room = MAX_RESULTS - len(from_file)
    merged: dict[str, ResultValue] = {}
    for key, value in from_log.items():
        if key in from_file:
            merged[key] = from_file[key]
        elif room > 0:
            merged[key] = value
            room -= 1
    for key, value in from_file.items():
        merged.setdefault(key, value)
    return merged


class _Thinned:
    """The points of one parser, thinned to at most ``limit`` as they come.

    Point ``i`` (counting every match from 0) is kept while ``i`` is a multiple of
    ``stride``. When one more would be kept past ``limit``, every second kept point goes
    and the stride doubles, so the survivors stay evenly spaced whatever the log's length.
    The latest point is added at the end (in place of the last kept one if there is no
    room): a series' last value is often the one people look for.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 2)
        self.kept: list[SeriesPoint] = []
        self.stride = 1
        self.seen = 0
        self.last: SeriesPoint | None = None

    def add(self, point: SeriesPoint) -> None:
        if self.seen % self.stride == 0:
            if len(self.kept) >= self.limit:
                self.kept = self.kept[::2]
                self.stride *= 2
            if self.seen % self.stride == 0:
                self.kept.append(point)
        self.seen += 1
        self.last = point

    @property
    def truncated(self) -> bool:
        return self.stride > 1

    def points(self) -> tuple[SeriesPoint, ...]:
        if self.last is None or self.kept[-1] is self.last:
            return tuple(self.kept)
        return (*self.kept[: self.limit - 1], self.last)


class OutputScanner:
    """Reads a run's log one line at a time into its results and log-parser series.

    Memory stays bounded whatever the log's length: the results (``MAX_RESULTS`` keys) and
    at most ``max_points`` points per parser.

    Usage::

        scanner = OutputScanner(stage.log_parsers)
        for line in log_lines:
            scanner.feed(line)
        scanner.results, scanner.series()
    """

    def __init__(
        self, parsers: Sequence[LogParser] = (), max_points: int = MAX_SERIES_POINTS
    ) -> None:
        self._parsers = [(p.name, re.compile(p.pattern)) for p in parsers]
        self._fields = [_group_names(pattern) for _, pattern in self._parsers]
        self._points = [_Thinned(max_points) for _ in self._parsers]
        self.results: dict[str, ResultValue] = {}
        """Results the log reported so far, in the order their keys first appeared."""
        self.problems: list[str] = []
        """What was skipped and why, for the caller to log (a few, not one per line)."""
        self.lines = 0
        """Log records seen (every stream)."""

    def feed(self, line: str) -> None:
        """Take one log line (``<stamp> <stream> | <text>``); other lines are skipped."""
        record = RECORD.match(line.rstrip("\r\n"))
        if not record:
            return
        self.lines += 1
        if record.group("stream") not in OUTPUT_STREAMS:
            return
        text = record.group("text")
        if "WINSLOW_RESULT:" in text:
            self._take_result(text)
        if not self._parsers:
            return
        at: datetime | None = None
        for (_, pattern), fields, points in zip(
            self._parsers, self._fields, self._points, strict=True
        ):
            match = pattern.search(text)
            if not match:
                continue
            values = {f: v for f in fields if (v := number(match.group(f))) is not None}
            if not values:
                continue
            at = at or _parse_stamp(record.group("stamp"))
            if at is None:
                return  # A point without a time cannot be placed; nor can the others.
            points.add(SeriesPoint(at=at, values=values))

    def feed_all(self, lines: Iterable[str]) -> OutputScanner:
        """Feed every line; return the scanner."""
        for line in lines:
            self.feed(line)
        return self

    def series(self) -> list[Series]:
        """Return one series per parser, in the stage's order, points oldest first."""
        return [
            Series(
                name=name,
                fields=fields,
                points=points.points(),
                truncated=points.truncated,
            )
            for (name, _), fields, points in zip(
                self._parsers, self._fields, self._points, strict=True
            )
        ]

    def _take_result(self, text: str) -> None:
        found = result_line(text)
        if found is None:
            return
        key, value = found
        if key in self.results or len(self.results) < MAX_RESULTS:
            self.results[key] = value
        elif len(self.problems) < 10:
            self.problems.append(f"result {key} is past the first {MAX_RESULTS} results")


def iter_lines(chunks: Iterable[bytes], max_line: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Yield the text lines of a byte stream cut anywhere, without their line endings.

    A line split across chunks comes out whole; a line longer than ``max_line`` bytes comes
    out cut to its first ``max_line`` bytes, and what is held stays under that, so one
    endless line cannot fill memory. Bytes that are not UTF-8 become U+FFFD.
    """
    pending = b""
    skipping = False
    for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            if not skipping:
                yield _decode((pending + chunk[start:end])[:max_line])
            pending, skipping, start = b"", False, end + 1
        if skipping:
            continue
        pending += chunk[start:]
        if len(pending) > max_line:
            yield _decode(pending[:max_line])
            pending, skipping = b"", True
    if pending and not skipping:
        yield _decode(pending)


def series_to_json(series: Sequence[Series]) -> dict[str, Any]:
    """Return series as the JSON object stored next to a run's log."""
    return {
        "format": SERIES_FORMAT,
        "series": [
            {
                "name": s.name,
                "fields": list(s.fields),
                "truncated": s.truncated,
                "points": [{"at": p.at.isoformat(), "values": p.values} for p in s.points],
            }
            for s in series
        ],
    }


def series_from_json(body: Any) -> list[Series]:
    """Return the series ``series_to_json`` wrote; raise ``ValueError`` for anything else."""
    if not isinstance(body, dict) or body.get("format") != SERIES_FORMAT:
        raise ValueError("not a stored series object of format 1")
    try:
        return [
            Series(
                name=str(s["name"]),
                fields=tuple(str(f) for f in s["fields"]),
                truncated=bool(s["truncated"]),
                points=tuple(
                    SeriesPoint(
                        at=datetime.fromisoformat(p["at"]),
                        values={str(k): float(v) for k, v in p["values"].items()},
                    )
                    for p in s["points"]
                ),
            )
            for s in body["series"]
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"stored series object is malformed: {exc!r}") from exc


def _group_names(pattern: re.Pattern[str]) -> tuple[str, ...]:
    return tuple(sorted(pattern.groupindex, key=pattern.groupindex.__getitem__))


def _parse_stamp(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _decode(data: bytes) -> str:
    return data.removesuffix(b"\r").decode("utf-8", errors="replace")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
