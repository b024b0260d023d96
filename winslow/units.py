"""Sizes and durations: parse what a person writes, format what a person reads.

One convention everywhere Winslow takes or shows a size: binary (IEC) units, powers of
1024, for memory and files alike. A person may write ``8G``, ``8GB``, ``8Gi`` or ``8GiB``
and always means 8 GiB (8 * 1024**3 bytes), which is what pipelines have always meant by it;
Winslow writes ``8.0 GiB``. "MB" in a field name or a message (``memory_mb``) means MiB.
The one exception is text another tool printed in its own convention (``docker stats``
says ``512kB`` for 512,000 bytes): ``parse_reported_bytes`` reads that as the tool means it.

Durations are whole seconds; a person writes ``90``, ``90s``, ``30m``, ``1.5h``, ``2d`` or
parts largest first (``1h30m``, ``1 h 05 min``), and Winslow writes ``45 s``,
``3 min 05 s``, ``1 h 03 min`` or ``2 d 04 h``: two parts at most, so every
``format_duration`` text parses back.

Parsers raise ``ValueError`` naming the value and what is accepted, so a pydantic validator
turns it into a field's message unchanged. Counts read as a person writes them:
``counted(1, "file")`` is ``1 file``.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

KIB = 1024
"""Bytes in a kibibyte (``K``, ``KB``, ``KiB``)."""
MIB = 1024**2
"""Bytes in a mebibyte (``M``, ``MB``, ``MiB``): the unit of every ``*_mb`` field."""
GIB = 1024**3
"""Bytes in a gibibyte (``G``, ``GB``, ``GiB``)."""
TIB = 1024**4
"""Bytes in a tebibyte (``T``, ``TB``, ``TiB``)."""

SizeUnit = Literal["B", "K", "M", "G", "T"]
"""What a bare number means where a size is asked for: bytes, or KiB to TiB."""

_UNIT_BYTES: dict[str, int] = {"B": 1, "K": KIB, "M": MIB, "G": GIB, "T": TIB}
_UNIT_WORDS: dict[str, str] = {"B": "bytes", "K": "KiB", "M": "MiB", "G": "GiB", "T": "TiB"}
_LABELS = ("B", "KiB", "MiB", "GiB", "TiB")
_TENTH = Decimal("0.1")

# Every spelling a person uses for a binary unit: 8, 8B, 8K, 8KB, 8Ki, 8KiB, in any case.
_PERSON_SUFFIXES: dict[str, str] = {"B": "B"} | {
    suffix: unit
    for unit in ("K", "M", "G", "T")
    for suffix in (unit, unit + "B", unit + "I", unit + "IB")
}
# Tools print SI suffixes for powers of 1000 and IEC ones for powers of 1024.
_REPORTED_SUFFIXES: dict[str, float] = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KIB": KIB,
    "MIB": MIB,
    "GIB": GIB,
    "TIB": TIB,
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")

_DURATION_UNITS: dict[str, int] = {"d": 86400, "h": 3600, "m": 60, "min": 60, "s": 1}
_DURATION_PART = r"([0-9]+(?:\.[0-9]+)?)\s*(min|[dhms])?"
_DURATION = re.compile(rf"\s*{_DURATION_PART}(?:\s*{_DURATION_PART})*\s*")
_DURATION_HELP = (
    "write seconds, or a number with a unit s, m (or min), h or d, parts largest first: "
    "90, 90s, 30m, 1.5h, 1h30m, 2d"
)


# ---------------------------------------------------------------------------------------
# Sizes


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless the count is one: ``1 file``, ``0 files``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def parse_bytes(text: str, *, bare: SizeUnit = "B") -> int:
    """Return the bytes in a size a person wrote: ``512M``, ``8G``, ``1.5GiB``, ``2T``.

    The unit is ``B``, ``K``, ``M``, ``G`` or ``T``, optionally followed by ``B``, ``i`` or
    ``iB``, in any case; all are powers of 1024 (``G`` = ``GB`` = ``GiB``). A number without
    a unit is in ``bare`` units (megabytes where a field takes megabytes). Fractions of a
    byte are dropped. Raises ``ValueError`` for anything else.

        >>> parse_bytes("1.5GiB")
        1610612736
        >>> parse_bytes("100", bare="M")
        104857600
    """
    number, unit = _size_parts(text, bare)
    return _whole(number * _UNIT_BYTES[unit], text, bare)


def parse_megabytes(text: str) -> int:
    """Return the whole MiB in a size a person wrote (``8G`` → 8192); bare numbers are MiB.

    The forms are ``parse_bytes``'s; a part of a MiB is dropped (``1.1G`` → 1126).
    Raises ``ValueError`` for anything else.
    """
    number, unit = _size_parts(text, "M")
    # Scaling by a power of two is exact, so 1.5G is 1536 however it is computed.
    return _whole(number * _UNIT_BYTES[unit] / MIB, text, "M")


def parse_reported_bytes(text: str) -> float:
    """Return the bytes in a size another tool printed in its own convention.

    ``kB``, ``MB``, ``GB`` and ``TB`` are powers of 1000 and ``KiB`` to ``TiB`` powers of
    1024, as ``docker stats`` (Go's ``units`` package) and Nomad print them; a bare number
    is bytes. Raises ``ValueError`` for anything else. Never for what a person wrote:
    that is ``parse_bytes``.
    """
    match = _SIZE.fullmatch(text)
    factor = _REPORTED_SUFFIXES.get(match.group(2).upper()) if match else None
    if match is None or factor is None:
        raise ValueError(
            f"{text!r} is not a size as tools print it; expected a number with B, kB, MB, "
            "GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"
        )
    return float(match.group(1)) * factor


def format_bytes(size: float) -> str:
    """Return ``512 B``, ``1.0 KiB`` … ``3.5 TiB``: one decimal from a KiB on.

    The unit is the largest the value reaches once rounded, so 1 MiB less a byte reads
    ``1.0 MiB``, never ``1024.0 KiB``. Negative sizes get a minus sign.

        >>> format_bytes(1536)
        '1.5 KiB'
    """
    if size < 0:
        return "-" + format_bytes(-size)
    if size < KIB - 0.5:
        return f"{size:.0f} B"
    value = float(size)
    for label in _LABELS[1:]:
        value /= 1024
        # Halves round up, as JavaScript's toFixed does: the console shows the same text.
        shown = Decimal(value).quantize(_TENTH, rounding=ROUND_HALF_UP)
        if shown < 1024 or label == _LABELS[-1]:
            return f"{shown} {label}"
    raise AssertionError("unreachable")


def format_megabytes(megabytes: float) -> str:
    """Return ``format_bytes`` of a number of MiB (a ``*_mb`` field): 8192 → ``8.0 GiB``."""
    return format_bytes(megabytes * MIB)


def _size_parts(text: str, bare: SizeUnit) -> tuple[float, str]:
    match = _SIZE.fullmatch(text)
    suffix = match.group(2).upper() if match else None
    unit = bare if suffix == "" else _PERSON_SUFFIXES.get(suffix or "")
    if match is None or unit is None:
        raise ValueError(f"{text!r} is not a size; {_size_help(bare)}")
    return float(match.group(1)), unit


def _size_help(bare: SizeUnit) -> str:
    return (
        "write a number with a unit B, K, M, G or T (powers of 1024: G, GB and GiB are all "
        f"GiB), such as 512M, 8G or 1.5GiB; a number alone is {_UNIT_WORDS[bare]}"
    )


def _whole(value: float, text: str, bare: SizeUnit) -> int:
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is too large a size; {_size_help(bare)}")
    return int(value)


# ---------------------------------------------------------------------------------------
# Durations


def parse_duration(text: str) -> int:
    """Return the whole seconds in a duration a person wrote.

    A number of seconds (``90``), a number with a unit ``s``, ``m`` (or ``min``), ``h`` or
    ``d`` (``30m``, ``1.5h``), or several such parts largest unit first, each with its
    unit (``1h30m``, ``1 h 05 min``, ``2d 4h``); spaces between are allowed. Every text
    ``format_duration`` writes parses back. A part of a second is dropped. Raises
    ``ValueError`` for anything else.

        >>> parse_duration("1h30m")
        5400
    """
    parts = re.findall(_DURATION_PART, text) if _DURATION.fullmatch(text) else []
    if not parts or (len(parts) > 1 and not all(unit for _, unit in parts)):
        raise ValueError(f"{text!r} is not a duration; {_DURATION_HELP}")
    total = 0.0
    last = math.inf
    for number, unit in parts:
        seconds = _DURATION_UNITS[unit or "s"]
        if seconds >= last:
            raise ValueError(
                f"{text!r} is not a duration: write each unit once, largest first "
                f"(1h30m, not 30m1h); {_DURATION_HELP}"
            )
        last = seconds
        total += float(number) * seconds
    if not math.isfinite(total):
        raise ValueError(f"{text!r} is too long a duration; {_DURATION_HELP}")
    return int(total)


def format_duration(seconds: float, *, coarse: bool = False) -> str:
    """Return ``45 s``, ``3 min 05 s``, ``1 h 03 min`` or ``2 d 04 h`` (from 48 hours on).

    ``coarse`` drops the seconds from a minute on (``3 min``), for times that are shown
    ticking only now and then ("in this state for 3 min"). Seconds are rounded to the
    nearest; negative ones count as 0.

        >>> format_duration(3780)
        '1 h 03 min'
    """
    total = int(max(seconds, 0) + 0.5)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min" if coarse else f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"
