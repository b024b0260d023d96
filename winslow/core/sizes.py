"""Byte counts in words, the same wherever Winslow shows one in a log or a message."""

from __future__ import annotations


def human_size(size: int) -> str:
    """Return ``1.2 GB``-style text for a byte count (decimal units, as storage consoles show)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
