"""Node telemetry as values: one sample of a node, rates from counters, rollups, and the
views the console draws.

A node is sampled every few seconds (``NodeSample``). Samples are kept at three
resolutions, each for as long as some view needs it (``TIERS``): the raw samples for six
hours, one-minute means for seven days, fifteen-minute means for 31 days. A view
(``VIEWS``: live, 6 h, 24 h, 7 d, 31 d) reads the coarsest tier that is still fine enough
and holds its whole span (``source_tier``), and ``rebucket`` merges that down to the
view's step, so every view draws between 300 and 700 points:

    =====  ========  =======  ==============  ======
    view   span      step     read from       points
    =====  ========  =======  ==============  ======
    live   30 min    5 s      raw (5 s)       360
    6h     6 h       1 min    1 min           360
    24h    24 h      3 min    1 min           480
    7d     7 d       15 min   15 min          672
    31d    31 d      90 min   15 min          496
    =====  ========  =======  ==============  ======

A rollup is the mean of its samples, figure by figure, weighted by how many raw samples
each stands for (``count``), so a rolled-up rolled-up figure is still the mean of the raw
ones. Means, not peaks: a node chart answers "how busy was it", and a mean of rates is the
bytes moved over the bucket divided by its time. A figure nobody measured stays ``None``
(Nomad reports no network or disk I/O); it is never shown as zero.

Pure: no clock, no I/O. Times are timezone-aware datetimes handed in by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

RAW_STEP_SECONDS = 5
"""The step of the raw tier, seconds: the default sampling interval. A server sampling
more often keeps its samples raw all the same; views bucket them."""


@dataclass(frozen=True)
class Tier:
    """One resolution samples are kept at: ``step`` seconds (0: raw), kept ``keep``."""

    step: int
    keep: timedelta


TIERS: tuple[Tier, ...] = (
    Tier(0, timedelta(hours=6)),
    Tier(60, timedelta(days=7)),
    Tier(900, timedelta(days=31)),
)
"""Raw samples, one-minute and fifteen-minute means, finest first."""


class TelemetryRange(str, Enum):
    """The spans the console offers; the value is the wire word of ``?range=``."""

    LIVE = "live"
    H6 = "6h"
    H24 = "24h"
    D7 = "7d"
    D31 = "31d"


@dataclass(frozen=True)
class View:
    """What one range shows: the last ``span``, one point per ``step`` seconds."""

    span: timedelta
    step: int


VIEWS: dict[TelemetryRange, View] = {
    TelemetryRange.LIVE: View(timedelta(minutes=30), RAW_STEP_SECONDS),
    TelemetryRange.H6: View(timedelta(hours=6), 60),
    TelemetryRange.H24: View(timedelta(hours=24), 180),
    TelemetryRange.D7: View(timedelta(days=7), 900),
    TelemetryRange.D31: View(timedelta(days=31), 5400),
}


@dataclass(frozen=True)
class GpuSample:
    """One GPU's figures; ``None`` where the driver did not say."""

    index: int
    utilization_percent: float | None = None
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None


@dataclass(frozen=True)
class NodeSample:
    """What one node used at ``at``, or on average over a bucket starting at ``at``.

    Bytes, not MB, for disks and rates, because rates of a quiet node are a few hundred
    bytes a second. ``count``: how many raw samples this one stands for.
    """

    node: str
    at: datetime
    cpu_percent: tuple[float, ...] = ()
    """Busy share of each core, 0 to 100, in core order."""
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None
    disk_used_bytes: float | None = None
    disk_total_bytes: float | None = None
    """The filesystem that holds the node's work (Nomad: its allocation directory)."""
    disk_read_bps: float | None = None
    disk_write_bps: float | None = None
    net_rx_bps: float | None = None
    net_tx_bps: float | None = None
    gpus: tuple[GpuSample, ...] = ()
    count: int = 1

    @property
    def cpu_mean(self) -> float | None:
        """The mean busy share of all cores; None when no core was measured."""
        return sum(self.cpu_percent) / len(self.cpu_percent) if self.cpu_percent else None


_SCALARS = (
    "memory_used_mb",
    "memory_total_mb",
    "disk_used_bytes",
    "disk_total_bytes",
    "disk_read_bps",
    "disk_write_bps",
    "net_rx_bps",
    "net_tx_bps",
)
_GPU_FIGURES = (
    "utilization_percent",
    "memory_used_mb",
    "memory_total_mb",
    "temperature_c",
    "power_w",
)


@dataclass(frozen=True)
class Counters:
    """Cumulative byte counters of a node at one moment (monotonic seconds ``clock``)."""

    clock: float
    disk_read: int | None = None
    disk_written: int | None = None
    net_received: int | None = None
    net_sent: int | None = None


@dataclass(frozen=True)
class Rates:
    """Bytes per second between two ``Counters``; None where either side lacks the counter."""

    disk_read_bps: float | None = None
    disk_write_bps: float | None = None
    net_rx_bps: float | None = None
    net_tx_bps: float | None = None


def rate(before: int | None, after: int | None, seconds: float) -> float | None:
    """Bytes per second from two readings of a counter; None when one is missing, no
    time passed, or the counter went backwards (a reboot or a wrapped 32-bit counter:
    the true figure is unknown, and a negative rate would be a lie)."""
    if before is None or after is None or seconds <= 0 or after < before:
        return None
    return (after - before) / seconds


def rates(before: Counters | None, after: Counters) -> Rates:
    """The rates between two readings; all None for the first one."""
    if before is None:
        return Rates()
    seconds = after.clock - before.clock
    return Rates(
        disk_read_bps=rate(before.disk_read, after.disk_read, seconds),
        disk_write_bps=rate(before.disk_written, after.disk_written, seconds),
        net_rx_bps=rate(before.net_received, after.net_received, seconds),
        net_tx_bps=rate(before.net_sent, after.net_sent, seconds),
    )


