"""A stage's progress, read from its own log, and the time it has left.

A stage reports progress by printing it; nothing has to be installed on the node. The last
percentage on a stdout or stderr line counts, so ``echo "42 %"``, ``37.5%`` and tqdm's
`` 45%|████▌     | 450/1000 [00:10<00:12, 44.1it/s]`` all work (tqdm's ``\\r`` redraws are
lines in our log). A stage may also write its progress to ``.winslow/progress`` in its
workspace; the node copies each new value into the log. A script that prints other
percentages can say it plainly instead:
``WINSLOW_PROGRESS: 0.45`` (a fraction) or ``WINSLOW_PROGRESS: 45%``; such a line wins over
any other percentage on it. Numbers above 100 are not progress and are skipped; our own
``winslow`` stream never counts. The latest report wins, even when it is lower than an
earlier one: a stage that starts a second pass says so.

Pure: the caller reads the log and passes the clock's ``now``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from winslow.core.logformat import RECORD, STAGE_STREAMS

PROGRESS_STREAMS = STAGE_STREAMS | {"progress"}
"""Streams whose lines may report progress; ``winslow`` (our own events) is not one.
``progress`` holds what the stage wrote to its progress file, copied by the node."""

MIN_ESTIMATE_FRACTION = 0.01
"""Below this much progress (a fraction, 1 %) a linear estimate is noise: none is given."""

_PERCENT = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d+)?) ?%")
_MARKER = re.compile(r"WINSLOW_PROGRESS:\s*(\d+(?:\.\d+)?)\s*(%?)")


@dataclass(frozen=True)
class Progress:
    """One progress report: ``percent`` (0 to 100) from the log line written ``at``."""

    percent: float
    at: datetime | None


def percent_in(text: str) -> float | None:
    """Return the progress a line of stage output reports, in percent, or None.

    >>> percent_in(" 45%|████▌     | 450/1000 [00:10<00:12, 44.1it/s]")
    45.0
    >>> percent_in("WINSLOW_PROGRESS: 0.25")
    25.0
    """
    marker = _MARKER.search(text)
    if marker:
        value = float(marker.group(1))
        percent = value if marker.group(2) else value * 100
        return percent if 0 <= percent <= 100 else None
    found = None
    for match in _PERCENT.finditer(text):
        value = float(match.group(1))
        if value <= 100:
            found = value
    return found


def latest_progress(lines: Iterable[str]) -> Progress | None:
    """Return the last progress report in log lines (``<stamp> <stream> | <text>``), or None.

    Lines that are not log records, and records of the ``winslow`` stream, are skipped.
    Give the log split at ``\\n`` only, as its records are: ``str.splitlines`` also cuts
    at characters a stage's line may hold (``\\x1c``, ``\\x85``, U+2028).
    """
    latest: Progress | None = None
    for line in lines:
        record = RECORD.match(line.rstrip("\r\n"))
        if not record or record.group("stream") not in PROGRESS_STREAMS:
            continue
        percent = percent_in(record.group("text"))
        if percent is not None:
            latest = Progress(percent=percent, at=_parse_stamp(record.group("stamp")))
    return latest


def estimate(fraction: float, started_at: datetime | None, now: datetime) -> int | None:
    """Return the seconds a run has left at ``fraction`` (0 to 1) done, or None when unknown.

    Linear: the time so far times what is left over what is done. None before the run
    started or below ``MIN_ESTIMATE_FRACTION``; 0 once it reports it is done.
    """
    if started_at is None or fraction < MIN_ESTIMATE_FRACTION:
        return None
    if fraction >= 1:
        return 0
    elapsed = max(0.0, (now - started_at).total_seconds())
    return round(elapsed * (1 - fraction) / fraction)


def _parse_stamp(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None
