"""What a stage asks of a node, and what a node has: the values placement reasons about.

Backends report ``NodeInfo`` (with its ``GpuInfo``), stages ask with a ``ResourceRequest``;
``core/placement.py`` fits one onto the other. Pure values, so core needs nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GpuRequest:
    """GPUs a stage asks for: how many, a name pattern, a minimum memory in MB."""

    count: int = 0
    model: str | None = None
    min_memory_mb: int | None = None


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
class NodeInfo:
    """One machine that can run stages, with its whole capacity."""

    name: str
    cpus: float
    memory_mb: int
    gpus: tuple[GpuInfo, ...] = ()
    status: str = "ready"
    attributes: dict[str, str] = field(default_factory=dict)