def bucket_start(at: datetime, step: int) -> datetime:
    """The start of the ``step``-second bucket holding ``at`` (buckets align to the epoch)."""
    seconds = int(at.timestamp())
    return datetime.fromtimestamp(seconds - seconds % step, tz=UTC)


def merge(samples: Sequence[NodeSample], at: datetime) -> NodeSample:
    """One sample at ``at`` that is the count-weighted mean of ``samples`` (not empty).

    Per-core figures are averaged over the samples with the latest sample's core count (a
    node whose cores changed mid-bucket is rare, and mixing lengths would misplace them);
    GPUs by index.
    """
    last = samples[-1]
    cores = [s for s in samples if len(s.cpu_percent) == len(last.cpu_percent)]
    cpu = tuple(
        _mean((s.cpu_percent[i], s.count) for s in cores) or 0.0
        for i in range(len(last.cpu_percent))
    )
    scalars = {name: _mean((getattr(s, name), s.count) for s in samples) for name in _SCALARS}
    indices = sorted({g.index for s in samples for g in s.gpus})
    gpus = []
    for index in indices:
        weighted = [(g, s.count) for s in samples for g in s.gpus if g.index == index]
        figures = {
            name: _mean((getattr(g, name), weight) for g, weight in weighted)
            for name in _GPU_FIGURES
        }
        gpus.append(GpuSample(index=index, **figures))
    return NodeSample(
        node=last.node,
        at=at,
        cpu_percent=cpu,
        gpus=tuple(gpus),
        count=sum(s.count for s in samples),
        **scalars,
    )


def rebucket(samples: Iterable[NodeSample], step: int) -> list[NodeSample]:
    """Merge time-ordered samples into one per ``step``-second bucket, at the bucket's
    start; buckets without samples are left out (a gap in the chart, not a zero)."""
    out: list[NodeSample] = []
    current: list[NodeSample] = []
    current_start: datetime | None = None
    for sample in samples:
        start = bucket_start(sample.at, step)
        if current and start != current_start:
            out.append(merge(current, current_start or start))
            current = []
        current_start = start
        current.append(sample)
    if current and current_start is not None:
        out.append(merge(current, current_start))
    return out


def complete_buckets(samples: Iterable[NodeSample], step: int, now: datetime) -> list[NodeSample]:
    """The rollups of the buckets that ended by ``now``; a bucket still filling is left
    for a later round, so a rollup is written once and never revised."""
    done = [s for s in samples if bucket_start(s.at, step) + timedelta(seconds=step) <= now]
    return rebucket(done, step)


def source_tier(view: View, now: datetime, oldest: Mapping[int, datetime | None]) -> Tier:
    """The tier a view reads: the coarsest whose step is at most the view's and whose
    oldest sample (``oldest``: tier step → oldest kept sample) reaches back to the view's
    start. Where none reaches back (a server up for an hour has no 15-minute means to
    speak of), the one reaching back furthest, the finer on a tie, so a young server's
    7-day view shows its first hour; with no samples at all, the finest."""
    fitting = [t for t in TIERS if t.step <= view.step]
    start = now - view.span + timedelta(seconds=view.step)
    for tier in reversed(fitting):
        first = oldest.get(tier.step)
        if first is not None and first <= start:
            return tier
    known = [(first, tier.step, tier) for tier in fitting if (first := oldest.get(tier.step))]
    return min(known, key=lambda entry: (entry[0], entry[1]))[2] if known else fitting[0]


def expired(tier: Tier, now: datetime) -> datetime:
    """Samples of ``tier`` older than this are deleted."""
    return now - tier.keep


def to_json(sample: NodeSample) -> dict[str, Any]:
    """The figures of a sample as stored (node and time live in their own columns)."""
    data: dict[str, Any] = {"cpu": list(sample.cpu_percent), "n": sample.count}
    for name in _SCALARS:
        value = getattr(sample, name)
        if value is not None:
            data[name] = value
    if sample.gpus:
        data["gpus"] = [
            {"index": g.index}
            | {name: getattr(g, name) for name in _GPU_FIGURES if getattr(g, name) is not None}
            for g in sample.gpus
        ]
    return data


def from_json(node: str, at: datetime, data: Mapping[str, Any]) -> NodeSample:
    """The sample ``to_json`` wrote; unknown keys are ignored, missing figures are None."""
    gpus = tuple(
        GpuSample(
            index=int(g["index"]),
            **{name: _float(g.get(name)) for name in _GPU_FIGURES},
        )
        for g in data.get("gpus") or ()
    )
    return NodeSample(
        node=node,
        at=at,
        cpu_percent=tuple(float(v) for v in data.get("cpu") or ()),
        gpus=gpus,
        count=int(data.get("n") or 1),
        **{name: _float(data.get(name)) for name in _SCALARS},
    )


def with_rates(sample: NodeSample, measured: Rates) -> NodeSample:
    """``sample`` carrying the rates computed from counters."""
    return replace(
        sample,
        disk_read_bps=measured.disk_read_bps,
        disk_write_bps=measured.disk_write_bps,
        net_rx_bps=measured.net_rx_bps,
        net_tx_bps=measured.net_tx_bps,
    )


def _mean(values: Iterable[tuple[float | None, int]]) -> float | None:
    total = 0.0
    weight = 0
    for value, count in values:
        if value is None:
            continue
        total += value * count
        weight += count
    return total / weight if weight else None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
