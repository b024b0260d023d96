"""A node's telemetry over one of the console's ranges (live, 6 h, 24 h, 7 d, 31 d).

The server samples every node every few seconds and keeps the history rolled up
(``core/telemetry.py`` explains the tiers); this route reads the points of one range,
between 300 and 700 of them, oldest first. A figure the backend does not measure is null
in every point (Nomad reports no network or disk I/O), never zero.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from winslow.api.access import SignedIn
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.routes import API_V1
from winslow.core.telemetry import VIEWS, NodeSample, TelemetryRange
from winslow.errors import NotFoundError
from winslow.store.rows import now
from winslow.store.telemetry import known_nodes, read_view

router = APIRouter(prefix=API_V1, tags=["nodes"])

NodePath = Annotated[str, Path(min_length=1, max_length=200, description="Node name")]


class GpuTelemetryPublic(BaseModel):
    index: int
    utilization_percent: float | None
    memory_used_mb: float | None
    memory_total_mb: float | None
    temperature_c: float | None
    power_w: float | None


class NodeTelemetrySamplePublic(BaseModel):
    """One point: a sample, or the mean of the samples of one step."""

    at: datetime
    cpu_percent: list[float]
    """Busy share of each core, 0 to 100."""
    cpu_mean: float | None
    memory_used_mb: float | None
    memory_total_mb: float | None
    disk_used_bytes: float | None
    disk_total_bytes: float | None
    disk_read_bps: float | None
    """Bytes per second."""
    disk_write_bps: float | None
    net_rx_bps: float | None
    net_tx_bps: float | None
    gpus: list[GpuTelemetryPublic]


class NodeTelemetryPublic(BaseModel):
    node: str
    range: TelemetryRange
    start: datetime
    end: datetime
    step_seconds: int
    """One point per this many seconds (where samples were taken)."""
    source_step_seconds: int
    """The kept resolution the points were computed from: 0 for raw samples."""
    samples: list[NodeTelemetrySamplePublic]


@router.get("/nodes/{node}/telemetry", response_model=NodeTelemetryPublic)
def node_telemetry(
    _access: SignedIn,
    node: NodePath,
    context: ContextDep,
    _user: CurrentUser,
    range_: Annotated[TelemetryRange, Query(alias="range")] = TelemetryRange.LIVE,
) -> NodeTelemetryPublic:
    """CPU per core, memory, disk space and I/O, network, and each GPU's utilisation,
    memory, temperature and power of one node over ``range``."""
    if node not in known_nodes(context.store) and node not in {
        n.name for n in context.backend.nodes()
    }:
        raise NotFoundError(f"No node '{node}'; GET /api/v1/nodes lists them.")
    end = now()
    tier, samples = read_view(context.store, node, range_, end)
    view = VIEWS[range_]
    return NodeTelemetryPublic(
        node=node,
        range=range_,
        start=end - view.span,
        end=end,
        step_seconds=view.step,
        source_step_seconds=tier.step,
        samples=[_public(s) for s in samples],
    )


def _public(sample: NodeSample) -> NodeTelemetrySamplePublic:
    return NodeTelemetrySamplePublic(
        at=sample.at,
        cpu_percent=list(sample.cpu_percent),
        cpu_mean=sample.cpu_mean,
        memory_used_mb=sample.memory_used_mb,
        memory_total_mb=sample.memory_total_mb,
        disk_used_bytes=sample.disk_used_bytes,
        disk_total_bytes=sample.disk_total_bytes,
        disk_read_bps=sample.disk_read_bps,
        disk_write_bps=sample.disk_write_bps,
        net_rx_bps=sample.net_rx_bps,
        net_tx_bps=sample.net_tx_bps,
        gpus=[GpuTelemetryPublic(**g.__dict__) for g in sample.gpus],
    )
