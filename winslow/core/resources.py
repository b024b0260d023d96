"""What a stage asks of a node, and what a node has: the values placement reasons about.

Backends report ``NodeInfo`` (with its ``GpuInfo``), stages ask with a ``ResourceRequest``;
``core/placement.py`` fits one onto the other. Pure values, so core needs nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class GpuRequest:
    """GPUs a stage asks for: how many, a name pattern, a minimum memory in MB."""

    count: int = 0
    model: str | None = None
    min_memory_mb: int | None = None
    cpu_fallback: bool = False
    """Run without GPUs where no known node could ever hold them (``gpu_fallback``)."""


@dataclass(frozen=True)
class ResourceRequest:
    """What a stage needs of a node."""

    cpus: float = 1.0
    memory_mb: int = 512
    gpu: GpuRequest = GpuRequest()


@dataclass(frozen=True)
class GpuInfo:
    """One GPU of a node."""

    index: int
    name: str
    memory_mb: int
    uuid: str | None = None
    healthy: bool = True


@dataclass(frozen=True)
class NodeDrain:
    """A node being emptied by its operator: it takes no new stages, and the stages on
    it are stopped at ``deadline`` (at once when ``forced``; never when neither)."""

    started_at: datetime | None = None
    deadline: datetime | None = None
    forced: bool = False
    ignore_system_jobs: bool = False

    def describe(self) -> str:
        """What an operator would say of it: "draining since 13:02 UTC, stages stopped
        at 14:02 UTC"."""
        since = f" since {_clock(self.started_at)}" if self.started_at else ""
        if self.forced:
            return f"draining{since}, stages stopped at once"
        if self.deadline is None:
            return f"draining{since}, no deadline: stages finish first"
        return f"draining{since}, stages stopped at {_clock(self.deadline)}"


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class NodeInfo:
    """One machine that can run stages, with its whole capacity.

    ``status`` is ``ready`` only when the node is up, eligible for new stages and not
    draining; else ``down``, ``draining`` or ``ineligible``. ``eligible`` and ``drain``
    say the scheduling side on their own (a down node may still be eligible)."""

    name: str
    cpus: float
    memory_mb: int
    gpus: tuple[GpuInfo, ...] = ()
    status: str = "ready"
    attributes: dict[str, str] = field(default_factory=dict)
    eligible: bool = True
    drain: NodeDrain | None = None
