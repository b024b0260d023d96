"""Nomad's encoded values in our types: Go times, typed device attributes, IDs.

Pure helpers shared by ``status`` (jobs and allocations) and ``nodes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast

from winslow.backends.nomad.types import NomadAttribute
from winslow.units import MIB, parse_reported_bytes

GO_ZERO_TIME = "0001-01-01T00:00:00Z"
"""What Go encodes for a ``time.Time`` never set."""


def parse_rfc3339(value: str | None) -> datetime | None:
    """Parse Go's RFC 3339 with nanoseconds; None for empty or Go's zero time."""
    if not value or value == GO_ZERO_TIME or value.startswith("0001-01-01"):
        return None
    text = value.replace("Z", "+00:00")
    date, _, rest = text.partition(".")
    if rest:
        # Python parses at most microseconds; Go writes nanoseconds.
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{date}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def from_unix_seconds(value: object) -> datetime | None:
    """A Unix time in seconds (a node's ``StatusUpdatedAt``); None for none or zero."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value, UTC)


def from_unix_nanos(value: int | None) -> datetime | None:
    """A Unix time in nanoseconds (``ModifyTime``, event times); None for none or zero."""
    if not value:
        return None
    return datetime.fromtimestamp(value / 1e9, UTC)


def short_id(value: str | None) -> str | None:
    """The 8-character prefix Nomad's CLI shows for an ID."""
    return value[:8] if value else None


def int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def mib_of(attribute: NomadAttribute | None) -> int:
    """A device's memory attribute (``{"Int": 16384, "Unit": "MiB"}``) in MiB."""
    if not attribute:
        return 0
    amount = attribute.get("Int")
    if amount is None:
        amount = int(attribute.get("Float", 0))
    factor = mib_per_unit(attribute.get("Unit") or "MiB")
    return int(amount * (factor if factor is not None else 1.0))


def mib_per_unit(unit: str) -> float | None:
    """How many MiB one ``unit`` of a Nomad device figure is (``MiB``, ``MB``, ``GiB``...:
    Nomad's units are decimal or binary as written); None for a unit that is no size."""
    if not unit.strip():
        return None
    try:
        return parse_reported_bytes(f"1 {unit}") / MIB
    except ValueError:
        return None


def attribute_text(attribute: NomadAttribute) -> str:
    """A typed attribute as the text Nomad's CLI shows."""
    fields = cast(Mapping[str, object], attribute)
    for key in ("String", "Int", "Float", "Bool"):
        if key in fields:
            return str(fields[key])
    return ""
